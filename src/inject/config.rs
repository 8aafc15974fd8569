//! [`InjectConfig`]: what the layer needs, as a typed builder. The proxy fills it from
//! `proxy.toml` ([`InjectConfig::from_config`]); an app embedding the layer fills it in code.

use std::time::Duration;

use tracing::warn;

use crate::config::{Config, LogoutConfig, MIN_TOKEN_TTL, Routes, is_endpoint_path};
use crate::crypto::Secret;
use crate::identity::{Identity, IdentityError};
use crate::intercom::{AnonymousPolicy, IdentityMode, Region};

/// The Intercom app, the session behind each request, and where the snippet goes.
///
/// Defaults follow `proxy.toml`'s: region `us`, JWT mode, tokens valid 1 h, visitors left
/// alone, the widget from `widget.intercom.io`, the token endpoint at `/__intercom/token`
/// with refresh and SPA updates on, logouts at `/logout` and on a cleared session cookie,
/// every path injected, and the proxy's cookies `Secure` only when the request came over
/// HTTPS.
pub struct InjectConfig {
    pub(super) app_id: String,
    pub(super) secret: Secret,
    pub(super) identity: Identity,
    pub(super) region: Region,
    pub(super) mode: IdentityMode,
    pub(super) token_ttl: Duration,
    pub(super) anonymous: AnonymousPolicy,
    pub(super) widget_url: Option<String>,
    pub(super) cookie_domain: Option<String>,
    pub(super) token_path: Option<String>,
    pub(super) token_refresh: bool,
    pub(super) spa_updates: bool,
    pub(super) routes: Routes,
    pub(super) logout: LogoutConfig,
    pub(super) secure_cookies: Option<bool>,
}

impl InjectConfig {
    /// The workspace `app_id`, its Messenger secret (Settings > Messenger > Security) and the
    /// session resolver that names the user behind each request.
    pub fn new(app_id: impl Into<String>, messenger_secret: Secret, identity: Identity) -> Self {
        InjectConfig {
            app_id: app_id.into(),
            secret: messenger_secret,
            identity,
            region: Region::Us,
            mode: IdentityMode::Jwt,
            token_ttl: Duration::from_secs(3600),
            anonymous: AnonymousPolicy::Skip,
            widget_url: None,
            cookie_domain: None,
            token_path: Some("/__intercom/token".to_string()),
            token_refresh: true,
            spa_updates: true,
            routes: Routes::default(),
            logout: LogoutConfig {
                paths: vec!["/logout".to_string()],
                detect_cookie_clear: true,
            },
            secure_cookies: None,
        }
    }

    /// Everything `proxy.toml` says about the Messenger, the session, routes and logouts.
    pub fn from_config(config: &Config) -> Result<Self, IdentityError> {
        let intercom = &config.intercom;
        let identity = Identity::from_config(&config.session)?;
        let mut inject =
            InjectConfig::new(intercom.app_id.clone(), intercom.secret.clone(), identity)
                .region(intercom.region)
                .mode(intercom.mode)
                .token_ttl(intercom.token_ttl)
                .anonymous(intercom.anonymous)
                .widget_url(intercom.widget_url.clone())
                .token_path(intercom.token_path.clone())
                .token_refresh(intercom.token_refresh)
                .spa_updates(intercom.spa_updates)
                .routes(config.routes.clone())
                .logout(config.logout.clone());
        if let Some(domain) = &intercom.cookie_domain {
            inject = inject.cookie_domain(domain.clone());
        }
        Ok(inject)
    }

    /// Where the workspace is hosted (picks `api_base` and the CSP hosts).
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// JWT (Messenger Security) or the legacy `user_hash`.
    pub fn mode(mut self, mode: IdentityMode) -> Self {
        self.mode = mode;
        self
    }

    /// Lifetime (`exp - iat`) of each Messenger JWT.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// What visitors without a verified session get.
    pub fn anonymous(mut self, policy: AnonymousPolicy) -> Self {
        self.anonymous = policy;
        self
    }

    /// Where the loader fetches the widget (tests, self-hosting).
    pub fn widget_url(mut self, url: impl Into<String>) -> Self {
        self.widget_url = Some(url.into());
        self
    }

    /// A parent domain Intercom's cookies may live on, expired on logout too.
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }

    /// The path of the layer's own token endpoint (`None`: no endpoint, no refresh).
    pub fn token_path(mut self, path: Option<String>) -> Self {
        self.token_path = path;
        self
    }

    /// Whether injected pages fetch a fresh JWT before theirs expires.
    pub fn token_refresh(mut self, on: bool) -> Self {
        self.token_refresh = on;
        self
    }

    /// Whether injected pages call `Intercom('update')` on client-side navigation.
    pub fn spa_updates(mut self, on: bool) -> Self {
        self.spa_updates = on;
        self
    }

    /// Per-path toggles and static attributes.
    pub fn routes(mut self, routes: Routes) -> Self {
        self.routes = routes;
        self
    }

    /// How logouts are recognised.
    pub fn logout(mut self, logout: LogoutConfig) -> Self {
        self.logout = logout;
        self
    }

    /// Mark the layer's cookies `Secure` always (`true`), never (`false`), or, by default,
    /// when the request's [`Downstream`](crate::net::Downstream) says HTTPS. An app behind a
    /// TLS-terminating balancer sets `true`.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = Some(secure);
        self
    }

    /// What `check` would refuse in `proxy.toml`, made safe with a warning naming the
    /// setting: the layer must not fail an app's startup over a builder slip, nor run with a
    /// value that breaks pages.
    pub(super) fn sanitized(mut self) -> Self {
        if !self.app_id.bytes().all(|b| b.is_ascii_alphanumeric()) || self.app_id.is_empty() {
            warn!(app_id = %self.app_id, "InjectConfig: the app id should be letters and digits, as Intercom shows it");
        }
        if let Some(path) = self.token_path.take_if(|p| !is_endpoint_path(p)) {
            warn!(token_path = %path, "InjectConfig: token_path must be a path starting with '/'; the token endpoint and refresh are off");
        }
        if self.token_ttl < MIN_TOKEN_TTL {
            warn!(
                token_ttl_ms = self.token_ttl.as_millis() as u64,
                "InjectConfig: token_ttl below 10s; using 10s"
            );
            self.token_ttl = MIN_TOKEN_TTL;
        }
        self.logout.paths.retain(|path| {
            let ok = path.starts_with('/');
            if !ok {
                warn!(path = %path, "InjectConfig: logout paths must start with '/'; ignored");
            }
            ok
        });
        if let Some(url) = self
            .widget_url
            .take_if(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            warn!(widget_url = %url, "InjectConfig: widget_url must be an http(s) URL; using Intercom's");
        }
        self
    }
}
