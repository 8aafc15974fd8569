#!/usr/bin/env bash
# The long reliability runs (issue 18), against a release build of the proxy:
#
#   stress/run.sh            a million checked requests at 256 connections (h1 and h2),
#                            1,000 users; prints throughput, p50/p99 and the proxy's RSS
#   stress/run.sh soak       30 minutes of steady mixed load (SOAK_SECONDS to change it);
#                            RSS and open descriptors every 10 s must stay flat
#   stress/run.sh faults     the app, a private Redis and a private PostgreSQL killed,
#                            paused and restarted under load (the same tests `cargo test`
#                            runs, with more requests)
#
# STRESS_REQUESTS, STRESS_CONNECTIONS, STRESS_USERS override the sizes. The load generator
# runs in the test process beside the proxy: on a 2-core machine they share the CPU.
# Results: RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n 8192
cargo build --release --bin intercom-secure-proxy
export ISP_BIN="$PWD/target/release/intercom-secure-proxy"
case "${1:-million}" in
    million) cargo test --release --test load -- --ignored --nocapture stress_a_million_requests ;;
    soak) cargo test --release --test load -- --ignored --nocapture soak ;;
    faults) LOAD_SCALE="${LOAD_SCALE:-10}" cargo test --release --test load --test store_faults -- --nocapture ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac
