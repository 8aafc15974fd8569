//! A checked load: many connections (HTTP/1.1 and h2) sending a mix of requests for many
#![allow(dead_code)] // each test binary uses a different part
//! users through the proxy, and every response checked against what that request's user
//! must see. A page's JWT must verify and name the user of that request's cookie, and the page
//! without the snippet must equal the app's page byte for byte (sha256, after decoding). A
//! pass-through body must be the app's bytes. No 5xx unless the run allows it. Used by
//! tests/load.rs (short runs and faults in `cargo test`) and stress/ (a million requests,
//! the soak), as `#[path = "common/load.rs"] mod load;` beside `mod common;`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{
    TestBody, bench_page, booted_user, empty, full, now_secs, runs_shutdown, session_jwt,
    without_snippet_any,
};

/// One body the app serves: the bytes on the wire and the sha256 of the decoded page.
struct Served {
    wire: Bytes,
    decoded_sha: [u8; 32],
    content_type: &'static str,
    coding: Option<&'static str>,
}

/// What the app serves, by path.
pub struct Corpus {
    bodies: HashMap<&'static str, Served>,
}

/// Paths of pages that get the snippet, and of bodies that pass untouched.
pub const PAGES: &[&str] = &["/p/small", "/p/small.gz", "/p/small.br", "/p/large.gz"];
pub const PASS_THROUGH: &[&str] = &["/api/data", "/bin/blob"];

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::CompressorWriter::new(&mut out, 4096, 4, 22)
        .write_all(data)
        .unwrap();
    out
}

impl Corpus {
    pub fn new() -> Arc<Corpus> {
        let small = bench_page("page-34k.html").into_bytes();
        let large = bench_page("page-1.7m.html").into_bytes();
        let json: Vec<u8> = json!({"items": (0..200).map(|i| json!({"id": i, "name": format!("item {i}")})).collect::<Vec<_>>()})
            .to_string()
            .into_bytes();
        let blob: Vec<u8> = (0..65536u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        let mut bodies = HashMap::new();
        let mut add = |path, wire: Vec<u8>, plain: &[u8], content_type, coding| {
            bodies.insert(
                path,
                Served {
                    wire: Bytes::from(wire),
                    decoded_sha: sha(plain),
                    content_type,
                    coding,
                },
            );
        };
        add(
            "/p/small",
            small.clone(),
            &small,
            "text/html; charset=utf-8",
            None,
        );
        add(
            "/p/small.gz",
            gzip(&small),
            &small,
            "text/html; charset=utf-8",
            Some("gzip"),
        );
        add(
            "/p/small.br",
            brotli(&small),
            &small,
            "text/html; charset=utf-8",
            Some("br"),
        );
        add(
            "/p/large.gz",
            gzip(&large),
            &large,
            "text/html; charset=utf-8",
            Some("gzip"),
        );
        add("/api/data", json.clone(), &json, "application/json", None);
        add(
            "/bin/blob",
            blob.clone(),
            &blob,
            "application/octet-stream",
            None,
        );
        Arc::new(Corpus { bodies })
    }

    async fn answer(&self, path: &str, slow: Duration) -> Response<TestBody> {
        if let Some(served) = self.bodies.get(path) {
            let mut r = Response::new(full(served.wire.clone()));
            let h = r.headers_mut();
            h.insert("content-type", served.content_type.parse().unwrap());
            if let Some(coding) = served.coding {
                h.insert("content-encoding", coding.parse().unwrap());
            }
            return r;
        }
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::SEE_OTHER;
        r.headers_mut().insert("location", "/".parse().unwrap());
        if let Some(user) = path.strip_prefix("/login/") {
            let cookie = format!("session={}; Path=/", user_session(user));
            r.headers_mut()
                .insert("set-cookie", cookie.parse().unwrap());
        } else if path == "/logout" {
            r.headers_mut()
                .insert("set-cookie", "session=; Path=/; Max-Age=0".parse().unwrap());
        } else if path == "/slow" {
            tokio::time::sleep(slow).await;
            *r.status_mut() = StatusCode::OK;
        } else {
            *r.status_mut() = StatusCode::NOT_FOUND;
        }
        r
    }
}

/// The app: the corpus, logins (`/login/<user>` sets a session JWT), a redirect logout, and
/// `/slow` (answers after `slow`). It can be killed (its listener and every connection
/// closed at once) and revived on the same port.
pub struct App {
    pub addr: SocketAddr,
    corpus: Arc<Corpus>,
    slow: Duration,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
    }
}

