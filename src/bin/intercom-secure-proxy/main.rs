//! Command line: run the proxy, check a config, explain one page, ask for a reload, or start
//! the built-in demo.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use intercom_secure_proxy::config::{Config, LogFormat};
use intercom_secure_proxy::{RunOptions, demo, explain};

mod memory;
mod reload;

/// A reverse proxy that boots the Intercom Messenger in secure mode (signed JWT) on every
/// page of a legacy web app, and shuts it down on logout, without changing the app.
///
/// With no subcommand it runs the proxy with the config at --config (default ./proxy.toml)
/// until SIGTERM or Ctrl-C.
#[derive(Parser)]
#[command(
    name = "intercom-secure-proxy",
    version,
    about,
    after_help = "Logs go to stderr; RUST_LOG filters them (e.g. RUST_LOG=debug)."
)]
struct Cli {
    /// Config file of the proxy to run [default: proxy.toml]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config and exit: 0 when good, otherwise one line per problem.
    Check {
        /// Config file to check [default: proxy.toml]
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Start a built-in demo legacy app and the proxy in front of it (no network needed; the
    /// demo has its own config).
    Demo,
    /// Explain what the proxy would do with one page, and why (never printing a cookie
    /// value, token or secret).
    ///
    /// Step by step: the route, the session cookie, the resolver and lookup (timed), the
    /// logout markers, the app's answer (type, coding, CSP, where the snippet goes) and the
    /// outcome (injected, or passed with the metrics' reason). Sends the request to the
    /// configured app and asks the session store, as the proxy would. Exit 0 once explained;
    /// 2 for an unusable URL or a config `check` refuses.
    Explain {
        /// Config file [default: proxy.toml]
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// The page, as a browser asks for it: https://app.example.com/dashboard (or /path)
        #[arg(value_name = "URL")]
        url: String,
        /// A cookie the browser sends, name=value; repeat for more
        #[arg(long = "cookie", value_name = "NAME=VALUE")]
        cookies: Vec<String>,
        /// A request header, 'Name: value'; repeat for more
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Ask the running proxy to reload its config (sends it SIGHUP). The process is found by
    /// --pid, --pid-file, or else the `[server] pid_file` of --config.
    Reload {
        /// Config whose [server] pid_file names the proxy [default: proxy.toml]
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// The proxy's process id
        #[arg(long, value_name = "PID", conflicts_with = "pid_file")]
        pid: Option<i32>,
        /// A file holding the proxy's process id
        #[arg(long, value_name = "PATH")]
        pid_file: Option<PathBuf>,
    },
}

const DEFAULT_CONFIG: &str = "proxy.toml";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.config.is_some() && matches!(cli.command, Some(Command::Demo)) {
        eprintln!("error: demo runs with its own built-in config; --config is not used by it");
        return ExitCode::from(2);
    }
    // The proxy's config chooses its log format (read again, with its errors, below);
    // the other commands log as text.
    let log_format = match &cli.command {
        None => Config::load(cli.config.as_deref().unwrap_or(DEFAULT_CONFIG.as_ref()))
            .map_or(LogFormat::Text, |c| c.log.format),
        Some(_) => LogFormat::Text,
    };
    init_logging(log_format);
    // Requests are served by the proxy's own worker threads (`server.workers`); this
    // runtime only waits for signals and runs start-up checks (and the demo's app).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config_path = |subcommand: Option<PathBuf>| {
        subcommand
            .or(cli.config.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    };
    match cli.command {
        Some(Command::Check { config }) => check(&config_path(config)),
        Some(Command::Explain {
            config,
            url,
            cookies,
            headers,
        }) => explain(&runtime, &config_path(config), &url, &cookies, &headers),
        Some(Command::Reload {
            config,
            pid,
            pid_file,
        }) => reload::send(reload::Target {
            pid,
            pid_file,
            config: config_path(config),
        }),
        Some(Command::Demo) => match runtime.block_on(async { demo::run(shutdown_signal()).await })
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        None => {
            let path = config_path(None);
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            // The signal handlers register with the runtime: built inside it.
            let run = async {
                let options = RunOptions {
                    // Each worker hands the pages its heap freed after a burst back every 2 s.
                    worker_task: Some(Arc::new(|| Box::pin(memory::collect_periodically()))),
                    reload: Some(reload::on_hangup(&path)),
                };
                intercom_secure_proxy::run_with(&config, shutdown_signal(), options).await
            };
            match runtime.block_on(run) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            for issue in &e.issues {
                println!("{issue}");
            }
            eprintln!("{}: {} problem(s)", e.source_name, e.issues.len());
            return ExitCode::from(2);
        }
    };
    if let Err(e) = intercom_secure_proxy::prepare(&config) {
        println!("{e}");
        eprintln!("{}: 1 problem(s)", path.display());
        return ExitCode::from(2);
    }
    println!("{}: OK", path.display());
    ExitCode::SUCCESS
}

/// `explain`: 0 once explained (a failing app or store is part of the explanation); 2 for
/// an unusable URL or argument, or a config `check` would refuse (its problems printed as
/// `check` prints them).
fn explain(
    runtime: &tokio::runtime::Runtime,
    path: &std::path::Path,
    url: &str,
    cookies: &[String],
    headers: &[String],
) -> ExitCode {
    let target = match explain::Target::parse(url, cookies, headers) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            for issue in &e.issues {
                println!("{issue}");
            }
            eprintln!("{}: {} problem(s)", e.source_name, e.issues.len());
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(explain::explain(&config, &target, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{e}");
            eprintln!("{}: 1 problem(s)", path.display());
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // One object per line: timestamp, level, target and the event's fields at the top.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// Registers the Ctrl-C and SIGTERM handlers now (before anything binds, so no early
/// signal kills the process), and returns a future that completes on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {},
                        _ = terminate.recv() => {},
                    }
                }
                _ => {
                    tracing::warn!("cannot install signal handlers; stop the process with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
            tracing::info!("shutdown signal received");
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received");
    }
}
