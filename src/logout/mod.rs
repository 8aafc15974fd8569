//! Session-leak protection: recognising logouts, and the cookies the proxy uses to make the
//! Messenger forget a user (docs/intercom.md §5 and §7).
//!
//! - A logout response expires Intercom's session cookie and, when it is not an HTML page
//!   that can run `Intercom('shutdown')` itself, leaves a one-shot marker so that the next
//!   HTML page the browser loads runs the shutdown first.
//! - Every injected page records, in a cookie that reveals nothing (an HMAC of the user id),
//!   whom the Messenger was booted for; when the next page is for someone else, it shuts
//!   the Messenger down before booting.

use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::{self, HeaderValue};
use sha2::Sha256;

use crate::config::LogoutConfig;
use crate::crypto::{Secret, keyed_hmac};

/// The one-shot "run the shutdown on the next page" marker.
pub const PENDING_SHUTDOWN_COOKIE: &str = "__isp_shutdown";
/// Whom the Messenger was last booted for in this browser.
pub const BOOTED_FOR_COOKIE: &str = "__isp_booted";
/// The record of a Messenger booted without identity.
pub const VISITOR_MARKER: &str = "anon";
/// How long a pending shutdown, and the booted-for record, are kept: as long as Intercom's
/// own session cookie lives after its last ping (a week), plus a day. The record is re-set
/// on every page that boots and every token refresh, so it rolls like Intercom's.
const MARKER_MAX_AGE_SECS: u32 = 8 * 24 * 3600;

/// How the proxy's marker cookies change with one response (what
/// [`Outcome::marker_changes`](crate::inject::Outcome::marker_changes) decides).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkerChanges<'a> {
    /// `Some(true)`: leave the one-shot shutdown marker; `Some(false)`: consume it.
    pub pending_shutdown: Option<bool>,
    /// `Some(Some(marker))`: record whom the Messenger booted for; `Some(None)`: forget it.
    pub booted_for: Option<Option<&'a str>>,
    /// Expire Intercom's session cookie (on the host and `cookie_domain`).
    pub expire_intercom_session: bool,
}

/// Logout detection and the proxy's own cookies.
pub struct Logout {
    paths: Vec<String>,
    detect_cookie_clear: bool,
    session_cookie: String,
    intercom_session_cookie: String,
    cookie_domain: Option<String>,
    marker_key: Hmac<Sha256>,
}

impl Logout {
    /// From `[logout]`, the session cookie's name and the Intercom app. The marker key is
    /// derived from the Messenger secret, so nothing new needs configuring and a marker
    /// cannot be computed by anyone who does not hold that secret.
    pub fn new(
        config: &LogoutConfig,
        session_cookie: &str,
        app_id: &str,
        cookie_domain: Option<&str>,
        messenger_secret: &Secret,
    ) -> Self {
        let mut derive = keyed_hmac(messenger_secret.expose());
        derive.update(b"intercom-secure-proxy booted-for marker v1");
        let marker_secret = derive.finalize().into_bytes();
        Logout {
            paths: config.paths.clone(),
            detect_cookie_clear: config.detect_cookie_clear,
            session_cookie: session_cookie.to_string(),
            intercom_session_cookie: format!("intercom-session-{app_id}"),
            cookie_domain: cookie_domain.map(str::to_string),
            marker_key: keyed_hmac(&marker_secret),
        }
    }

    /// Whether a request path is a logout path.
    pub fn is_logout_path(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p == path)
    }

    /// Whether the response expires the session cookie (`Max-Age=0` or a past `Expires`).
    pub fn clears_session(&self, headers: &HeaderMap) -> bool {
        self.detect_cookie_clear
            && headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| cookie::Cookie::parse(v).ok())
                .any(|c| c.name() == self.session_cookie && expires_now(&c))
    }

    /// The value the response sets the session cookie to: the last `Set-Cookie` of it that
    /// does not expire it (a login, a rolling session, a regenerated id).
    pub fn session_set(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| cookie::Cookie::parse(v).ok())
            .filter(|c| c.name() == self.session_cookie && !expires_now(c))
            .map(|c| c.value_trimmed().to_string())
            .rfind(|value| !value.is_empty())
    }

    /// The marker for a user id (or `None`: a Messenger booted without identity).
    pub fn booted_for(&self, user_id: Option<&str>) -> String {
        match user_id {
            None => VISITOR_MARKER.to_string(),
            Some(id) => {
                let mut mac = self.marker_key.clone();
                mac.update(id.as_bytes());
                let digest = mac.finalize().into_bytes();
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
            }
        }
    }

    /// `Set-Cookie` lines expiring Intercom's session cookie, on the host and, when
    /// configured, on the parent domain Intercom may have used.
    pub fn expire_intercom_session(&self, headers: &mut HeaderMap) {
        let name = &self.intercom_session_cookie;
        append_cookie(
            headers,
            format!("{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        if let Some(domain) = &self.cookie_domain {
            append_cookie(
                headers,
                format!(
                    "{name}=; Path=/; Domain={domain}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
                ),
            );
        }
    }

    /// Writes `changes` as `Set-Cookie` lines (`Secure` when the browser came over HTTPS).
    pub fn apply(&self, changes: &MarkerChanges<'_>, headers: &mut HeaderMap, secure: bool) {
        if changes.expire_intercom_session {
            self.expire_intercom_session(headers);
        }
        match changes.booted_for {
            Some(Some(marker)) => self.set_booted_for(headers, marker, secure),
            Some(None) => self.clear_booted_for(headers, secure),
            None => {}
        }
        match changes.pending_shutdown {
            Some(true) => self.set_pending_shutdown(headers, secure),
            Some(false) => self.clear_pending_shutdown(headers, secure),
            None => {}
        }
    }

    /// Leaves the one-shot marker: the next HTML page runs the shutdown.
    pub fn set_pending_shutdown(&self, headers: &mut HeaderMap, secure: bool) {
        append_cookie(
            headers,
            own_cookie(PENDING_SHUTDOWN_COOKIE, "1", MARKER_MAX_AGE_SECS, secure),
        );
    }

    /// Consumes the one-shot marker.
    pub fn clear_pending_shutdown(&self, headers: &mut HeaderMap, secure: bool) {
        append_cookie(headers, own_cookie(PENDING_SHUTDOWN_COOKIE, "", 0, secure));
    }

    /// Records whom the Messenger was booted for. Persistent, like Intercom's own session
    /// cookie: a browser restart keeps both, and the next user must still be caught.
    pub fn set_booted_for(&self, headers: &mut HeaderMap, marker: &str, secure: bool) {
        append_cookie(
            headers,
            own_cookie(BOOTED_FOR_COOKIE, marker, MARKER_MAX_AGE_SECS, secure),
        );
    }

    /// Forgets whom the Messenger was booted for (after a logout's shutdown).
    pub fn clear_booted_for(&self, headers: &mut HeaderMap, secure: bool) {
        append_cookie(headers, own_cookie(BOOTED_FOR_COOKIE, "", 0, secure));
    }
}

