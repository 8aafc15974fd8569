//! The proxy's own cookies: the one-shot pending shutdown and the record of whom the
//! Messenger was booted for. Both are signed (a forged or unknown value is ignored), carry no
//! user data, and are readable by the page's script on purpose: a change that must follow a
//! shutdown is made by the snippet itself, right after `Intercom('shutdown')` ran, never by a
//! response head that cannot know whether its snippet made it into the page.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use http::HeaderMap;
use http::header::{self, HeaderValue};

use super::Logout;
use super::keys::SIGNATURE_BYTES;
use crate::identity::cookie_values;
use crate::intercom::escape_json_for_script;

/// The one-shot "run the shutdown on the next page" marker.
pub const PENDING_SHUTDOWN_COOKIE: &str = "__isp_shutdown";
/// Whom the Messenger was last booted for in this browser.
pub const BOOTED_FOR_COOKIE: &str = "__isp_booted";
/// The record of a Messenger booted without identity.
pub const VISITOR_MARKER: &str = "anon";
/// What conflicting booted-for records amount to: no marker ([`Logout::booted_for`]) is
/// ever this.
const CONFLICTING_RECORDS: &str = "?";
/// How long a pending shutdown, and the booted-for record, are kept: as long as Intercom's
/// own session cookie lives after its last ping (a week), plus a day. The record is re-set
/// on every page that boots and every token refresh, so it rolls like Intercom's.
pub(super) const MARKER_MAX_AGE_SECS: u32 = 8 * 24 * 3600;

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

/// A pending shutdown dated this far in the future is forged (clocks of replicas differ by
/// less).
const MAX_CLOCK_AHEAD_SECS: u64 = 300;

