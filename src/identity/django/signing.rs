//! Django's signed values, the reading half: `django.core.signing.loads` (TimestampSigner,
//! JSONSerializer) and the session backends' `decode`, following Django 5.2's code (6.1's is
//! the same here). The tests hold vectors made by Django itself.
//!
//! Django 4.0 dropped both the sha1 signatures of `DEFAULT_HASHING_ALGORITHM = "sha1"` and the
//! pre-3.1 session format, and so does [`loads`]/[`decode_session_data`]: a value Django
//! throws away must not name a user here. [`decode_legacy_session_data`] reads the pre-3.1
//! format for whoever opts in (a database still holding rows written by Django 3.x).
//!
//! Stricter than Python only where Django never writes such input: base64 must be canonical,
//! and a payload inflating past [`MAX_INFLATED`] is refused (Django has no limit).
// The db backend's half (session_data) is read only in builds with SQL.
#![cfg_attr(not(feature = "sql"), allow(dead_code))]

use super::super::inflate::InflateError;
use crate::crypto::{hmac_matches, lower_hex};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::Hmac;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Longer tokens are refused before any work: browsers cap a cookie at 4 KiB.
pub(crate) const MAX_TOKEN: usize = 8 * 1024;
/// Longer `session_data` is refused before any work (the crate's stores stop at 512 KiB).
pub(crate) const MAX_SESSION_DATA: usize = 512 * 1024;
/// A compressed payload may inflate to this much and no more (zip bombs).
pub(crate) const MAX_INFLATED: usize = 256 * 1024;
/// signed_cookies.py: the salt of both `_get_session_key` and `load`.
pub(crate) const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";
/// global_settings.SESSION_COOKIE_AGE, the `max_age` signed_cookies' `load` passes.
#[cfg(test)] // the config gives the proxy its own default
pub(crate) const DEFAULT_SESSION_COOKIE_AGE: u64 = 60 * 60 * 24 * 7 * 2;
/// The db and cached_db backends' class, `SessionStore`, as `key_salt` names it.
pub(crate) const DB_SESSION_CLASS: &str = "SessionStore";

/// Why a value was refused. The messages never carry the value or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DjangoSigningError {
    /// Too long, or not `value:timestamp:signature`.
    #[error("malformed signed value")]
    Malformed,
    /// No key signed it (or it was signed for another salt).
    #[error("bad signature")]
    BadSignature,
    /// Signed, but older than `max_age`.
    #[error("signature expired")]
    Expired,
    /// Signed, but the payload does not decode.
    #[error("bad payload: {0}")]
    Data(String),
}

use DjangoSigningError::{BadSignature, Data, Expired, Malformed};

/// Django's `signing.loads(token, key=keys[0], fallback_keys=keys[1..], salt=salt,
/// max_age=max_age)` with the JSONSerializer: `payload:timestamp:signature`, the signature
/// being base64url(salted_hmac(salt + "signer", "payload:timestamp", key, sha256)), the
/// timestamp base62 seconds, the payload base64url JSON, zlib-compressed when it starts with
/// `.`. Any of `keys` may have signed it (SECRET_KEY, then SECRET_KEY_FALLBACKS); empty keys
/// are skipped, as Django replaces an empty fallback by SECRET_KEY. `max_age` None: no age
/// check, as Django.
pub(crate) fn loads(
    token: &str,
    keys: &[&[u8]],
    salt: &str,
    max_age: Option<u64>,
    now_unix: u64,
) -> Result<Value, DjangoSigningError> {
    if token.len() > MAX_TOKEN {
        return Err(Malformed);
    }
    unsign_object(token, keys, salt, max_age, now_unix)
}

/// The `session_data` column as SessionBase.encode wrote it (db, cached_db and file
/// backends): `signing.dumps(session, salt="django.contrib.sessions." + qualname,
/// compress=True)`, read like SessionBase.decode, which passes no `max_age` (the row's
/// `expire_date` is the expiry). `session_class_qualname` is the store class's
/// `__qualname__`: [`DB_SESSION_CLASS`] for Django's own backends.
pub(crate) fn decode_session_data(
    data: &str,
    keys: &[&[u8]],
    session_class_qualname: &str,
) -> Result<Value, DjangoSigningError> {
    if data.len() > MAX_SESSION_DATA {
        return Err(Malformed);
    }
    let salt = format!("django.contrib.sessions.{session_class_qualname}");
    unsign_object(data, keys, &salt, None, 0)
}

