//! An axum app with its own login and sessions, and secure-mode Intercom on its pages with
//! one `.layer(...)`: the Messenger boots with a JWT signed for the logged-in user, shuts
//! down on logout and before booting for someone else.
//!
//! ```sh
//! export INTERCOM_APP_ID=abc123de                  # Settings > Installation
//! export INTERCOM_MESSENGER_SECRET=...             # Settings > Messenger > Security
//! cargo run --example axum                         # then open http://127.0.0.1:3000/
//! ```
//!
//! The app keeps its sessions in memory; the layer reads them through a small
//! [`SessionResolver`] of the app's own. An app whose session cookie is a JWT would use
//! `identity::JwtResolver` instead, and one with sessions in Redis or SQL the proxy's
//! resolvers for those.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use intercom_secure_proxy::crypto::Secret;
use intercom_secure_proxy::identity::{
    Identity, Resolution, ResolveError, ResolveFuture, Session, SessionResolver, User,
    session_cookie,
};
use intercom_secure_proxy::inject::{InjectConfig, InjectLayer};

/// The app's session cookie.
const COOKIE: &str = "app_session";

/// The app's own sessions: session id -> user name.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, String>>>);

impl Sessions {
    fn user(&self, sid: &str) -> Option<String> {
        let sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.get(sid).cloned()
    }

    fn start(&self, name: &str) -> String {
        let sid = format!("{:032x}", rand_id());
        let mut sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.insert(sid.clone(), name.to_string());
        sid
    }

    fn end(&self, sid: &str) {
        let mut sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.remove(sid);
    }
}

/// A session id nobody can guess (an example's: use your framework's).
fn rand_id() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    let (a, b) = (RandomState::new(), RandomState::new());
    (u128::from(a.hash_one(1u8)) << 64) | u128::from(b.hash_one(2u8))
}

/// How the layer learns who is behind a request: from the app's own sessions.
impl SessionResolver for Sessions {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(std::future::ready(self.resolve_now(session)))
    }

    // Answered in memory: no future needed.
    fn resolve_in_process(&self, session: Session<'_>) -> Option<Result<Resolution, ResolveError>> {
        Some(self.resolve_now(session))
    }

    fn describe(&self) -> String {
        "the app's in-memory sessions".to_string()
    }

    fn is_remote(&self) -> bool {
        false
    }
}

impl Sessions {
    fn resolve_now(&self, session: Session<'_>) -> Result<Resolution, ResolveError> {
        Ok(match self.user(session.cookie) {
            Some(name) => Resolution::User(User {
                id: format!("user-{name}"),
                email: Some(format!("{name}@example.com")),
                name: Some(name),
                attributes: Default::default(),
            }),
            None => Resolution::Anonymous,
        })
    }
}

/// The app, with the Messenger layer around it. `widget_url` overrides where the widget
/// loads from (tests, self-hosting).
pub fn app(app_id: &str, messenger_secret: Secret, widget_url: Option<&str>) -> Router {
    let sessions = Sessions::default();
    let identity = Identity::new(
        COOKIE.to_string(),
        Box::new(sessions.clone()),
        Duration::from_millis(300),
    );
    let mut config = InjectConfig::new(app_id, messenger_secret, identity)
        .token_ttl(Duration::from_secs(15 * 60));
    if let Some(url) = widget_url {
        config = config.widget_url(url);
    }
    Router::new()
        .route("/", get(home))
        .route("/login/{name}", get(login))
        .route("/logout", get(logout))
        .with_state(sessions)
        .layer(InjectLayer::new(config))
}

async fn home(State(sessions): State<Sessions>, headers: HeaderMap) -> Html<String> {
    let user = session_cookie(&headers, COOKIE).and_then(|sid| sessions.user(sid));
    Html(match user {
        Some(name) => format!(
            "<!DOCTYPE html><html><head><title>Home</title></head>\
             <body><p>Hello {name}</p><a href=\"/logout\">Log out</a></body></html>"
        ),
        None => "<!DOCTYPE html><html><head><title>Home</title></head>\
                 <body><a href=\"/login/alice\">Log in as alice</a> \
                 <a href=\"/login/bob\">Log in as bob</a></body></html>"
            .to_string(),
    })
}

async fn login(State(sessions): State<Sessions>, Path(name): Path<String>) -> Response {
    if !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let sid = sessions.start(&name);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (
                header::SET_COOKIE,
                format!("{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"),
            ),
        ],
    )
        .into_response()
}

async fn logout(State(sessions): State<Sessions>, headers: HeaderMap) -> Response {
    if let Some(sid) = session_cookie(&headers, COOKIE) {
        sessions.end(sid);
    }
    // A redirect, as many apps do: the layer expires Intercom's cookie and runs the
    // shutdown on the next page.
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (header::SET_COOKIE, format!("{COOKIE}=; Path=/; Max-Age=0")),
        ],
    )
        .into_response()
}

#[allow(dead_code)] // the tests use `app` only
#[tokio::main]
async fn main() {
    let (Ok(app_id), Ok(secret)) = (
        std::env::var("INTERCOM_APP_ID"),
        std::env::var("INTERCOM_MESSENGER_SECRET"),
    ) else {
        eprintln!(
            "set INTERCOM_APP_ID and INTERCOM_MESSENGER_SECRET (see the top of examples/axum.rs)"
        );
        std::process::exit(2);
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], 3000));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("open http://{addr}/ and log in as alice or bob");
    let app = app(&app_id, Secret::new(secret), None);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("server error: {e}");
    }
}
