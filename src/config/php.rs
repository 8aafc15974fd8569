//! `[session.php]` and `[session.laravel]`: PHP apps' sessions, where they are stored and,
//! for Laravel, the key that encrypts the cookie. Read and checked; nothing opens yet.

use std::path::PathBuf;
use std::time::Duration;

use super::reader::Section;
use super::secret::{Secret, SecretEnv, read_secret, skip_secret};

pub(super) const PHP_KEYS: &[&str] = &["save_handler", "path", "url", "key", "serialize_handler"];
pub(super) const LARAVEL_KEYS: &[&str] = &[
    "app_key_env",
    "app_key_file",
    "previous_keys_env",
    "previous_keys_file",
    "cipher",
    "driver",
    "path",
    "url",
    "key",
    "table",
    "lifetime",
];

/// Laravel's ciphers, as `config/app.php` names them.
pub const LARAVEL_CIPHERS: &[&str] = &["aes-256-cbc", "aes-128-cbc", "aes-256-gcm", "aes-128-gcm"];

/// Where sessions are stored. No `Debug`: a URL may carry a password.
#[derive(Clone)]
pub enum SessionStore {
    /// One file per session in `dir`, named `prefix` + id; `levels` directories deep (PHP's
    /// `session.save_path = "N;/path"`).
    Files {
        /// The directory.
        dir: PathBuf,
        /// The file name before the id (`sess_` for PHP, none for Laravel).
        prefix: &'static str,
        /// Subdirectory levels, one id character each.
        levels: usize,
    },
    /// One Redis key per session.
    Redis {
        /// `redis://` or `rediss://` URL.
        url: String,
        /// Key template containing `{sid}`.
        key: String,
    },
    /// One row per session (Laravel's `database` driver).
    Database {
        /// `postgres://` or `mysql://` URL.
        url: String,
        /// The sessions table.
        table: String,
    },
}

/// How PHP serialized `$_SESSION` (`session.serialize_handler`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhpSerializeHandler {
    /// `name|value` pairs (PHP's default).
    Php,
    /// The whole array through `serialize()`.
    PhpSerialize,
}

/// `[session.php]`.
#[derive(Clone)]
pub struct PhpResolverConfig {
    /// Files or Redis.
    pub store: SessionStore,
    /// The data format.
    pub serialize_handler: PhpSerializeHandler,
}

/// `[session.laravel]`.
#[derive(Clone)]
pub struct LaravelResolverConfig {
    /// `APP_KEY` as in `.env` (`base64:…`), parsed when the resolver is built.
    pub app_key: Secret,
    /// `APP_PREVIOUS_KEYS`: a comma list, tried after the current key.
    pub previous_keys: Option<Secret>,
    /// One of [`LARAVEL_CIPHERS`].
    pub cipher: String,
    /// The session driver's store.
    pub store: SessionStore,
    /// `SESSION_LIFETIME`: older sessions (by file time or `last_activity`) are gone.
    pub lifetime: Duration,
}

pub(super) fn read_php(mut s: Section<'_>) -> Option<PhpResolverConfig> {
    let handler = s.choice("save_handler", "save handler", &["files", "redis"]);
    let store = match handler.as_deref().unwrap_or("files") {
        "redis" => redis_store(&mut s, "PHPREDIS_SESSION:{sid}"),
        _ => {
            let path = s
                .string("path")
                .unwrap_or_else(|| "/var/lib/php/sessions".into());
            files_store(&s, &path, "sess_")
        }
    };
    let serialize_handler = match s
        .choice(
            "serialize_handler",
            "serialize handler",
            &["php", "php_serialize"],
        )
        .as_deref()
    {
        Some("php_serialize") => PhpSerializeHandler::PhpSerialize,
        _ => PhpSerializeHandler::Php,
    };
    s.finish();
    Some(PhpResolverConfig {
        store: store?,
        serialize_handler,
    })
}

