//! Hot reload against the real binary: SIGHUP (through `intercom-secure-proxy reload`) with
//! a good config, a bad one, a rotated Messenger secret and app key under load, and a
//! rewritten file with `watch_config`. The TLS certificate's reload is in `reload_tls.rs`.
#![cfg(feature = "server")]

mod common;
mod reload_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Jar, body_bytes, client, empty, html_app};
use http::Request;
use reload_support::*;

/// GET `path` as a browser page load with the `Cookie` header `cookie`.
async fn page(running: &Running, path: &str, cookie: &str) -> (http::HeaderMap, String) {
    let request = Request::get(format!("http://{}{path}", running.addr))
        .header("accept", "text/html")
        .header("cookie", cookie)
        .body(empty())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body = body_bytes(response.into_body()).await;
    (headers, String::from_utf8_lossy(&body).into_owned())
}

fn ttl(page: &str, secret: &str) -> Option<u64> {
    let claims = messenger_claims(page, secret)?;
    Some(claims["exp"].as_u64()? - claims["iat"].as_u64()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_config_takes_effect_and_restart_only_keys_are_named() {
    let app = html_app().await;
    let good = |dir: &std::path::Path, ttl: &str, workers: &str, rest: &str| {
        config(dir, app.addr, "", ttl, "", rest).replace("workers = 2", workers)
    };
    let running = Running::start(|dir| good(dir, "15m", "workers = 2", ""));
    let cookie = format!("session={}", session("u-1", OLD_APP_KEY));
    let (_, before) = page(&running, "/admin/users", &cookie).await;
    assert_eq!(ttl(&before, OLD_MESSENGER), Some(15 * 60));

    let from = running.lines();
    running.rewrite_config(&good(
        running.dir.path(),
        "20m",
        "workers = 3",
        "[[routes]]\npath = \"/admin/**\"\ninject = false\n",
    ));
    // Found through `[server] pid_file`.
    let config = running.path("proxy.toml");
    let (ok, said) = running.reload_command(&["--config", config.to_str().unwrap()]);
    assert!(ok, "{said}");
    assert!(said.contains(&running.child.id().to_string()), "{said}");
    running.wait_for_log(from, "config reloaded");
    let warned = running.wait_for_log(from, "server.workers");
    assert!(warned.contains("restart"), "{warned}");

    let (_, admin) = page(&running, "/admin/users", &cookie).await;
    assert!(!admin.contains("intercom_user_jwt"), "route turned off");
    let (_, other) = page(&running, "/", &cookie).await;
    assert_eq!(ttl(&other, OLD_MESSENGER), Some(20 * 60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_every_problem_named_and_the_old_one_kept() {
    let app = html_app().await;
    let running = Running::start(|dir| config(dir, app.addr, "", "15m", "", ""));
    let cookie = format!("session={}", session("u-1", OLD_APP_KEY));
    let from = running.lines();
    let bad = config(
        running.dir.path(),
        app.addr,
        "colour = \"blue\"",
        "soon",
        "previous_keys_env = \"NO_SUCH_VARIABLE\"",
        "[[routes]]\npath = \"/admin/**\"\ninject = false\n",
    )
    .replace("app.key", "missing.key");
    running.rewrite_config(&bad);
    running.hup();
    let refused = running.wait_for_log(from, "config reload refused");
    assert!(refused.contains("problem(s)"), "{refused}");
    let log = running.log_since(from).join("\n");
    for key in [
        "server.colour",
        "intercom.token_ttl",
        "session.jwt.key_file",
        "session.jwt.previous_keys_env",
    ] {
        assert!(
            log.contains(&format!("key={key}")),
            "{key} not named:\n{log}"
        );
    }
    assert!(!log.contains("config reloaded"), "{log}");
    // Still serving, under the old config.
    let (_, admin) = page(&running, "/admin/users", &cookie).await;
    assert_eq!(ttl(&admin, OLD_MESSENGER), Some(15 * 60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_config_reloads_a_rewritten_file() {
    let app = html_app().await;
    let watched = |dir: &std::path::Path, rest: &str| {
        config(dir, app.addr, "watch_config = true", "15m", "", rest)
    };
    let running = Running::start(|dir| watched(dir, ""));
    let cookie = format!("session={}", session("u-1", OLD_APP_KEY));
    let (_, before) = page(&running, "/admin/", &cookie).await;
    assert!(before.contains("intercom_user_jwt"));
    let from = running.lines();
    running.rewrite_config(&watched(
        running.dir.path(),
        "[[routes]]\npath = \"/admin/**\"\ninject = false\n",
    ));
    let line = running.wait_for_log(from, "config reloaded");
    assert!(line.contains("config file changed"), "{line}");
    let (_, admin) = page(&running, "/admin/", &cookie).await;
    assert!(!admin.contains("intercom_user_jwt"));
}

/// What the load generator saw: pages signed under each secret, and failures.
#[derive(Default)]
struct Tally {
    old: AtomicU64,
    new: AtomicU64,
    failed: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    /// Counts one answer: a 200 page whose JWT names the user and verifies with either
    /// secret, or a failure.
    fn count(&self, outcome: Result<String, String>) {
        let page = match outcome {
            Ok(page) => page,
            Err(why) => return self.fail(why),
        };
        let named = |secret| {
            messenger_claims(&page, secret).is_some_and(|claims| claims["user_id"] == "u-load")
        };
        if named(OLD_MESSENGER) {
            self.old.fetch_add(1, Ordering::Relaxed);
        } else if named(NEW_MESSENGER) {
            self.new.fetch_add(1, Ordering::Relaxed);
        } else {
            self.fail(format!("no verified JWT in {} bytes", page.len()));
        }
    }

    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.failures.lock().unwrap().push(why);
    }
}

/// Keep-alive requests on a pooled client (two tasks), and requests each on a new
/// connection (one task), until `stop`.
fn load(
    running: &Running,
    tally: &Arc<Tally>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cookie = format!("session={}", session("u-load", OLD_APP_KEY));
    let url = format!("http://{}/", running.addr);
    [false, false, true]
        .into_iter()
        .map(|fresh| {
            let (tally, stop) = (tally.clone(), stop.clone());
            let (cookie, url) = (cookie.clone(), url.clone());
            tokio::spawn(async move {
                let mut pooled = client();
                while !stop.load(Ordering::Relaxed) {
                    if fresh {
                        pooled = client();
                    }
                    let request = Request::get(&url)
                        .header("accept", "text/html")
                        .header("cookie", &cookie)
                        .header("connection", if fresh { "close" } else { "keep-alive" })
                        .body(empty())
                        .unwrap();
                    let outcome = match pooled.request(request).await {
                        Ok(r) if r.status() == 200 => {
                            match http_body_util::BodyExt::collect(r.into_body()).await {
                                Ok(body) => {
                                    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
                                }
                                Err(e) => Err(format!("fresh={fresh}: body: {e}")),
                            }
                        }
                        Ok(r) => Err(format!("fresh={fresh}: status {}", r.status())),
                        Err(e) => Err(format!("fresh={fresh}: {e}")),
                    };
                    tally.count(outcome);
                }
            })
        })
        .collect()
}

async fn wait_until(what: &str, holds: impl Fn() -> bool) {
    let start = Instant::now();
    while !holds() {
        assert!(start.elapsed() < DEADLINE, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secrets_under_load_fail_no_request_and_log_no_one_out() {
    let app = html_app().await;
    let running = Running::start(|dir| config(dir, app.addr, "", "15m", "", ""));
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&running, &tally, &stop);
    wait_until("load before the rotation", || {
        tally.old.load(Ordering::Relaxed) >= 20
    })
    .await;

    // A browser that was shown the Messenger before the rotation: its markers are signed
    // under the old secret.
    let mut alice = Jar::default();
    alice.set("session", &session("alice", OLD_APP_KEY));
    let (headers, before) = page(&running, "/", &alice.header()).await;
    assert!(messenger_claims(&before, OLD_MESSENGER).is_some());
    alice.absorb(&headers);
    let marker_before = alice
        .get("__isp_booted")
        .expect("a booted-for marker")
        .to_string();
    // Then Bob signs in on Alice's browser, after the rotation.
    let mut bob = alice.clone();
    bob.set("session", &session("bob", NEW_APP_KEY));
    // And a page Alice keeps open refreshes its token.
    let open_page = alice.clone();

    // Rotate the Messenger secret and the app's key, the old app key listed as previous.
    write(&running.path("messenger.secret"), NEW_MESSENGER);
    write(&running.path("app.key"), NEW_APP_KEY);
    write(
        &running.path("app.previous"),
        &format!("unused-key, {OLD_APP_KEY}"),
    );
    let previous = format!("previous_keys_file = {:?}", running.path("app.previous"));
    let from = running.lines();
    running.rewrite_config(&config(
        running.dir.path(),
        app.addr,
        "",
        "15m",
        &previous,
        "",
    ));
    running.hup();
    running.wait_for_log(from, "config reloaded");
    wait_until("load after the rotation", || {
        tally.new.load(Ordering::Relaxed) >= 20
    })
    .await;

    // Alice's next page: no shutdown, her Messenger boots under the new secret, and her
    // record is re-signed under it.
    let (headers, after) = page(&running, "/", &alice.header()).await;
    assert!(
        !common::runs_shutdown(&after),
        "shutdown after a rotation:\n{after}"
    );
    let claims = messenger_claims(&after, NEW_MESSENGER).expect("signed with the new secret");
    assert_eq!(claims["user_id"], "alice");
    assert!(messenger_claims(&after, OLD_MESSENGER).is_none());
    alice.absorb(&headers);
    assert_ne!(alice.get("__isp_booted"), Some(marker_before.as_str()));
    // Bob is someone else: Alice's Messenger, recorded under the old secret, shuts down.
    let (_, switched) = page(&running, "/", &bob.header()).await;
    assert!(
        common::runs_shutdown(&switched),
        "a user switch across a rotation shuts down"
    );
    let claims = messenger_claims(&switched, NEW_MESSENGER).expect("then boots for Bob");
    assert_eq!(claims["user_id"], "bob");
    // The page booted before the rotation names Alice by her old record: still her.
    let booted_for = marker_before.rsplit_once('.').unwrap().0;
    let request = Request::get(format!(
        "http://{}/__intercom/token?path=/&for={booted_for}",
        running.addr
    ))
    .header("cookie", open_page.header())
    .body(empty())
    .unwrap();
    let refreshed = client().request(request).await.unwrap();
    assert_eq!(
        refreshed.status(),
        200,
        "a refresh across a rotation is no conflict"
    );
    let body = body_bytes(refreshed.into_body()).await;
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let fresh = format!(
        "intercom_user_jwt\":\"{}\"",
        token["intercom_user_jwt"].as_str().unwrap()
    );
    assert_eq!(
        messenger_claims(&fresh, NEW_MESSENGER).unwrap()["user_id"],
        "alice"
    );
    // A session signed with a key the app never had names no one.
    let (_, nobody) = page(
        &running,
        "/",
        &format!("session={}", session("eve", "forged")),
    )
    .await;
    assert!(!nobody.contains("intercom_user_jwt"));

    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let failures = tally.failures.lock().unwrap();
    eprintln!(
        "load: {} pages under the old secret, {} under the new, {} failed",
        tally.old.load(Ordering::Relaxed),
        tally.new.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed)
    );
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "{failures:?}");
}
