//! What a reload cannot change in a running proxy: sockets, threads and pools made at start.
//! Each difference is named by its key, so that an edit which needs a restart is never
//! silently ignored.

use crate::config::Config;

/// The keys whose value in `next` differs from the running config's, where the running
/// value stays until a restart.
pub(super) fn changed_keys(running: &Config, next: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut differ = |key: &'static str, changed: bool| {
        if changed {
            keys.push(key);
        }
    };
    let (a, b) = (&running.server, &next.server);
    differ("server.listen", a.listen != b.listen);
    differ("server.workers", a.workers != b.workers);
    // New files are read on reload; turning HTTPS on or off changes the listeners.
    differ("server.tls_cert", a.tls.is_some() != b.tls.is_some());
    differ(
        "server.header_read_timeout",
        a.header_read_timeout != b.header_read_timeout,
    );
    differ(
        "server.max_header_bytes",
        a.max_header_bytes != b.max_header_bytes,
    );
    differ("server.keep_alive", a.keep_alive != b.keep_alive);
    differ(
        "server.shutdown_timeout",
        a.shutdown_timeout != b.shutdown_timeout,
    );
    differ("server.pid_file", a.pid_file != b.pid_file);
    let (a, b) = (&running.server.limits, &next.server.limits);
    differ("server.idle_timeout", a.idle_timeout != b.idle_timeout);
    differ("server.body_timeout", a.body_timeout != b.body_timeout);
    differ("server.body_min_rate", a.body_min_rate != b.body_min_rate);
    differ(
        "server.max_connections",
        a.max_connections != b.max_connections,
    );
    differ(
        "server.h2_max_streams",
        a.h2_max_streams != b.h2_max_streams,
    );
    // Each worker's forwarder holds its own pool of app connections.
    let (a, b) = (&running.upstream, &next.upstream);
    differ("upstream.url", a.url != b.url);
    differ(
        "upstream.connect_timeout",
        a.connect_timeout != b.connect_timeout,
    );
    differ("upstream.timeout", a.timeout != b.timeout);
    differ("upstream.ca_file", a.ca_file != b.ca_file);
    differ(
        "upstream.max_connections",
        a.max_connections != b.max_connections,
    );
    differ("admin.listen", running.admin != next.admin);
    differ("log.format", running.log != next.log);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(extra_server: &str, upstream: &str) -> Config {
        let env: HashMap<String, String> = [("S", "secret"), ("K", "key")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\nworkers = 2\n{extra_server}\n\
             [upstream]\nurl = \"{upstream}\"\n\
             [intercom]\napp_id = \"abc123de\"\nsecret_env = \"S\"\n\
             [session]\ncookie = \"session\"\nresolver = \"jwt\"\n\
             [session.jwt]\nkey_env = \"K\"\n\
             [session.fields]\nuser_id = \"/sub\"\n"
        );
        match Config::from_toml(&text, "test", &env) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn restart_only_keys_are_named_and_reloadable_ones_are_not() {
        let running = config("", "http://127.0.0.1:3000");
        assert!(changed_keys(&running, &config("", "http://127.0.0.1:3000")).is_empty());
        let reloadable = config(
            "trusted_proxies = [\"10.0.0.0/8\"]\nwatch_config = true",
            "http://127.0.0.1:3000",
        );
        assert!(changed_keys(&running, &reloadable).is_empty());
        let next = config(
            "keep_alive = false\nidle_timeout = \"5s\"",
            "http://127.0.0.1:4000",
        );
        assert_eq!(
            changed_keys(&running, &next),
            ["server.keep_alive", "server.idle_timeout", "upstream.url"]
        );
    }
}
