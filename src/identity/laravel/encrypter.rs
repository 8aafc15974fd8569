//! Illuminate's Encrypter, the decrypting half: Laravel's `decrypt($payload, false)` and the
//! EncryptCookies value prefix, following Laravel 8.83's code plus the key rotation
//! (`APP_PREVIOUS_KEYS`) of Laravel 11+. The tests hold vectors made by Laravel itself.
//!
//! Stricter than PHP only where PHP is lax about input Laravel never writes: base64 must be
//! canonical and padded (PHP's `base64_decode` skips junk), and the fields must be JSON strings.

use crate::crypto::{hmac_matches, lower_hex};
use std::fmt;

use aws_lc_rs::aead::{self, AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self, AES_128, AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey,
};
use aws_lc_rs::error::Unspecified;
use aws_lc_rs::iv::FixedLength;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Hmac;
use serde_json::Value;
use sha1::Sha1;
use sha2::Sha256;

/// Longer payloads are refused before any work: a session cookie is a few hundred bytes and
/// browsers cap a cookie at 4 KiB.
pub(crate) const MAX_PAYLOAD: usize = 16 * 1024;
/// Encrypted stored sessions: base64 of JSON around base64 ciphertext of at most the
/// 512 KiB a store hands over (`stored.rs`).
const MAX_STORED_PAYLOAD: usize = 1024 * 1024;
/// openssl_encrypt's default GCM tag length, which Laravel insists on.
const GCM_TAG_LEN: usize = 16;
/// CookieValuePrefix: 40 lowercase hex digits of HMAC-SHA1, then `|`.
const PREFIX_HEX_LEN: usize = 40;

/// The ciphers Laravel's `app.cipher` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cipher {
    Aes128Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
}

impl Cipher {
    const ALL: [Cipher; 4] = [
        Cipher::Aes128Cbc,
        Cipher::Aes256Cbc,
        Cipher::Aes128Gcm,
        Cipher::Aes256Gcm,
    ];

    /// `config('app.cipher')`: Laravel lowercases it, so `AES-256-CBC` is fine.
    pub(crate) fn parse(name: &str) -> Option<Cipher> {
        Cipher::ALL
            .into_iter()
            .find(|cipher| cipher.name().eq_ignore_ascii_case(name))
    }

    /// The name as Laravel and openssl spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Cbc => "aes-128-cbc",
            Cipher::Aes256Cbc => "aes-256-cbc",
            Cipher::Aes128Gcm => "aes-128-gcm",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    pub(crate) fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Cbc | Cipher::Aes128Gcm => 16,
            Cipher::Aes256Cbc | Cipher::Aes256Gcm => 32,
        }
    }

    fn is_aead(self) -> bool {
        matches!(self, Cipher::Aes128Gcm | Cipher::Aes256Gcm)
    }

    /// `openssl_cipher_iv_length()`, which Laravel uses both to make and to check the IV.
    fn iv_len(self) -> usize {
        if self.is_aead() { 12 } else { 16 }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// APP_KEY as in .env (the value, already unquoted): `base64:<b64>` or the raw key bytes,
/// as EncryptionServiceProvider::parseKey reads it. The length is checked by
/// [`Encrypter::new`]. Errors never include the key.
pub(crate) fn parse_app_key(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Err("the key is empty".to_owned());
    }
    match text.strip_prefix("base64:") {
        Some(encoded) => STANDARD.decode(encoded).map_err(|_| {
            "the key starts with \"base64:\" but the rest is not valid padded base64".to_owned()
        }),
        None => Ok(text.as_bytes().to_vec()),
    }
}

/// Why a payload or cookie was refused. Messages carry no data and no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecryptError {
    #[error("not a Laravel encrypted payload (size, base64, JSON or fields)")]
    Malformed,
    #[error("the MAC does not match any key")]
    BadMac,
    #[error("the data could not be decrypted with any key")]
    Decrypt,
    #[error("the cookie value prefix does not match the cookie name and key")]
    BadPrefix,
    #[error("the decrypted cookie value is not UTF-8")]
    NotUtf8,
}

use DecryptError::{BadMac, BadPrefix, Decrypt, Malformed, NotUtf8};

/// One key, with the cipher state built once so a request only pays for the decryption.
struct Key {
    raw: Vec<u8>,
    opener: Opener,
}

enum Opener {
    // Boxed: an AES key schedule is ~500 bytes, a LessSafeKey a pointer's worth.
    Cbc(Box<PaddedBlockDecryptingKey>),
    Gcm(LessSafeKey),
}

