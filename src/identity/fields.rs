//! `[session.fields]`: JSON pointers from a session document to a [`User`].

use serde_json::{Map, Value};

use super::User;
use crate::config::FieldMap;

/// Builds the user from a session document, or `None` when the user id is missing or empty.
///
/// A numeric user id is accepted and turned into its decimal string (Intercom wants a
/// string). Unmapped or null fields are left out; an email that is not a string is dropped.
pub fn user_from_document(fields: &FieldMap, document: &Value) -> Option<User> {
    let id = match document.pointer(&fields.user_id)? {
        // U+FFFD is what readers of PHP and Ruby data put for bytes that are not UTF-8: two
        // different ids could read the same, so such an id names no one.
        Value::String(s) if !s.trim().is_empty() && !s.contains('\u{FFFD}') => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut user = User {
        id,
        email: None,
        name: None,
        attributes: Map::new(),
    };
    fill(&mut user, fields, document, |_| true);
    Some(user)
}

/// Sets the user's email, name and attributes from `document`, for the fields whose pointer
/// `which` accepts (the `/lookup` ones, once the user's record is fetched).
pub(super) fn fill(
    user: &mut User,
    fields: &FieldMap,
    document: &Value,
    which: impl Fn(&str) -> bool,
) {
    let text = |pointer: &str| {
        document
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(pointer) = fields.email.as_deref().filter(|p| which(p)) {
        user.email = text(pointer);
    }
    if let Some(pointer) = fields.name.as_deref().filter(|p| which(p)) {
        user.name = text(pointer);
    }
    for (key, pointer) in fields.custom.iter().filter(|(_, p)| which(p)) {
        match document.pointer(pointer) {
            None | Some(Value::Null) => {
                user.attributes.remove(key);
            }
            Some(value) => {
                user.attributes.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> FieldMap {
        FieldMap {
            user_id: "/sub".into(),
            email: Some("/email".into()),
            name: Some("/profile/name".into()),
            custom: vec![
                ("plan".into(), "/account/plan".into()),
                ("missing".into(), "/nope".into()),
            ],
        }
    }

    #[test]
    fn maps_pointers_to_a_user() {
        let doc = json!({"sub": "u1", "email": "a@example.com", "profile": {"name": "A"}, "account": {"plan": "pro"}});
        let user = user_from_document(&fields(), &doc).unwrap();
        assert_eq!(user.id, "u1");
        assert_eq!(user.email.as_deref(), Some("a@example.com"));
        assert_eq!(user.name.as_deref(), Some("A"));
        assert_eq!(
            user.attributes,
            json!({"plan": "pro"}).as_object().unwrap().clone()
        );
    }

    #[test]
    fn numeric_ids_become_strings_and_empty_ids_are_anonymous() {
        assert_eq!(
            user_from_document(&fields(), &json!({"sub": 42}))
                .unwrap()
                .id,
            "42"
        );
        assert!(user_from_document(&fields(), &json!({"sub": ""})).is_none());
        assert!(user_from_document(&fields(), &json!({"sub": "\u{FFFD}bob"})).is_none());
        assert!(user_from_document(&fields(), &json!({"sub": null})).is_none());
        assert!(user_from_document(&fields(), &json!({"email": "a@b"})).is_none());
        assert!(user_from_document(&fields(), &json!({"sub": {"id": 1}})).is_none());
    }
}
