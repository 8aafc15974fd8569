//! How a session lookup ended (for the metrics and the reasons a page passed), and whether
//! the session store answers: one probe, for the start-up line and the admin `/readyz`.

use std::time::Duration;

use super::{Identity, Resolution, ResolveError};

/// How a request's session lookup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupResult {
    /// The session names a user.
    User,
    /// No session, or one that names no user.
    #[default]
    Anonymous,
    /// The store failed.
    Error,
    /// The store did not answer within `session.timeout`.
    Timeout,
}

impl LookupResult {
    /// Every result, in label order.
    pub const ALL: [LookupResult; 4] = [
        LookupResult::User,
        LookupResult::Anonymous,
        LookupResult::Error,
        LookupResult::Timeout,
    ];

    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            LookupResult::User => "user",
            LookupResult::Anonymous => "anonymous",
            LookupResult::Error => "error",
            LookupResult::Timeout => "timeout",
        }
    }

    /// A lookup that concluded.
    pub(super) fn of(resolution: &Resolution) -> Self {
        match resolution {
            Resolution::User(_) => LookupResult::User,
            Resolution::Anonymous => LookupResult::Anonymous,
        }
    }
}

/// The session store did not answer: what it is and what went wrong (never credentials:
/// stores describe themselves by host and port).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{store}: {reason}")]
pub struct StoreDown {
    /// The store, as log lines name it.
    pub store: String,
    /// What went wrong.
    pub reason: String,
}

impl Identity {
    /// Whether every store the resolver (and `[session.lookup]`) uses answers within
    /// `limit`; `Ok` for resolvers that keep sessions in the cookie.
    pub async fn probe_store(&self, limit: Duration) -> Result<(), StoreDown> {
        if !self.resolver.is_remote() {
            return Ok(());
        }
        // A little more than `limit`: a store's own bound (a pool's acquire timeout) then
        // fires first and says which store it was.
        let bound = limit + super::OUTER_TIMEOUT_MARGIN;
        let reason = match tokio::time::timeout(bound, self.resolver.probe()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(ResolveError::Store(reason))) => reason,
            Ok(Err(ResolveError::Timeout)) | Err(_) => {
                format!("no answer within {}", humantime::format_duration(limit))
            }
        };
        Err(StoreDown {
            store: self.resolver.describe(),
            reason,
        })
    }

    /// `session.timeout`: how long a lookup may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}
