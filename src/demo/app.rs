//! The demo's "legacy app": a login form, a few pages, a JSON API, an admin page and
//! logout. Its session is a JWT cookie that it signs itself, as many apps do.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::proxy::ProxyBody;

/// The session cookie the demo app sets.
pub const SESSION_COOKIE: &str = "demo_session";

/// A demo user.
pub struct DemoUser {
    /// Login name and password (the same, it is a demo).
    pub login: &'static str,
    /// User id in the app.
    pub id: &'static str,
    /// Email.
    pub email: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Plan, a custom attribute.
    pub plan: &'static str,
}

/// The two demo users.
pub const USERS: [DemoUser; 2] = [
    DemoUser {
        login: "alice",
        id: "u-1001",
        email: "alice@example.com",
        name: "Alice Liddell",
        plan: "pro",
    },
    DemoUser {
        login: "bob",
        id: "u-1002",
        email: "bob@example.com",
        name: "Bob Builder",
        plan: "free",
    },
];

#[derive(Serialize, Deserialize)]
struct SessionClaims {
    sub: String,
    email: String,
    name: String,
    plan: String,
    exp: u64,
}

/// The demo app's state: its session signing key.
pub struct DemoApp {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl DemoApp {
    /// An app that signs its session JWTs with `session_secret`.
    pub fn new(session_secret: &[u8]) -> Self {
        DemoApp {
            encoding: EncodingKey::from_secret(session_secret),
            decoding: DecodingKey::from_secret(session_secret),
        }
    }

    /// Serves the app on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        super::serve_plain(listener, move |req| {
            let this = self.clone();
            async move { this.handle(req).await }
        })
        .await;
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let user = self.current_user(&req);
        match (req.method().clone(), req.uri().path()) {
            (Method::GET, "/") => html(home(user.as_ref())),
            (Method::GET, "/login") => html(login_form(None)),
            (Method::POST, "/login") => self.login(req).await,
            (Method::GET, "/dashboard") => match user {
                Some(u) => html(dashboard(&u)),
                None => redirect("/login"),
            },
            (Method::GET, "/admin") => match user {
                Some(u) => html(page(
                    "Admin",
                    &format!(
                        "<p>Admin area for {}. The Messenger is turned off here by a route rule.</p>",
                        escape(&u.name)
                    ),
                )),
                None => redirect("/login"),
            },
            (Method::GET, "/api/me") => match user {
                Some(u) => json(
                    StatusCode::OK,
                    &serde_json::json!({"id": u.sub, "email": u.email, "name": u.name, "plan": u.plan}),
                ),
                None => json(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({"error": "not logged in"}),
                ),
            },
            (_, "/logout") => {
                let mut r = redirect("/");
                r.headers_mut().insert(
                    header::SET_COOKIE,
                    HeaderValue::from_static(
                        "demo_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
                    ),
                );
                r
            }
            _ => {
                let mut r = html(page("Not found", "<p>No such page.</p>"));
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            }
        }
    }

    fn current_user(&self, req: &Request<Incoming>) -> Option<SessionClaims> {
        let token = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == SESSION_COOKIE)?
            .value()
            .to_string();
        jsonwebtoken::decode::<SessionClaims>(
            &token,
            &self.decoding,
            &Validation::new(Algorithm::HS256),
        )
        .ok()
        .map(|d| d.claims)
    }

    async fn login(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let Ok(body) = Limited::new(req.into_body(), 4096).collect().await else {
            return html(login_form(Some("The form could not be read.")));
        };
        let body = body.to_bytes();
        let mut login = String::new();
        let mut password = String::new();
        for (k, v) in form_urlencoded::parse(&body) {
            match k.as_ref() {
                "username" => login = v.into_owned(),
                "password" => password = v.into_owned(),
                _ => {}
            }
        }
        let Some(user) = USERS
            .iter()
            .find(|u| u.login == login && u.login == password)
        else {
            let mut r = html(login_form(Some("Unknown user or wrong password.")));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return r;
        };
        let claims = SessionClaims {
            sub: user.id.into(),
            email: user.email.into(),
            name: user.name.into(),
            plan: user.plan.into(),
            exp: now() + 8 * 3600,
        };
        let Ok(token) =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
        else {
            return html(login_form(Some("Could not sign the session.")));
        };
        let mut r = redirect("/dashboard");
        let cookie =
            format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=28800");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn html(body: String) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn redirect(to: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title} · Legacy Corp</title>\n\
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}}\
nav a{{margin-right:1rem}}form{{display:grid;gap:.5rem;max-width:18rem}}.error{{color:#b00}}</style>\n</head>\n<body>\n\
<nav><a href=\"/\">Home</a><a href=\"/dashboard\">Dashboard</a><a href=\"/admin\">Admin</a><a href=\"/api/me\">/api/me</a><a href=\"/logout\">Log out</a></nav>\n\
<h1>{title}</h1>\n{main}\n</body>\n</html>\n"
    )
}

fn home(user: Option<&SessionClaims>) -> String {
    let main = match user {
        Some(u) => format!("<p>Welcome back, {}. Go to your <a href=\"/dashboard\">dashboard</a>.</p>", escape(&u.name)),
        None => "<p>This is a legacy app that knows nothing about Intercom. <a href=\"/login\">Log in</a> as <b>alice</b>/<b>alice</b> or <b>bob</b>/<b>bob</b>.</p>".to_string(),
    };
    page("Legacy Corp", &main)
}

fn dashboard(user: &SessionClaims) -> String {
    page(
        "Dashboard",
        &format!(
            "<p>Signed in as <b>{}</b> ({}), plan <b>{}</b>.</p><p>The app only set its own session cookie. Everything about Intercom is the proxy's work.</p>",
            escape(&user.name),
            escape(&user.email),
            escape(&user.plan)
        ),
    )
}

fn login_form(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{e}</p>"))
        .unwrap_or_default();
    page(
        "Log in",
        &format!(
            "{error}<form method=\"post\" action=\"/login\"><label>User <input name=\"username\" autocomplete=\"username\"></label>\
<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label><button type=\"submit\">Log in</button></form>"
        ),
    )
}
