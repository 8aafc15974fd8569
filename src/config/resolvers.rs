//! The resolver sections of `[session]`: `[session.jwt]`, `[session.http]`,
//! `[session.redis]`, `[session.sql]`, each read and checked, secrets included.

use http::Uri;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::network::http_url;
use super::reader::Section;
use super::secret::{Secret, SecretEnv, SecretOrigin, read_secret, skip_secret};

pub(super) const JWT_KEYS: &[&str] = &[
    "algorithms",
    "key_env",
    "key_file",
    "previous_keys_env",
    "previous_keys_file",
    "leeway",
];

/// More leeway than this on a session token's `exp` is a typo: the Messenger would outlive
/// the app's session by that much.
const MAX_LEEWAY_SECS: u64 = 300;
pub(super) const HTTP_KEYS: &[&str] = &["url"];
pub(super) const REDIS_KEYS: &[&str] = &[
    "url",
    "key",
    "cookie_format",
    "cookie_secret_env",
    "cookie_secret_file",
    "previous_cookie_secrets_env",
    "previous_cookie_secrets_file",
];
pub(super) const SQL_KEYS: &[&str] = &["url", "query"];

/// `[session.jwt]`.
#[derive(Clone)]
pub struct JwtResolverConfig {
    /// Accepted algorithms (one family: HMAC, RSA, EC or EdDSA).
    pub algorithms: Vec<Algorithm>,
    /// The verification key, parsed once.
    pub key: DecodingKey,
    /// Where the key was read from, for warnings.
    pub key_origin: SecretOrigin,
    /// Keys the app signed with before its current one, tried when the current one does
    /// not verify (a key rotation keeps everyone signed in).
    pub previous_keys: Vec<DecodingKey>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 0: a session the app
    /// treats as expired names no one here either).
    pub leeway_secs: u64,
}

/// `[session.http]`.
#[derive(Clone, Debug)]
pub struct HttpResolverConfig {
    /// The introspection endpoint.
    pub url: Uri,
}

/// `[session.redis]`. No `Debug`: the URL may carry a password.
#[derive(Clone)]
pub struct RedisResolverConfig {
    /// `redis://` or `rediss://` URL.
    pub url: String,
    /// Key template containing `{sid}`.
    pub key: String,
    /// How the cookie carries the session id.
    pub cookie_format: CookieFormat,
    /// express-session cookie signing secret, when signatures are verified.
    pub cookie_secret: Option<Secret>,
    /// Secrets the app signed cookies with before (express-session's `secret: [new, old]`),
    /// a comma list, tried after `cookie_secret`.
    pub previous_cookie_secrets: Option<Secret>,
}

/// How a session cookie carries the session id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieFormat {
    /// The cookie value is the id.
    Raw,
    /// `s:<sid>.<signature>`, URL-encoded (express-session).
    Express,
}

/// `[session.sql]`. No `Debug`: the URL may carry a password.
#[derive(Clone)]
pub struct SqlResolverConfig {
    /// `postgres://` or `mysql://` URL.
    pub url: String,
    /// Query with one parameter, the session id.
    pub query: String,
}

