//! Warnings for session cookies that turn into no user because of the config, not because
//! of the visitor: a wrong secret, a wrong key template, a JSON pointer that names nothing.
//!
//! Each check a session goes through (cookie format, signature, session found, user id)
//! counts its passes and failures. When a check fails and none has passed for a minute, that
//! is a misconfiguration rather than a stray forged or stale cookie: one warning names the
//! cause and the key to fix, then at most one a minute per check. Cookie values, session ids
//! and document values never appear; top-level document keys may, to show what is there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::warn;

use super::limit::WarnLimiter;
use super::{Resolution, user_from_document};
use crate::config::{FieldMap, SecretOrigin};

/// How long a check must go without a pass before its failures are reported, and the least
/// time between two warnings of one check.
const WINDOW: Duration = Duration::from_secs(60);
/// Passes are recorded at most this often (a store per pass would bounce a cache line
/// between the workers for nothing).
const PASS_RESOLUTION: Duration = Duration::from_secs(1);
/// "No pass yet".
const NEVER: u64 = u64::MAX;

/// A step between a session cookie and a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The cookie has the shape the resolver reads (a JWT, an express-session cookie).
    Format,
    /// Its signature or MAC verifies with the configured secret.
    Signature,
    /// The store (or introspection endpoint) knows the session.
    Session,
    /// The session document has a user id at `session.fields.user_id`.
    UserId,
}

impl Check {
    const ALL: [Check; 4] = [
        Check::Format,
        Check::Signature,
        Check::Session,
        Check::UserId,
    ];

    fn name(self) -> &'static str {
        match self {
            Check::Format => "format",
            Check::Signature => "signature",
            Check::Session => "session",
            Check::UserId => "user_id",
        }
    }
}

/// What a warning says: the key to fix and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The `proxy.toml` key most likely wrong.
    pub key: String,
    /// What was seen and what to check, without any cookie or session value.
    pub message: String,
}

impl Finding {
    /// A finding about a secret: the key is the one it was read from.
    pub fn about_secret(origin: &SecretOrigin, message: String) -> Finding {
        Finding {
            key: origin.key.clone(),
            message,
        }
    }
}

/// Pass and failure records for each [`Check`], shared by the resolver behind one
/// `[session]`.
#[derive(Debug)]
pub struct Diagnosis {
    started: Instant,
    checks: [Record; 4],
}

#[derive(Debug)]
struct Record {
    /// Milliseconds since `started` of the latest recorded pass, or [`NEVER`].
    last_pass: AtomicU64,
    /// Failures since the latest recorded pass or warning.
    failures: AtomicU64,
    /// One warning a minute, on `started`'s clock.
    warnings: WarnLimiter,
}

impl Default for Diagnosis {
    fn default() -> Self {
        Diagnosis {
            started: Instant::now(),
            checks: std::array::from_fn(|_| Record {
                last_pass: AtomicU64::new(NEVER),
                failures: AtomicU64::new(0),
                warnings: WarnLimiter::every(WINDOW),
            }),
        }
    }
}

impl Diagnosis {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn record(&self, check: Check) -> &Record {
        &self.checks[check as usize]
    }

    /// A session passed `check`: its failures are the visitor's, not the config's.
    pub fn passed(&self, check: Check) {
        self.passed_at(check, self.now_ms());
    }

    /// A user was resolved (perhaps from a cache that skipped every check): each check
    /// passed.
    pub fn user_resolved(&self) {
        let now = self.now_ms();
        for check in Check::ALL {
            self.passed_at(check, now);
        }
    }