fn expires_now(c: &cookie::Cookie<'_>) -> bool {
    if let Some(max_age) = c.max_age() {
        return max_age.whole_seconds() <= 0;
    }
    match c.expires_datetime() {
        Some(at) => at <= cookie::time::OffsetDateTime::now_utc(),
        None => false,
    }
}

/// A cookie of the proxy's own: HttpOnly, SameSite=Lax, Secure over HTTPS. One allocation:
/// the booted-for record is set on every injected page.
fn own_cookie(name: &str, value: &str, max_age: u32, secure: bool) -> String {
    use std::fmt::Write;
    let mut line = String::with_capacity(name.len() + value.len() + 64);
    let secure = if secure { "; Secure" } else { "" };
    let _ = write!(
        line,
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    line
}

fn append_cookie(headers: &mut HeaderMap, line: String) {
    // Lines are built from validated names and fixed text, so they are valid values; the
    // String becomes the header's bytes without a copy.
    if let Ok(value) = HeaderValue::try_from(line) {
        headers.append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logout() -> Logout {
        Logout::new(
            &LogoutConfig {
                paths: vec!["/logout".into()],
                detect_cookie_clear: true,
            },
            "session",
            "abc",
            Some(".example.com"),
            &Secret::new("s3cret"),
        )
    }

    fn set_cookies(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(header::SET_COOKIE, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    #[test]
    fn cookie_clears_are_recognised() {
        let l = logout();
        assert!(l.clears_session(&set_cookies(&["session=; Path=/; Max-Age=0"])));
        assert!(l.clears_session(&set_cookies(&[
            "a=1",
            "session=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        ])));
        assert!(!l.clears_session(&set_cookies(&["session=new; Path=/; HttpOnly"])));
        assert!(!l.clears_session(&set_cookies(&["other=; Max-Age=0"])));
        assert!(!l.clears_session(&set_cookies(&[
            "session=x; Expires=Thu, 01 Jan 2099 00:00:00 GMT"
        ])));
    }

    #[test]
    fn the_session_a_response_sets_is_its_last_live_value() {
        let l = logout();
        assert_eq!(l.session_set(&set_cookies(&["a=1"])), None);
        assert_eq!(
            l.session_set(&set_cookies(&["session=new; Path=/; HttpOnly"]))
                .as_deref(),
            Some("new")
        );
        // PHP's session_regenerate_id after session_start sends two; the last one counts.
        assert_eq!(
            l.session_set(&set_cookies(&[
                "session=old; path=/",
                "session=new; path=/"
            ]))
            .as_deref(),
            Some("new")
        );
        assert_eq!(
            l.session_set(&set_cookies(&["session=deleted; Max-Age=0"])),
            None,
            "a clear is not a new session"
        );
        assert_eq!(l.session_set(&set_cookies(&["session=; Path=/"])), None);
        assert_eq!(
            l.session_set(&set_cookies(&["session=\"q\"; Path=/"]))
                .as_deref(),
            Some("q"),
            "quoted as the request side reads it"
        );
    }

    #[test]
    fn markers_reveal_nothing_and_differ_per_user() {
        let l = logout();
        let a = l.booted_for(Some("u-1"));
        assert_eq!(a, l.booted_for(Some("u-1")));
        assert_ne!(a, l.booted_for(Some("u-2")));
        assert!(!a.contains("u-1"));
        assert_eq!(l.booted_for(None), "anon");
    }

    #[test]
    fn intercom_session_is_expired_on_host_and_domain() {
        let mut h = HeaderMap::new();
        logout().expire_intercom_session(&mut h);
        let lines: Vec<_> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("intercom-session-abc=; Path=/; Max-Age=0"));
        assert!(lines[1].contains("Domain=.example.com"));
    }
}
