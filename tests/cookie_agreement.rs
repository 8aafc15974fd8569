//! The proxy reads the session cookie only from `Cookie` headers that the apps' own parsers
//! read the same way: each header of a table of tricky ones goes through Python's
//! `http.cookies.SimpleCookie`, Werkzeug's and Django's `parse_cookie` (the fixtures' venv,
//! tests/common/python.rs), Node's `cookie` (Express, tests/fixtures/express-app), Rack's
//! `parse_cookies_header` (Rails, Debian's ruby-rails) and PHP's `$_COOKIE` (php -S), and
//! whenever the proxy names a session value, every one of them reads that same cookie: what
//! it reads when that cookie is sent alone (Node, Rack and PHP decode escapes in values).
//! A parser that is missing is "skipped: …", except in CI, where it fails.
#![cfg(feature = "server")]

mod common;

use std::path::Path;
use std::process::Command;

use common::python::{python_env, python_output};
use common::*;
use http::{HeaderMap, HeaderValue, Request};
use intercom_secure_proxy::identity::session_cookie;
use serde_json::{Value, json};

/// Tricky `Cookie` headers and what the proxy reads for `session` in each.
const TABLE: &[(&str, Option<&str>)] = &[
    // What browsers send, with the value formats of the supported frameworks.
    ("session=abc", Some("abc")),
    ("a=1; session=abc; b=2", Some("abc")),
    ("a=1;session=abc", Some("abc")),
    ("a=1;  session=abc;", Some("abc")),
    (
        "_ga=GA1.2.1.2; csrftoken=x; session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln-_",
        Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln-_"),
    ),
    ("session=s%3Aabc.def%2Bx", Some("s%3Aabc.def%2Bx")),
    (
        "session=eyJpdiI6IkFCIn0%3D; XSRF-TOKEN=eyJ4Ijp9",
        Some("eyJpdiI6IkFCIn0%3D"),
    ),
    ("session=YWJj--ZGVm--Z2hp", Some("YWJj--ZGVm--Z2hp")),
    ("session=ab+c/d==", Some("ab+c/d==")),
    ("session=a=b=c", Some("a=b=c")),
    ("session=a1,b2-c3", Some("a1,b2-c3")),
    (
        "session=.eJyrVkrOz0vOz01VslIqS8wpTVWqBQA",
        Some(".eJyrVkrOz0vOz01VslIqS8wpTVWqBQA"),
    ),
    ("session=abc:1u2v3w:x-Y_z", Some("abc:1u2v3w:x-Y_z")),
    // Other cookies the parsers all read past.
    (
        "a=\"quoted\"; b=\"with space\"; c=; d=x,y; e={}[]; $Version=1; session=abc",
        Some("abc"),
    ),
    (
        "my_session=1; session_id=2; sessions=3; Session=4; session=abc",
        Some("abc"),
    ),
    // After the session cookie, only what could void the header matters.
    (
        "session=abc; path=/; consent={\"a\":1}; x=\"; y=a\\b;;",
        Some("abc"),
    ),
    // The reported headers: SimpleCookie and Werkzeug read one cookie `x` up to the closing
    // quote (no session), the others the planted session.
    ("x=\"a; session=attacker; y=b\"", None),
    // Rack before 2.2 splits at `,` (the first wins), SimpleCookie at the space (the last).
    ("foo=1, session=alice; session=bob", None),
    ("session=bob; foo=1, session=alice", None),
    // Quotes.
    ("session=\"abc\"", None),
    ("session=\"ab;c\"", None),
    ("session=ab\"c", None),
    ("a=\"x\\\"; session=evil; y=\\\"\"; session=good", None),
    ("a={\"x\":1}; session=abc", None),
    ("a=\"b; session=abc", None),
    // Whitespace.
    ("session=a b", None),
    ("session=abc ; a=1", None),
    ("session = abc", None),
    ("a=1;\tsession=abc", None),
    ("a=1 session=abc", None),
    ("session=abc; a=1 session=evil", None),
    ("session=abc; a=b c", None),
    // Commas.
    ("session=abc,session=evil", None),
    ("a=1,session=evil; session=abc", None),
    // Other spellings of the name.
    ("session[x]=1; session=abc", None),
    ("session=abc; session[x]=1", None),
    ("session =evil; session=abc", None),
    ("%73ession=evil; session=abc", None),
    // Pairs SimpleCookie stops at, drops the header for, or raises on.
    ("junk; session=abc", None),
    ("session=abc; junk", None),
    ("a=1;; session=abc", None),
    ("=a; session=abc", None),
    ("path=/; session=abc", None),
    ("a/b=1; session=abc", None),
    ("session=abc; a/b=1", None),
    ("session=abc; $foo=1", None),
    ("a=x\\y; session=abc", None),
    // Duplicates, an empty value.
    ("session=abc; session=abc", None),
    ("session=abc; session=def", None),
    ("session=", None),
];

