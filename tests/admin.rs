//! The admin listener (`[admin] listen`) on the real service stack: `/metrics` counts what
//! known requests did, `/healthz` fails once shutdown begins, and `/readyz` follows a real
//! Redis and a real PostgreSQL being stopped and started again. The stores are private
//! ones (tests/common/stores.rs: a redis-server and a PostgreSQL cluster made with initdb,
//! each on a free port), so killing them disturbs no other test.
#![cfg(all(feature = "server", feature = "redis", feature = "sql"))]

mod common;
#[path = "common/stores.rs"]
#[allow(dead_code)] // pausing a store is for other tests
mod stores;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use http::{Method, Request, Response, StatusCode};
use intercom_secure_proxy::config::Config;
use serde_json::json;
use stores::{PrivatePostgres, PrivateRedis};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

/// The counters are per process: the tests of this binary take turns.
static TURN: Mutex<()> = Mutex::const_new(());

/// How long a readiness change may take to show (the brief's "within a second", with room
/// for a loaded 2-core machine).
const FOLLOWS_WITHIN: Duration = Duration::from_secs(2);

const ADMIN: &str = "\n[admin]\nlisten = \"127.0.0.1:0\"\n";

/// The proxy on the real stack, with its admin listener.
struct Running {
    addr: SocketAddr,
    admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn start(config: &str) -> Running {
    let config = Config::from_toml(config, "admin.toml", &test_env())
        .unwrap_or_else(|e| panic!("config rejected:\n{e}"));
    let server = intercom_secure_proxy::bind(&config).await.expect("binds");
    let addr = server.local_addrs()[0];
    let admin = server.admin_addr().expect("an admin listener");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        admin,
        stop: Some(stop),
        task: Some(task),
    }
}

/// `GET path` on a fresh connection: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let raw = raw_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (status, body.to_string())
}

