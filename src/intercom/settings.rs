//! `window.intercomSettings` for one page view: identity proven by an HS256 JWT signed
//! with the Messenger secret (or the legacy `user_hash`), never by plain browser values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};

use crate::crypto::keyed_hmac;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::Region;
use super::User;
use crate::crypto::Secret;

/// How the user is proven to Intercom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityMode {
    /// `intercom_user_jwt`, HS256 (Messenger Security).
    Jwt,
    /// Legacy identity verification: HMAC-SHA256 of the user id.
    UserHash,
}

/// What pages of visitors without a session get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousPolicy {
    /// Left untouched.
    Skip,
    /// The Messenger boots without identity.
    Boot,
}

/// Signing failed (in practice never: the claims are plain JSON; kept so a failure cannot
/// panic).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the Messenger JWT: {0}")]
pub struct SignError(#[from] serde_json::Error);

/// The JOSE header of every Messenger JWT, as jsonwebtoken writes it for HS256.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// Builds Messenger settings; the key is prepared once at start.
pub struct Messenger {
    app_id: String,
    api_base: &'static str,
    mode: IdentityMode,
    ttl_secs: u64,
    /// HMAC-SHA256 already keyed with the Messenger secret: each signature starts from a
    /// copy of this state instead of hashing the key again.
    keyed_mac: Hmac<Sha256>,
    /// `base64url(JWT_HEADER) + "."`, the same for every token.
    header_part: String,
}

impl Messenger {
    /// Signs for workspace `app_id` in `region` with the Messenger `secret`; JWTs live
    /// `token_ttl`.
    pub fn new(
        app_id: &str,
        secret: &Secret,
        region: Region,
        mode: IdentityMode,
        token_ttl: Duration,
    ) -> Self {
        Messenger {
            app_id: app_id.to_string(),
            api_base: region.api_base(),
            mode,
            ttl_secs: token_ttl.as_secs(),
            keyed_mac: keyed_hmac(secret.expose()),
            header_part: format!("{}.", URL_SAFE_NO_PAD.encode(JWT_HEADER)),
        }
    }

    /// Settings that boot the Messenger without identity.
    pub fn anonymous_settings(&self) -> Map<String, Value> {
        let mut settings = Map::new();
        settings.insert("api_base".into(), Value::from(self.api_base));
        settings.insert("app_id".into(), Value::from(self.app_id.as_str()));
        settings
    }

    /// Settings for `user`. In JWT mode the identity travels only inside
    /// `intercom_user_jwt`; `route_attributes` are signed in as custom attributes.
    pub fn user_settings(
        &self,
        user: &User,
        route_attributes: &Map<String, Value>,
    ) -> Result<Map<String, Value>, SignError> {
        let mut settings = self.anonymous_settings();
        match self.mode {
            IdentityMode::Jwt => {
                let token = self.sign(user, route_attributes, now_secs())?;
                settings.insert("intercom_user_jwt".into(), Value::String(token));
            }
            IdentityMode::UserHash => {
                for (k, v) in route_attributes.iter().chain(&user.attributes) {
                    settings.insert(k.clone(), v.clone());
                }
                settings.insert("user_id".into(), Value::from(user.id.as_str()));
                if let Some(email) = &user.email {
                    settings.insert("email".into(), Value::from(email.as_str()));
                }
                if let Some(name) = &user.name {
                    settings.insert("name".into(), Value::from(name.as_str()));
                }
                settings.insert("user_hash".into(), Value::String(self.user_hash(&user.id)));
            }
        }
        Ok(settings)
    }

    /// The Messenger JWT (HS256, RFC 7519): `user_id`, `email`, `name`, custom and route
    /// attributes, `iat`, `exp`.
    pub fn sign(
        &self,
        user: &User,
        route_attributes: &Map<String, Value>,
        now: u64,
    ) -> Result<String, SignError> {
        let claims = Claims {
            user,
            route_attributes,
            iat: now,
            exp: now + self.ttl_secs,
        };
        let payload = serde_json::to_vec(&claims)?;
        let mut token = String::with_capacity(self.header_part.len() + payload.len() * 4 / 3 + 48);
        token.push_str(&self.header_part);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut mac = self.keyed_mac.clone();
        mac.update(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
        crate::metrics::jwt_signed();
        Ok(token)
    }

    /// Legacy identity verification: lowercase hex HMAC-SHA256(secret, user_id).
    pub fn user_hash(&self, user_id: &str) -> String {
        let mut mac = self.keyed_mac.clone();
        mac.update(user_id.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The Messenger JWT's claims, serialized straight from the user and the route: the user's
/// own fields win over static route attributes, and the identity and time claims over
/// everything (config refuses those names as attributes anyway). No key appears twice.
struct Claims<'a> {
    user: &'a User,
    route_attributes: &'a Map<String, Value>,
    iat: u64,
    exp: u64,
}

impl Claims<'_> {
    fn is_identity_claim(&self, key: &str) -> bool {
        match key {
            "user_id" | "iat" | "exp" => true,
            "email" => self.user.email.is_some(),
            "name" => self.user.name.is_some(),
            _ => false,
        }
    }
}

impl Serialize for Claims<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in self.route_attributes {
            if !self.user.attributes.contains_key(k) && !self.is_identity_claim(k) {
                map.serialize_entry(k, v)?;
            }
        }
        for (k, v) in &self.user.attributes {
            if !self.is_identity_claim(k) {
                map.serialize_entry(k, v)?;
            }
        }
        map.serialize_entry("user_id", &self.user.id)?;
        if let Some(email) = &self.user.email {
            map.serialize_entry("email", email)?;
        }
        if let Some(name) = &self.user.name {
            map.serialize_entry("name", name)?;
        }
        map.serialize_entry("iat", &self.iat)?;
        map.serialize_entry("exp", &self.exp)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;
    use crate::intercom::Region;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    fn messenger(secret: &str) -> Messenger {
        Messenger::new(
            "abc123de",
            &Secret::new(secret),
            Region::Us,
            IdentityMode::Jwt,
            std::time::Duration::from_secs(900),
        )
    }

    fn user(attributes: Map<String, Value>) -> User {
        User {
            id: "u-1".into(),
            email: Some("a@x.io".into()),
            name: None,
            attributes,
        }
    }

    #[test]
    fn tokens_verify_with_jsonwebtoken_and_only_under_the_secret() {
        let user = user(Map::new());
        let now = now_secs();
        let messenger = messenger("s3cret");
        let token = messenger.sign(&user, &Map::new(), now).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        let verified = jsonwebtoken::decode::<Map<String, Value>>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret"),
            &validation,
        )
        .unwrap();
        assert_eq!(
            Value::Object(verified.claims),
            json!({"user_id": "u-1", "email": "a@x.io", "iat": now, "exp": now + 900})
        );
        assert!(
            jsonwebtoken::decode::<Map<String, Value>>(
                &token,
                &jsonwebtoken::DecodingKey::from_secret(b"other"),
                &validation,
            )
            .is_err()
        );
        // Each signature starts from a fresh copy of the keyed state.
        assert_eq!(messenger.sign(&user, &Map::new(), now).unwrap(), token);
    }

    #[test]
    fn user_hash_is_the_hex_hmac_of_the_user_id() {
        // RFC 4231 test case 2.
        assert_eq!(
            messenger("Jefe").user_hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn claims_carry_each_key_once_with_the_user_over_the_route_and_identity_over_all() {
        let user = user(object(
            json!({"plan": "pro", "section": "mine", "user_id": "forged"}),
        ));
        let route =
            object(json!({"section": "billing", "seats": 5, "email": "r@x.io", "name": "R"}));
        let claims = Claims {
            user: &user,
            route_attributes: &route,
            iat: 10,
            exp: 70,
        };
        let text = serde_json::to_string(&claims).unwrap();
        let parsed: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            Value::Object(parsed.clone()),
            json!({"plan": "pro", "section": "mine", "seats": 5, "name": "R",
                   "user_id": "u-1", "email": "a@x.io", "iat": 10, "exp": 70})
        );
        assert_eq!(text.matches("\"section\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"user_id\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"email\"").count(), 1, "{text}");
    }
}
