//! Session stores failing under load: a private Redis and a private PostgreSQL (started by the
//! test, on their own ports) paused, killed and restarted while a checked mixed load runs
//! through the real binary. While the store is gone, pages are served without identity
//! (never an error, never someone else's JWT); once it is back, identity returns within a
//! second; the proxy is never restarted.
#![cfg(all(feature = "server", feature = "redis", feature = "sql"))]

mod common;
#[path = "common/load.rs"]
mod load;
#[path = "common/stores.rs"]
mod stores;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::config_with_session;
use common::process::ProxyProcess;
use load::{App, Corpus, Plan, Report};
use stores::{PrivatePostgres, PrivateRedis};

const USERS: usize = 100;

/// One fault run at a time: two loads at once on a 2-core machine starve the proxy until
/// a healthy store's answer misses `session.timeout`, which is no fault of the store.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// How long identity may take to come back once the store answers again (issue 18).
const RECOVERY: Duration = Duration::from_secs(1);

fn sids() -> Arc<Vec<String>> {
    Arc::new((0..USERS).map(|u| format!("sid-{u}")).collect())
}

fn skip(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "no {what} to start");
    eprintln!("skipped: no {what} to start");
}

/// Scales the runs: stress/run.sh faults sets it to 10.
fn scale() -> u64 {
    std::env::var("LOAD_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn proxy(app: &App, session: &str) -> ProxyProcess {
    let config = config_with_session(&format!("http://{}", app.addr), session)
        + "\n[logout]\npaths = [\"/logout\"]\n";
    ProxyProcess::start(&config.replace("timeout = \"2s\"", "timeout = \"10s\""))
}

async fn wait_for_sent(report: &Report, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while report.sent.load(Ordering::SeqCst) < count {
        assert!(Instant::now() < deadline, "the load stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An outage: pages may lack identity from just before `take_away` takes the store away.
/// Returns once the load has run on for a while without it.
async fn store_gone(report: &Report, take_away: impl FnOnce()) {
    report.identity_optional.store(true, Ordering::SeqCst);
    take_away();
    let now = report.sent.load(Ordering::SeqCst);
    wait_for_sent(report, now + 200 * scale()).await;
}

/// The store answers again (the caller brought it back): how long identity took to return.
async fn store_back(report: &Report, started: Instant) -> Duration {
    let back = started.elapsed();
    // Give it twice the target, then nothing may be missing again.
    tokio::time::sleep(2 * RECOVERY).await;
    report.identity_optional.store(false, Ordering::SeqCst);
    let last_miss = Duration::from_millis(report.last_anonymous_ms.load(Ordering::SeqCst));
    last_miss.saturating_sub(back)
}

fn assert_clean(report: &Report, elapsed: Duration, recoveries: &[(&str, Duration)]) {
    eprintln!("identity back after {recoveries:?}");
    report.assert_clean(elapsed);
    assert!(
        report.anonymous_pages.load(Ordering::Relaxed) > 0,
        "the outages were seen"
    );
    for (what, took) in recoveries {
        assert!(*took <= RECOVERY, "{what}: identity back after {took:?}");
    }
}

async fn fill_redis(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for u in 0..USERS {
        let value = serde_json::json!({"user": {"id": format!("user-{u}")}}).to_string();
        let _: () = redis::cmd("SET")
            .arg(format!("sess:sid-{u}"))
            .arg(value)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// A store the scenario can take away and bring back.
trait Store {
    fn pause(&mut self);
    fn resume(&mut self);
    fn kill(&mut self);
    /// Back on its port, holding the users' sessions again.
    async fn restart(&mut self);
}

impl Store for PrivateRedis {
    fn pause(&mut self) {
        PrivateRedis::pause(self);
    }
    fn resume(&mut self) {
        PrivateRedis::resume(self);
    }
    fn kill(&mut self) {
        PrivateRedis::kill(self);
    }
    async fn restart(&mut self) {
        PrivateRedis::restart(self).await;
        // It keeps nothing on disk.
        fill_redis(&self.url()).await;
    }
}

impl Store for PrivatePostgres {
    fn pause(&mut self) {
        PrivatePostgres::pause(self);
    }
    fn resume(&mut self) {
        PrivatePostgres::resume(self);
    }
    fn kill(&mut self) {
        PrivatePostgres::kill(self);
    }
    async fn restart(&mut self) {
        PrivatePostgres::restart(self).await;
    }
}

/// The checked load through a proxy whose `[session]` is `session`, while `store` is paused
/// and resumed, then killed and restarted.
async fn faults_under_load(store: &mut impl Store, session: &str) {
    let corpus = Corpus::new();
    let app = App::start(&corpus, Duration::ZERO).await;
    let mut proxy = proxy(&app, session);
    let resting = proxy.open_fds();
    let report = Arc::new(Report::default());
    let mut plan = Plan::new(6_000 * scale(), 16, USERS);
    plan.sessions = Some(sids());
    let started = Instant::now();
    let run = tokio::spawn(load::run(proxy.addr, corpus, plan, report.clone()));
    wait_for_sent(&report, 1_000).await;

    store_gone(&report, || store.pause()).await;
    store.resume();
    let paused = store_back(&report, started).await;
    store_gone(&report, || store.kill()).await;
    store.restart().await;
    let killed = store_back(&report, started).await;
    run.await.unwrap();
    assert_clean(
        &report,
        started.elapsed(),
        &[("paused", paused), ("killed", killed)],
    );
    assert!(proxy.still_running(), "the proxy was not restarted");
    assert!(
        proxy
            .log
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.contains("panicked"))
    );
    // The dead store's connections were let go (the pool's live ones may stay).
    let after = proxy.fds_settle_to(resting + 64).await;
    assert!(
        after <= resting + 64,
        "{resting} fds at rest, {after} after the faults"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_and_killed_under_load() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(mut redis) = PrivateRedis::start().await else {
        return skip("redis-server");
    };
    fill_redis(&redis.url()).await;
    let session = format!(
        "[session]\ncookie = \"session\"\nresolver = \"redis\"\ntimeout = \"500ms\"\ncache_ttl = \"0s\"\n\
         [session.fields]\nuser_id = \"/user/id\"\n[session.redis]\nurl = \"{}\"\nkey = \"sess:{{sid}}\"\n",
        redis.url()
    );
    faults_under_load(&mut redis, &session).await;
}

async fn fill_postgres(url: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS sessions (id text PRIMARY KEY, user_id text)")
        .execute(&pool)
        .await
        .unwrap();
    for u in 0..USERS {
        sqlx::query("INSERT INTO sessions VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(format!("sid-{u}"))
            .bind(format!("user-{u}"))
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_paused_and_killed_under_load() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(mut pg) = PrivatePostgres::start().await else {
        return skip("PostgreSQL server");
    };
    fill_postgres(&pg.url()).await;
    let session = format!(
        "[session]\ncookie = \"session\"\nresolver = \"sql\"\ntimeout = \"500ms\"\ncache_ttl = \"0s\"\n\
         [session.fields]\nuser_id = \"/user_id\"\n[session.sql]\nurl = \"{}\"\n\
         query = \"SELECT user_id FROM sessions WHERE id = $1\"\n",
        pg.url()
    );
    faults_under_load(&mut pg, &session).await;
}
