//! `[admin]` and `[log]`: how the proxy is operated (health, readiness and metrics on a
//! listener of their own; the log format), apart from what it does to pages.

use std::net::SocketAddr;

use super::reader::Section;

pub(super) const ADMIN_KEYS: &[&str] = &["listen"];
pub(super) const LOG_KEYS: &[&str] = &["format"];

/// `[admin]`: `/healthz`, `/readyz` and `/metrics` over plain HTTP. Off unless the section
/// is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin endpoints listen (a loopback or private address: they need no
    /// credentials).
    pub listen: SocketAddr,
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// How log lines are written to stderr.
    pub format: LogFormat,
}

/// `[admin]`; `Some(None)` when the section is absent. An address `[server] listen` also
/// names is refused: one of the two binds would fail.
pub(super) fn read_admin(
    section: Option<Section<'_>>,
    server_listen: Option<&[SocketAddr]>,
) -> Option<Option<AdminConfig>> {
    let Some(mut s) = section else {
        return Some(None);
    };
    let listen = s
        .required_string("listen", "\"127.0.0.1:9090\"")
        .and_then(|raw| match raw.parse::<SocketAddr>() {
            Ok(listen) => Some(listen),
            Err(_) => {
                s.issue(
                    "listen",
                    format!("invalid address {raw:?} (expected IP:PORT like \"127.0.0.1:9090\")"),
                );
                None
            }
        })
        .filter(|listen| {
            let taken = listen.port() != 0 && server_listen.is_some_and(|l| l.contains(listen));
            if taken {
                s.issue(
                    "listen",
                    format!(
                        "{listen} is also in server.listen; the admin endpoints need their own"
                    ),
                );
            }
            !taken
        });
    s.finish();
    Some(Some(AdminConfig { listen: listen? }))
}

/// `[log]`, defaults when the section is absent.
pub(super) fn read_log(section: Option<Section<'_>>) -> Option<LogConfig> {
    let Some(mut s) = section else {
        return Some(LogConfig::default());
    };
    let present = s.has("format");
    let format = match s
        .choice("format", "log format", &["text", "json"])
        .as_deref()
    {
        None if present => None,
        None => Some(LogFormat::Text),
        Some("json") => Some(LogFormat::Json),
        Some(_) => Some(LogFormat::Text),
    };
    s.finish();
    Some(LogConfig { format: format? })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{load, problems};
    use super::*;

    fn with(extra: &str) -> String {
        format!("{}{extra}", super::super::tests::BASE)
    }

    #[test]
    fn admin_is_off_and_logs_are_text_unless_configured() {
        let c = load("").unwrap();
        assert_eq!(c.admin, None);
        assert_eq!(c.log.format, LogFormat::Text);
        let c = load("[admin]\nlisten = \"127.0.0.1:9090\"\n[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(
            c.admin,
            Some(AdminConfig {
                listen: "127.0.0.1:9090".parse().unwrap()
            })
        );
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(load("[log]\n").unwrap().log.format, LogFormat::Text);
    }

    #[test]
    fn bad_admin_and_log_keys_are_named() {
        assert_eq!(
            problems(&with("[admin]\n")),
            ["admin.listen: missing (expected a string, e.g. \"127.0.0.1:9090\")"]
        );
        assert_eq!(
            problems(&with("[admin]\nlisten = \"localhost:9090\"\n")),
            [
                "admin.listen: invalid address \"localhost:9090\" (expected IP:PORT like \"127.0.0.1:9090\")"
            ]
        );
        assert_eq!(
            problems(&with("[admin]\nlisten = 9090\n")),
            ["admin.listen: expected a string, found integer 9090"]
        );
        assert_eq!(
            problems(&with("[admin]\nlisten = \"127.0.0.1:9090\"\nport = 1\n")),
            ["admin.port: unknown key (expected one of: listen)"]
        );
        assert_eq!(
            problems(&with(
                "[server]\nlisten = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"\n"
            )),
            [
                "admin.listen: 127.0.0.1:8080 is also in server.listen; the admin endpoints need their own"
            ]
        );
        assert_eq!(
            problems(&with("[log]\nformat = \"yaml\"\n")),
            ["log.format: unknown log format \"yaml\" (expected text, json)"]
        );
        assert_eq!(
            problems(&with("[log]\nformat = \"json\"\nlevel = \"debug\"\n")),
            ["log.level: unknown key (expected one of: format)"]
        );
        assert_eq!(
            // A top-level key: before the first table.
            problems(&format!("admin = 1\n{}", super::super::tests::BASE)),
            ["admin: expected a table, found integer 1"]
        );
    }
}
