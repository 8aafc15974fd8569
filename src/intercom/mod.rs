//! Intercom's side: the Messenger settings for a user (signed JWT or `user_hash`) and the
//! inline snippet that boots the Messenger.

mod region;
mod settings;
mod snippet;
mod user;

pub use region::{IntercomHosts, Region};
pub use settings::{AnonymousPolicy, IdentityMode, Messenger, SignError};
pub use snippet::{Boot, Loader, Refresh, Snippet, escape_json_for_script};
pub use user::User;
