//! `X-Request-Id`: the client's (or a load balancer's) when it is a sane token, else a new
//! one; the app gets it too, so its logs and the proxy's name the same request.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use http::HeaderValue;
use http::header::{Entry, HeaderMap, HeaderName};

/// The header.
pub(super) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longer incoming ids are replaced: a log field must stay a log field.
const MAX_LEN: usize = 128;

/// A request's id, as the access log keeps it.
pub(super) enum RequestId {
    /// The one that came (a cheap clone of the request's header).
    Incoming(HeaderValue),
    /// A new one, kept as its digits (the request carries its own copy).
    New([u8; 32]),
}

impl RequestId {
    /// Visible ASCII either way.
    pub(super) fn as_str(&self) -> &str {
        let bytes = match self {
            RequestId::Incoming(id) => id.as_bytes(),
            RequestId::New(digits) => digits,
        };
        std::str::from_utf8(bytes).unwrap_or("-")
    }
}

/// The request's id: the incoming `X-Request-Id` when there is exactly one, of 1 to 128
/// visible ASCII characters; otherwise a new one replaces whatever came. One lookup.
pub(super) fn request_id(headers: &mut HeaderMap) -> RequestId {
    let digits = match headers.entry(&X_REQUEST_ID) {
        Entry::Occupied(mut incoming) => {
            let mut all = incoming.iter();
            if let (Some(id), None) = (all.next(), all.next())
                && sane(id.as_bytes())
            {
                return RequestId::Incoming(incoming.get().clone());
            }
            let digits = new_id();
            incoming.insert(header_value(&digits));
            digits
        }
        Entry::Vacant(none) => {
            let digits = new_id();
            none.insert(header_value(&digits));
            digits
        }
    };
    RequestId::New(digits)
}

fn header_value(digits: &[u8; 32]) -> HeaderValue {
    HeaderValue::from_bytes(digits).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

thread_local! {
    /// Per-thread generator state, seeded from the process's random hash keys.
    static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
}

/// SplitMix64: ids must be unique and unguessable enough not to collide, not secret (they
/// are logged and sent to the app), so no cryptographic generator is needed per request.
fn next() -> u64 {
    STATE.with(|state| {
        let s = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// 16 random bytes, as 32 lowercase hex digits.
fn new_id() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (half, word) in [next(), next()].into_iter().enumerate() {
        for (i, byte) in word.to_be_bytes().into_iter().enumerate() {
            let at = half * 16 + i * 2;
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0xf)];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(&X_REQUEST_ID, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_sane_incoming_id_is_kept_and_anything_else_replaced() {
        let mut h = with(&["req-42"]);
        assert_eq!(request_id(&mut h).as_str(), "req-42");
        assert_eq!(h[&X_REQUEST_ID], "req-42");
        let long: &'static str = "x".repeat(129).leak();
        for bad in [&[][..], &["a b"], &[long], &["one", "two"], &[""]] {
            let mut h = with(bad);
            let id = request_id(&mut h);
            let id = id.as_str();
            assert_eq!(id.len(), 32, "{bad:?}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(h.get_all(&X_REQUEST_ID).iter().collect::<Vec<_>>(), [id]);
        }
        assert_ne!(new_id(), new_id());
    }
}
