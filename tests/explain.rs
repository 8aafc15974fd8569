//! `intercom-secure-proxy explain`, as a support engineer runs it: the real binary against a
//! real app (and a store that is down), reading what it prints and its exit code.
#![cfg(feature = "server")]

mod common;

use std::process::Command;

use http::{HeaderMap, Response};
use intercom_secure_proxy::config::LogoutConfig;
use intercom_secure_proxy::crypto::Secret;
use intercom_secure_proxy::logout::Logout;
use serde_json::json;

use common::{
    APP_PAGE, MESSENGER_SECRET, SESSION_SECRET, Upstream, config_text, config_with_session, full,
    now_secs, session_jwt, test_env, upstream,
};

const BIN: &str = env!("CARGO_BIN_EXE_intercom-secure-proxy");

/// What a run printed, and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Whether stdout has this exact line.
    fn has_line(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l == line)
    }

    /// The stdout line starting with `prefix`.
    fn line_starting(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{}", self.stdout))
    }

    fn assert_lines(&self, lines: &[&str]) {
        for line in lines {
            assert!(self.has_line(line), "no line {line:?} in\n{}", self.stdout);
        }
    }

    /// Nothing that is a secret or a token: the session cookie given, both secrets, and no
    /// JWT-shaped word (the Messenger JWT the proxy signed included).
    fn assert_nothing_secret(&self, cookie: Option<&str>) {
        for text in [&self.stdout, &self.stderr] {
            for secret in [MESSENGER_SECRET, SESSION_SECRET] {
                assert!(!text.contains(secret), "a secret in\n{text}");
            }
            if let Some(cookie) = cookie {
                assert!(!text.contains(cookie), "the session cookie in\n{text}");
            }
            let jwt_like = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                .find(|word| {
                    word.starts_with("eyJ") && word.matches('.').count() == 2 && word.len() > 40
                });
            assert_eq!(jwt_like, None, "a token in\n{text}");
        }
    }
}

