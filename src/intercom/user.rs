//! The user as Intercom knows them: what a session resolves to and what the Messenger JWT
//! carries.

use serde_json::{Map, Value};

/// A user resolved from a session, as Intercom will know them.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Stable user id (Intercom's `user_id`), never empty.
    pub id: String,
    /// Email, when mapped and present.
    pub email: Option<String>,
    /// Display name, when mapped and present.
    pub name: Option<String>,
    /// Custom attributes from `[session.fields]`, signed into the JWT.
    pub attributes: Map<String, Value>,
}
