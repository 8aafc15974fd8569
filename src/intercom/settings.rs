//! `window.intercomSettings` for one page view: identity proven by an HS256 JWT signed
//! with the Messenger secret (or the legacy `user_hash`), never by plain browser values.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::config::{IdentityMode, IntercomConfig, Secret};
use crate::identity::User;

/// Signing failed (in practice never with HS256; kept so a failure cannot panic).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the Messenger JWT: {0}")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

/// Builds Messenger settings; the key is prepared once at start.
pub struct Messenger {
    app_id: String,
    api_base: &'static str,
    mode: IdentityMode,
    ttl_secs: u64,
    key: EncodingKey,
    header: Header,
    secret: Secret,
}

impl Messenger {
    /// From `[intercom]`.
    pub fn new(config: &IntercomConfig) -> Self {
        Messenger {
            app_id: config.app_id.clone(),
            api_base: config.region.api_base(),
            mode: config.mode,
            ttl_secs: config.token_ttl.as_secs(),
            key: EncodingKey::from_secret(config.secret.expose()),
            header: Header::new(Algorithm::HS256),
            secret: config.secret.clone(),
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

    /// The Messenger JWT: `user_id`, `email`, `name`, custom and route attributes, `iat`, `exp`.
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
        Ok(jsonwebtoken::encode(&self.header, &claims, &self.key)?)
    }

    /// Legacy identity verification: lowercase hex HMAC-SHA256(secret, user_id).
    pub fn user_hash(&self, user_id: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
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
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    #[test]
    fn claims_carry_each_key_once_with_the_user_over_the_route_and_identity_over_all() {
        let user = User {
            id: "u-1".into(),
            email: Some("a@x.io".into()),
            name: None,
            attributes: object(json!({"plan": "pro", "section": "mine", "user_id": "forged"})),
        };
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
