//! express-session cookies: `s:<sid>.<signature>`, URL-encoded, where the signature is
//! base64 (no padding) of HMAC-SHA256(secret, sid), as the `cookie-signature` package makes it.

use base64::Engine;
use hmac::Mac;

/// Why an express-session cookie gave no session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpressCookieError {
    /// Not `s:<sid>.<signature>` (nor a bare id), or not URL-decodable text.
    #[error("not an express-session cookie")]
    Malformed,
    /// A bare id where a signed cookie is required (a secret is configured).
    #[error("unsigned cookie")]
    Unsigned,
    /// The signature does not verify with the secret.
    #[error("signature does not verify")]
    BadSignature,
}

/// The session id in an express-session cookie. With `secret`, the signature must verify
/// (compared in constant time); a cookie without the `s:` prefix is unsigned and refused
/// when a secret is set.
pub fn express_session_id(
    cookie_value: &str,
    secret: Option<&[u8]>,
) -> Result<String, ExpressCookieError> {
    use ExpressCookieError::*;
    let decoded = percent_encoding::percent_decode_str(cookie_value)
        .decode_utf8()
        .map_err(|_| Malformed)?;
    let Some(signed) = decoded.strip_prefix("s:") else {
        return match secret {
            Some(_) => Err(Unsigned),
            None if decoded.is_empty() => Err(Malformed),
            None => Ok(decoded.into_owned()),
        };
    };
    let (sid, signature) = signed.rsplit_once('.').ok_or(Malformed)?;
    if sid.is_empty() {
        return Err(Malformed);
    }
    if let Some(secret) = secret {
        let signature = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(signature.trim_end_matches('='))
            .map_err(|_| BadSignature)?;
        let mut mac = crate::crypto::keyed_hmac(secret);
        mac.update(sid.as_bytes());
        mac.verify_slice(&signature).map_err(|_| BadSignature)?;
    }
    Ok(sid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(sid: &str, secret: &[u8]) -> String {
        let mut mac = crate::crypto::keyed_hmac(secret);
        mac.update(sid.as_bytes());
        let sig =
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
        format!("s%3A{sid}.{}", sig.replace('+', "%2B").replace('/', "%2F"))
    }

    #[test]
    fn verifies_express_signatures() {
        use ExpressCookieError::*;
        let cookie = sign("abc123", b"keyboard cat");
        assert_eq!(
            express_session_id(&cookie, Some(b"keyboard cat")).as_deref(),
            Ok("abc123")
        );
        assert_eq!(express_session_id(&cookie, None).as_deref(), Ok("abc123"));
        assert_eq!(
            express_session_id(&cookie, Some(b"other secret")),
            Err(BadSignature)
        );
        let tampered = cookie.replacen("abc123", "abc124", 1);
        assert_eq!(
            express_session_id(&tampered, Some(b"keyboard cat")),
            Err(BadSignature)
        );
        assert_eq!(
            express_session_id("abc123", Some(b"keyboard cat")),
            Err(Unsigned),
            "unsigned refused"
        );
        assert_eq!(express_session_id("s%3A.sig", None), Err(Malformed));
        assert_eq!(express_session_id("s%3Anodot", None), Err(Malformed));
        assert_eq!(express_session_id("%ZZ", None).as_deref(), Ok("%ZZ"));
        assert_eq!(express_session_id("%FF", None), Err(Malformed));
    }
}