impl MarkerChanges<'_> {
    /// Splits the changes between the response head and the snippet. Without a shutdown,
    /// all go in the head. With one, the head only leaves a pending shutdown (so a snippet
    /// that never made it into the page, or never ran, is retried on the next page) and
    /// expires Intercom's cookie; the snippet, after its shutdown, consumes that marker and
    /// records whom it booted for.
    pub fn split(self, shuts_down: bool) -> (Self, Self) {
        if !shuts_down {
            return (self, MarkerChanges::default());
        }
        let head = MarkerChanges {
            pending_shutdown: Some(true),
            booted_for: None,
            expire_intercom_session: self.expire_intercom_session,
        };
        let script = MarkerChanges {
            pending_shutdown: Some(false),
            booted_for: self.booted_for,
            expire_intercom_session: false,
        };
        (head, script)
    }
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Logout {
    /// The marker for a user id (or `None`: a Messenger booted without identity).
    pub fn booted_for(&self, user_id: Option<&str>) -> String {
        match user_id {
            None => VISITOR_MARKER.to_string(),
            Some(id) => self.recall.marker(id, || self.keys.marker(id)),
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
        let value = self.sign(PENDING_SHUTDOWN_COOKIE, &now_secs().to_string());
        append_cookie(
            headers,
            own_cookie(PENDING_SHUTDOWN_COOKIE, &value, MARKER_MAX_AGE_SECS, secure),
        );
    }

    /// Consumes the one-shot marker.
    pub fn clear_pending_shutdown(&self, headers: &mut HeaderMap, secure: bool) {
        append_cookie(headers, own_cookie(PENDING_SHUTDOWN_COOKIE, "", 0, secure));
    }

    /// Records whom the Messenger was booted for. Persistent, like Intercom's own session
    /// cookie: a browser restart keeps both, and the next user must still be caught.
    pub fn set_booted_for(&self, headers: &mut HeaderMap, marker: &str, secure: bool) {
        let value = self.signed_record(marker);
        append_cookie(
            headers,
            own_cookie(BOOTED_FOR_COOKIE, &value, MARKER_MAX_AGE_SECS, secure),
        );
    }

    /// Forgets whom the Messenger was booted for (after a logout's shutdown).
    pub fn clear_booted_for(&self, headers: &mut HeaderMap, secure: bool) {
        append_cookie(headers, own_cookie(BOOTED_FOR_COOKIE, "", 0, secure));
    }

    /// Whether the request carries a pending shutdown this proxy (or a replica with the
    /// same secret) left, within its lifetime.
    /// Every copy is read (a planted duplicate cannot hide a real one).
    pub fn pending_shutdown(&self, headers: &HeaderMap) -> bool {
        cookie_values(headers, PENDING_SHUTDOWN_COOKIE)
            .filter_map(|value| self.verified(PENDING_SHUTDOWN_COOKIE, value))
            .filter_map(|issued| issued.parse::<u64>().ok())
            .any(|issued| {
                let now = now_secs();
                issued <= now + MAX_CLOCK_AHEAD_SECS
                    && now.saturating_sub(issued) <= u64::from(MARKER_MAX_AGE_SECS)
            })
    }

    /// Whom the request's record says the Messenger was booted for, when its signature
    /// holds. Two genuine records that disagree (another path's copy) name no one the page
    /// could target, so the page shuts the Messenger down before it boots.
    pub fn recorded_boot<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let mut records =
            cookie_values(headers, BOOTED_FOR_COOKIE).filter_map(|v| self.verified_record(v));
        let first = records.next()?;
        if records.all(|other| other == first) {
            Some(first)
        } else {
            Some(CONFLICTING_RECORDS)
        }
    }

    /// JavaScript making `changes` in the browser (`document.cookie`), for the snippet to
    /// run after its shutdown.
    pub fn script(&self, changes: &MarkerChanges<'_>, secure: bool) -> String {
        let mut lines = Vec::with_capacity(2);
        match changes.booted_for {
            Some(Some(marker)) => lines.push(own_cookie(
                BOOTED_FOR_COOKIE,
                &self.signed_record(marker),
                MARKER_MAX_AGE_SECS,
                secure,
            )),
            Some(None) => lines.push(own_cookie(BOOTED_FOR_COOKIE, "", 0, secure)),
            None => {}
        }
        match changes.pending_shutdown {
            Some(true) => lines.push(own_cookie(
                PENDING_SHUTDOWN_COOKIE,
                &self.sign(PENDING_SHUTDOWN_COOKIE, &now_secs().to_string()),
                MARKER_MAX_AGE_SECS,
                secure,
            )),
            Some(false) => lines.push(own_cookie(PENDING_SHUTDOWN_COOKIE, "", 0, secure)),
            None => {}
        }
        let mut script = String::new();
        for line in lines {
            let _ = write!(script, "document.cookie={};", escape_json_for_script(&line));
        }
        script
    }

    /// The booted-for record's cookie value for `marker` (the same every time).
    fn signed_record(&self, marker: &str) -> String {
        self.recall
            .signed(marker, || self.sign(BOOTED_FOR_COOKIE, marker))
    }

    /// The marker in a booted-for record, when its signature holds.
    fn verified_record<'v>(&self, signed: &'v str) -> Option<&'v str> {
        let value = signed.rsplit_once('.')?.0;
        self.recall
            .verified(signed, || {
                self.verified(BOOTED_FOR_COOKIE, signed).is_some()
            })
            .then_some(value)
    }

    /// `value.signature`, the signature binding the value to the cookie's name.
    fn sign(&self, name: &str, value: &str) -> String {
        self.keys.sign(name, value)
    }

    /// The value of a signed marker, when its signature holds under the current key or
    /// one a reload retired.
    fn verified<'v>(&self, name: &str, signed: &'v str) -> Option<&'v str> {
        let (value, signature) = signed.rsplit_once('.')?;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .ok()?;
        if signature.len() != SIGNATURE_BYTES {
            return None;
        }
        let holds = self.keys.holds(name, value, &signature)
            || self
                .retired
                .iter()
                .any(|r| r.keys().holds(name, value, &signature));
        holds.then_some(value)
    }
}

