//! The command line as a user meets it: `check`, `--help`, `--version`, and SIGTERM.
#![cfg(feature = "server")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_intercom-secure-proxy");

fn check(config: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    check_file(&path, env)
}

fn check_file(path: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config"])
        .arg(path)
        .env_remove("RUST_LOG");
    for var in ["INTERCOM_MESSENGER_SECRET", "APP_SESSION_SECRET"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const SECRETS: &[(&str, &str)] = &[
    ("INTERCOM_MESSENGER_SECRET", "messenger-secret-value-xyz"),
    ("APP_SESSION_SECRET", "app-session-secret-value-xyz"),
];

#[test]
fn the_shipped_example_config_checks_clean() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml");
    let (ok, stdout, stderr) = check_file(&example, SECRETS);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.trim_end().ends_with(": OK"), "{stdout}");
}

#[test]
fn missing_secrets_are_named_and_never_printed() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml");
    let (ok, stdout, _) = check_file(
        &example,
        &[("APP_SESSION_SECRET", "app-session-secret-value-xyz")],
    );
    assert!(!ok);
    assert_eq!(
        stdout.trim_end(),
        "intercom.secret_env: environment variable INTERCOM_MESSENGER_SECRET is not set"
    );
    assert!(!stdout.contains("app-session-secret-value-xyz"));
}

const BAD: &str = r#"
[server]
listen = ["0.0.0.0:8080", "localhost"]
tls_cert = "/nonexistent/cert.pem"
colour = "blue"

[upstream]
url = "ftp://example.com"
timeout = "soon"

[intercom]
app_id = "abc-123"
secret_file = "/nonexistent/secret"
region = "mars"
mode = "jwt"

[session]
resolver = "crystal-ball"
cache_ttl = 30

[session.fields]
email = "email"

[[routes]]
path = "/admin/[**"
inject = "no"
"#;

#[test]
fn every_problem_is_reported_with_its_key() {
    let (ok, stdout, stderr) = check(BAD, SECRETS);
    assert!(!ok);
    let lines: Vec<&str> = stdout.lines().collect();
    let expected_prefixes = [
        "server.listen: invalid address \"localhost\"",
        "server.tls_key: missing",
        "server.colour: unknown key (expected one of: listen, tls_cert",
        "upstream.url: invalid URL \"ftp://example.com\"",
        "upstream.timeout: invalid duration \"soon\"",
        "intercom.app_id: invalid app id \"abc-123\"",
        "intercom.secret_file: cannot read /nonexistent/secret",
        "intercom.region: unknown region \"mars\" (expected us, eu, au)",
        "session.resolver: unknown resolver \"crystal-ball\" (expected jwt, http, redis, sql, rails, django, flask, laravel, php, header)",
        "session.cache_ttl: expected a duration string like \"750ms\" or \"15m\", found integer 30",
        "session.fields.email: invalid JSON pointer \"email\"",
        "session.fields.user_id: missing",
        "routes[0].path: invalid glob \"/admin/[**\"",
        "routes[0].inject: expected true or false, found string \"no\"",
    ];
    for prefix in expected_prefixes {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "no line starts with {prefix:?}:\n{stdout}"
        );
    }
    // Every line names a key path before the colon, and nothing else is printed there.
    assert_eq!(lines.len(), expected_prefixes.len(), "{stdout}");
    assert!(stderr.contains("problem(s)"), "{stderr}");
}

#[test]
fn toml_syntax_errors_point_at_the_line() {
    let (ok, stdout, _) = check("[server]\nlisten = \"0.0.0.0:80\n", SECRETS);
    assert!(!ok);
    assert!(stdout.starts_with("line 2: invalid TOML"), "{stdout}");
}

#[test]
fn unusable_tls_files_fail_check() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml")).unwrap();
    let config = example.replace(
        "# tls_cert = \"/etc/intercom-secure-proxy/cert.pem\"\n# tls_key  = \"/etc/intercom-secure-proxy/key.pem\"",
        &format!("tls_cert = \"{0}\"\ntls_key = \"{0}\"", cert.display()),
    );
    assert_ne!(
        config, example,
        "the example's TLS lines moved; update this test"
    );
    let (ok, stdout, _) = check(&config, SECRETS);
    assert!(!ok);
    assert!(stdout.starts_with("server.tls_cert: "), "{stdout}");
}

#[test]
fn help_and_version() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for word in [
        "check",
        "demo",
        "--config",
        "With no subcommand it runs the proxy",
    ] {
        assert!(help.contains(word), "{help}");
    }
    // demo runs its own config: its help does not offer --config, and it refuses one.
    let out = Command::new(BIN).args(["demo", "--help"]).output().unwrap();
    let demo_help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(!demo_help.contains("--config"), "{demo_help}");
    let out = Command::new(BIN)
        .args(["--config", "proxy.toml", "demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--config is not used by it")
    );
    // `--config` before or after `check` names the file checked.
    for args in [
        ["--config", "/nonexistent.toml", "check"],
        ["check", "--config", "/nonexistent.toml"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .contains("/nonexistent.toml"),
            "{args:?}"
        );
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("intercom-secure-proxy {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The shipped example on a free port, started through `sh -c "<shell>; exec proxy …"`;
/// returns once it logged "listening" (the signal handler is installed before binding).
fn start_example(
    shell: &str,
) -> (
    tempfile::TempDir,
    std::process::Child,
    BufReader<std::process::ChildStderr>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml")).unwrap();
    std::fs::write(
        &path,
        example.replace("listen = \"0.0.0.0:8080\"", "listen = \"127.0.0.1:0\""),
    )
    .unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{shell}; exec \"$0\" --config \"$1\""))
        .arg(BIN)
        .arg(&path)
        .envs(SECRETS.iter().copied())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("listening") {
        line.clear();
    }
    assert!(line.contains("listening"), "the proxy did not start");
    (dir, child, stderr)
}

#[test]
fn the_open_file_soft_limit_is_raised_to_the_hard_one() {
    let (_dir, mut child, _stderr) = start_example("ulimit -Sn 256");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<&str> = files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.len(), 2, "{files}");
    assert_eq!(numbers[0], numbers[1], "soft limit not raised: {files}");
    assert_ne!(numbers[0], "256", "{files}");
}

#[test]
fn sigterm_stops_the_proxy_with_exit_code_zero() {
    let (_dir, mut child, mut stderr) = start_example("true");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("shutting down"), "{rest}");
    assert!(!rest.contains("messenger-secret-value-xyz"));
}
