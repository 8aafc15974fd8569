//! Session-leak protection: recognising logouts, and the cookies the proxy uses to make the
//! Messenger forget a user (docs/intercom.md §5 and §7).
//!
//! - A logout response expires Intercom's session cookie and, when it is not an HTML page
//!   that can run `Intercom('shutdown')` itself, leaves a one-shot marker so that the next
//!   HTML page the browser loads runs the shutdown first.
//! - Every injected page records, in a cookie that reveals nothing (an HMAC of the user id),
//!   whom the Messenger was booted for; when the next page is for someone else, it shuts
//!   the Messenger down before booting.

mod keys;
mod markers;
mod recall;

use std::sync::Arc;

use http::HeaderMap;
use http::header;

use markers::now_secs;
pub use markers::{BOOTED_FOR_COOKIE, MarkerChanges, PENDING_SHUTDOWN_COOKIE, VISITOR_MARKER};

use crate::config::LogoutConfig;
use crate::crypto::Secret;

/// Logout detection and the proxy's own cookies.
pub struct Logout {
    paths: Vec<String>,
    detect_cookie_clear: bool,
    session_cookie: String,
    intercom_session_cookie: String,
    cookie_domain: Option<String>,
    /// Make the booted-for records and sign the markers.
    keys: keys::Keys,
    /// The keys of the secrets reloads replaced, still accepted (newest first).
    retired: Vec<keys::Retired>,
    /// Markers and signatures already computed (shared with the layer this one replaced
    /// when the secret is the same).
    recall: Arc<recall::Recall>,
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
        Logout {
            paths: config.paths.clone(),
            detect_cookie_clear: config.detect_cookie_clear,
            session_cookie: session_cookie.to_string(),
            intercom_session_cookie: format!("intercom-session-{app_id}"),
            cookie_domain: cookie_domain.map(str::to_string),
            keys: keys::Keys::derive(messenger_secret),
            retired: Vec::new(),
            recall: Arc::default(),
        }
    }

    /// This one, taking over from `previous` (a reload): when the Messenger secret changed,
    /// the markers `previous` signed stay accepted and its records keep naming their users
    /// for a marker's lifetime; with the same secret, nothing changes for any browser.
    pub fn succeeding(mut self, previous: &Logout) -> Self {
        self.retired =
            keys::carried_over(&self.keys, &previous.keys, &previous.retired, now_secs());
        if keys::same(&self.keys, &previous.keys) {
            self.recall = previous.recall.clone();
        }
        self
    }

    /// Whether `recorded`, a booted-for record, names the user whose record under the
    /// current key is `current` (`booted_for(Some(user_id))`): the same, or made for that
    /// user under a key a reload retired.
    pub fn records_user(&self, recorded: &str, user_id: &str, current: &str) -> bool {
        recorded == current
            || self
                .retired
                .iter()
                .any(|r| r.keys().marker(user_id) == recorded)
    }

    /// Whether a request path is a logout path: as sent or as the app most likely routes it
    /// (`/%6Cogout`, `//logout`, `/x/../logout`, `/logout;x`: `normalize_path`), with or
    /// without a trailing slash (frameworks route `/logout/` to `/logout`).
    pub fn is_logout_path(&self, path: &str) -> bool {
        fn bare(path: &str) -> &str {
            path.strip_suffix('/')
                .filter(|p| !p.is_empty())
                .unwrap_or(path)
        }
        let listed = |path: &str| self.paths.iter().any(|p| bare(p) == bare(path));
        listed(path) || listed(&crate::config::normalize_path(path))
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    pub(super) fn logout() -> Logout {
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

    /// The `Cookie` header a browser sends back after `set` (name=value of each line).
    fn sent_back(set: &HeaderMap) -> HeaderMap {
        let pairs: Vec<_> = set
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .collect();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, pairs.join("; ").parse().unwrap());
        h
    }

    fn with_secret(secret: &str) -> Logout {
        Logout::new(
            &LogoutConfig {
                paths: vec!["/logout".into()],
                detect_cookie_clear: true,
            },
            "session",
            "abc",
            None,
            &Secret::new(secret),
        )
    }

    #[test]
    fn markers_of_the_previous_secret_survive_a_rotation() {
        let old = with_secret("s3cret");
        let mut set = HeaderMap::new();
        let alice_before = old.booted_for(Some("alice"));
        old.set_booted_for(&mut set, &alice_before, false);
        old.set_pending_shutdown(&mut set, false);
        let browser = sent_back(&set);

        // Without succession, a new secret knows none of them.
        let stranger = with_secret("rotated");
        assert_eq!(stranger.recorded_boot(&browser), None);
        assert!(!stranger.pending_shutdown(&browser));

        let new = with_secret("rotated").succeeding(&old);
        assert!(new.pending_shutdown(&browser));
        let recorded = new.recorded_boot(&browser).unwrap();
        assert_eq!(recorded, alice_before);
        let alice_now = new.booted_for(Some("alice"));
        assert_ne!(alice_now, alice_before, "the record is keyed by the secret");
        assert!(new.records_user(recorded, "alice", &alice_now));
        let bob_now = new.booted_for(Some("bob"));
        assert!(!new.records_user(recorded, "bob", &bob_now));
        assert!(!stranger.records_user(recorded, "alice", &alice_now));

        // A plain reload (same secret) keeps everything, retired keys included.
        let again = with_secret("rotated").succeeding(&new);
        assert!(again.pending_shutdown(&browser));
        assert!(again.records_user(recorded, "alice", &alice_now));
        assert_eq!(again.booted_for(Some("alice")), alice_now);
    }
}