/// Runs `explain` on `config` (written to a file) for `url` with `args`, with the
/// harness's secrets in the environment.
async fn explain(config: &str, url: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("explain")
        .arg("--config")
        .arg(&path)
        .arg(url)
        .args(args)
        .envs(test_env())
        .env_remove("RUST_LOG");
    // The app runs on this test's runtime: the child is waited for off it.
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    drop(dir);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// An app serving the harness page on every path, with a CSP of its own.
async fn app() -> (Upstream, String) {
    let app = upstream(|_req| async {
        let mut r = Response::new(full(APP_PAGE));
        let headers = r.headers_mut();
        headers.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        headers.insert(
            "content-security-policy",
            "script-src 'self' 'nonce-r4nd0m'".parse().unwrap(),
        );
        r
    })
    .await;
    let url = format!("http://{}", app.addr);
    (app, url)
}

fn alice() -> String {
    session_jwt(json!({"sub": "user-42", "email": "alice@example.com", "exp": now_secs() + 3600}))
}

#[tokio::test]
async fn a_logged_in_user_gets_the_snippet_and_no_token_is_printed() {
    let (_app, url) = app().await;
    let cookie = alice();
    let run = explain(
        &config_text(&url, "", ""),
        "http://app.example.com/dashboard",
        &[
            "--cookie",
            &format!("session={cookie}"),
            "--cookie",
            "theme=dark",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.assert_lines(&[
        "explain GET http://app.example.com/dashboard",
        "1. Route",
        "   path /dashboard",
        "   no [[routes]] rule matches: injection on (the default)",
        "   logout path: no",
        "   page load: yes (GET, asks for HTML)",
        "2. Session",
        &format!("   session.cookie \"session\": found, {}… ({} chars)",
            &cookie[..4],
            cookie.len()
        ),
        "   other cookies (names only): theme",
        "3. Session lookup",
        "   resolver: jwt (JWT session cookie)",
        "   [session.lookup]: not configured",
        "   user_id: \"user-42\"",
        "   email: \"alice@example.com\"",
        "   name: (none)",
        "4. Logout and user-switch markers",
        "   __isp_booted: not sent (no Messenger booted in this browser yet)",
        "   __isp_shutdown: not sent (no logout pending)",
        "5. The app's answer",
        "   content-type: text/html; charset=utf-8",
        "   charset: utf-8",
        "   content-encoding: (none)",
        "   page: a page the snippet can go into (2xx HTML, charset and coding readable)",
        "   content-security-policy header: the proxy added",
        "     script-src: https://app.intercom.io https://widget.intercom.io https://js.intercomcdn.com",
        "     snippet: script-src: the snippet carries the page's nonce: it runs",
        "   cookies the proxy sets (names only): __isp_booted",
        "   cache-control set by the proxy: private, no-store",
        "6. Outcome",
        "   injected: boot",
        "   app_id: \"testapp1\"",
        "   intercom_user_jwt: signed with the Messenger secret; its claims:",
        "     user_id: \"user-42\"",
        "     email: \"alice@example.com\"",
        "=> injected: boot",
    ]);
    let looked = run.line_starting("   looked up in ");
    assert!(looked.ends_with(" ms: user"), "{looked}");
    let status = run.line_starting("   status: 200 OK (head after ");
    assert!(status.ends_with(" ms)"), "{status}");
    let snippet = run.line_starting("   snippet: inserted before </head> (line 1, byte ");
    assert!(snippet.ends_with("), with the page's nonce"), "{snippet}");
    let exp = run.line_starting("     exp: ");
    assert!(
        exp.contains(" (valid for ") && exp.ends_with(" more)"),
        "{exp}"
    );
    run.assert_nothing_secret(Some(&cookie));
}

#[tokio::test]
async fn a_visitor_without_a_session_passes_as_no_session() {
    let (_app, url) = app().await;
    let run = explain(&config_text(&url, "", ""), "http://app.example.com/", &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   session.cookie \"session\": not sent (no cookies)",
        "   not looked up: the request presents no session",
        "   content-security-policy header: present, left as the app sent it (no snippet)",
        "   snippet: not in the page",
        "   passed: no_session",
        "   why: the request carries no usable session, and visitors get no Messenger \
         (intercom.anonymous = \"skip\")",
        "=> passed: no_session",
    ]);
    run.assert_nothing_secret(None);
}

#[tokio::test]
async fn a_route_turned_off_is_named_and_not_looked_up() {
    let (_app, url) = app().await;
    let routes = "\n[[routes]]\npath = \"/admin/**\"\ninject = false\n";
    let cookie = alice();
    let run = explain(
        &config_text(&url, "", routes),
        "http://app.example.com/admin/users",
        &["--cookie", &format!("session={cookie}")],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   path /admin/users",
        "   [[routes]] rule \"/admin/**\" matches: injection off",
        "   not looked up: the route has inject = false",
        "   passed: route_off",
        "   why: the path's [[routes]] rule has inject = false",
        "=> passed: route_off",
    ]);
    run.assert_nothing_secret(Some(&cookie));
}

#[tokio::test]
async fn a_logout_path_passes_for_a_visitor_and_shuts_down_for_a_user() {
    let (_app, url) = app().await;
    let config = config_text(&url, "", "");
    let run = explain(&config, "http://app.example.com/logout", &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   logout path: yes ([logout] paths: /logout)",
        "   not looked up: a logout path: its page never boots the Messenger",
        "   passed: logout_path",
        "=> passed: logout_path",
    ]);

    // The app's logout page for a signed-in user: the Messenger is shut down there.
    let cookie = alice();
    let run = explain(
        &config,
        "http://app.example.com/logout",
        &["--cookie", &format!("session={cookie}")],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   cookies the proxy sets (names only): intercom-session-testapp1, __isp_shutdown",
        "   injected: shutdown only",
        "   this is the app's logout page: the Messenger shuts down here",
        "=> injected: shutdown only",
    ]);
    run.assert_nothing_secret(Some(&cookie));
}

#[tokio::test]
async fn a_forged_session_is_a_visitor_and_the_failed_signature_is_said() {
    let (_app, url) = app().await;
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "admin", "exp": now_secs() + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-apps-key"),
    )
    .unwrap();
    let run = explain(
        &config_text(&url, "", ""),
        "http://app.example.com/",
        &["--cookie", &format!("session={forged}")],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   the session names no user: no user id at session.fields.user_id, or a session \
         that is unknown, expired or forged",
        "   log DEBUG: session JWT rejected; anonymous (reason=InvalidSignature)",
        "   log WARN: session cookies give no user: session JWT signatures do not verify; \
         session.jwt.key_env (environment variable TEST_SESSION_SECRET) is probably not the \
         key the app signs its session tokens with (check=signature, key=session.jwt.key_env, \
         failures=1)",
        "   passed: visitor",
        "=> passed: visitor",
    ]);
    assert!(
        run.line_starting("   looked up in ")
            .ends_with(" ms: anonymous")
    );
    run.assert_nothing_secret(Some(&forged));
}

