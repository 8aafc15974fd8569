//! `[session.rails]`, `[session.django]` and `[session.flask]`: the frameworks' own session
//! formats, with the secrets that sign or encrypt them. Read and checked; nothing opens yet.

use std::time::Duration;

use super::php::database_url;
use super::reader::Section;
use super::secret::{Secret, SecretEnv, read_secret, skip_secret};

pub(super) const RAILS_KEYS: &[&str] = &[
    "secret_key_base_env",
    "secret_key_base_file",
    "previous_keys_env",
    "previous_keys_file",
    "digest",
    "cipher",
];
pub(super) const DJANGO_KEYS: &[&str] = &[
    "secret_key_env",
    "secret_key_file",
    "fallback_keys_env",
    "fallback_keys_file",
    "backend",
    "url",
    "table",
    "max_age",
];
pub(super) const FLASK_KEYS: &[&str] = &[
    "secret_key_env",
    "secret_key_file",
    "fallback_keys_env",
    "fallback_keys_file",
    "max_age",
];

/// The key generator's digest (`config.active_support.key_generator_hash_digest_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RailsDigest {
    /// SHA-1: Rails 5.2 to 6.1.
    Sha1,
    /// SHA-256: Rails 7.0 defaults.
    Sha256,
    /// Either (an app mid-upgrade rotates from one to the other).
    Auto,
}

/// How the cookie is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RailsCipher {
    /// AES-256-GCM (authenticated encrypted cookies, Rails 5.2+).
    Aes256Gcm,
    /// AES-256-CBC with an HMAC (older apps).
    Aes256Cbc,
}

/// `[session.rails]`.
#[derive(Clone)]
pub struct RailsResolverConfig {
    /// `secret_key_base`.
    pub secret_key_base: Secret,
    /// Earlier `secret_key_base` values, a comma list (what the app hands to
    /// `cookies_rotations`), tried after the current one.
    pub previous_keys: Option<Secret>,
    /// The key generator's digest.
    pub digest: RailsDigest,
    /// The cookie cipher.
    pub cipher: RailsCipher,
}

/// Where Django keeps sessions. No `Debug`: a URL may carry a password.
#[derive(Clone)]
pub enum DjangoBackend {
    /// `django.contrib.sessions.backends.db`: a row in `table`.
    Db {
        /// `postgres://` or `mysql://` URL.
        url: String,
        /// The sessions table.
        table: String,
    },
    /// `django.contrib.sessions.backends.signed_cookies`: the cookie is the session.
    SignedCookies,
}

/// `[session.django]`.
#[derive(Clone)]
pub struct DjangoResolverConfig {
    /// `SECRET_KEY`.
    pub secret_key: Secret,
    /// `SECRET_KEY_FALLBACKS`, a comma list.
    pub fallback_keys: Option<Secret>,
    /// Where the sessions are.
    pub backend: DjangoBackend,
    /// `SESSION_COOKIE_AGE`: the signed cookie's greatest age.
    pub max_age: Duration,
}

/// `[session.flask]`.
#[derive(Clone)]
pub struct FlaskResolverConfig {
    /// `SECRET_KEY`.
    pub secret_key: Secret,
    /// `SECRET_KEY_FALLBACKS`, a comma list (Flask 3.1+).
    pub fallback_keys: Option<Secret>,
    /// `PERMANENT_SESSION_LIFETIME`: the cookie's greatest age.
    pub max_age: Duration,
}

/// Reads `<stem>_env`/`<stem>_file` when the section is in use, only checks them otherwise.
fn secret(
    s: &mut Section<'_>,
    stem: &str,
    required: bool,
    in_use: bool,
    env: &dyn SecretEnv,
) -> Option<Secret> {
    if in_use {
        read_secret(s, stem, required, env)
    } else {
        skip_secret(s, stem)
    }
}

pub(super) fn read_rails(
    mut s: Section<'_>,
    in_use: bool,
    env: &dyn SecretEnv,
) -> Option<RailsResolverConfig> {
    let secret_key_base = secret(&mut s, "secret_key_base", true, in_use, env);
    let previous_keys = secret(&mut s, "previous_keys", false, in_use, env);
    let digest = match s
        .choice("digest", "digest", &["auto", "sha1", "sha256"])
        .as_deref()
    {
        Some("sha1") => Some(RailsDigest::Sha1),
        Some("sha256") => Some(RailsDigest::Sha256),
        Some(_) => Some(RailsDigest::Auto),
        None if s.has("digest") => None,
        None => Some(RailsDigest::Auto),
    };
    let cipher = match s
        .choice("cipher", "cipher", &["aes-256-gcm", "aes-256-cbc"])
        .as_deref()
    {
        Some("aes-256-cbc") => Some(RailsCipher::Aes256Cbc),
        Some(_) => Some(RailsCipher::Aes256Gcm),
        None if s.has("cipher") => None,
        None => Some(RailsCipher::Aes256Gcm),
    };
    s.finish();
    Some(RailsResolverConfig {
        secret_key_base: secret_key_base?,
        previous_keys,
        digest: digest?,
        cipher: cipher?,
    })
}

pub(super) fn read_django(
    mut s: Section<'_>,
    in_use: bool,
    env: &dyn SecretEnv,
) -> Option<DjangoResolverConfig> {
    let secret_key = secret(&mut s, "secret_key", true, in_use, env);
    let fallback_keys = secret(&mut s, "fallback_keys", false, in_use, env);
    let backend = match s
        .choice("backend", "backend", &["db", "signed_cookies"])
        .as_deref()
    {
        Some("signed_cookies") => Some(DjangoBackend::SignedCookies),
        Some(_) => {
            let url = s
                .required_string("url", "\"postgres://app@127.0.0.1/app\"")
                .and_then(|u| database_url(&s, u));
            let table = s.string("table").unwrap_or_else(|| "django_session".into());
            let table_ok = super::php::is_table_name(&table);
            if !table_ok {
                s.issue("table", format!("{table:?} is not a table name (letters, digits, _ and one optional schema.)"));
            }
            url.filter(|_| table_ok)
                .map(|url| DjangoBackend::Db { url, table })
        }
        None => {
            if !s.has("backend") {
                s.issue("backend", "missing (expected db or signed_cookies)");
            }
            None
        }
    };
    let max_age = s
        .duration("max_age")
        .unwrap_or(Duration::from_secs(1_209_600));
    s.finish();
    Some(DjangoResolverConfig {
        secret_key: secret_key?,
        fallback_keys,
        backend: backend?,
        max_age,
    })
}

pub(super) fn read_flask(
    mut s: Section<'_>,
    in_use: bool,
    env: &dyn SecretEnv,
) -> Option<FlaskResolverConfig> {
    let secret_key = secret(&mut s, "secret_key", true, in_use, env);
    let fallback_keys = secret(&mut s, "fallback_keys", false, in_use, env);
    let max_age = s
        .duration("max_age")
        .unwrap_or(Duration::from_secs(31 * 24 * 3600));
    s.finish();
    Some(FlaskResolverConfig {
        secret_key: secret_key?,
        fallback_keys,
        max_age,
    })
}