/// One series' value in the exposition (0 when absent).
fn value(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The change in each series across `action`.
async fn deltas<F: AsyncFnOnce()>(admin: SocketAddr, series: &[&str], action: F) -> Vec<u64> {
    let before = get(admin, "/metrics").await.1;
    action().await;
    let after = get(admin, "/metrics").await.1;
    series
        .iter()
        .map(|s| value(&after, s) - value(&before, s))
        .collect()
}

fn html(body: &str) -> Response<TestBody> {
    let mut r = Response::new(full(format!(
        "<html><head><title>t</title>{body}</head><body>app</body></html>"
    )));
    r.headers_mut()
        .insert("content-type", "text/html".parse().unwrap());
    r
}

async fn app() -> Upstream {
    upstream(|req| async move {
        match req.uri().path() {
            "/api" => {
                let mut r = Response::new(full("{}"));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                r
            }
            "/own-intercom" => {
                html("<script src=\"https://widget.intercom.io/widget/testapp1\"></script>")
            }
            "/logout" if req.method() == Method::POST => {
                let mut r = Response::new(empty());
                *r.status_mut() = StatusCode::SEE_OTHER;
                r.headers_mut().insert("location", "/".parse().unwrap());
                r
            }
            _ => html(""),
        }
    })
    .await
}

/// A browser's request: `cookie` is the whole Cookie header.
async fn page(proxy: &Running, method: Method, path: &str, cookie: &str) -> Response<Vec<u8>> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", proxy.addr))
        .header("accept", "text/html");
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    let response = client().request(req.body(empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, body_bytes(body).await.to_vec())
}

fn session(user: &str) -> String {
    format!(
        "session={}",
        session_jwt(json!({"sub": user, "exp": now_secs() + 600}))
    )
}

#[tokio::test]
async fn metrics_count_what_known_requests_did() {
    let _turn = TURN.lock().await;
    let app = app().await;
    let routes = "\n[[routes]]\npath = \"/admin/**\"\ninject = false\n";
    let proxy = start(&config_text(
        &format!("http://{}", app.addr),
        "",
        &format!("{routes}{ADMIN}"),
    ))
    .await;
    let (admin, alice) = (proxy.admin, session("alice"));

    let d = deltas(
        admin,
        &[
            "isp_pages_injected_total",
            "isp_jwts_signed_total",
            "isp_requests_total{class=\"2xx\"}",
            "isp_upstream_response_seconds_count",
        ],
        async || {
            let r = page(&proxy, Method::GET, "/", &alice).await;
            assert!(String::from_utf8_lossy(r.body()).contains("intercom_user_jwt"));
        },
    )
    .await;
    assert_eq!(d, [1, 1, 1, 1], "an injected page");

    for (path, cookie, series) in [
        ("/", String::new(), "no_session"),
        ("/", "session=not-a-jwt".to_string(), "visitor"),
        ("/admin/users", alice.clone(), "route_off"),
        ("/api", alice.clone(), "not_html"),
        ("/own-intercom", alice.clone(), "messenger_present"),
    ] {
        let series = format!("isp_pages_passed_total{{reason=\"{series}\"}}");
        let d = deltas(admin, &[&series, "isp_pages_injected_total"], async || {
            page(&proxy, Method::GET, path, &cookie).await;
        })
        .await;
        assert_eq!(d, [1, 0], "{series}");
    }

    // A stylesheet is no page load: counted by status only.
    let d = deltas(
        admin,
        &[
            "isp_requests_total{class=\"2xx\"}",
            "isp_pages_injected_total",
        ],
        async || {
            let req = Request::get(format!("http://{}/site.css", proxy.addr))
                .header("sec-fetch-dest", "style")
                .body(empty())
                .unwrap();
            client().request(req).await.unwrap();
        },
    )
    .await;
    assert_eq!(d, [1, 0]);

    let d = deltas(
        admin,
        &[
            "isp_token_answers_total{status=\"200\"}",
            "isp_token_answers_total{status=\"401\"}",
        ],
        async || {
            for cookie in [alice.as_str(), ""] {
                let mut req = Request::get(format!("http://{}/__intercom/token", proxy.addr));
                if !cookie.is_empty() {
                    req = req.header("cookie", cookie);
                }
                client().request(req.body(empty()).unwrap()).await.unwrap();
            }
        },
    )
    .await;
    assert_eq!(d, [1, 1], "a token refresh, and one without a session");

    // Alice's browser, then Bob's session in it: a user switch.
    let first = page(&proxy, Method::GET, "/", &alice).await;
    let marker = set_cookie(first.headers(), "__isp_booted").expect("a booted-for record");
    let bob = format!("{}; {marker}", session("bob"));
    let d = deltas(admin, &["isp_user_switches_total"], async || {
        page(&proxy, Method::GET, "/", &bob).await;
    })
    .await;
    assert_eq!(d, [1], "a user switch");

    let d = deltas(
        admin,
        &[
            "isp_logouts_total{shape=\"redirect\"}",
            "isp_logouts_total{shape=\"html\"}",
        ],
        async || {
            page(&proxy, Method::POST, "/logout", &alice).await;
            page(&proxy, Method::GET, "/logout", &alice).await;
        },
    )
    .await;
    assert_eq!(d, [1, 1], "a redirect logout, then a logout page");

    let d = deltas(
        admin,
        &["isp_config_reloads_total{result=\"failure\"}"],
        async || {
            intercom_secure_proxy::metrics::reload(false);
        },
    )
    .await;
    assert_eq!(d, [1]);

    // No label carries a user, a path or a cookie.
    let metrics = get(admin, "/metrics").await.1;
    for private in ["alice", "bob", "/own-intercom", "/admin", "not-a-jwt"] {
        assert!(!metrics.contains(private), "{private} in\n{metrics}");
    }
}

#[tokio::test]
async fn upstream_failures_are_counted_by_kind() {
    let _turn = TURN.lock().await;
    // A port nothing listens on.
    let dead = stores::free_port();
    let proxy = start(&config_text(&format!("http://127.0.0.1:{dead}"), "", ADMIN)).await;
    let d = deltas(
        proxy.admin,
        &[
            "isp_upstream_errors_total{kind=\"connect\"}",
            "isp_requests_total{class=\"5xx\"}",
        ],
        async || {
            let r = page(&proxy, Method::GET, "/", "").await;
            assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        },
    )
    .await;
    assert_eq!(d, [1, 1]);
    let (status, body) = get(proxy.admin, "/readyz").await;
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["ready"], false);
    assert!(
        body["down"]["upstream"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("127.0.0.1:{dead}: "))),
        "{body}"
    );
    assert_eq!(body["down"].as_object().map(|d| d.len()), Some(1), "{body}");
    assert_eq!(get(proxy.admin, "/nope").await.0, 404);
}