pub(super) fn read_laravel(
    mut s: Section<'_>,
    in_use: bool,
    env: &dyn SecretEnv,
) -> Option<LaravelResolverConfig> {
    let (app_key, previous_keys) = if in_use {
        (
            read_secret(&mut s, "app_key", true, env),
            read_secret(&mut s, "previous_keys", false, env),
        )
    } else {
        (
            skip_secret(&mut s, "app_key"),
            skip_secret(&mut s, "previous_keys"),
        )
    };
    let cipher = s.choice("cipher", "cipher", LARAVEL_CIPHERS);
    let cipher_ok = cipher.is_some() || !s.has("cipher");
    let driver = s.choice("driver", "driver", &["file", "redis", "database"]);
    let store = match driver.as_deref() {
        Some("redis") => redis_store(&mut s, "laravel_database_laravel_cache_:{sid}"),
        Some("database") => database_store(&mut s),
        Some(_) => s
            .required_string("path", "\"/var/www/app/storage/framework/sessions\"")
            .and_then(|path| files_store(&s, &path, "")),
        None => {
            if !s.has("driver") {
                s.issue("driver", "missing (expected file, redis or database)");
            }
            None
        }
    };
    let lifetime = s
        .duration("lifetime")
        .unwrap_or(Duration::from_secs(120 * 60));
    s.finish();
    if !in_use || !cipher_ok {
        return None;
    }
    Some(LaravelResolverConfig {
        app_key: app_key?,
        previous_keys,
        cipher: cipher.unwrap_or_else(|| "aes-256-cbc".into()),
        store: store?,
        lifetime,
    })
}

/// PHP's `save_path`: a directory, or `N;/dir` (`N;MODE;/dir`) for ids spread over N levels
/// of subdirectories.
fn files_store(s: &Section<'_>, path: &str, prefix: &'static str) -> Option<SessionStore> {
    let mut parts: Vec<&str> = path.split(';').collect();
    let dir = parts.pop().unwrap_or_default();
    let levels = match parts.first() {
        None => 0,
        Some(n) => match n.trim().parse::<usize>() {
            Ok(levels) if levels <= 8 => levels,
            _ => {
                s.issue(
                    "path",
                    format!("{path:?}: expected a directory, or \"N;/dir\" with N from 0 to 8"),
                );
                return None;
            }
        },
    };
    if !dir.starts_with('/') {
        s.issue("path", format!("{dir:?} is not an absolute directory path"));
        return None;
    }
    Some(SessionStore::Files {
        dir: PathBuf::from(dir),
        prefix,
        levels,
    })
}

fn redis_store(s: &mut Section<'_>, default_key: &str) -> Option<SessionStore> {
    let url = s.required_string("url", "\"redis://127.0.0.1:6379/0\"");
    let url = url.filter(|u| {
        let ok = u.starts_with("redis://") || u.starts_with("rediss://");
        if !ok {
            // The URL may hold a password: name its scheme only.
            let scheme = u.split("://").next().unwrap_or_default();
            s.issue(
                "url",
                format!("invalid Redis URL scheme {scheme:?} (expected redis://… or rediss://…)"),
            );
        }
        ok
    });
    let key = s.string("key").unwrap_or_else(|| default_key.to_string());
    if !key.contains("{sid}") {
        s.issue("key", format!("key template {key:?} has no {{sid}}"));
        return None;
    }
    Some(SessionStore::Redis { url: url?, key })
}

/// A database URL of a kind the proxy speaks, else an issue on `url`.
pub(super) fn database_url(s: &Section<'_>, url: String) -> Option<String> {
    let scheme = url.split("://").next().unwrap_or_default();
    if matches!(scheme, "postgres" | "postgresql" | "mysql" | "mariadb") {
        Some(url)
    } else {
        // The URL may hold a password: name its scheme only.
        s.issue("url", format!("unsupported database URL scheme {scheme:?} (expected postgres://, postgresql://, mysql:// or mariadb://)"));
        None
    }
}

/// A table name safe to put in a query: an identifier, optionally schema-qualified.
pub(super) fn is_table_name(table: &str) -> bool {
    !table.is_empty()
        && table.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

fn database_store(s: &mut Section<'_>) -> Option<SessionStore> {
    let url = s.required_string("url", "\"postgres://app@127.0.0.1/app\"");
    let url = url.and_then(|u| database_url(s, u));
    let table = s.string("table").unwrap_or_else(|| "sessions".into());
    // Interpolated into the query: an identifier only (schema-qualified allowed).
    let table_ok = is_table_name(&table);
    if !table_ok {
        s.issue(
            "table",
            format!("{table:?} is not a table name (letters, digits, _ and one optional schema.)"),
        );
        return None;
    }
    Some(SessionStore::Database { url: url?, table })
}