/// Returns `Some(None)` for a valid section of a resolver that is not in use.
pub(super) fn read_jwt(
    mut s: Section<'_>,
    in_use: bool,
    env: &dyn SecretEnv,
) -> Option<Option<JwtResolverConfig>> {
    let mut algorithms = Vec::new();
    let mut ok = true;
    match s.string_list("algorithms") {
        None if !s.has("algorithms") => algorithms.push(Algorithm::HS256),
        None => ok = false,
        Some(list) if list.is_empty() => {
            s.issue("algorithms", "empty list (expected e.g. [\"HS256\"])");
            ok = false;
        }
        Some(list) => {
            for name in list {
                match name.parse::<Algorithm>() {
                    Ok(a) => algorithms.push(a),
                    Err(_) => {
                        s.issue(
                            "algorithms",
                            format!("unknown algorithm {name:?} (expected HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"),
                        );
                        ok = false;
                    }
                }
            }
        }
    }
    let families: Vec<_> = algorithms.iter().map(|a| family(*a)).collect();
    if families.windows(2).any(|w| w[0] != w[1]) {
        s.issue(
            "algorithms",
            "mixes algorithm families; one key verifies only HS*, RS*/PS*, ES* or EdDSA",
        );
        ok = false;
    }
    let leeway_secs = match s.duration("leeway") {
        None => 0,
        Some(d) if d.as_secs() > MAX_LEEWAY_SECS => {
            s.issue(
                "leeway",
                format!("{}s is more than the {MAX_LEEWAY_SECS}s allowed: the Messenger would stay signed in that long after the app's session expired", d.as_secs()),
            );
            ok = false;
            0
        }
        Some(d) => d.as_secs(),
    };
    // Read before the keys are consumed: a key that does not parse names its own source.
    let key_source = if s.has("key_file") {
        "key_file"
    } else {
        "key_env"
    };
    let previous_source = if s.has("previous_keys_file") {
        "previous_keys_file"
    } else {
        "previous_keys_env"
    };
    let (secret, previous) = if in_use {
        (
            read_secret(&mut s, "key", true, env),
            read_secret(&mut s, "previous_keys", false, env),
        )
    } else {
        (
            skip_secret(&mut s, "key"),
            skip_secret(&mut s, "previous_keys"),
        )
    };
    let family = families.first().copied().unwrap_or(Family::Hmac);
    let key = match (in_use && ok, &secret) {
        (true, Some(secret)) => match decoding_key(family, secret.expose()) {
            Ok(key) => Some(key),
            Err(e) => {
                s.issue(key_source, format!("not a usable key for {algorithms:?}: {e} (RS*/PS*/ES*/EdDSA need a PEM public key)"));
                None
            }
        },
        _ => None,
    };
    let previous_keys = match (in_use && ok, &previous) {
        (true, Some(previous)) => previous_keys(&s, previous_source, family, previous),
        _ => Some(Vec::new()),
    };
    s.finish();
    if !in_use {
        return Some(None);
    }
    Some(Some(JwtResolverConfig {
        algorithms,
        key: key?,
        key_origin: secret.map(|s| s.origin().clone())?,
        previous_keys: previous_keys?,
        leeway_secs,
    }))
}

fn decoding_key(family: Family, material: &[u8]) -> jsonwebtoken::errors::Result<DecodingKey> {
    match family {
        Family::Hmac => Ok(DecodingKey::from_secret(material)),
        Family::Rsa => DecodingKey::from_rsa_pem(material),
        Family::Ec => DecodingKey::from_ec_pem(material),
        Family::Ed => DecodingKey::from_ed_pem(material),
    }
}

/// `previous_keys_*`: for HS*, a comma list of secrets; otherwise one or more PEM public
/// keys, one after the other. Each must parse, or the rotation would fail unseen.
fn previous_keys(
    s: &Section<'_>,
    key: &str,
    family: Family,
    previous: &Secret,
) -> Option<Vec<DecodingKey>> {
    let text = String::from_utf8_lossy(previous.expose());
    let items: Vec<&str> = match family {
        Family::Hmac => text
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect(),
        _ => pem_blocks(&text),
    };
    if items.is_empty() {
        s.issue(key, format!("{} holds no key", previous.origin().source));
        return None;
    }
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match decoding_key(family, item.as_bytes()) {
            Ok(k) => keys.push(k),
            Err(e) => {
                s.issue(
                    key,
                    format!(
                        "key {} of {}: not a usable key: {e}",
                        i + 1,
                        previous.origin().source
                    ),
                );
                return None;
            }
        }
    }
    Some(keys)
}

