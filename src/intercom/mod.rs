//! Intercom's side: the Messenger settings for a user (signed JWT or `user_hash`) and the
//! inline snippet that boots the Messenger.

mod settings;
mod snippet;

pub(crate) use settings::keyed_hmac;
pub use settings::{Messenger, SignError};
pub use snippet::{Boot, Loader, Refresh, Snippet, escape_json_for_script};
