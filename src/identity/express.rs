//! express-session cookies: `s:<sid>.<signature>`, URL-encoded, where the signature is
//! base64 (no padding) of HMAC-SHA256(secret, sid), as the `cookie-signature` package makes it.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The session id in an express-session cookie. With `secret`, the signature must verify
/// (compared in constant time); a cookie without the `s:` prefix is unsigned and refused
/// when a secret is set.
pub fn express_session_id(cookie_value: &str, secret: Option<&[u8]>) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(cookie_value)
        .decode_utf8()
        .ok()?;
    let Some(signed) = decoded.strip_prefix("s:") else {
        return secret
            .is_none()
            .then(|| decoded.into_owned())
            .filter(|s| !s.is_empty());
    };
    let (sid, signature) = signed.rsplit_once('.')?;
    if sid.is_empty() {
        return None;
    }
    if let Some(secret) = secret {
        let signature = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(signature.trim_end_matches('='))
            .ok()?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
        mac.update(sid.as_bytes());
        mac.verify_slice(&signature).ok()?;
    }
    Some(sid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(sid: &str, secret: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(sid.as_bytes());
        let sig =
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
        format!("s%3A{sid}.{}", sig.replace('+', "%2B").replace('/', "%2F"))
    }

    #[test]
    fn verifies_express_signatures() {
        let cookie = sign("abc123", b"keyboard cat");
        assert_eq!(
            express_session_id(&cookie, Some(b"keyboard cat")).as_deref(),
            Some("abc123")
        );
        assert_eq!(express_session_id(&cookie, None).as_deref(), Some("abc123"));
        assert_eq!(express_session_id(&cookie, Some(b"other secret")), None);
        let tampered = cookie.replacen("abc123", "abc124", 1);
        assert_eq!(express_session_id(&tampered, Some(b"keyboard cat")), None);
        assert_eq!(
            express_session_id("abc123", Some(b"keyboard cat")),
            None,
            "unsigned refused"
        );
        assert_eq!(express_session_id("s%3A.sig", None), None);
        assert_eq!(express_session_id("%ZZ", None).as_deref(), Some("%ZZ"));
    }
}
