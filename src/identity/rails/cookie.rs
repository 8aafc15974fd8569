//! Rails' encrypted cookies, the reading half: what `cookies.encrypted[name]` returns, which
//! is where the cookie session store keeps the session once `secret_key_base` is set.
//! Follows ActionPack/ActiveSupport 6.1.7 (`cookies.rb`, `message_encryptor.rb`,
//! `message_verifier.rb`, `messages/metadata.rb`) and what 7.0-8.x kept of it; the tests
//! hold cookies written by Rails itself.
//!
//! - Keys: PBKDF2-HMAC (SHA1 until 6.1, SHA256 with 7.0's defaults) of `secret_key_base`,
//!   1000 iterations, salted "authenticated encrypted cookie" (AES-256-GCM, 32 bytes), or
//!   "encrypted cookie" (AES-256-CBC, 32 bytes) and "signed encrypted cookie" (its HMAC
//!   key, 64 bytes).
//! - GCM: `b64(ciphertext)--b64(iv)--b64(tag)`. CBC: `b64(b64(ciphertext)--b64(iv))--hex
//!   HMAC` of the outer base64 text (SHA1 unless `cookies_digest` says otherwise).
//! - The plaintext is either the serialized value or the envelope
//!   `{"_rails":{"message":b64(value),"exp":…,"pur":"cookie.<name>"}}`. Rails 7.1+ still
//!   writes this envelope for cookies: the jars pass `NullSerializer`, which is not one of
//!   the `ENVELOPE_SERIALIZERS` that `use_message_serializer_for_metadata` applies to.
//! - The value: JSON, or Marshal when it starts with `04 08` (`:hybrid`, `:marshal`).

use crate::crypto::{hmac_matches, lower_hex};
use std::fmt;
use std::num::NonZeroU32;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::pbkdf2;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Hmac;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::marshal;

/// `Rails.application.key_generator`'s iteration count (railties' `Application#key_generator`).
const ITERATIONS: NonZeroU32 = NonZeroU32::new(1000).unwrap();
/// The `config.action_dispatch.*_salt` defaults (actionpack's railtie).
const GCM_SALT: &[u8] = b"authenticated encrypted cookie";
const CBC_SALT: &[u8] = b"encrypted cookie";
const CBC_SIGN_SALT: &[u8] = b"signed encrypted cookie";
/// `KeyGenerator#generate_key`'s default size, which the HMAC key gets.
const SIGN_KEY_LEN: usize = 64;
const GCM_TAG_LEN: usize = 16;
/// Longer values are refused before any work: Rails refuses to write over 4 KiB.
const MAX_VALUE_LEN: usize = 16 * 1024;
/// How `Messages::Metadata` (6.1) and its 7.1 successor recognise the envelope.
const ENVELOPE_PREFIX: &[u8] = br#"{"_rails":{"message":"#;
const MARSHAL_SIGNATURE: &[u8] = b"\x04\x08";

/// `config.action_dispatch.use_authenticated_cookie_encryption`: true (GCM) by default
/// since 5.2, false (CBC) in older apps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RailsCipher {
    Aes256Gcm,
    Aes256Cbc,
}

/// The key generator's PBKDF2 digest (`config.active_support.key_generator_hash_digest_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RailsDigest {
    /// 5.2-6.1, and 7.0+ apps still on older defaults.
    Sha1,
    /// 7.0+ defaults.
    Sha256,
    /// Both, SHA256 first: for apps rotating from one to the other, or unsure.
    Auto,
}

/// Why a cookie was refused. Messages carry no cookie content and no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RailsCookieError {
    #[error("not a Rails encrypted cookie (size, URL encoding, base64 or layout)")]
    Malformed,
    #[error("the cookie's GCM tag or HMAC does not match secret_key_base")]
    BadSignature,
    #[error("the cookie is authentic but could not be decrypted")]
    Decrypt,
    #[error("the cookie was written for another cookie name (its purpose metadata)")]
    WrongPurpose,
    #[error("the expiry written into the cookie has passed")]
    Expired,
    #[error("the session data could not be read: {0}")]
    Data(String),
}