#[tokio::test]
async fn healthz_fails_once_shutdown_begins_and_the_listener_closes_after_the_drain() {
    let _turn = TURN.lock().await;
    // An app that says when it has the request, then holds it until told: the drain lasts.
    let (arrived, arrival) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let hold = std::sync::Arc::new(Mutex::new(Some((arrived, released))));
    let app = upstream(move |_req| {
        let hold = hold.clone();
        async move {
            if let Some((arrived, released)) = hold.lock().await.take() {
                let _ = arrived.send(());
                let _ = released.await;
            }
            html("")
        }
    })
    .await;
    let mut proxy = start(&config_text(&format!("http://{}", app.addr), "", ADMIN)).await;
    assert_eq!(get(proxy.admin, "/healthz").await, (200, "ok\n".into()));
    let addr = proxy.addr;
    let held = tokio::spawn(async move {
        let req = Request::get(format!("http://{addr}/slow"))
            .body(empty())
            .unwrap();
        client().request(req).await.map(|r| r.status())
    });
    tokio::time::timeout(Duration::from_secs(5), arrival)
        .await
        .expect("the request reaches the app")
        .unwrap();
    let _ = proxy.stop.take().map(|stop| stop.send(()));
    let serving = proxy.task.take().expect("running");
    let deadline = Instant::now() + FOLLOWS_WITHIN;
    loop {
        let (status, body) = get(proxy.admin, "/healthz").await;
        if status == 503 {
            assert_eq!(body, "shutting down\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "healthz still {status} after shutdown began"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = get(proxy.admin, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("\"proxy\":\"shutting down\""), "{body}");
    let _ = release.send(());
    assert_eq!(
        held.await.unwrap().unwrap(),
        StatusCode::OK,
        "in flight: finished"
    );
    serving.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(proxy.admin).await.is_err(),
        "the admin listener is closed once the proxy stopped"
    );
}

/// Polls `/readyz` until its readiness is `ready`; returns the last body.
async fn readyz_becomes(admin: SocketAddr, ready: bool, what: &str) -> serde_json::Value {
    let started = Instant::now();
    let deadline = started + FOLLOWS_WITHIN;
    loop {
        let (status, body) = get(admin, "/readyz").await;
        let parsed: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
        assert_eq!(status == 200, parsed["ready"] == true, "{status} {body}");
        if parsed["ready"] == ready {
            eprintln!("{what}: readyz followed in {:?}", started.elapsed());
            return parsed;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: readyz still says {body} after {FOLLOWS_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_redis_and_postgres_going_down_and_coming_back() {
    let _turn = TURN.lock().await;
    let Some(mut redis) = PrivateRedis::start().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is needed in CI"
        );
        eprintln!("skipped: no redis-server binary");
        return;
    };
    let Some(postgres) = PrivatePostgres::start().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL's server is needed in CI"
        );
        eprintln!("skipped: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)");
        return;
    };
    // Sessions in Redis, users' records from PostgreSQL: both stores behind one resolver.
    // PostgreSQL's URL carries a password (trust auth ignores it) that must never show.
    let redis_url = redis.url();
    let pg_url = format!(
        "postgres://postgres:pgpw-secret@127.0.0.1:{}/postgres",
        postgres.port
    );
    let app = app().await;
    let session = format!(
        r#"
[session]
cookie = "sid"
resolver = "redis"
timeout = "300ms"
[session.fields]
user_id = "/user/id"
email = "/lookup/email"
[session.redis]
url = "{redis_url}"
key = "sess:{{sid}}"
cookie_format = "raw"
[session.lookup]
url = "{pg_url}"
query = "SELECT 'a@example.com' AS email WHERE $1::text IS NOT NULL"
{ADMIN}"#
    );
    let proxy = start(&config_with_session(
        &format!("http://{}", app.addr),
        &session,
    ))
    .await;
    let admin = proxy.admin;
    readyz_becomes(admin, true, "both stores up").await;

    redis.kill();
    let down = readyz_becomes(admin, false, "redis killed").await;
    let said = down["down"]["session store"].as_str().unwrap_or_default();
    assert!(
        said.contains(&format!("redis at 127.0.0.1:{}", redis.port)),
        "{down}"
    );
    assert!(down["down"].get("upstream").is_none(), "{down}");
    redis.restart().await;
    readyz_becomes(admin, true, "redis back").await;

    postgres.kill();
    let down = readyz_becomes(admin, false, "postgres killed").await;
    let said = down["down"]["session store"].as_str().unwrap_or_default();
    assert!(said.contains("user lookup"), "{down}");
    assert!(
        said.contains(&format!("postgres at 127.0.0.1:{}", postgres.port)),
        "{down}"
    );
    postgres.restart().await;
    readyz_becomes(admin, true, "postgres back").await;

    postgres.kill();
    let down = readyz_becomes(admin, false, "postgres killed again").await;
    assert!(
        !down.to_string().contains("pgpw-secret"),
        "no credentials: {down}"
    );
}
