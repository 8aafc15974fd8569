//! A stand-in for Intercom, so the demo works offline: it serves a small widget script at
//! `widget_url` and a `/verify` endpoint that checks the Messenger JWT with the Messenger
//! secret, as Intercom would. The widget shows a badge saying whom it booted for.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::proxy::ProxyBody;

/// The stand-in widget script. `__APP_ID__` is replaced at start.
const WIDGET_JS: &str = include_str!("widget.js");

/// The stand-in Intercom server.
pub struct StandInIntercom {
    widget_js: String,
    key: DecodingKey,
}

impl StandInIntercom {
    /// A stand-in for app `app_id` that verifies JWTs with `messenger_secret`.
    pub fn new(app_id: &str, messenger_secret: &[u8]) -> Self {
        StandInIntercom {
            widget_js: WIDGET_JS.replace("__APP_ID__", app_id),
            key: DecodingKey::from_secret(messenger_secret),
        }
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        super::serve_plain(listener, move |req| {
            let this = self.clone();
            async move { this.handle(req).await }
        })
        .await;
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let mut response = match (req.method(), req.uri().path()) {
            (&Method::GET, p) if p.starts_with("/widget/") => {
                let mut r = Response::new(ProxyBody::full(self.widget_js.clone()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/javascript; charset=utf-8"),
                );
                r
            }
            (&Method::POST, "/verify") => {
                let verdict = match Limited::new(req.into_body(), 16 * 1024).collect().await {
                    Ok(body) => self.verify(&String::from_utf8_lossy(&body.to_bytes())),
                    Err(_) => json!({"ok": false, "error": "unreadable body"}),
                };
                let mut r = Response::new(ProxyBody::full(verdict.to_string()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            _ => {
                let mut r = Response::new(ProxyBody::empty());
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            }
        };
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        response
    }

    /// What Intercom checks: an HS256 signature by the Messenger secret, `exp`, `user_id`.
    fn verify(&self, token: &str) -> Value {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims = ["exp".to_string()].into();
        match jsonwebtoken::decode::<Value>(token.trim(), &self.key, &validation) {
            Ok(data) if data.claims.get("user_id").and_then(Value::as_str).is_some() => {
                json!({"ok": true, "claims": data.claims})
            }
            Ok(_) => json!({"ok": false, "error": "no user_id claim"}),
            Err(e) => json!({"ok": false, "error": format!("{:?}", e.kind())}),
        }
    }
}
