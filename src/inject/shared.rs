//! What every request of an [`InjectLayer`](super::InjectLayer) shares: one config, built
//! once, swapped whole by a reload.

use std::sync::Arc;

use http::Request;

use super::config::InjectConfig;
use super::memo::HeadMemo;
use super::scan::MessengerMarkers;
use crate::config::Routes;
use crate::identity::Identity;
use crate::intercom::{AnonymousPolicy, IdentityMode, IntercomHosts, Loader, Messenger};
use crate::logout::Logout;
use crate::net::Downstream;

/// What every request of one layer shares, built once.
pub(super) struct Shared {
    pub(super) identity: Identity,
    pub(super) messenger: Messenger,
    pub(super) routes: Routes,
    pub(super) boot_visitors: bool,
    pub(super) hosts: Arc<IntercomHosts>,
    /// What shows a page already loads the Messenger.
    pub(super) markers: Arc<MessengerMarkers>,
    /// Heads parsed before, shared by all pages.
    pub(super) memo: Arc<HeadMemo>,
    /// The loader for `widget_url`, rendered once.
    pub(super) loader: Loader,
    pub(super) logout: Logout,
    /// The token endpoint's path (JWT mode only: `user_hash` never expires).
    pub(super) token_path: Option<String>,
    pub(super) token_refresh: bool,
    pub(super) spa_updates: bool,
    pub(super) token_ttl_secs: u64,
    secure_cookies: Option<bool>,
}

impl Shared {
    /// Whether the layer's cookies for this request get `Secure`: as configured, else as
    /// the server says the client came ([`Downstream`]), else as the request URI says (h2's
    /// `:scheme`, an absolute-form target).
    pub(super) fn secure<B>(&self, request: &Request<B>) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| match request.extensions().get::<Downstream>() {
                Some(downstream) => downstream.scheme == "https",
                None => request.uri().scheme() == Some(&http::uri::Scheme::HTTPS),
            })
    }

    /// The app's session cookie.
    pub(super) fn session_cookie(&self) -> &str {
        self.identity.cookie_name()
    }
}

/// The session resolver of the config an [`InjectLayer`](super::InjectLayer) had when
/// asked.
pub struct CurrentIdentity(pub(super) Arc<Shared>);

impl std::ops::Deref for CurrentIdentity {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.0.identity
    }
}

impl Shared {
    /// Everything `config` asks for, prepared once.
    pub(super) fn new(config: InjectConfig) -> Self {
        let config = config.sanitized();
        let widget_url = config
            .widget_url
            .unwrap_or_else(|| format!("https://widget.intercom.io/widget/{}", config.app_id));
        let token_path = match config.mode {
            IdentityMode::Jwt => config.token_path,
            IdentityMode::UserHash => None,
        };
        let logout = Logout::new(
            &config.logout,
            config.identity.cookie_name(),
            &config.app_id,
            config.cookie_domain.as_deref(),
            &config.secret,
        );
        let messenger = Messenger::new(
            &config.app_id,
            &config.secret,
            config.region,
            config.mode,
            config.token_ttl,
        );
        Shared {
            identity: config.identity,
            messenger,
            routes: config.routes,
            boot_visitors: config.anonymous == AnonymousPolicy::Boot,
            hosts: Arc::new(IntercomHosts::new(
                config.region,
                origin_of(&widget_url).as_deref(),
            )),
            markers: Arc::new(MessengerMarkers::new(&widget_url)),
            memo: Arc::new(HeadMemo::default()),
            loader: Loader::new(&widget_url),
            logout,
            token_path,
            token_refresh: config.token_refresh,
            spa_updates: config.spa_updates,
            token_ttl_secs: config.token_ttl.as_secs(),
            secure_cookies: config.secure_cookies,
        }
    }
}

/// `scheme://host[:port]` of a URL, for CSP.
fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}
