//! The proxy's secrets and the one keyed hash it computes with them: a [`Secret`] never
//! prints its value, and [`keyed_hmac`] prepares HMAC-SHA256 once per key.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A secret value. Its `Debug` is redacted so it cannot leak through a log line.
#[derive(Clone)]
pub struct Secret {
    value: Arc<[u8]>,
    origin: Arc<SecretOrigin>,
}

/// Where a secret was read from: what a warning names when the secret seems wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretOrigin {
    /// The config key, e.g. `session.jwt.key_env`.
    pub key: String,
    /// The variable or file it named, e.g. `environment variable APP_SESSION_SECRET`.
    pub source: String,
}

impl fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.source)
    }
}

impl Secret {
    /// Wraps raw secret bytes given in code.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret::from_origin(
            bytes,
            SecretOrigin {
                key: "(none)".into(),
                source: "given in code".into(),
            },
        )
    }

    /// Wraps secret bytes read from `origin`.
    pub fn from_origin(bytes: impl Into<Vec<u8>>, origin: SecretOrigin) -> Self {
        Secret {
            value: Arc::from(bytes.into()),
            origin: Arc::new(origin),
        }
    }

    /// The secret bytes, for the code that signs or verifies with them.
    pub fn expose(&self) -> &[u8] {
        &self.value
    }

    /// Where the secret was read from. Never the value.
    pub fn origin(&self) -> &SecretOrigin {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// HMAC-SHA256 keyed with `key`, ready to clone for each message: the key is hashed once,
/// not per signature.
pub fn keyed_hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Constant-time check of `expected` against the HMAC of `parts` (one message, in pieces)
/// under `key`: how every signed session format the proxy reads is verified.
pub(crate) fn hmac_matches<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// Lowercase hex only: PHP's `hash_hmac`, Python's `hexdigest` and OpenSSL's `hexdigest`
/// write it, and the frameworks compare it exactly.
pub(crate) fn lower_hex(text: &[u8]) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
        assert_eq!(s.expose(), b"hunter2");
        assert!(!s.origin().to_string().contains("hunter2"));
    }
}
