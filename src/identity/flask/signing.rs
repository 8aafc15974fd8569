//! Flask's session cookie, the reading half: SecureCookieSessionInterface.open_session,
//! i.e. itsdangerous' `URLSafeTimedSerializer(keys, salt="cookie-session",
//! serializer=TaggedJSONSerializer(), signer_kwargs={key_derivation: "hmac", digest_method:
//! sha1}).loads(cookie, max_age=PERMANENT_SESSION_LIFETIME)`, following Flask 3.1.3 and
//! itsdangerous 2.2.0. The tests hold vectors made by Flask itself.
//!
//! Stricter than Python only where Flask never writes such input: base64 must be canonical,
//! tags must hold what Flask puts in them, and a payload inflating past [`MAX_INFLATED`] is
//! refused (itsdangerous has no limit).

use super::super::inflate::InflateError;
use crate::crypto::hmac_matches;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha1::Sha1;

/// Longer cookies are refused before any work: browsers cap a cookie at 4 KiB.
pub(crate) const MAX_COOKIE: usize = 8 * 1024;
/// A compressed payload may inflate to this much and no more (zip bombs).
pub(crate) const MAX_INFLATED: usize = 256 * 1024;
/// PERMANENT_SESSION_LIFETIME's default, 31 days; Flask passes it as `max_age` whether or
/// not the session is permanent.
#[cfg(test)] // the config gives the proxy its own default
pub(crate) const DEFAULT_MAX_AGE: u64 = 31 * 24 * 60 * 60;
/// SecureCookieSessionInterface.salt.
const SALT: &[u8] = b"cookie-session";

/// Why a cookie was refused. The messages never carry the cookie or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FlaskSigningError {
    /// Too long, or not `payload.timestamp.signature`.
    #[error("malformed session cookie")]
    Malformed,
    /// No key signed it.
    #[error("bad signature")]
    BadSignature,
    /// Signed, but older than `max_age` or dated in the future.
    #[error("signature expired")]
    Expired,
    /// Signed, but the payload does not decode.
    #[error("bad payload: {0}")]
    Data(String),
}

use FlaskSigningError::{BadSignature, Data, Expired, Malformed};

/// `payload.timestamp.signature`: the signature is base64url(HMAC-SHA1(HMAC-SHA1(key,
/// "cookie-session"), "payload.timestamp")), the timestamp base64url of big-endian seconds
/// since the Unix epoch (itsdangerous 2.x has no EPOCH offset), the payload base64url
/// TaggedJSON, zlib-compressed when it starts with `.`. Any of `keys` may have signed it
/// (SECRET_KEY, then SECRET_KEY_FALLBACKS newest first, as Flask 3.1 tries them); empty keys
/// are skipped (Flask keeps no session without a key). Expired as itsdangerous: older than
/// `max_age`, or from the future. The result is plain JSON, see [`untag`].
pub(crate) fn loads(
    cookie: &str,
    keys: &[&[u8]],
    max_age: u64,
    now_unix: u64,
) -> Result<Value, FlaskSigningError> {
    if cookie.len() > MAX_COOKIE {
        return Err(Malformed);
    }
    // Signer.unsign splits at the last '.', then TimestampSigner at the last one left.
    let (value, signature) = cookie.rsplit_once('.').ok_or(Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| BadSignature)?;
    let signed = keys
        .iter()
        .filter(|key| !key.is_empty())
        .any(|key| signature_matches(key, value.as_bytes(), &signature));
    if !signed {
        return Err(BadSignature);
    }
    let (payload, timestamp) = value.rsplit_once('.').ok_or(Malformed)?;
    let timestamp = URL_SAFE_NO_PAD.decode(timestamp).map_err(|_| Malformed)?;
    // bytes_to_int: at most eight bytes, big-endian, left-padded with zeros.
    if timestamp.len() > 8 {
        return Err(Malformed);
    }
    let mut be = [0u8; 8];
    be[8 - timestamp.len()..].copy_from_slice(&timestamp);
    let age = i128::from(now_unix) - i128::from(u64::from_be_bytes(be));
    if age > i128::from(max_age) || age < 0 {
        return Err(Expired);
    }
    let (compressed, payload) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Data("payload is not base64url".into()))?;
    let json = if compressed { inflate(&bytes)? } else { bytes };
    // load_payload decodes UTF-8 strictly; from_slice does the same.
    let value: Value =
        serde_json::from_slice(&json).map_err(|_| Data("payload is not JSON".into()))?;
    untag(value)
}

/// key_derivation "hmac": the signing key is HMAC-SHA1(secret, salt); the check is in
/// constant time.
fn signature_matches(secret: &[u8], value: &[u8], signature: &[u8]) -> bool {
    let Ok(mut derive) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    derive.update(SALT);
    let derived = derive.finalize().into_bytes();
    hmac_matches::<Hmac<Sha1>>(&derived, &[value], signature)
}

/// TaggedJSONSerializer.loads (`_untag_scan`) into plain JSON: each object's values are
/// untagged first, then a one-member object whose key is a tag is replaced. `" t"` tuple ->
/// array, `" b"` bytes -> its base64 text, `" m"` Markup -> string, `" u"` UUID -> hyphenated
/// lowercase string (Python's `str(uuid)`), `" d"` HTTP date -> the date's text as written,
/// `" di"` -> the escaped one-member object, whose key loses its `__` suffix and is not
/// untagged again. Recursion is bounded by serde_json's nesting limit.
fn untag(value: Value) -> Result<Value, FlaskSigningError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(untag)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(members) => {
            let mut scanned = Map::new();
            for (key, member) in members {
                scanned.insert(key, untag(member)?);
            }
            if scanned.len() != 1 {
                return Ok(Value::Object(scanned));
            }
            let Some((tag, inner)) = scanned.iter().next() else {
                return Ok(Value::Object(scanned));
            };
            let bad = |what: &str| Data(format!("bad {what} tag"));
            match (tag.as_str(), inner) {
                (" t", Value::Array(_)) | (" m" | " d", Value::String(_)) => Ok(inner.clone()),
                (" b", Value::String(text)) => match STANDARD.decode(text) {
                    Ok(_) => Ok(inner.clone()),
                    Err(_) => Err(bad("bytes")),
                },
                (" u", Value::String(text)) => uuid(text).map(Value::String).ok_or(bad("UUID")),
                (" di", Value::Object(escaped)) if escaped.len() == 1 => {
                    let Some((key, member)) = escaped.iter().next() else {
                        return Err(bad("dict"));
                    };
                    // Python's key[:-2], by characters.
                    let mut key = key.clone();
                    key.pop();
                    key.pop();
                    Ok(Value::Object(Map::from_iter([(key, member.clone())])))
                }
                (" t" | " m" | " d" | " b" | " u" | " di", _) => Err(bad("session")),
                _ => Ok(Value::Object(scanned)),
            }
        }
        other => Ok(other),
    }
}

/// TagUUID writes `uuid.hex`; this gives `str(uuid)`, the form an app compares against.
fn uuid(text: &str) -> Option<String> {
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    if digits.len() != 32 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let hex = String::from_utf8(digits).ok()?.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// The shared bounded inflate, with this format's errors.
fn inflate(input: &[u8]) -> Result<Vec<u8>, FlaskSigningError> {
    super::super::inflate::inflate(input, MAX_INFLATED).map_err(|e| match e {
        InflateError::Corrupt => Data("payload is not a complete zlib stream".into()),
        InflateError::TooLarge => Data("payload inflates past 256 KiB".into()),
    })
}

#[cfg(test)]
mod tests;