use RailsCookieError::{BadSignature, Data, Decrypt, Expired, Malformed, WrongPurpose};

/// The keys for one key-generator digest, built once.
struct KeySet {
    gcm: LessSafeKey,
    // Boxed: an AES key schedule is ~500 bytes.
    cbc: Box<PaddedBlockDecryptingKey>,
    sign: [u8; SIGN_KEY_LEN],
}

impl KeySet {
    fn derive(secret_key_base: &[u8], algorithm: pbkdf2::Algorithm) -> KeySet {
        let generate = |salt: &[u8], out: &mut [u8]| {
            pbkdf2::derive(algorithm, ITERATIONS, salt, secret_key_base, out);
        };
        let mut gcm = [0u8; 32];
        let mut cbc = [0u8; 32];
        let mut sign = [0u8; SIGN_KEY_LEN];
        generate(GCM_SALT, &mut gcm);
        generate(CBC_SALT, &mut cbc);
        generate(CBC_SIGN_SALT, &mut sign);
        // Both constructors only refuse a key of the wrong length, and these are 32 bytes.
        let gcm = UnboundKey::new(&AES_256_GCM, &gcm).expect("32 bytes is an AES-256 key");
        let cbc = UnboundCipherKey::new(&AES_256, &cbc)
            .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
            .expect("32 bytes is an AES-256 key");
        KeySet {
            gcm: LessSafeKey::new(gcm),
            cbc: Box::new(cbc),
            sign,
        }
    }
}

/// Reads one Rails app's encrypted cookies.
///
/// Both layouts are read whatever `cipher` says, as Rails does: a GCM app upgrades legacy
/// CBC cookies (`upgrade_legacy_hmac_aes_cbc_cookies?`) and a CBC app already reads GCM
/// ones (`prepare_upgrade_legacy_hmac_aes_cbc_cookies?`), both under the default salts.
pub(crate) struct RailsCookies {
    cipher: RailsCipher,
    digest: RailsDigest,
    keys: Vec<KeySet>,
}

/// Redacted: the keys must not reach a log line.
impl fmt::Debug for RailsCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RailsCookies")
            .field("cipher", &self.cipher)
            .field("digest", &self.digest)
            .field("keys", &format_args!("<{} sets redacted>", self.keys.len()))
            .finish()
    }
}

impl RailsCookies {
    /// Derives every key now (six PBKDF2 runs of 1000 iterations at most), so a request
    /// only pays for the decryption. `secret_key_base` is used as the text it is, not
    /// hex-decoded, as Rails does.
    pub(crate) fn new(
        secret_key_base: &[u8],
        cipher: RailsCipher,
        digest: RailsDigest,
    ) -> RailsCookies {
        let algorithms: &[pbkdf2::Algorithm] = match digest {
            RailsDigest::Sha1 => &[pbkdf2::PBKDF2_HMAC_SHA1],
            RailsDigest::Sha256 => &[pbkdf2::PBKDF2_HMAC_SHA256],
            RailsDigest::Auto => &[pbkdf2::PBKDF2_HMAC_SHA256, pbkdf2::PBKDF2_HMAC_SHA1],
        };
        let keys = algorithms
            .iter()
            .map(|&algorithm| KeySet::derive(secret_key_base, algorithm))
            .collect();
        RailsCookies {
            cipher,
            digest,
            keys,
        }
    }