fn proxy_reads(header: &str) -> Option<String> {
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(header).unwrap());
    session_cookie(&headers, "session").map(str::to_string)
}

/// The table as the scripts take it: `[[header, proxy's value or null], …]`.
fn table_json() -> String {
    let rows: Vec<Value> = TABLE
        .iter()
        .map(|(header, _)| json!([header, proxy_reads(header)]))
        .collect();
    Value::Array(rows).to_string()
}

/// Checks one parser's readings, `[{"got": …, "alone": …}, …]` in table order: `got` is what
/// it read for `session` in the header, `alone` what it reads in `session=<proxy's value>`.
fn assert_agrees(parser: &str, readings: &[Value]) {
    assert_eq!(readings.len(), TABLE.len(), "{parser}");
    let mut read = 0;
    for ((header, _), reading) in TABLE.iter().zip(readings) {
        let Some(value) = proxy_reads(header) else {
            continue;
        };
        let alone = &reading["alone"];
        assert!(
            alone.is_string(),
            "{parser} cannot read `session={value}` alone: {alone}"
        );
        assert_eq!(
            &reading["got"], alone,
            "{parser} reads another session than the proxy's {value:?} in {header:?}"
        );
        read += 1;
    }
    assert!(read >= 10, "{parser}: only {read} headers were read");
}

#[test]
fn the_proxy_reads_what_the_table_says() {
    for (header, want) in TABLE {
        assert_eq!(proxy_reads(header).as_deref(), *want, "{header:?}");
    }
}

const PYTHON: &str = r#"
import json, sys
from http.cookies import SimpleCookie, CookieError
from werkzeug.http import parse_cookie as werkzeug
from django.http.cookie import parse_cookie as django

def simple(header):
    try:
        cookie = SimpleCookie()
        cookie.load(header)
    except CookieError:
        return None
    return cookie["session"].value if "session" in cookie else None

parsers = {
    "SimpleCookie": simple,
    "werkzeug": lambda h: werkzeug(h).get("session"),
    "django": lambda h: django(h).get("session"),
}
out = {name: [] for name in parsers}
for header, value in json.loads(sys.argv[1]):
    for name, parse in parsers.items():
        alone = parse("session=" + value) if value is not None else None
        out[name].append({"got": parse(header), "alone": alone})
print(json.dumps(out))
"#;

#[test]
fn python_parsers_read_the_proxys_session() {
    let Some(_venv) = python_env() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = python_output(dir, PYTHON, &[&table_json()], &[]);
    let out: Value = serde_json::from_str(&out).unwrap();
    for parser in ["SimpleCookie", "werkzeug", "django"] {
        assert_agrees(parser, out[parser].as_array().unwrap());
    }
    // The reported headers are ones these parsers read differently.
    let got = |parser: &str, header: &str| {
        let row = TABLE.iter().position(|(h, _)| *h == header).unwrap();
        out[parser][row]["got"].clone()
    };
    let planted = "x=\"a; session=attacker; y=b\"";
    assert_eq!(got("SimpleCookie", planted), Value::Null);
    assert_eq!(got("werkzeug", planted), Value::Null);
    assert_eq!(got("django", planted), "attacker");
    let beside = "session=bob; foo=1, session=alice";
    assert_eq!(got("SimpleCookie", beside), "alice");
    assert_eq!(got("werkzeug", beside), "bob");
}