impl App {
    pub async fn start(corpus: &Arc<Corpus>, slow: Duration) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut app = App {
            addr: listener.local_addr().unwrap(),
            corpus: corpus.clone(),
            slow,
            task: None,
        };
        app.serve(listener);
        app
    }

    fn serve(&mut self, listener: TcpListener) {
        let (corpus, slow) = (self.corpus.clone(), self.slow);
        self.task = Some(tokio::spawn(async move {
            // Owned here: aborting this task drops the set, which aborts every connection.
            let mut connections = tokio::task::JoinSet::new();
            let builder = auto::Builder::new(TokioExecutor::new());
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let corpus = corpus.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let corpus = corpus.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            corpus.answer(req.uri().path(), slow).await,
                        )
                    }
                });
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                connections.spawn(conn);
            }
        }));
    }

    /// The app dies: connections reset, new ones refused.
    pub fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// The app is back on its port.
    pub async fn revive(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                // The old socket lingers until the aborted task is dropped.
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("the app cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

/// The session cookie value the app gives `user`.
pub fn user_session(user: &str) -> String {
    session_jwt(json!({"sub": user, "exp": now_secs() + 24 * 3600}))
}

/// How a run goes.
#[derive(Clone)]
pub struct Plan {
    pub requests: u64,
    /// Stop after this long, whatever the count (the soak).
    pub duration: Option<Duration>,
    pub connections: usize,
    pub users: usize,
    /// Take one request in this many to `/slow`.
    pub slow_one_in: Option<u64>,
    /// One request in this many reads the response head, then drops its connection.
    pub vanish_one_in: Option<u64>,
    /// The users' session cookie values; `None`: a session JWT for each.
    pub sessions: Option<Arc<Vec<String>>>,
}

impl Plan {
    pub fn new(requests: u64, connections: usize, users: usize) -> Plan {
        Plan {
            requests,
            duration: None,
            connections,
            users,
            slow_one_in: None,
            vanish_one_in: None,
            sessions: None,
        }
    }
}

/// What the run saw.
#[derive(Default)]
pub struct Report {
    pub sent: AtomicU64,
    pub checked_pages: AtomicU64,
    pub passed_through: AtomicU64,
    pub switches: AtomicU64,
    pub logouts: AtomicU64,
    pub visitors: AtomicU64,
    /// Pages for a user served without the Messenger (allowed only while `identity_optional`).
    pub anonymous_pages: AtomicU64,
    pub mismatches: AtomicU64,
    /// 5xx and transport errors.
    pub errors: AtomicU64,
    pub vanished: AtomicU64,
    /// Pages without identity are fine while a session store is down.
    pub identity_optional: AtomicBool,
    /// 502/504 are fine while the app is down.
    pub app_optional: AtomicBool,
    /// Errors and misses that were allowed at the time.
    pub allowed_errors: AtomicU64,
    /// When identity was last missing (ms since the run began).
    pub last_anonymous_ms: AtomicU64,
    pub examples: Mutex<Vec<String>>,
    pub latencies_us: Mutex<Vec<u32>>,
}

impl Report {
    fn mismatch(&self, what: String) {
        self.mismatches.fetch_add(1, Ordering::Relaxed);
        let mut examples = self.examples.lock().unwrap();
        if examples.len() < 10 {
            examples.push(what);
        }
    }

    fn error(&self, what: String, allowed: bool) {
        if allowed {
            self.allowed_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut examples = self.examples.lock().unwrap();
        if examples.len() < 10 {
            examples.push(what);
        }
    }

    /// Fails the test on any mismatch or unexpected error, with the examples seen.
    pub fn assert_clean(&self, elapsed: Duration) {
        let summary = self.summary(elapsed);
        eprintln!("{summary}");
        let examples = self.examples.lock().unwrap();
        let (mismatches, errors) = (
            self.mismatches.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        );
        assert_eq!(mismatches, 0, "{summary}\n{examples:#?}");
        assert_eq!(errors, 0, "{summary}\n{examples:#?}");
    }

    /// p50 and p99 in milliseconds.
    pub fn percentiles(&self) -> (f64, f64) {
        let mut l = self.latencies_us.lock().unwrap().clone();
        if l.is_empty() {
            return (0.0, 0.0);
        }
        l.sort_unstable();
        let at = |q: f64| f64::from(l[((l.len() - 1) as f64 * q) as usize]) / 1000.0;
        (at(0.5), at(0.99))
    }

    pub fn summary(&self, elapsed: Duration) -> String {
        let sent = self.sent.load(Ordering::Relaxed);
        let (p50, p99) = self.percentiles();
        format!(
            "{sent} requests in {:.1} s ({:.0} req/s), p50 {p50:.2} ms, p99 {p99:.2} ms; \
             pages checked {}, pass-through {}, switches {}, logouts {}, visitors {}, \
             vanished {}; mismatches {}, unexpected errors {}, allowed errors {}, \
             pages without identity {}",
            elapsed.as_secs_f64(),
            sent as f64 / elapsed.as_secs_f64(),
            self.checked_pages.load(Ordering::Relaxed),
            self.passed_through.load(Ordering::Relaxed),
            self.switches.load(Ordering::Relaxed),
            self.logouts.load(Ordering::Relaxed),
            self.visitors.load(Ordering::Relaxed),
            self.vanished.load(Ordering::Relaxed),
            self.mismatches.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.allowed_errors.load(Ordering::Relaxed),
            self.anonymous_pages.load(Ordering::Relaxed),
        )
    }
}

/// A small deterministic generator (xorshift64*), one per connection.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One request of the mix.
enum Ask {
    Page {
        user: Option<usize>,
        path: &'static str,
        switched_from: Option<String>,
    },
    PassThrough {
        user: Option<usize>,
        path: &'static str,
    },
    Logout {
        user: usize,
    },
    Login {
        user: usize,
    },
    Slow,
}

/// The users' session cookies and the signed booted-for records seen for them.
struct Users {
    sessions: Vec<String>,
    records: Mutex<HashMap<usize, String>>,
}

/// Runs `plan` against the proxy at `addr`; `corpus` is what the app serves.
pub async fn run(addr: SocketAddr, corpus: Arc<Corpus>, plan: Plan, report: Arc<Report>) {
    let users = Arc::new(Users {
        sessions: match &plan.sessions {
            Some(values) => values.to_vec(),
            None => (0..plan.users)
                .map(|u| user_session(&format!("user-{u}")))
                .collect(),
        },
        records: Mutex::new(HashMap::new()),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..plan.connections {
        let (corpus, plan, report, users) =
            (corpus.clone(), plan.clone(), report.clone(), users.clone());
        tasks.push(tokio::spawn(async move {
            let h2 = connection % 2 == 1;
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((connection as u64 + 1) * 0x1000_0000_01B3));
            let mut sender: Option<Sender> = None;
            let mut latencies = Vec::new();
            loop {
                if plan.duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
                if report.sent.fetch_add(1, Ordering::Relaxed) >= plan.requests {
                    report.sent.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                let ask = choose(&mut rng, &plan, &users);
                let vanish = plan.vanish_one_in.is_some_and(|n| rng.below(n) == 0);
                if sender.is_none() {
                    match Sender::connect(addr, h2).await {
                        Ok(s) => sender = Some(s),
                        Err(e) => {
                            let allowed = report.app_optional.load(Ordering::Relaxed);
                            report.error(format!("connect: {e}"), allowed);
                            continue;
                        }
                    }
                }
                let Some(s) = sender.as_mut() else { continue };
                let asked = Instant::now();
                let keep = exchange(s, &ask, vanish, &corpus, &users, &report, started).await;
                latencies.push(asked.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                if !keep {
                    sender = None;
                }
            }
            report.latencies_us.lock().unwrap().extend(latencies);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

fn choose(rng: &mut Rng, plan: &Plan, users: &Users) -> Ask {
    if plan.slow_one_in.is_some_and(|n| rng.below(n) == 0) {
        return Ask::Slow;
    }
    let user = rng.below(plan.users as u64) as usize;
    let page = || PAGES[0];
    match rng.below(100) {
        0..=49 => {
            // The large page in one of 25 page loads: it is 50 times the others' work.
            let path = if rng.below(25) == 0 {
                PAGES[3]
            } else {
                PAGES[rng.below(3) as usize]
            };
            Ask::Page {
                user: Some(user),
                path,
                switched_from: None,
            }
        }
        50..=59 => Ask::Page {
            user: None,
            path: PAGES[rng.below(3) as usize],
            switched_from: None,
        },
        60..=74 => Ask::PassThrough {
            user: (rng.below(4) != 0).then_some(user),
            path: PASS_THROUGH[rng.below(2) as usize],
        },
        75..=84 => {
            // A browser that last booted someone else now has `user`'s session.
            let other = (user + 1 + rng.below(plan.users as u64 - 1) as usize) % plan.users;
            let record = users.records.lock().unwrap().get(&other).cloned();
            Ask::Page {
                user: Some(user),
                path: page(),
                switched_from: record,
            }
        }
        85..=92 => Ask::Logout { user },
        _ => Ask::Login { user },
    }
}

/// One client connection, HTTP/1.1 or h2 (prior knowledge).
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<TestBody>),
    H2(hyper::client::conn::http2::SendRequest<TestBody>),
}

impl Sender {
    async fn connect(addr: SocketAddr, h2: bool) -> Result<Sender, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            Ok(Sender::H2(send))
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            Ok(Sender::H1(send))
        }
    }

    async fn send(
        &mut self,
        req: Request<TestBody>,
    ) -> Result<Response<hyper::body::Incoming>, String> {
        match self {
            Sender::H1(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await.map_err(|e| e.to_string())
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// Sends `ask` and checks the answer; false when the connection is to be dropped.
async fn exchange(
    sender: &mut Sender,
    ask: &Ask,
    vanish: bool,
    corpus: &Corpus,
    users: &Users,
    report: &Report,
    started: Instant,
) -> bool {
    let (path, user, record) = match ask {
        Ask::Page {
            user,
            path,
            switched_from,
        } => (path.to_string(), *user, switched_from.clone()),
        Ask::PassThrough { user, path } => (path.to_string(), *user, None),
        Ask::Logout { user } => ("/logout".to_string(), Some(*user), None),
        Ask::Login { user } => (format!("/login/user-{user}"), None, None),
        Ask::Slow => ("/slow".to_string(), None, None),
    };
    let mut cookie = user
        .map(|u| format!("session={}", users.sessions[u]))
        .unwrap_or_default();
    if let Some(record) = &record {
        if !cookie.is_empty() {
            cookie.push_str("; ");
        }
        cookie.push_str(&format!("__isp_booted={record}"));
    }
    let mut req = Request::get(format!("http://load.test{path}"))
        .header("host", "load.test")
        .header("accept", "text/html,application/json;q=0.9,*/*;q=0.8")
        .header("accept-encoding", "gzip, br");
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    // A request may fail if the app was down at any moment of its exchange: when it was
    // sent (read here) or when its answer came (read again below).
    let optional_at_send = report.app_optional.load(Ordering::Relaxed);
    let app_optional = || optional_at_send || report.app_optional.load(Ordering::Relaxed);
    let response = match sender.send(req.body(empty()).unwrap()).await {
        Ok(r) => r,
        Err(e) => {
            report.error(format!("{path}: {e}"), app_optional());
            return false;
        }
    };
    let status = response.status();
    if status.is_server_error() {
        let allowed = app_optional() && matches!(status.as_u16(), 502 | 504);
        report.error(format!("{path}: {status}"), allowed);
        return true;
    }
    if vanish {
        report.vanished.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    let headers = response.headers().clone();
    let body = match response.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            report.error(format!("{path}: body: {e}"), app_optional());
            return false;
        }
    };
    match ask {
        Ask::Page {
            user,
            path,
            switched_from,
        } => {
            let served = &corpus.bodies[path];
            let Some(page) = decode(&body, headers.get("content-encoding")) else {
                report.mismatch(format!("{path}: undecodable body"));
                return true;
            };
            let page = String::from_utf8_lossy(&page);
            report.checked_pages.fetch_add(1, Ordering::Relaxed);
            match user {
                None => {
                    report.visitors.fetch_add(1, Ordering::Relaxed);
                    if sha(page.as_bytes()) != served.decoded_sha {
                        report.mismatch(format!("{path}: a visitor's page was changed"));
                    }
                }
                Some(u) => check_page(
                    &page,
                    *u,
                    served,
                    switched_from.is_some(),
                    users,
                    &headers,
                    report,
                    started,
                ),
            }
        }
        Ask::PassThrough { path, .. } => {
            report.passed_through.fetch_add(1, Ordering::Relaxed);
            if sha(&body) != corpus.bodies[path].decoded_sha {
                report.mismatch(format!("{path}: pass-through body changed"));
            }
        }
        Ask::Logout { .. } => {
            report.logouts.fetch_add(1, Ordering::Relaxed);
            let expired = headers.get_all("set-cookie").iter().any(|v| {
                v.to_str()
                    .is_ok_and(|c| c.starts_with("intercom-session-testapp1=;"))
            });
            if status != StatusCode::SEE_OTHER || !expired {
                report.mismatch(format!(
                    "/logout: {status}, Intercom's cookie expired: {expired}"
                ));
            }
        }
        Ask::Login { .. } | Ask::Slow => {}
    }
    true
}

#[allow(clippy::too_many_arguments)]
fn check_page(
    page: &str,
    user: usize,
    served: &Served,
    switched: bool,
    users: &Users,
    headers: &http::HeaderMap,
    report: &Report,
    started: Instant,
) {
    let expected = format!("user-{user}");
    let Some(booted) = booted_user(page) else {
        if report.identity_optional.load(Ordering::Relaxed) {
            report.anonymous_pages.fetch_add(1, Ordering::Relaxed);
            report
                .last_anonymous_ms
                .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            // Untouched, or only shut down: a store restarted empty (Redis keeps nothing on
            // disk) truly has no such session, and the Messenger booted for it must go.
            let untouched = sha(page.as_bytes()) == served.decoded_sha;
            let shut_down = runs_shutdown(page)
                && sha(without_snippet_any(page).as_bytes()) == served.decoded_sha;
            if !untouched && !shut_down {
                report.mismatch("a page without identity was changed".into());
            }
        } else {
            report.mismatch(format!(
                "{expected}: no Messenger JWT ({} ms into the run)",
                started.elapsed().as_millis()
            ));
        }
        return;
    };
    if booted != expected {
        report.mismatch(format!("{expected}'s page booted {booted}"));
        return;
    }
    if switched {
        report.switches.fetch_add(1, Ordering::Relaxed);
        if !runs_shutdown(page) {
            report.mismatch(format!("{expected}: a user switch without a shutdown"));
        }
    }
    if sha(without_snippet_any(page).as_bytes()) != served.decoded_sha {
        report.mismatch(format!("{expected}: the page outside the snippet changed"));
    }
    // Keep the signed record this page left, for later switches to other users.
    if let Some(record) = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__isp_booted="))
        .and_then(|c| c.split(';').next())
    {
        users
            .records
            .lock()
            .unwrap()
            .insert(user, record.to_string());
    }
}

fn decode(body: &[u8], coding: Option<&http::HeaderValue>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match coding.map(|c| c.as_bytes()) {
        None => out.extend_from_slice(body),
        Some(b"gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .ok()?;
        }
        Some(b"br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .ok()?;
        }
        Some(_) => return None,
    }
    Some(out)
}