    fn passed_at(&self, check: Check, now: u64) {
        let record = self.record(check);
        let last = record.last_pass.load(Ordering::Relaxed);
        if last == NEVER || now.saturating_sub(last) >= PASS_RESOLUTION.as_millis() as u64 {
            record.last_pass.store(now, Ordering::Relaxed);
            record.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A session failed `check`. When no session passed it for a minute and no warning was
    /// logged for it in the last minute, logs `finding()` (only built then) and returns it.
    pub fn failed(&self, check: Check, finding: impl FnOnce() -> Finding) -> Option<Finding> {
        self.failed_at(check, self.now_ms(), finding)
    }

    fn failed_at(
        &self,
        check: Check,
        now: u64,
        finding: impl FnOnce() -> Finding,
    ) -> Option<Finding> {
        let record = self.record(check);
        let failures = record.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let last_pass = record.last_pass.load(Ordering::Relaxed);
        if last_pass != NEVER && now.saturating_sub(last_pass) < WINDOW.as_millis() as u64 {
            return None;
        }
        record.warnings.allow_at(now)?;
        record.failures.store(0, Ordering::Relaxed);
        let finding = finding();
        warn!(
            check = check.name(),
            key = %finding.key,
            failures,
            "session cookies give no user: {}",
            finding.message
        );
        Some(finding)
    }

    /// Maps a session document through `[session.fields]`, recording whether the user id
    /// pointer found one.
    pub fn user_from(&self, fields: &FieldMap, document: &Value) -> Resolution {
        match user_from_document(fields, document) {
            Some(user) => {
                self.passed(Check::UserId);
                Resolution::User(user)
            }
            None => {
                self.failed(Check::UserId, || missing_user_id(fields, document));
                Resolution::Anonymous
            }
        }
    }
}

/// Why a document gave no user id: its top-level keys, and where a key of the same name as
/// the pointer's last step does sit, if anywhere.
fn missing_user_id(fields: &FieldMap, document: &Value) -> Finding {
    let pointer = &fields.user_id;
    let found = match document.pointer(pointer) {
        None => "names nothing in".to_string(),
        Some(Value::Null) => "is null in".to_string(),
        Some(Value::String(_)) => "is an empty string in".to_string(),
        Some(other) => format!("is {} (not a string or number) in", json_kind(other)),
    };
    let keys = match document {
        Value::Object(map) if map.is_empty() => "the documents are empty objects".to_string(),
        Value::Object(map) => format!(
            "their top-level keys: {}",
            map.keys().map(|k| shown(k)).collect::<Vec<_>>().join(", ")
        ),
        other => format!("the documents are {}, not objects", json_kind(other)),
    };
    let last_step = pointer.rsplit('/').next().unwrap_or_default();
    let suggestion = match pointer_to_key(document, last_step, "", 3) {
        Some(other) if other != *pointer => format!(", did you mean \"{other}\"?"),
        _ => String::new(),
    };
    Finding {
        key: "session.fields.user_id".to_string(),
        message: format!(
            "session.fields.user_id (\"{pointer}\") {found} the sessions found ({keys})\
             {suggestion}. Visitors' sessions may lack a user id; if logged-in users get no \
             Messenger, fix session.fields.user_id"
        ),
    }
}

/// A key as a message may show it: a field name, not data. Apps that key maps by id or
/// email would otherwise put a user's identifier in the log.
fn shown(key: &str) -> &str {
    let field_like = !key.is_empty()
        && key.len() <= 40
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
        && !key.bytes().all(|b| b.is_ascii_digit());
    if field_like { key } else { "…" }
}

/// "an object", "a number"…, for messages that must not show the value.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON pointer of the first object key named `name` with a string or number value,
/// searched breadth first to `depth` levels.
fn pointer_to_key(document: &Value, name: &str, prefix: &str, depth: usize) -> Option<String> {
    let Value::Object(map) = document else {
        return None;
    };
    if name.is_empty() || depth == 0 {
        return None;
    }
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    let usable = |value: &Value| match value {
        Value::String(s) => !s.trim().is_empty(),
        Value::Number(_) => true,
        _ => false,
    };
    if map.get(name).is_some_and(usable) {
        return Some(format!("{prefix}/{}", escape(name)));
    }
    map.iter()
        .filter(|(key, _)| shown(key) == key.as_str())
        .find_map(|(key, value)| {
            pointer_to_key(value, name, &format!("{prefix}/{}", escape(key)), depth - 1)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(user_id: &str) -> FieldMap {
        FieldMap {
            user_id: user_id.into(),
            email: None,
            name: None,
            custom: Vec::new(),
        }
    }

    fn finding(key: &str) -> Finding {
        Finding {
            key: key.into(),
            message: "m".into(),
        }
    }

    const MINUTE: u64 = WINDOW.as_millis() as u64;

    #[test]
    fn the_first_failure_warns_then_at_most_once_a_minute() {
        let d = Diagnosis::default();
        assert!(d.failed_at(Check::Signature, 10, || finding("k")).is_some());
        assert!(d.failed_at(Check::Signature, 20, || finding("k")).is_none());
        // Each check has its own limit.
        assert!(d.failed_at(Check::Session, 30, || finding("k")).is_some());
        assert!(
            d.failed_at(Check::Signature, 10 + MINUTE - 1, || finding("k"))
                .is_none()
        );
        assert!(
            d.failed_at(Check::Signature, 10 + MINUTE, || finding("k"))
                .is_some()
        );
    }

    #[test]
    fn a_pass_within_the_minute_means_failures_are_the_visitors() {
        let d = Diagnosis::default();
        d.passed_at(Check::Signature, 1_000);
        assert!(
            d.failed_at(Check::Signature, 2_000, || finding("k"))
                .is_none()
        );
        // Another check is not vouched for by this one's pass.
        assert!(d.failed_at(Check::UserId, 2_000, || finding("k")).is_some());
        // A minute without a pass: the failures are reported.
        assert!(
            d.failed_at(Check::Signature, 1_000 + MINUTE, || finding("k"))
                .is_some()
        );
    }

    #[test]
    fn a_resolved_user_vouches_for_every_check() {
        let d = Diagnosis::default();
        d.user_resolved();
        for check in Check::ALL {
            assert!(
                d.failed_at(check, 1_000, || finding("k")).is_none(),
                "{check:?}"
            );
        }
    }

    #[test]
    fn a_missing_user_id_lists_the_keys_and_suggests_the_pointer() {
        let doc = json!({"cookie": {"path": "/"}, "user": {"id": 7, "email": "a@b"}});
        let found = missing_user_id(&fields("/id"), &doc);
        assert_eq!(found.key, "session.fields.user_id");
        assert!(
            found
                .message
                .contains("(\"/id\") names nothing in the sessions found (their top-level keys: cookie, user), did you mean \"/user/id\"?"),
            "{}",
            found.message
        );
        assert!(!found.message.contains("a@b"), "no values");

        let found = missing_user_id(&fields("/user/id"), &json!({"user": {"id": null}}));
        assert!(
            found.message.contains("is null in the sessions"),
            "{}",
            found.message
        );
        assert!(!found.message.contains("did you mean"), "{}", found.message);
        // Keys that look like data (ids, emails) are not shown, nor searched through.
        let doc = json!({"1234": {"id": 1}, "bob@example.com": 1, "users": {"987": {"id": 2}}});
        let found = missing_user_id(&fields("/id"), &doc);
        assert!(
            found.message.contains("top-level keys: …, …, users"),
            "{}",
            found.message
        );
        assert!(!found.message.contains("1234") && !found.message.contains("987"));
        assert!(!found.message.contains("did you mean"), "{}", found.message);
        let found = missing_user_id(&fields("/sub"), &json!([1]));
        assert!(
            found.message.contains("the documents are an array"),
            "{}",
            found.message
        );
    }

    #[test]
    fn user_from_records_both_outcomes() {
        let d = Diagnosis::default();
        assert_eq!(
            d.user_from(&fields("/id"), &json!({})),
            Resolution::Anonymous
        );
        let user = d.user_from(&fields("/id"), &json!({"id": "u-1"}));
        assert!(matches!(user, Resolution::User(u) if u.id == "u-1"));
        assert_ne!(
            d.record(Check::UserId).last_pass.load(Ordering::Relaxed),
            NEVER
        );
    }
}
