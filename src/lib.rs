//! intercom-secure-proxy: a reverse proxy that puts the Intercom Messenger, in secure mode,
//! on a legacy web app without changing the app.
//!
//! The binary is a thin CLI over this library; see `README.md` for the architecture.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod config;
pub mod demo;
pub mod identity;
pub mod inject;
pub mod intercom;
pub mod proxy;