const NODE: &str = r#"
const cookie = require(process.argv[1] + '/node_modules/cookie');
const read = (h) => { const v = cookie.parse(h).session; return v === undefined ? null : v; };
const rows = JSON.parse(process.argv[2]);
console.log(JSON.stringify(rows.map(([header, value]) => ({
  got: read(header),
  alone: value === null ? null : read('session=' + value),
}))));
"#;

#[test]
fn node_cookie_reads_the_proxys_session() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/express-app");
    if !npm_ci(&dir) {
        assert!(
            std::env::var_os("CI").is_none(),
            "npm ci failed in tests/fixtures/express-app"
        );
        eprintln!("skipped: npm ci failed in tests/fixtures/express-app (Node.js and npm needed)");
        return;
    }
    let out = Command::new("node")
        .arg("-e")
        .arg(NODE)
        .arg(&dir)
        .arg(table_json())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_agrees("node cookie", out.as_array().unwrap());
}

const RUBY: &str = r#"
require 'json'
require 'rack'
rows = JSON.parse(ARGV[0])
puts JSON.generate(rows.map { |header, value|
  {
    'got' => Rack::Utils.parse_cookies_header(header)['session'],
    'alone' => value && Rack::Utils.parse_cookies_header("session=#{value}")['session'],
  }
})
"#;

#[test]
fn rack_reads_the_proxys_session() {
    let available = Command::new("ruby")
        .args(["-e", "require 'rack'"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "ruby's rack is missing (apt-get install ruby-rails)"
        );
        eprintln!("skipped: ruby's rack is missing (apt-get install ruby-rails)");
        return;
    }
    let out = Command::new("ruby")
        .arg("-e")
        .arg(RUBY)
        .arg(table_json())
        .output()
        .expect("ruby runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_agrees("rack", out.as_array().unwrap());
}

#[tokio::test]
async fn php_reads_the_proxys_session() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cookies.php"),
        "<?php header('Content-Type: application/json'); \
         echo json_encode($_COOKIE['session'] ?? null);",
    )
    .unwrap();
    let Some(php) = start_php(dir.path(), "cookies.php", &[], &[]) else {
        return;
    };
    let read = async |header: &str| -> Value {
        let request = Request::get(format!("http://127.0.0.1:{}/", php.port))
            .header("cookie", header)
            .body(empty())
            .unwrap();
        let response = client().request(request).await.unwrap();
        serde_json::from_slice(&body_bytes(response.into_body()).await).unwrap()
    };
    let mut readings = Vec::new();
    for (header, _) in TABLE {
        let alone = match proxy_reads(header) {
            Some(value) => read(&format!("session={value}")).await,
            None => Value::Null,
        };
        readings.push(json!({"got": read(header).await, "alone": alone}));
    }
    assert_agrees("php", &readings);
}

/// Through the running proxy: the reported headers boot no one.
#[tokio::test]
async fn headers_the_app_reads_otherwise_get_no_messenger_identity() {
    let app = html_app().await;
    let proxy = proxy_with(&config_text(&format!("http://{}", app.addr), "", "")).await;
    let jwt = |user: &str| {
        session_jwt(json!({
            "sub": user,
            "email": format!("{user}@example.com"),
            "exp": now_secs() + 3600,
        }))
    };
    let (attacker, alice, bob) = (jwt("attacker"), jwt("alice"), jwt("bob"));
    // Control: an ordinary header with the same cookies boots the session's user.
    let (_, page) = get_page(&proxy, "/", Some(&format!("x=a; session={bob}; y=b"))).await;
    assert_eq!(messenger_user(&page).as_deref(), Some("bob"));
    for cookie in [
        // A logged-out browser with cookies planted: SimpleCookie and Werkzeug see none.
        format!("x=\"a; session={attacker}; y=b\""),
        // Beside bob's session: Rack before 2.2 and SimpleCookie read alice's.
        format!("foo=1, session={alice}; session={bob}"),
        format!("session={bob}; foo=1, session={alice}"),
    ] {
        let (status, page) = get_page(&proxy, "/", Some(&cookie)).await;
        assert!(status.is_success(), "{cookie}");
        assert_eq!(messenger_user(&page), None, "{cookie}: {page}");
        assert!(!page.contains("intercom_user_jwt"), "{cookie}");
    }
}