/// The pre-3.1 `session_data` (Django 3.1-3.2's `_legacy_decode`, and what they still wrote
/// under `DEFAULT_HASHING_ALGORITHM = "sha1"`): standard base64 of `hash:json`, hash being the
/// lowercase hex of salted_hmac("django.contrib.sessions" + class `__name__` (no dot),
/// json, key, sha1). Django 4.0 and later read such rows as empty sessions, so this is
/// opt-in. Django 3.2 checked SECRET_KEY only; each of `keys` is tried here.
pub(crate) fn decode_legacy_session_data(
    data: &str,
    keys: &[&[u8]],
    session_class_name: &str,
) -> Result<Value, DjangoSigningError> {
    if data.len() > MAX_SESSION_DATA {
        return Err(Malformed);
    }
    let decoded = STANDARD.decode(data).map_err(|_| Malformed)?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or(Malformed)?;
    let (hash, serialized) = (&decoded[..colon], &decoded[colon + 1..]);
    // Django compared hex strings, so only its own lowercase spelling can match.
    let hash = lower_hex(hash).ok_or(BadSignature)?;
    let key_salt = format!("django.contrib.sessions{session_class_name}");
    let signed = usable(keys).any(|key| {
        let derived = Sha1::new()
            .chain_update(key_salt.as_bytes())
            .chain_update(key)
            .finalize();
        hmac_matches::<Hmac<Sha1>>(&derived, &[serialized], &hash)
    });
    if !signed {
        return Err(BadSignature);
    }
    json_latin1(serialized)
}

/// TimestampSigner.unsign_object: signature first, then the timestamp, then the payload.
fn unsign_object(
    token: &str,
    keys: &[&[u8]],
    salt: &str,
    max_age: Option<u64>,
    now_unix: u64,
) -> Result<Value, DjangoSigningError> {
    // Signer.unsign splits at the last ':', then TimestampSigner at the last one left.
    let (value, signature) = token.rsplit_once(':').ok_or(Malformed)?;
    // Django compares base64 strings; canonical decoding keeps that exact, in constant time.
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| BadSignature)?;
    let key_salt = format!("{salt}signer");
    let signed = usable(keys).any(|key| {
        let derived = Sha256::new()
            .chain_update(key_salt.as_bytes())
            .chain_update(key)
            .finalize();
        hmac_matches::<Hmac<Sha256>>(&derived, &[value.as_bytes()], &signature)
    });
    if !signed {
        return Err(BadSignature);
    }
    let (payload, timestamp) = value.rsplit_once(':').ok_or(Malformed)?;
    let timestamp = b62_decode(timestamp).ok_or(Malformed)?;
    if let Some(max_age) = max_age {
        // `time.time() - timestamp > max_age`: no lower bound, as in Django.
        if i128::from(now_unix) - i128::from(timestamp) > i128::from(max_age) {
            return Err(Expired);
        }
    }
    let (compressed, payload) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Data("payload is not base64url".into()))?;
    if compressed {
        json_latin1(&inflate(&bytes)?)
    } else {
        json_latin1(&bytes)
    }
}

/// Keys worth trying: Django never signs with an empty one.
fn usable<'a>(keys: &'a [&'a [u8]]) -> impl Iterator<Item = &'a [u8]> + 'a {
    keys.iter().copied().filter(|key| !key.is_empty())
}

/// signing.b62_decode; None where Python raises (empty, a foreign digit) or an i64 overflows.
fn b62_decode(text: &str) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut value: i64 = 0;
    for c in digits.bytes() {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        value = value.checked_mul(62)?.checked_add(i64::from(digit))?;
    }
    Some(if negative { -value } else { value })
}

/// JSONSerializer.loads: `json.loads(data.decode("latin-1"))` (Django writes ASCII JSON).
fn json_latin1(data: &[u8]) -> Result<Value, DjangoSigningError> {
    let text: String = data.iter().map(|&b| char::from(b)).collect();
    serde_json::from_str(&text).map_err(|_| Data("payload is not JSON".into()))
}

/// The shared bounded inflate, with this format's errors.
fn inflate(input: &[u8]) -> Result<Vec<u8>, DjangoSigningError> {
    super::super::inflate::inflate(input, MAX_INFLATED).map_err(|e| match e {
        InflateError::Corrupt => Data("payload is not a complete zlib stream".into()),
        InflateError::TooLarge => Data("payload inflates past 256 KiB".into()),
    })
}

#[cfg(test)]
mod tests;
