//! `[session]`: which cookie identifies the user and how it is resolved.

use std::time::Duration;

use http::Uri;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::network::http_url;
use super::reader::Section;
use super::secret::{Secret, SecretEnv, SecretOrigin, read_secret, skip_secret};

pub(super) const KEYS: &[&str] = &[
    "cookie",
    "resolver",
    "cache_ttl",
    "timeout",
    "fields",
    "jwt",
    "http",
    "redis",
    "sql",
];
const JWT_KEYS: &[&str] = &["algorithms", "key_env", "key_file"];
const HTTP_KEYS: &[&str] = &["url"];
const REDIS_KEYS: &[&str] = &[
    "url",
    "key",
    "cookie_format",
    "cookie_secret_env",
    "cookie_secret_file",
];
const SQL_KEYS: &[&str] = &["url", "query"];
const RESOLVERS: &[&str] = &["jwt", "http", "redis", "sql"];

/// `[session]`.
#[derive(Clone)]
pub struct SessionConfig {
    /// Name of the app's session cookie.
    pub cookie: String,
    /// The resolver chosen by `resolver`, with its settings.
    pub resolver: ResolverConfig,
    /// How long a session → user lookup is cached (http, redis, sql).
    pub cache_ttl: Duration,
    /// Limit for one lookup; past it the page is served without identity.
    pub timeout: Duration,
    /// JSON pointers from the session document to the user's fields.
    pub fields: FieldMap,
}

/// The configured session resolver.
#[derive(Clone)]
pub enum ResolverConfig {
    /// The cookie is a JWT issued by the app.
    Jwt(JwtResolverConfig),
    /// An introspection URL answers who the cookie belongs to.
    Http(HttpResolverConfig),
    /// Sessions live in Redis.
    Redis(RedisResolverConfig),
    /// Sessions live in PostgreSQL or MySQL/MariaDB.
    Sql(SqlResolverConfig),
}

