//! `[session]`: which cookie identifies the user and how it is resolved.

use std::time::Duration;

use super::frameworks::{
    DJANGO_KEYS, DjangoResolverConfig, FLASK_KEYS, FlaskResolverConfig, RAILS_KEYS,
    RailsResolverConfig, read_django, read_flask, read_rails,
};
use super::header::{HEADER_KEYS, HeaderResolverConfig, read_header};
use super::lookup::{LOOKUP_KEYS, LookupConfig, read_lookup};
use super::php::{
    LARAVEL_KEYS, LaravelResolverConfig, PHP_KEYS, PhpResolverConfig, read_laravel, read_php,
};
use super::reader::Section;
use super::resolvers::{
    HTTP_KEYS, HttpResolverConfig, JWT_KEYS, JwtResolverConfig, REDIS_KEYS, RedisResolverConfig,
    SQL_KEYS, SqlResolverConfig, read_http, read_jwt, read_redis, read_sql,
};
use super::secret::SecretEnv;

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
    "laravel",
    "php",
    "header",
    "rails",
    "django",
    "flask",
    "lookup",
];
const RESOLVERS: &[&str] = &[
    "jwt", "http", "redis", "sql", "rails", "django", "flask", "laravel", "php", "header",
];

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
    /// `[session.lookup]`: the user's record, fetched by user id after any resolver.
    pub lookup: Option<LookupConfig>,
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
    /// A Laravel app's encrypted session cookie and its session store.
    Laravel(LaravelResolverConfig),
    /// Native PHP sessions (`session_start()`), in files or Redis.
    Php(PhpResolverConfig),
    /// An authenticating proxy in front names the user in request headers.
    Header(HeaderResolverConfig),
    /// A Rails app's cookie store.
    Rails(RailsResolverConfig),
    /// A Django app's sessions (database or signed cookies).
    Django(DjangoResolverConfig),
    /// A Flask app's signed session cookie.
    Flask(FlaskResolverConfig),
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
    if !s.has("resolver") {
        s.issue(
            "resolver",
            format!("missing (expected {})", RESOLVERS.join(", ")),
        );
    }
    let resolver_name = s.choice("resolver", "resolver", RESOLVERS);
    // The framework's own cookie name when none is given.
    let default_cookie = match resolver_name.as_deref() {
        Some("php") => "PHPSESSID",
        Some("laravel") => "laravel_session",
        Some("django") => "sessionid",
        _ => "session",
    };
    let cookie = s
        .string("cookie")
        .unwrap_or_else(|| default_cookie.to_string());
    let cookie_ok = is_cookie_name(&cookie);
    if !cookie_ok {
        s.issue("cookie", format!("invalid cookie name {cookie:?}"));
    }
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
    let laravel = s
        .table("laravel", LARAVEL_KEYS)
        .and_then(|t| read_laravel(t, chosen == Some("laravel"), env));
    let php = s.table("php", PHP_KEYS).and_then(read_php);
    let header = s.table("header", HEADER_KEYS).and_then(read_header);
    let rails = s
        .table("rails", RAILS_KEYS)
        .and_then(|t| read_rails(t, chosen == Some("rails"), env));
    let django = s
        .table("django", DJANGO_KEYS)
        .and_then(|t| read_django(t, chosen == Some("django"), env));
    let flask = s
        .table("flask", FLASK_KEYS)
        .and_then(|t| read_flask(t, chosen == Some("flask"), env));
    let lookup = match s.has("lookup") {
        true => Some(s.table("lookup", LOOKUP_KEYS).and_then(read_lookup)),
        false => None,
    };
    let resolver = match chosen {
        Some("jwt") => jwt.flatten().map(ResolverConfig::Jwt),
        Some("http") => http.map(ResolverConfig::Http),
        Some("redis") => redis.map(ResolverConfig::Redis),
        Some("sql") => sql.map(ResolverConfig::Sql),
        Some("laravel") => laravel.map(ResolverConfig::Laravel),
        Some("php") => php.map(ResolverConfig::Php),
        Some("header") => header.map(ResolverConfig::Header),
        Some("rails") => rails.map(ResolverConfig::Rails),
        Some("django") => django.map(ResolverConfig::Django),
        Some("flask") => flask.map(ResolverConfig::Flask),
        _ => None,
    };
    if let Some(fields) = &fields {
        check_lookup_pointers(&s, fields, lookup.is_some());
    }
    s.finish();
    if !cookie_ok {
        return None;
    }
    let lookup = match lookup {
        None => None,
        Some(lookup) => Some(lookup?),
    };
    Some(SessionConfig {
        cookie,
        resolver: resolver?,
        cache_ttl,
        timeout: timeout?,
        fields: fields?,
        lookup,
    })
}

/// Pointers under `/lookup` need `[session.lookup]`; the user id cannot come from it (the
/// lookup is made with the user id).
fn check_lookup_pointers(s: &Section<'_>, fields: &FieldMap, has_lookup: bool) {
    let under_lookup = |p: &str| p == "/lookup" || p.starts_with("/lookup/");
    if under_lookup(&fields.user_id) {
        s.issue(
            "fields.user_id",
            "cannot come from /lookup: the lookup is made with the user id",
        );
    }
    if has_lookup {
        return;
    }
    let others = [
        ("email", fields.email.as_deref()),
        ("name", fields.name.as_deref()),
    ]
    .into_iter()
    .chain(
        fields
            .custom
            .iter()
            .map(|(k, p)| (k.as_str(), Some(p.as_str()))),
    );
    for (key, pointer) in others {
        if pointer.is_some_and(under_lookup) {
            s.issue(
                &format!("fields.{key}"),
                "points under /lookup, but there is no [session.lookup] section",
            );
        }
    }
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

fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}
