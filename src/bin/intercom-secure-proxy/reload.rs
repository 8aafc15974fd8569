//! The reload side of the command line: SIGHUP forwarded to the running proxy's reloader,
//! and the `reload` subcommand that sends it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use intercom_secure_proxy::ReloadOptions;
use intercom_secure_proxy::reload::{read_pid_file, reload_requests};

/// Registers the SIGHUP handler now (SIGHUP's default action ends the process) and forwards
/// each signal to the reloader of the proxy run with the config at `path`.
pub(crate) fn on_hangup(path: &Path) -> ReloadOptions {
    let (ask, requests) = reload_requests();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangup) => {
                tokio::spawn(async move {
                    while hangup.recv().await.is_some() {
                        // Full: a reload is already pending, and it reads the file as it is.
                        let _ = ask.try_send(());
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP: no reload on signal"),
        }
    }
    #[cfg(not(unix))]
    drop(ask);
    ReloadOptions {
        config_path: path.to_path_buf(),
        requests,
    }
}

/// Where `reload` finds the proxy.
pub(crate) struct Target {
    pub(crate) pid: Option<i32>,
    pub(crate) pid_file: Option<PathBuf>,
    /// The config whose `[server] pid_file` names it, when neither of the above is given.
    pub(crate) config: PathBuf,
}

/// `intercom-secure-proxy reload`: sends SIGHUP to the running proxy.
pub(crate) fn send(target: Target) -> ExitCode {
    let pid = match find(&target) {
        Ok(pid) => pid,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = looks_like_the_proxy(pid) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match signal(pid) {
        Ok(()) => {
            println!(
                "sent SIGHUP to process {pid}; the proxy logs \"config reloaded\", or each \
                 problem with its key and keeps its running config"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot signal process {pid}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn find(target: &Target) -> Result<i32, String> {
    if let Some(pid) = target.pid {
        return Ok(pid);
    }
    if let Some(path) = &target.pid_file {
        return read_pid_file(path);
    }
    // Only `[server] pid_file` is read: the rest of the config (its secrets' variables)
    // may mean nothing in this shell.
    let path = &target.config;
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (or pass --pid or --pid-file)",
            path.display()
        )
    })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: invalid TOML: {}", path.display(), e.message()))?;
    let pid_file = table
        .get("server")
        .and_then(|server| server.get("pid_file"))
        .and_then(|value| value.as_str())
        .ok_or_else(|| {
            format!(
                "{} sets no [server] pid_file; pass --pid or --pid-file",
                path.display()
            )
        })?;
    read_pid_file(Path::new(pid_file))
}

/// Refuses a process that is not this program (a stale pid file may name any process, and
/// SIGHUP ends most).
fn looks_like_the_proxy(pid: i32) -> Result<(), String> {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        // No /proc (not Linux), or no such process: the signal says which.
        return Ok(());
    };
    let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let ours = std::env::current_exe().ok();
    let same_exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .zip(ours)
        .is_some_and(|(theirs, ours)| theirs == ours);
    let named = String::from_utf8_lossy(program).contains("intercom-secure-proxy");
    if same_exe || named {
        Ok(())
    } else {
        Err(format!(
            "process {pid} ({}) is not intercom-secure-proxy; is the pid file stale? Not signalled",
            String::from_utf8_lossy(program)
        ))
    }
}

#[cfg(unix)]
fn signal(pid: i32) -> std::io::Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let pid = Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("not a process id"))?;
    kill_process(pid, Signal::HUP).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn signal(_pid: i32) -> std::io::Result<()> {
    Err(std::io::Error::other("signals need a Unix system"))
}