/// `[session.jwt]`.
#[derive(Clone)]
pub struct JwtResolverConfig {
    /// Accepted algorithms (one family: HMAC, RSA, EC or EdDSA).
    pub algorithms: Vec<Algorithm>,
    /// The verification key, parsed once.
    pub key: DecodingKey,
    /// Where the key was read from, for warnings.
    pub key_origin: SecretOrigin,
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

/// `[session.fields]`: JSON pointers into the session document.
#[derive(Clone, Debug)]
pub struct FieldMap {
    /// Pointer to the user id (required).
    pub user_id: String,
    /// Pointer to the email, if mapped.
    pub email: Option<String>,
    /// Pointer to the display name, if mapped.
    pub name: Option<String>,
    /// Every other key: a signed custom attribute, with its pointer.
    pub custom: Vec<(String, String)>,
}

pub(super) fn read(section: Option<Section<'_>>, env: &dyn SecretEnv) -> Option<SessionConfig> {
    let mut s = section?;
    let cookie = s.string("cookie").unwrap_or_else(|| "session".to_string());
    let cookie_ok = is_cookie_name(&cookie);
    if !cookie_ok {
        s.issue("cookie", format!("invalid cookie name {cookie:?}"));
    }
    if !s.has("resolver") {
        s.issue(
            "resolver",
            format!("missing (expected {})", RESOLVERS.join(", ")),
        );
    }
    let resolver_name = s.choice("resolver", "resolver", RESOLVERS);
    let cache_ttl = s.duration("cache_ttl").unwrap_or(Duration::from_secs(5));
    let timeout = match s.duration("timeout") {
        Some(d) if d.is_zero() => {
            s.issue("timeout", "must be greater than zero");
            None
        }
        Some(d) => Some(d),
        None => Some(Duration::from_millis(300)),
    };
    let fields = read_fields(&mut s);

    let chosen = resolver_name.as_deref();
    if let Some(name) = chosen
        && !s.has(name)
    {
        s.issue(
            name,
            format!(
                "missing section [session.{name}] (required when session.resolver = \"{name}\")"
            ),
        );
    }
    let jwt = s
        .table("jwt", JWT_KEYS)
        .and_then(|t| read_jwt(t, chosen == Some("jwt"), env));
    let http = s.table("http", HTTP_KEYS).and_then(read_http);
    let redis = s
        .table("redis", REDIS_KEYS)
        .and_then(|t| read_redis(t, chosen == Some("redis"), env));
    let sql = s.table("sql", SQL_KEYS).and_then(read_sql);
    let resolver = match chosen {
        Some("jwt") => jwt.flatten().map(ResolverConfig::Jwt),
        Some("http") => http.map(ResolverConfig::Http),
        Some("redis") => redis.map(ResolverConfig::Redis),
        Some("sql") => sql.map(ResolverConfig::Sql),
        _ => None,
    };
    s.finish();
    if !cookie_ok {
        return None;
    }
    Some(SessionConfig {
        cookie,
        resolver: resolver?,
        cache_ttl,
        timeout: timeout?,
        fields: fields?,
    })
}

fn read_fields(s: &mut Section<'_>) -> Option<FieldMap> {
    let Some(table) = s.raw_table("fields") else {
        if !s.has("fields") {
            s.issue(
                "fields",
                "missing section [session.fields] (expected at least user_id = \"/sub\")",
            );
        }
        return None;
    };
    let mut ok = true;
    let mut user_id = None;
    let mut email = None;
    let mut name = None;
    let mut custom = Vec::new();
    for (key, value) in table {
        let path = format!("fields.{key}");
        let Some(pointer) = value.as_str() else {
            s.issue(
                &path,
                format!(
                    "expected a JSON pointer string like \"/sub\", found {}",
                    super::reader::describe(&value)
                ),
            );
            ok = false;
            continue;
        };
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            s.issue(&path, format!("invalid JSON pointer {pointer:?} (expected \"\" or a path starting with '/', e.g. \"/user/id\")"));
            ok = false;
            continue;
        }
        let pointer = pointer.to_string();
        match key.as_str() {
            "user_id" => user_id = Some(pointer),
            "email" => email = Some(pointer),
            "name" => name = Some(pointer),
            "iat" | "exp" | "user_hash" | "intercom_user_jwt" => {
                s.issue(
                    &path,
                    format!("{key:?} is reserved for the proxy's own claims"),
                );
                ok = false;
            }
            _ => custom.push((key, pointer)),
        }
    }
    if user_id.is_none() {
        s.issue(
            "fields.user_id",
            "missing (required: a JSON pointer to the user id, e.g. \"/sub\")",
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(FieldMap {
        user_id: user_id?,
        email,
        name,
        custom,
    })
}

/// Returns `Some(None)` for a valid section of a resolver that is not in use.
fn read_jwt(
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
    // Read before the keys are consumed: a key that does not parse names its own source.
    let key_source = if s.has("key_file") {
        "key_file"
    } else {
        "key_env"
    };
    let secret = if in_use {
        read_secret(&mut s, "key", true, env)
    } else {
        skip_secret(&mut s, "key")
    };
    let key = match (in_use && ok, &secret) {
        (true, Some(secret)) => {
            let material = secret.expose();
            let parsed = match families.first().copied().unwrap_or(Family::Hmac) {
                Family::Hmac => Ok(DecodingKey::from_secret(material)),
                Family::Rsa => DecodingKey::from_rsa_pem(material),
                Family::Ec => DecodingKey::from_ec_pem(material),
                Family::Ed => DecodingKey::from_ed_pem(material),
            };
            match parsed {
                Ok(key) => Some(key),
                Err(e) => {
                    s.issue(key_source, format!("not a usable key for {algorithms:?}: {e} (RS*/PS*/ES*/EdDSA need a PEM public key)"));
                    None
                }
            }
        }
        _ => None,
    };
    s.finish();
    if !in_use {
        return Some(None);
    }
    Some(Some(JwtResolverConfig {
        algorithms,
        key: key?,
        key_origin: secret.map(|s| s.origin().clone())?,
    }))
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

fn read_http(mut s: Section<'_>) -> Option<HttpResolverConfig> {
    let url = s
        .required_string("url", "\"http://127.0.0.1:3000/api/me\"")
        .and_then(|raw| http_url(&s, "url", &raw));
    s.finish();
    Some(HttpResolverConfig { url: url? })
}

fn read_redis(
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
    let cookie_secret = if in_use {
        read_secret(&mut s, "cookie_secret", false, env)
    } else {
        skip_secret(&mut s, "cookie_secret")
    };
    s.finish();
    Some(RedisResolverConfig {
        url: url?,
        key: key?,
        cookie_format,
        cookie_secret,
    })
}

fn read_sql(mut s: Section<'_>) -> Option<SqlResolverConfig> {
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

fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}