    /// The value cookie `name` holds (for the session store, the session hash), as JSON.
    /// `value` is the cookie value as the browser sent it; `now_unix` is checked against
    /// the expiry Rails writes into the cookie (the browser's own expiry is not visible).
    ///
    /// Purpose: "cookie.<name>" is required when the cookie carries one; a cookie without
    /// (written with `use_cookies_with_metadata = false`, the default before `load_defaults 6.0`) is read
    /// whatever its name, as Rails' second, purpose-less attempt reads it.
    pub(crate) fn session(
        &self,
        name: &str,
        value: &str,
        now_unix: u64,
    ) -> Result<Value, RailsCookieError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Malformed);
        }
        let decoded = rack_unescape(value);
        let text = std::str::from_utf8(&decoded).map_err(|_| Malformed)?;
        let mut parts = text.splitn(4, "--");
        let plain = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(data), Some(iv), Some(tag), None) => self.open_gcm(data, iv, tag)?,
            (Some(signed), Some(mac), None, None) => self.open_cbc(signed, mac)?,
            _ => return Err(Malformed),
        };
        let message = unwrap_metadata(plain, name, now_unix)?;
        deserialize(&message)
    }

    /// The tag is checked by the open itself, which releases nothing unless it matches.
    fn open_gcm(&self, data: &str, iv: &str, tag: &str) -> Result<Vec<u8>, RailsCookieError> {
        let data = STANDARD.decode(data).map_err(|_| Malformed)?;
        let iv: [u8; 12] = STANDARD
            .decode(iv)
            .ok()
            .and_then(|iv| iv.try_into().ok())
            .ok_or(Malformed)?;
        let tag = STANDARD.decode(tag).map_err(|_| Malformed)?;
        // MessageEncryptor refuses any other tag length (a short tag is easier to forge).
        if tag.len() != GCM_TAG_LEN {
            return Err(Malformed);
        }
        for keys in &self.keys {
            // A failed open may scribble on the buffer, so each key gets a fresh copy.
            let mut buffer = Vec::with_capacity(data.len() + GCM_TAG_LEN);
            buffer.extend_from_slice(&data);
            buffer.extend_from_slice(&tag);
            let nonce = Nonce::assume_unique_for_key(iv);
            if let Ok(plain) = keys.gcm.open_in_place(nonce, Aad::empty(), &mut buffer) {
                return Ok(plain.to_vec());
            }
        }
        Err(BadSignature)
    }

    /// The HMAC is checked before anything is decrypted: a padding oracle needs the
    /// decryption of forged data.
    fn open_cbc(&self, signed: &str, mac_hex: &str) -> Result<Vec<u8>, RailsCookieError> {
        let mac = lower_hex(mac_hex.as_bytes()).ok_or(Malformed)?;
        // The digest shows in the length: SHA1 is MessageEncryptor's default, the others
        // come from `cookies_digest` on the legacy-upgrade path.
        let verifies = |key: &[u8]| match mac.len() {
            20 => hmac_matches::<Hmac<Sha1>>(key, &[signed.as_bytes()], &mac),
            32 => hmac_matches::<Hmac<Sha256>>(key, &[signed.as_bytes()], &mac),
            64 => hmac_matches::<Hmac<Sha512>>(key, &[signed.as_bytes()], &mac),
            _ => false,
        };
        let keys = self
            .keys
            .iter()
            .find(|keys| verifies(&keys.sign))
            .ok_or(BadSignature)?;
        // Authentic from here on, so a failure is MessageEncryptor's InvalidMessage.
        let inner = STANDARD.decode(signed).map_err(|_| Decrypt)?;
        let inner = std::str::from_utf8(&inner).map_err(|_| Decrypt)?;
        let (data, iv) = inner.split_once("--").ok_or(Decrypt)?;
        let mut data = STANDARD.decode(data).map_err(|_| Decrypt)?;
        let iv: [u8; 16] = STANDARD
            .decode(iv)
            .ok()
            .and_then(|iv| iv.try_into().ok())
            .ok_or(Decrypt)?;
        let plain = keys
            .cbc
            .decrypt(&mut data, DecryptionContext::Iv128(FixedLength::from(iv)))
            .map_err(|_| Decrypt)?;
        Ok(plain.to_vec())
    }
}

