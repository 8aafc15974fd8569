//! `[intercom]`: the Messenger app, its secret and how it boots.

use std::time::Duration;

use super::network::http_url;
use super::reader::Section;
use super::secret::{Secret, SecretEnv, read_secret};
use crate::intercom::{AnonymousPolicy, IdentityMode, Region};

pub(super) const KEYS: &[&str] = &[
    "app_id",
    "secret_env",
    "secret_file",
    "region",
    "token_ttl",
    "mode",
    "anonymous",
    "widget_url",
    "cookie_domain",
    "token_path",
    "token_refresh",
    "spa_updates",
];

/// `[intercom]`.
#[derive(Debug, Clone)]
pub struct IntercomConfig {
    /// The workspace's app id (letters and digits).
    pub app_id: String,
    /// The Messenger secret (JWT signing key, or the HMAC key in `user_hash` mode).
    pub secret: Secret,
    /// Hosting region, which picks `api_base`.
    pub region: Region,
    /// Lifetime (`exp - iat`) of each signed Messenger JWT.
    pub token_ttl: Duration,
    /// JWT (default) or legacy `user_hash` identity verification.
    pub mode: IdentityMode,
    /// What visitors without a session get.
    pub anonymous: AnonymousPolicy,
    /// Where the loader fetches the widget from.
    pub widget_url: String,
    /// Parent domain Intercom's cookies may live on (e.g. `.example.com`).
    pub cookie_domain: Option<String>,
    /// The proxy's own endpoint answering a fresh Messenger JWT (`None`: turned off).
    pub token_path: Option<String>,
    /// Whether injected pages fetch a fresh JWT from `token_path` before theirs expires.
    pub token_refresh: bool,
    /// Whether injected pages call `Intercom('update')` on client-side navigation.
    pub spa_updates: bool,
}

/// The shortest Messenger JWT lifetime accepted: shorter ones would refresh all the time.
pub const MIN_TOKEN_TTL: Duration = Duration::from_secs(10);

/// Whether `path` can be the token endpoint's: a plain path, no query or fragment.
pub fn is_endpoint_path(path: &str) -> bool {
    path.starts_with('/') && !path.contains(['?', '#', ' '])
}

pub(super) fn read(section: Option<Section<'_>>, env: &dyn SecretEnv) -> Option<IntercomConfig> {
    let mut s = section?;
    let app_id = s.required_string("app_id", "\"abc123de\"").and_then(|id| {
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Some(id)
        } else {
            s.issue(
                "app_id",
                format!("invalid app id {id:?} (expected letters and digits, as shown in Intercom's settings)"),
            );
            None
        }
    });
    let secret = read_secret(&mut s, "secret", true, env);
    let region = match s.choice("region", "region", &["us", "eu", "au"]).as_deref() {
        Some("eu") => Region::Eu,
        Some("au") => Region::Au,
        _ => Region::Us,
    };
    let token_ttl = match s.duration("token_ttl") {
        None => Some(Duration::from_secs(3600)),
        Some(d) if d < MIN_TOKEN_TTL => {
            s.issue(
                "token_ttl",
                format!(
                    "{} is too short (expected at least 10s)",
                    humantime::format_duration(d)
                ),
            );
            None
        }
        Some(d) => Some(d),
    };
    let mode = match s.choice("mode", "mode", &["jwt", "user_hash"]).as_deref() {
        Some("user_hash") => IdentityMode::UserHash,
        _ => IdentityMode::Jwt,
    };
    let anonymous = match s
        .choice("anonymous", "anonymous policy", &["skip", "boot"])
        .as_deref()
    {
        Some("boot") => AnonymousPolicy::Boot,
        _ => AnonymousPolicy::Skip,
    };
    let widget_url = s
        .string("widget_url")
        .and_then(|raw| http_url(&s, "widget_url", &raw).map(|_| raw));
    let cookie_domain = s.string("cookie_domain");
    if let Some(d) = &cookie_domain {
        let host = d.strip_prefix('.').unwrap_or(d);
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            s.issue(
                "cookie_domain",
                format!("invalid domain {d:?} (expected e.g. \".example.com\")"),
            );
        }
    }
    let token_path = match s.string("token_path") {
        None => Some("/__intercom/token".to_string()),
        Some(p) if p.is_empty() => None,
        Some(p) if is_endpoint_path(&p) => Some(p),
        Some(p) => {
            s.issue(
                "token_path",
                format!(
                    "{p:?} must be a path starting with '/' (or \"\" to turn the endpoint off)"
                ),
            );
            None
        }
    };
    let token_refresh = s.bool("token_refresh").unwrap_or(true);
    let spa_updates = s.bool("spa_updates").unwrap_or(true);
    s.finish();
    let app_id = app_id?;
    let widget_url =
        widget_url.unwrap_or_else(|| format!("https://widget.intercom.io/widget/{app_id}"));
    Some(IntercomConfig {
        app_id,
        secret: secret?,
        region,
        token_ttl: token_ttl?,
        mode,
        anonymous,
        widget_url,
        cookie_domain,
        token_path,
        token_refresh,
        spa_updates,
    })
}
