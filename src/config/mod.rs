//! `proxy.toml`: typed configuration, loaded and checked once at start.
//!
//! Loading never stops at the first problem: every issue is collected as
//! `key.path: what is wrong`, so `check` can list them all. Secrets named by `*_env` and
//! `*_file` keys are read here, at start, and held in [`Secret`]s.

mod frameworks;
mod header;
mod intercom;
mod limits;
mod lookup;
mod network;
mod ops;
mod path;
mod php;
mod reader;
mod resolvers;
mod routes;
mod secret;
mod session;

use std::fmt;
use std::path::Path;

pub use crate::intercom::{AnonymousPolicy, IdentityMode, Region};
pub use frameworks::{
    DjangoBackend, DjangoResolverConfig, FlaskResolverConfig, RailsCipher, RailsDigest,
    RailsResolverConfig,
};
pub use header::HeaderResolverConfig;
pub use intercom::{IntercomConfig, MIN_TOKEN_TTL, is_endpoint_path};
pub use limits::ClientLimits;
pub use lookup::LookupConfig;
pub use network::{ServerConfig, TlsFiles, UpstreamConfig};
pub use ops::{AdminConfig, LogConfig, LogFormat};
pub use path::normalize_path;
pub use php::{
    LARAVEL_CIPHERS, LaravelResolverConfig, PhpResolverConfig, PhpSerializeHandler, SessionStore,
};
pub use resolvers::{
    CookieFormat, HttpResolverConfig, JwtResolverConfig, RedisResolverConfig, SqlResolverConfig,
};
pub use routes::{LogoutConfig, Route, Routes};
pub use secret::{ProcessEnv, Secret, SecretEnv, SecretOrigin};
pub use session::{FieldMap, ResolverConfig, SessionConfig};

use reader::{Issues, Section};

/// The whole, validated configuration.
#[derive(Clone)]
pub struct Config {
    /// `[server]`: where and how the proxy listens.
    pub server: ServerConfig,
    /// `[upstream]`: the legacy app.
    pub upstream: UpstreamConfig,
    /// `[intercom]`: the Messenger app and its secret.
    pub intercom: IntercomConfig,
    /// `[session]`: how the app's session cookie maps to a user.
    pub session: SessionConfig,
    /// `[logout]`: how logout responses are recognised.
    pub logout: LogoutConfig,
    /// `[[routes]]`: per-path toggles, compiled once.
    pub routes: Routes,
    /// `[admin]`: health, readiness and metrics endpoints, when configured.
    pub admin: Option<AdminConfig>,
    /// `[log]`: the log format.
    pub log: LogConfig,
}

/// One problem in the config, at a dotted key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The key, e.g. `session.resolver` or `routes[1].path`.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a config could not be loaded: every problem found, one per line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// Where the config came from, for the first line of the message.
    pub source_name: String,
    /// All problems, in file order where possible.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} problem(s)", self.source_name, self.issues.len())?;
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

const TOP_LEVEL: &[&str] = &[
    "server", "upstream", "intercom", "session", "logout", "routes", "admin", "log",
];

impl Config {
    /// Reads and checks the config file at `path`, taking secrets from the process env.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            issues: vec![ConfigIssue {
                key: "--config".into(),
                message: format!("cannot read {name}: {e}"),
            }],
        })?;
        Config::from_toml(&text, &name, &ProcessEnv)
    }

    /// Parses and checks config text; `*_env` secrets are looked up in `env`.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        env: &dyn SecretEnv,
    ) -> Result<Config, ConfigError> {
        let fail = |issues| ConfigError {
            source_name: source_name.to_string(),
            issues,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!("line {}", 1 + text[..s.start].matches('\n').count()))
                .unwrap_or_else(|| "(syntax)".into());
            fail(vec![ConfigIssue {
                key: line,
                message: format!("invalid TOML: {}", e.message()),
            }])
        })?;
        let issues = Issues::default();
        let config = read_config(table, &issues, env);
        let issues = issues.into_inner();
        match config {
            Some(config) if issues.is_empty() => Ok(config),
            _ => Err(fail(issues)),
        }
    }
}

fn read_config(table: toml::Table, issues: &Issues, env: &dyn SecretEnv) -> Option<Config> {
    let mut root = Section::new("", table, TOP_LEVEL, issues);
    let server = network::read_server(root.table("server", network::SERVER_KEYS));
    let upstream = network::read_upstream(required_table(
        &mut root,
        "upstream",
        network::UPSTREAM_KEYS,
    ));
    let intercom = intercom::read(required_table(&mut root, "intercom", intercom::KEYS), env);
    let session = session::read(required_table(&mut root, "session", session::KEYS), env);
    let logout = routes::read_logout(root.table("logout", routes::LOGOUT_KEYS));
    let route_sections = root.table_array("routes", routes::ROUTE_KEYS);
    let routes = routes::read_routes(route_sections, &root);
    let server_listen = server.as_ref().map(|s| s.listen.as_slice());
    let admin = ops::read_admin(root.table("admin", ops::ADMIN_KEYS), server_listen);
    let log = ops::read_log(root.table("log", ops::LOG_KEYS));
    root.finish();
    Some(Config {
        server: server?,
        upstream: upstream?,
        intercom: intercom?,
        session: session?,
        logout: logout?,
        routes: routes?,
        admin: admin?,
        log: log?,
    })
}

fn required_table<'a>(
    root: &mut Section<'a>,
    key: &str,
    known: &'static [&'static str],
) -> Option<Section<'a>> {
    if !root.has(key) {
        root.issue(key, format!("missing section [{key}]"));
        return None;
    }
    root.table(key, known)
}

#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