impl Opener {
    fn cbc(algorithm: &'static cipher::Algorithm, raw: &[u8]) -> Result<Opener, Unspecified> {
        let key = PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(algorithm, raw)?)?;
        Ok(Opener::Cbc(Box::new(key)))
    }

    fn gcm(algorithm: &'static aead::Algorithm, raw: &[u8]) -> Result<Opener, Unspecified> {
        Ok(Opener::Gcm(LessSafeKey::new(UnboundKey::new(
            algorithm, raw,
        )?)))
    }
}

/// Laravel's Encrypter for one cipher: the current key first, then the previous keys.
pub(crate) struct Encrypter {
    cipher: Cipher,
    keys: Vec<Key>,
}

/// Redacted: the keys must not reach a log line.
impl fmt::Debug for Encrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypter")
            .field("cipher", &self.cipher)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .finish()
    }
}

fn key_label(index: usize) -> String {
    if index == 0 {
        "key #0 (the current key, APP_KEY)".to_owned()
    } else {
        format!("key #{index} (previous key {index}, APP_PREVIOUS_KEYS)")
    }
}

impl Encrypter {
    /// `raw_keys[0]` is APP_KEY, the rest APP_PREVIOUS_KEYS in their order.
    pub(crate) fn new(cipher: Cipher, raw_keys: Vec<Vec<u8>>) -> Result<Encrypter, String> {
        if raw_keys.is_empty() {
            return Err("no key given: APP_KEY is required".to_owned());
        }
        let mut keys = Vec::with_capacity(raw_keys.len());
        for (index, raw) in raw_keys.into_iter().enumerate() {
            if raw.len() != cipher.key_len() {
                return Err(format!(
                    "{} is {} bytes long but {cipher} needs {} bytes",
                    key_label(index),
                    raw.len(),
                    cipher.key_len()
                ));
            }
            let opener = match cipher {
                Cipher::Aes128Cbc => Opener::cbc(&AES_128, &raw),
                Cipher::Aes256Cbc => Opener::cbc(&AES_256, &raw),
                Cipher::Aes128Gcm => Opener::gcm(&AES_128_GCM, &raw),
                Cipher::Aes256Gcm => Opener::gcm(&AES_256_GCM, &raw),
            }
            .map_err(|_| format!("{} was refused by the cipher library", key_label(index)))?;
            keys.push(Key { raw, opener });
        }
        Ok(Encrypter { cipher, keys })
    }

    /// Laravel's `decrypt($payload, false)`: the plaintext bytes (still PHP-serialized if the
    /// writer serialized, as EncryptedStore does).
    #[cfg(test)] // the resolver reads cookies and stored sessions, each with its own bound
    pub(crate) fn decrypt(&self, payload: &str) -> Result<Vec<u8>, DecryptError> {
        self.decrypt_with_key(payload, MAX_PAYLOAD)
            .map(|(plain, _)| plain)
    }

    /// [`decrypt`](Self::decrypt) for a stored session (`'encrypt' => true`), which may be
    /// far larger than a cookie: bounded by what the store hands over instead.
    pub(crate) fn decrypt_stored(&self, payload: &str) -> Result<Vec<u8>, DecryptError> {
        self.decrypt_with_key(payload, MAX_STORED_PAYLOAD)
            .map(|(plain, _)| plain)
    }

    /// The session id in a cookie written by EncryptCookies (which does not serialize):
    /// URL-decode as PHP does for `$_COOKIE`, decrypt, then check and strip
    /// `hash_hmac('sha1', $name.'v2', $key).'|'` for the key that decrypted it.
    pub(crate) fn session_id_from_cookie(
        &self,
        cookie_name: &str,
        cookie_value: &str,
    ) -> Result<String, DecryptError> {
        // Percent-encoding at most triples the size; decrypt bounds the decoded payload.
        if cookie_value.len() > 3 * MAX_PAYLOAD {
            return Err(Malformed);
        }
        let payload = String::from_utf8(url_decode(cookie_value)).map_err(|_| Malformed)?;
        let (plain, key) = self.decrypt_with_key(&payload, MAX_PAYLOAD)?;
        let (hex, rest) = plain.split_at_checked(PREFIX_HEX_LEN).ok_or(BadPrefix)?;
        let session_id = rest.strip_prefix(b"|").ok_or(BadPrefix)?;
        let prefix_ok = lower_hex(hex).is_some_and(|expected| {
            hmac_matches::<Hmac<Sha1>>(&key.raw, &[cookie_name.as_bytes(), b"v2"], &expected)
        });
        if !prefix_ok {
            return Err(BadPrefix);
        }
        String::from_utf8(session_id.to_vec()).map_err(|_| NotUtf8)
    }

    fn decrypt_with_key(
        &self,
        payload: &str,
        limit: usize,
    ) -> Result<(Vec<u8>, &Key), DecryptError> {
        let envelope = Envelope::parse(payload, self.cipher, limit)?;
        if self.cipher.is_aead() {
            self.open_gcm(&envelope)
        } else {
            self.open_cbc(&envelope)
        }
    }

