//! Snippet injection: decide which responses get the Messenger, and rewrite them.
mod codec;
pub mod csp;
mod rewrite;

pub use codec::{Coding, Decoder, Encoder};
pub use rewrite::{PagePlan, PageRewriter};
