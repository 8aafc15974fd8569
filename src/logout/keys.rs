//! The marker keys, derived from the Messenger secret, and those of the secrets a reload
//! rotated away from: markers signed under a retired key are still accepted, and the
//! booted-for records it made still name their users, for as long as such a marker can
//! live. Without that, every browser would get a shutdown (and a fresh boot) after a
//! rotation.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::markers::MARKER_MAX_AGE_SECS;
use crate::crypto::{Secret, keyed_hmac};

/// Bytes of HMAC-SHA256 kept in a marker's signature (128 bits).
pub(super) const SIGNATURE_BYTES: usize = 16;

/// Retired keys kept at most: a few rotations within a marker's lifetime.
const MAX_RETIRED: usize = 4;

/// The two keys derived from one Messenger secret.
#[derive(Clone)]
pub(super) struct Keys {
    /// Makes the booted-for record of a user id.
    marker: Hmac<Sha256>,
    /// Signs the marker cookies.
    signing: Hmac<Sha256>,
    /// Tells two secrets apart without keeping either (a hash of a derived key).
    id: [u8; 32],
}

impl Keys {
    pub(super) fn derive(messenger_secret: &Secret) -> Keys {
        let derive = |label: &[u8]| {
            let mut mac = keyed_hmac(messenger_secret.expose());
            mac.update(label);
            mac.finalize().into_bytes()
        };
        let marker_secret = derive(b"intercom-secure-proxy booted-for marker v1");
        let signing_secret = derive(b"intercom-secure-proxy marker signature v1");
        Keys {
            marker: keyed_hmac(&marker_secret),
            signing: keyed_hmac(&signing_secret),
            id: Sha256::digest(signing_secret).into(),
        }
    }

    /// The booted-for record of a user id: reveals nothing of it.
    pub(super) fn marker(&self, user_id: &str) -> String {
        let mut mac = self.marker.clone();
        mac.update(user_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
    }

    /// `value.signature`, the signature binding the value to the cookie's name.
    pub(super) fn sign(&self, name: &str, value: &str) -> String {
        let digest = self.mac(name, value).finalize().into_bytes();
        let signature =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..SIGNATURE_BYTES]);
        format!("{value}.{signature}")
    }

    /// Whether `signature` (decoded) is this key's for `name=value`.
    pub(super) fn holds(&self, name: &str, value: &str, signature: &[u8]) -> bool {
        self.mac(name, value)
            .verify_truncated_left(signature)
            .is_ok()
    }

    fn mac(&self, name: &str, value: &str) -> Hmac<Sha256> {
        let mut mac = self.signing.clone();
        mac.update(name.as_bytes());
        mac.update(b"=");
        mac.update(value.as_bytes());
        mac
    }
}

/// The keys of a secret a reload replaced, accepted until `until` (Unix seconds).
#[derive(Clone)]
pub(super) struct Retired {
    keys: Keys,
    until: u64,
}

impl Retired {
    pub(super) fn keys(&self) -> &Keys {
        &self.keys
    }
}

/// The retired keys a layer built with `current` keeps from the one it replaces
/// (`previous` with its own retired keys), at `now`: the previous keys when the secret
/// changed, plus those still within a marker's lifetime; never the current secret's.
pub(super) fn carried_over(
    current: &Keys,
    previous: &Keys,
    previous_retired: &[Retired],
    now: u64,
) -> Vec<Retired> {
    let mut retired = Vec::with_capacity(MAX_RETIRED);
    if previous.id != current.id {
        retired.push(Retired {
            keys: previous.clone(),
            // A marker signed just before the reload lives this long.
            until: now + u64::from(MARKER_MAX_AGE_SECS),
        });
    }
    retired.extend(
        previous_retired
            .iter()
            .filter(|r| r.until > now && r.keys.id != current.id)
            .cloned(),
    );
    retired.truncate(MAX_RETIRED);
    retired
}

/// Whether two key sets come from the same secret.
pub(super) fn same(a: &Keys, b: &Keys) -> bool {
    a.id == b.id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> Keys {
        Keys::derive(&Secret::new(secret))
    }

    #[test]
    fn a_rotation_retires_the_old_keys_for_a_marker_lifetime_only() {
        let (a, b, c) = (keys("a"), keys("b"), keys("c"));
        let now = 1_000_000;
        // Same secret: nothing retired.
        assert!(carried_over(&a, &a, &[], now).is_empty());
        let after_ab = carried_over(&b, &a, &[], now);
        assert_eq!(after_ab.len(), 1);
        assert!(same(after_ab[0].keys(), &a));
        // A plain reload keeps what was retired.
        assert_eq!(carried_over(&b, &b, &after_ab, now + 10).len(), 1);
        // Another rotation keeps both, newest first.
        let after_bc = carried_over(&c, &b, &after_ab, now + 20);
        assert!(same(after_bc[0].keys(), &b) && same(after_bc[1].keys(), &a));
        // Past a marker's lifetime, a retired key is dropped.
        let later = now + u64::from(MARKER_MAX_AGE_SECS) + 1;
        assert_eq!(carried_over(&c, &c, &after_bc, later).len(), 1);
        // Rotating back to a retired secret makes it current, not retired.
        let back = carried_over(&a, &b, &after_ab, now + 30);
        assert!(back.iter().all(|r| !same(r.keys(), &a)));
        // Bounded however many rotations.
        let mut retired = Vec::new();
        let mut current = keys("0");
        for i in 1..20 {
            let next = keys(&i.to_string());
            retired = carried_over(&next, &current, &retired, now + i);
            current = next;
        }
        assert_eq!(retired.len(), MAX_RETIRED);
    }
}
