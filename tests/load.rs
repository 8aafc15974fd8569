//! Short versions of stress/ in `cargo test`: a checked mixed load through the real binary
//! (no response may carry another user's JWT or change a byte outside the snippet), and the
//! same load while the app dies and comes back, while the app is slow, and while clients
//! vanish mid-response. The long runs (a million requests, the soak, the store faults at
//! scale) are stress/run.sh; figures in RELIABILITY.md.
#![cfg(feature = "server")]

mod common;
#[path = "common/load.rs"]
mod load;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::config_text;
use common::process::ProxyProcess;
use load::{App, Corpus, Plan, Report};

fn proxy_for(app: &App, upstream_timeout: &str) -> ProxyProcess {
    let config = config_text(
        &format!("http://{}", app.addr),
        "",
        "\n[logout]\npaths = [\"/logout\"]\n",
    )
    .replace(
        "timeout = \"2s\"",
        &format!("timeout = \"{upstream_timeout}\""),
    );
    ProxyProcess::start(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_load_never_crosses_users_or_changes_a_byte() {
    let corpus = Corpus::new();
    let app = App::start(&corpus, Duration::ZERO).await;
    let proxy = proxy_for(&app, "10s");
    let resting = proxy.open_fds();
    let report = Arc::new(Report::default());
    let mut plan = Plan::new(20_000, 32, 200);
    plan.vanish_one_in = Some(200);
    let started = Instant::now();
    load::run(proxy.addr, corpus, plan, report.clone()).await;
    report.assert_clean(started.elapsed());
    assert_eq!(report.sent.load(Ordering::Relaxed), 20_000);
    assert!(report.switches.load(Ordering::Relaxed) > 100);
    assert!(report.vanished.load(Ordering::Relaxed) > 20);
    // Vanished clients and finished connections leave nothing open behind them (the pooled
    // app connections may stay: the pool's limit).
    let after = proxy.fds_settle_to(resting + 64).await;
    assert!(
        after <= resting + 64,
        "{resting} fds at rest, {after} after the load"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_dying_mid_load_costs_only_the_requests_it_was_asked() {
    let corpus = Corpus::new();
    let mut app = App::start(&corpus, Duration::ZERO).await;
    let mut proxy = proxy_for(&app, "10s");
    let resting = proxy.open_fds();
    let report = Arc::new(Report::default());
    let plan = Plan::new(8_000, 16, 100);
    let started = Instant::now();
    let load = tokio::spawn(load::run(proxy.addr, corpus.clone(), plan, report.clone()));

    wait_for_sent(&report, 2_000).await;
    report.app_optional.store(true, Ordering::SeqCst);
    app.kill();
    let killed_at = report.sent.load(Ordering::SeqCst);
    wait_for_sent(&report, killed_at + 300).await;
    app.revive().await;
    // Back once a request gets through again; then nothing may fail.
    wait_for_sent(&report, report.sent.load(Ordering::SeqCst) + 300).await;
    report.app_optional.store(false, Ordering::SeqCst);
    load.await.unwrap();
    if report.errors.load(Ordering::Relaxed) > 0 {
        let log = proxy.log.lock().unwrap();
        for line in log.iter().filter(|l| l.contains("request failed")).take(40) {
            eprintln!("proxy: {line}");
        }
    }
    report.assert_clean(started.elapsed());
    assert!(
        report.allowed_errors.load(Ordering::Relaxed) > 0,
        "the outage was seen (502s while the app was down)"
    );
    // The same process served throughout, and the dead app's connections were let go.
    assert!(
        matches!(proxy.child.try_wait(), Ok(None)),
        "the proxy is still running"
    );
    let after = proxy.fds_settle_to(resting + 64).await;
    assert!(
        after <= resting + 64,
        "{resting} fds at rest, {after} after the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_holds_only_its_own_requests() {
    let corpus = Corpus::new();
    let app = App::start(&corpus, Duration::from_secs(5)).await;
    let proxy = proxy_for(&app, "10s");
    let report = Arc::new(Report::default());
    let mut plan = Plan::new(3_000, 16, 50);
    plan.slow_one_in = Some(500);
    let started = Instant::now();
    load::run(proxy.addr, corpus, plan, report.clone()).await;
    report.assert_clean(started.elapsed());
    // The slow answers took 5 s each, and the rest were not held behind them.
    let (p50, _) = report.percentiles();
    assert!(p50 < 1_000.0, "p50 {p50} ms");
}

async fn wait_for_sent(report: &Report, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while report.sent.load(Ordering::SeqCst) < count {
        assert!(Instant::now() < deadline, "the load stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Samples the proxy's RSS (bytes) and open descriptors every `every` until `done`.
fn sample(
    proxy: &ProxyProcess,
    every: Duration,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(f64, u64, usize)>> {
    let pid = proxy.child.id();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut ticks = tokio::time::interval(every);
        while !done.load(Ordering::SeqCst) {
            ticks.tick().await;
            let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                })
                .unwrap_or(0)
                * 1024;
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
            samples.push((started.elapsed().as_secs_f64(), rss, fds));
        }
        samples
    })
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// stress/run.sh: a million requests at 256 connections, h1 and h2, 1,000 users.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "long: stress/run.sh runs it against a release build"]
async fn stress_a_million_requests() {
    let corpus = Corpus::new();
    let app = App::start(&corpus, Duration::ZERO).await;
    let proxy = proxy_for(&app, "10s");
    let report = Arc::new(Report::default());
    let mut plan = Plan::new(
        env_or("STRESS_REQUESTS", 1_000_000),
        env_or("STRESS_CONNECTIONS", 256),
        env_or("STRESS_USERS", 1_000),
    );
    plan.vanish_one_in = Some(1_000);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let samples = sample(&proxy, Duration::from_secs(1), done.clone());
    let started = Instant::now();
    load::run(proxy.addr, corpus, plan, report.clone()).await;
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let samples = samples.await.unwrap();
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "STRESS {}; proxy RSS peak {} MiB",
        report.summary(elapsed),
        peak >> 20
    );
    report.assert_clean(elapsed);
}

/// stress/run.sh soak: steady mixed load; RSS and descriptors sampled every 10 s must be flat
/// after the warm-up.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "long: stress/run.sh soak runs it (30 minutes)"]
async fn soak() {
    let corpus = Corpus::new();
    let app = App::start(&corpus, Duration::ZERO).await;
    let proxy = proxy_for(&app, "10s");
    let report = Arc::new(Report::default());
    let seconds: u64 = env_or("SOAK_SECONDS", 1_800);
    let mut plan = Plan::new(u64::MAX, env_or("STRESS_CONNECTIONS", 64), 1_000);
    plan.duration = Some(Duration::from_secs(seconds));
    plan.vanish_one_in = Some(1_000);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let samples = sample(&proxy, Duration::from_secs(10), done.clone());
    let started = Instant::now();
    load::run(proxy.addr, corpus, plan, report.clone()).await;
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let samples = samples.await.unwrap();
    for (at, rss, fds) in &samples {
        println!(
            "SOAK t={at:.0}s rss={:.1}MiB fds={fds}",
            *rss as f64 / 1048576.0
        );
    }
    println!("SOAK {}", report.summary(elapsed));
    report.assert_clean(elapsed);
    // Warm-up: the first fifth of the run (caches, pools and the allocator settle).
    let warm: Vec<_> = samples
        .iter()
        .filter(|s| s.0 >= seconds as f64 / 5.0)
        .collect();
    let (first, last) = (warm.first().unwrap(), warm.last().unwrap());
    let growth = last.1 as i64 - first.1 as i64;
    println!(
        "SOAK RSS growth after warm-up: {:.2} MiB; fds {} -> {}",
        growth as f64 / 1048576.0,
        first.2,
        last.2
    );
    assert!(growth < 5 << 20, "RSS grew {growth} bytes after warm-up");
    assert!(
        last.2 <= first.2 + 8,
        "descriptors grew: {} -> {}",
        first.2,
        last.2
    );
}