/// A genuine `__isp_booted` record for `user_id`, as the proxy's response would set it.
fn booted_cookie(user_id: &str) -> String {
    let logout = Logout::new(
        &LogoutConfig {
            paths: vec!["/logout".into()],
            detect_cookie_clear: true,
        },
        "session",
        "testapp1",
        None,
        &Secret::new(MESSENGER_SECRET),
    );
    let mut headers = HeaderMap::new();
    logout.set_booted_for(&mut headers, &logout.booted_for(Some(user_id)), false);
    let set = headers["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_forged_booted_marker_is_ignored_and_a_genuine_one_switches_users() {
    let (_app, url) = app().await;
    let config = config_text(&url, "", "");
    let session = format!("session={}", alice());
    let run = explain(
        &config,
        "http://app.example.com/",
        &[
            "--cookie",
            &session,
            "--cookie",
            "__isp_booted=someone-else.forged",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   __isp_booted: sent, but its signature does not verify (forged, or signed with \
         another Messenger secret): ignored",
        "   injected: boot",
        "=> injected: boot",
    ]);

    // Booted for someone else in this browser: shut down first, then boot this user.
    let run = explain(
        &config,
        "http://app.example.com/",
        &["--cookie", &session, "--cookie", &booted_cookie("user-7")],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   __isp_booted: valid, booted for someone else (a user switch): the page shuts the \
         Messenger down before it boots",
        "   injected: shutdown then boot",
        "     user_id: \"user-42\"",
        "=> injected: shutdown then boot",
    ]);

    // Booted for this user already: a plain boot.
    let run = explain(
        &config,
        "http://app.example.com/",
        &["--cookie", &session, "--cookie", &booted_cookie("user-42")],
    )
    .await;
    run.assert_lines(&[
        "   __isp_booted: valid, booted for this user: no shutdown needed",
        "=> injected: boot",
    ]);
}

#[tokio::test]
async fn a_store_that_is_down_is_an_explanation_not_a_failure() {
    let (_app, url) = app().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let session = format!(
        r#"[session]
cookie = "connect.sid"
resolver = "redis"
timeout = "2s"
[session.fields]
user_id = "/user/id"
[session.redis]
url = "redis://127.0.0.1:{closed}/0"
key = "sess:{{sid}}"
cookie_format = "raw"
"#
    );
    let run = explain(
        &config_with_session(&url, &session),
        "http://app.example.com/",
        &["--cookie", "connect.sid=0123456789abcdef0123"],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.assert_lines(&[
        "   session.cookie \"connect.sid\": found, 0123… (20 chars)",
        &format!("   resolver: redis (redis at 127.0.0.1:{closed})"),
        "   passed: resolver_error",
        "   why: the session store failed: whom the session names is unknown, so the page is \
         served without identity",
        "=> passed: resolver_error",
    ]);
    let looked = run.line_starting("   looked up in ");
    assert!(
        looked.contains(" ms: error: session store error: redis: Connection refused"),
        "{looked}"
    );
    assert!(!run.stdout.contains("0123456789abcdef0123"));
}

#[tokio::test]
async fn an_ambiguous_cookie_header_is_said_to_be_refused() {
    let (_app, url) = app().await;
    let session = format!("session={}", alice());
    let run = explain(
        &config_text(&url, "", ""),
        "http://app.example.com/",
        &["--cookie", &session, "--cookie", "session=planted"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_lines(&[
        "   session.cookie \"session\": sent 2 times: ambiguous (frameworks disagree on which \
         one the app reads), so the proxy refuses it: no session",
        "=> passed: no_session",
    ]);
}

#[tokio::test]
async fn a_bad_config_or_url_exits_2_with_the_problem() {
    let (_app, url) = app().await;
    let bad =
        config_text(&url, "", "").replace("resolver = \"jwt\"", "resolver = \"crystal-ball\"");
    let run = explain(&bad, "http://app.example.com/", &[]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stdout
            .starts_with("session.resolver: unknown resolver \"crystal-ball\""),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("problem(s)"), "{}", run.stderr);

    let run = explain(&config_text(&url, "", ""), "ftp://app.example.com/", &[]).await;
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr.trim_end(),
        "error: unusable URL \"ftp://app.example.com/\": only http and https pages can be explained"
    );
}
