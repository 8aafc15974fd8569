//! intercom-secure-proxy: a reverse proxy that puts the Intercom Messenger, in secure mode,
//! on a legacy web app without changing the app.
//!
//! The binary is a thin CLI over this library; see `README.md` for the architecture.
#![warn(missing_docs)]
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

#[cfg(feature = "server")]
pub mod admin;
pub mod config;
pub mod crypto;
#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "server")]
pub mod explain;
mod headers;
pub mod identity;
pub mod inject;
pub mod intercom;
pub mod logout;
pub mod metrics;
pub mod net;
#[cfg(feature = "server")]
pub mod proxy;
#[cfg(feature = "server")]
mod stack;

#[cfg(feature = "server")]
pub mod reload;
#[cfg(feature = "server")]
mod run;

#[cfg(feature = "server")]
pub use run::{ReloadOptions, RunOptions, StartError, bind, prepare, run, run_with};
#[cfg(feature = "server")]
pub use stack::{Prepared, ProxyServer, Stack};