/// A cookie of the proxy's own: SameSite=Lax, Secure over HTTPS. Not HttpOnly: the snippet
/// changes them after its shutdown (a script cannot touch an HttpOnly cookie), and they
/// hold nothing a script could misuse (signed, no user data). One allocation: the
/// booted-for record is set on every injected page.
fn own_cookie(name: &str, value: &str, max_age: u32, secure: bool) -> String {
    let mut line = String::with_capacity(name.len() + value.len() + 64);
    let secure = if secure { "; Secure" } else { "" };
    let _ = write!(
        line,
        "{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age}{secure}"
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
    use crate::logout::tests::logout;

    fn cookies(line: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(line).unwrap());
        h
    }

    #[test]
    fn forged_markers_are_ignored() {
        let l = logout();
        let marker = l.booted_for(Some("u-1"));
        for forged in [
            format!("__isp_booted={marker}"),
            format!("__isp_booted={marker}.AAAAAAAAAAAAAAAAAAAAAA"),
            format!("__isp_booted={}", l.sign(PENDING_SHUTDOWN_COOKIE, &marker)),
        ] {
            assert_eq!(l.recorded_boot(&cookies(&forged)), None, "{forged}");
        }
        assert!(!l.pending_shutdown(&cookies("__isp_shutdown=1")));
        // Signed by a proxy with another secret.
        let other = Logout::new(
            &crate::config::LogoutConfig {
                paths: vec![],
                detect_cookie_clear: true,
            },
            "session",
            "abc",
            None,
            &crate::crypto::Secret::new("another"),
        );
        let foreign = other.sign(PENDING_SHUTDOWN_COOKIE, &now_secs().to_string());
        assert!(!l.pending_shutdown(&cookies(&format!("__isp_shutdown={foreign}"))));
    }

    #[test]
    fn a_pending_shutdown_lives_eight_days() {
        let l = logout();
        let at = |ts: u64| {
            cookies(&format!(
                "__isp_shutdown={}",
                l.sign(PENDING_SHUTDOWN_COOKIE, &ts.to_string())
            ))
        };
        assert!(l.pending_shutdown(&at(now_secs())));
        assert!(l.pending_shutdown(&at(now_secs() - 7 * 24 * 3600)));
        assert!(!l.pending_shutdown(&at(now_secs() - 9 * 24 * 3600)));
        assert!(
            !l.pending_shutdown(&at(now_secs() + 3600)),
            "issued in the future"
        );
    }

    #[test]
    fn genuine_markers_are_found_beside_planted_and_messy_ones() {
        let l = logout();
        let pending = l.sign(PENDING_SHUTDOWN_COOKIE, &now_secs().to_string());
        let header = format!("x=\"a; __isp_shutdown=1; y=b\"; __isp_shutdown={pending}");
        assert!(l.pending_shutdown(&cookies(&header)));

        let alice = l.sign(BOOTED_FOR_COOKIE, &l.booted_for(Some("alice")));
        let bob = l.sign(BOOTED_FOR_COOKIE, &l.booted_for(Some("bob")));
        let alice_marker = l.booted_for(Some("alice"));
        let planted = cookies(&format!("__isp_booted=forged; __isp_booted={alice}"));
        let found = l.recorded_boot(&planted);
        assert_eq!(found, Some(alice_marker.as_str()));
        // Two genuine records that disagree: whoever the page is for, shut down first.
        let both = cookies(&format!("__isp_booted={alice}; __isp_booted={bob}"));
        let found = l.recorded_boot(&both).unwrap();
        assert_ne!(found, alice_marker);
        assert_ne!(found, l.booted_for(Some("bob")));
        assert_ne!(found, VISITOR_MARKER);
    }

    #[test]
    fn the_script_sets_what_the_head_would() {
        let l = logout();
        let changes = MarkerChanges {
            pending_shutdown: Some(false),
            booted_for: Some(Some("m")),
            expire_intercom_session: false,
        };
        let script = l.script(&changes, true);
        assert!(
            script.starts_with("document.cookie=\"__isp_booted=m."),
            "{script}"
        );
        assert!(script.contains("Max-Age=691200; Secure\";"), "{script}");
        assert!(
            script.contains(
                "document.cookie=\"__isp_shutdown=; Path=/; SameSite=Lax; Max-Age=0; Secure\";"
            ),
            "{script}"
        );
    }
}