    /// The MAC is checked, key by key, before anything is decrypted: a padding oracle needs
    /// the decryption of forged data. The first key whose MAC matches is the one.
    fn open_cbc(&self, envelope: &Envelope) -> Result<(Vec<u8>, &Key), DecryptError> {
        // Laravel compares against hash_hmac's lowercase hex; decoding that hex and comparing
        // bytes with verify_slice is the same test, in constant time.
        let mac = lower_hex(envelope.mac.as_bytes()).ok_or(BadMac)?;
        let signed: [&[u8]; 2] = [envelope.iv_b64.as_bytes(), envelope.value_b64.as_bytes()];
        let key = self
            .keys
            .iter()
            .find(|key| hmac_matches::<Hmac<Sha256>>(&key.raw, &signed, &mac))
            .ok_or(BadMac)?;
        let Opener::Cbc(opener) = &key.opener else {
            return Err(Decrypt);
        };
        // Authentic from here on, so a failure is openssl_decrypt's "could not decrypt".
        let mut data = STANDARD.decode(&envelope.value_b64).map_err(|_| Decrypt)?;
        let iv = FixedLength::<16>::try_from(envelope.iv.as_slice()).map_err(|_| Malformed)?;
        let plain = opener
            .decrypt(&mut data, DecryptionContext::Iv128(iv))
            .map_err(|_| Decrypt)?
            .to_vec();
        Ok((plain, key))
    }

    /// GCM authenticates itself: each key is tried until the tag verifies (Laravel ignores
    /// `mac` for AEAD ciphers).
    fn open_gcm(&self, envelope: &Envelope) -> Result<(Vec<u8>, &Key), DecryptError> {
        let value = STANDARD
            .decode(&envelope.value_b64)
            .map_err(|_| Malformed)?;
        for key in &self.keys {
            let Opener::Gcm(opener) = &key.opener else {
                continue;
            };
            let nonce = Nonce::try_assume_unique_for_key(&envelope.iv).map_err(|_| Malformed)?;
            // A failed open may scribble on the buffer, so each key gets a fresh copy.
            let mut data = Vec::with_capacity(value.len() + GCM_TAG_LEN);
            data.extend_from_slice(&value);
            data.extend_from_slice(&envelope.tag);
            if let Ok(plain) = opener.open_in_place(nonce, Aad::empty(), &mut data) {
                return Ok((plain.to_vec(), key));
            }
        }
        Err(Decrypt)
    }
}

/// The JSON inside the base64 payload: `{"iv","value","mac","tag"}`.
struct Envelope {
    /// The MAC covers the base64 text of iv and value, not the bytes.
    iv_b64: String,
    iv: Vec<u8>,
    value_b64: String,
    mac: String,
    tag: Vec<u8>,
}

impl Envelope {
    fn parse(payload: &str, cipher: Cipher, limit: usize) -> Result<Envelope, DecryptError> {
        if payload.len() > limit {
            return Err(Malformed);
        }
        let json = STANDARD.decode(payload).map_err(|_| Malformed)?;
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&json) else {
            return Err(Malformed);
        };
        let mut string = |name: &str| match fields.remove(name) {
            Some(Value::String(text)) => Ok(text),
            _ => Err(Malformed),
        };
        let iv_b64 = string("iv")?;
        let value_b64 = string("value")?;
        let mac = string("mac")?;
        // Laravel 8 writes "tag":"" for CBC; older versions leave it out.
        let tag = match fields.remove("tag") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text,
            Some(_) => return Err(Malformed),
        };
        let iv = STANDARD.decode(&iv_b64).map_err(|_| Malformed)?;
        if iv.len() != cipher.iv_len() {
            return Err(Malformed);
        }
        // ensureTagIsValid: AEAD needs a 16-byte tag, CBC must not carry one.
        let tag = if cipher.is_aead() {
            let tag = STANDARD.decode(&tag).map_err(|_| Malformed)?;
            if tag.len() != GCM_TAG_LEN {
                return Err(Malformed);
            }
            tag
        } else if tag.is_empty() {
            Vec::new()
        } else {
            return Err(Malformed);
        };
        Ok(Envelope {
            iv_b64,
            iv,
            value_b64,
            mac,
            tag,
        })
    }
}

/// PHP's urldecode, which fills `$_COOKIE`: `%XX` in either case becomes a byte, `+` a space,
/// and a `%` not followed by two hex digits stays as it is.
fn url_decode(text: &str) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = match (byte, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)),
            _ => None,
        };
        match (byte, escaped) {
            (_, Some((high, low))) => {
                out.push((high << 4) | low);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (_, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
