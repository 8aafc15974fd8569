//! Replicas keep no state one another needs: two proxy processes behind a round-robin load
//! balancer (a TCP one in the test, a new connection per request, so requests alternate),
//! driven through login, token refresh, user switch and logout with one cookie jar, give the
//! same outcomes as one proxy. The markers are signed cookies and the caches per process.
#![cfg(feature = "server")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::process::ProxyProcess;
use common::*;
use http::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

/// An app with logins (`/login/<user>` sets a session JWT), a redirect logout and pages.
async fn app() -> Upstream {
    upstream(|req| async move {
        let path = req.uri().path().to_string();
        let mut r = Response::new(empty());
        if let Some(user) = path.strip_prefix("/login/") {
            let jwt = session_jwt(json!({"sub": user, "exp": now_secs() + 3600}));
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut().insert("location", "/".parse().unwrap());
            r.headers_mut().insert(
                "set-cookie",
                format!("session={jwt}; Path=/").parse().unwrap(),
            );
        } else if path == "/logout" {
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut().insert("location", "/".parse().unwrap());
            r.headers_mut()
                .insert("set-cookie", "session=; Path=/; Max-Age=0".parse().unwrap());
        } else {
            r = Response::new(full(APP_PAGE));
            r.headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
        }
        r
    })
    .await
}

/// A round-robin TCP balancer: each accepted connection goes to the next backend. Counts
/// the connections each one got.
async fn balancer(backends: Vec<SocketAddr>) -> (SocketAddr, Arc<Vec<AtomicUsize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served: Arc<Vec<AtomicUsize>> =
        Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
    let counts = served.clone();
    tokio::spawn(async move {
        let mut next = 0;
        while let Ok((mut client, _)) = listener.accept().await {
            let at = next % backends.len();
            next += 1;
            counts[at].fetch_add(1, Ordering::SeqCst);
            let backend = backends[at];
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, served)
}

/// What a step showed the browser, without the parts that differ between runs (token
/// times): the status, whom the page booted, whether it shut down first, and the markers the
/// jar holds afterwards.
#[derive(Debug, PartialEq)]
struct Seen {
    step: &'static str,
    status: u16,
    booted: Option<String>,
    shutdown: bool,
    token_user: Option<String>,
    pending_shutdown: bool,
    booted_record: bool,
}

/// The flows of tests/logout.rs, through `entry`, a new connection per request.
async fn drive(entry: SocketAddr) -> Vec<Seen> {
    let client: Client<_, TestBody> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let mut jar = Jar::default();
    let mut seen = Vec::new();
    let steps: [(&'static str, &str); 9] = [
        ("visitor", "/"),
        ("alice logs in", "/login/alice"),
        ("alice's page", "/"),
        ("token refresh", "/__intercom/token"),
        ("bob logs in without a logout", "/login/bob"),
        ("bob's page", "/"),
        ("bob logs out", "/logout"),
        ("next page", "/"),
        ("and the next", "/"),
    ];
    for (step, path) in steps {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(format!("http://{entry}{path}"))
            .header("accept", "text/html");
        if !jar.is_empty() {
            req = req.header("cookie", jar.header());
        }
        let response = client.request(req.body(empty()).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        jar.absorb(response.headers());
        let page = String::from_utf8_lossy(&body_bytes(response.into_body()).await).into_owned();
        jar.run_scripts(&page);
        let token_user = path.contains("token").then(|| {
            let body: serde_json::Value = serde_json::from_str(&page).unwrap();
            let claims = verify_messenger_jwt(body["intercom_user_jwt"].as_str().unwrap());
            claims["user_id"].as_str().unwrap().to_string()
        });
        seen.push(Seen {
            step,
            status,
            booted: booted_user(&page),
            shutdown: runs_shutdown(&page),
            token_user,
            pending_shutdown: jar.has("__isp_shutdown"),
            booted_record: jar.has("__isp_booted"),
        });
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_a_balancer_behave_as_one_proxy() {
    let app = app().await;
    let config = config_text(
        &format!("http://{}", app.addr),
        "",
        "\n[logout]\npaths = [\"/logout\"]\n",
    );
    let one = ProxyProcess::start(&config);
    let alone = drive(one.addr).await;

    let replicas = [ProxyProcess::start(&config), ProxyProcess::start(&config)];
    let (entry, served) = balancer(replicas.iter().map(|r| r.addr).collect()).await;
    let balanced = drive(entry).await;
    let counts: Vec<usize> = served.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [5, 4], "requests alternate between the replicas");

    assert_eq!(balanced, alone);
    // And what that is, step by step.
    let at = |step: &str| alone.iter().find(|s| s.step == step).unwrap();
    assert_eq!(at("visitor").booted, None);
    assert_eq!(at("alice's page").booted.as_deref(), Some("alice"));
    assert_eq!(at("token refresh").token_user.as_deref(), Some("alice"));
    let bob = at("bob's page");
    assert!(
        bob.shutdown,
        "the switch shuts alice's Messenger down first"
    );
    assert_eq!(bob.booted.as_deref(), Some("bob"));
    assert!(at("bob logs out").pending_shutdown);
    let next = at("next page");
    assert!(next.shutdown && next.booted.is_none() && !next.pending_shutdown);
    let last = at("and the next");
    assert!(!last.shutdown && !last.booted_record);
}