/// The `-----BEGIN …-----` … `-----END …-----` blocks of a PEM text.
fn pem_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let from = &rest[start..];
        let Some(end) = from.find("-----END ") else {
            // An unfinished block: handed on whole, so its error is reported.
            blocks.push(from);
            break;
        };
        let close = from[end + 9..]
            .find("-----")
            .map_or(from.len(), |i| end + 9 + i + 5);
        blocks.push(&from[..close]);
        rest = &from[close..];
    }
    blocks
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(a: Algorithm) -> Family {
    use Algorithm::*;
    match a {
        HS256 | HS384 | HS512 => Family::Hmac,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Family::Rsa,
        ES256 | ES384 => Family::Ec,
        _ => Family::Ed,
    }
}

pub(super) fn read_http(mut s: Section<'_>) -> Option<HttpResolverConfig> {
    let url = s
        .required_string("url", "\"http://127.0.0.1:3000/api/me\"")
        .and_then(|raw| http_url(&s, "url", &raw));
    s.finish();
    Some(HttpResolverConfig { url: url? })
}

pub(super) fn read_redis(
    mut s: Section<'_>,
    in_use: bool,
    env: &dyn SecretEnv,
) -> Option<RedisResolverConfig> {
    let url = s
        .required_string("url", "\"redis://127.0.0.1:6379/0\"")
        .and_then(|u| {
            if u.starts_with("redis://") || u.starts_with("rediss://") {
                Some(u)
            } else {
                // The URL may hold a password: name its scheme only.
                let scheme = u.split("://").next().unwrap_or_default();
                s.issue(
                    "url",
                    format!(
                        "invalid Redis URL scheme {scheme:?} (expected redis://… or rediss://…)"
                    ),
                );
                None
            }
        });
    let key = match s.string("key") {
        None => Some("sess:{sid}".to_string()),
        Some(k) if k.contains("{sid}") => Some(k),
        Some(k) => {
            s.issue(
                "key",
                format!("key template {k:?} has no {{sid}} (expected e.g. \"sess:{{sid}}\")"),
            );
            None
        }
    };
    let cookie_format = match s
        .choice("cookie_format", "cookie format", &["raw", "express"])
        .as_deref()
    {
        Some("express") => CookieFormat::Express,
        _ => CookieFormat::Raw,
    };
    let previous_key = if s.has("previous_cookie_secrets_file") {
        "previous_cookie_secrets_file"
    } else {
        "previous_cookie_secrets_env"
    };
    let (cookie_secret, previous_cookie_secrets) = if in_use {
        (
            read_secret(&mut s, "cookie_secret", false, env),
            read_secret(&mut s, "previous_cookie_secrets", false, env),
        )
    } else {
        (
            skip_secret(&mut s, "cookie_secret"),
            skip_secret(&mut s, "previous_cookie_secrets"),
        )
    };
    if previous_cookie_secrets.is_some() && cookie_secret.is_none() {
        s.issue(
            previous_key,
            "set without cookie_secret_env or cookie_secret_file: signatures are not checked",
        );
    }
    s.finish();
    Some(RedisResolverConfig {
        url: url?,
        key: key?,
        cookie_format,
        cookie_secret,
        previous_cookie_secrets,
    })
}

pub(super) fn read_sql(mut s: Section<'_>) -> Option<SqlResolverConfig> {
    let url = s.required_string("url", "\"postgres://app@127.0.0.1/app\"");
    let flavour = url.as_deref().and_then(|u| {
        let scheme = u.split("://").next().unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" => Some("$1"),
            "mysql" | "mariadb" => Some("?"),
            _ => {
                s.issue("url", format!("unsupported database URL scheme {scheme:?} (expected postgres://, postgresql://, mysql:// or mariadb://)"));
                None
            }
        }
    });
    let query = s.required_string(
        "query",
        "\"SELECT user_id, email FROM sessions WHERE id = $1\"",
    );
    if let (Some(q), Some(placeholder)) = (&query, flavour)
        && !q.contains(placeholder)
    {
        s.issue(
            "query",
            format!("query has no {placeholder} parameter for the session id"),
        );
    }
    s.finish();
    flavour?;
    Some(SqlResolverConfig {
        url: url?,
        query: query?,
    })
}