/// `Messages::Metadata`: the value inside the `_rails` envelope once its purpose and expiry
/// pass, or the plaintext itself when there is no envelope.
fn unwrap_metadata(plain: Vec<u8>, name: &str, now_unix: u64) -> Result<Vec<u8>, RailsCookieError> {
    if !plain.starts_with(ENVELOPE_PREFIX) {
        return Ok(plain);
    }
    let bad = |what: &str| Data(format!("the metadata envelope {what}"));
    let envelope: Value = serde_json::from_slice(&plain).map_err(|_| bad("is not JSON"))?;
    let fields = envelope
        .get("_rails")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("has no _rails object"))?;
    // Rails tries "cookie.<name>", then no purpose at all: either may match.
    match fields.get("pur") {
        None | Some(Value::Null) => {}
        Some(Value::String(purpose))
            if purpose.is_empty() || purpose.strip_prefix("cookie.") == Some(name) => {}
        Some(_) => return Err(WrongPurpose),
    }
    match fields.get("exp") {
        None | Some(Value::Null) => {}
        Some(Value::String(expiry)) => {
            let expiry = iso8601_nanos(expiry).ok_or_else(|| bad("has an unreadable expiry"))?;
            // fresh? is `Time.now.utc < expires_at`: the expiry instant itself is expired.
            if i128::from(now_unix) * 1_000_000_000 >= expiry {
                return Err(Expired);
            }
        }
        Some(_) => return Err(bad("has an unreadable expiry")),
    }
    let message = fields
        .get("message")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("has no message"))?;
    STANDARD
        .decode(message)
        .map_err(|_| bad("message is not strict base64"))
}

/// `:json`, `:hybrid` and `:marshal` all read JSON, and the latter two Marshal, which is
/// recognised by its version bytes; here both are read whatever the app's serializer.
fn deserialize(message: &[u8]) -> Result<Value, RailsCookieError> {
    if message.starts_with(MARSHAL_SIGNATURE) {
        marshal::load(message).map_err(|error| Data(error.to_string()))
    } else {
        serde_json::from_slice(message).map_err(|_| Data("the value is not JSON".to_owned()))
    }
}

/// `Time.iso8601` for what `iso8601(3)` writes (`2023-11-14T22:13:20.250Z`, or with an
/// offset `+01:00`), as nanoseconds since the epoch.
fn iso8601_nanos(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let num = |at: usize, len: usize| -> Option<i64> {
        let digits = b.get(at..at.checked_add(len)?)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let is = |at: usize, any: &[u8]| b.get(at).is_some_and(|c| any.contains(c));
    if !(is(4, b"-") && is(7, b"-") && is(10, b"Tt") && is(13, b":") && is(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let (mut end, mut nanos) = (19, 0i128);
    if is(19, b".") {
        let digits = b[20..].iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Digits past nanoseconds are dropped; Rails writes three.
        for (k, &d) in b[20..20 + digits].iter().take(9).enumerate() {
            nanos += i128::from(d - b'0') * 10i128.pow(8 - k as u32);
        }
        end = 20 + digits;
    }
    let offset = match b.len() - end {
        1 if is(end, b"Zz") => 0,
        6 if is(end, b"+-") && is(end + 3, b":") => {
            let offset = num(end + 1, 2)? * 3600 + num(end + 4, 2)? * 60;
            if is(end, b"-") { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Rack's cookie parsing (`URI.decode_www_form_component`): `%XX` becomes a byte and `+` a
/// space; a `%` without two hex digits makes it raise, and Rack then keeps the value as is.
fn rack_unescape(text: &str) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let high = bytes.get(i + 1).and_then(|&c| hex(c));
                let low = bytes.get(i + 2).and_then(|&c| hex(c));
                let (Some(high), Some(low)) = (high, low) else {
                    return bytes.to_vec();
                };
                out.push((high << 4) | low);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
