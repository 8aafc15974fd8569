#!/usr/bin/env bash
# A short, bounded fuzz run for CI: every target in fuzz_targets/ for FUZZ_SECONDS (20 by
# default) on its seeds (seeds/<target>/), after the saved crash inputs (regressions/).
# Any crash, panic or oracle failure fails the run. Needs the nightly toolchain
# (`cargo +nightly`); without it: skipped, which fails the run only under CI=true.
# Local use and longer runs: see README.md.
set -euo pipefail
cd "$(dirname "$0")"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "skipped: no nightly toolchain"
    if [ -n "${CI:-}" ]; then
        echo "fuzz/ci.sh: CI is set, so a missing nightly toolchain is a failure" >&2
        exit 1
    fi
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

seconds="${FUZZ_SECONDS:-20}"
started=$(date +%s)
# One build for every target, unoptimised but for the crates the targets spend their time in
# (fuzz/Cargo.toml), debug assertions and overflow checks on, no sanitizer: 4 minutes on 2
# cores where the release build with AddressSanitizer of the long runs (RESULTS.md) takes 12.
# The proxy's crate forbids unsafe code, so the sanitizer only watches its dependencies: the
# long runs keep it. FUZZ_BUILD overrides, e.g. FUZZ_BUILD="-a" for the long runs' build.
read -r -a build <<<"${FUZZ_BUILD:---dev -s none}"
cargo +nightly fuzz build "${build[@]}"
echo "fuzz/ci.sh: targets built in $(($(date +%s) - started)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo +nightly fuzz list); do
    # The saved crash inputs first: each must now pass.
    if compgen -G "regressions/$target/*" >/dev/null; then
        cargo +nightly fuzz run "${build[@]}" "$target" regressions/"$target"/* -- -runs=1 \
            >"$work/$target.log" 2>&1 || { cat "$work/$target.log" >&2; exit 1; }
    fi
    # New inputs go to a scratch corpus and the seeds are only read; a crash input is
    # saved in artifacts/<target>/ (cargo-fuzz's place for them).
    mkdir -p "$work/$target"
    if cargo +nightly fuzz run "${build[@]}" "$target" "$work/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        >"$work/$target.log" 2>&1; then
        echo "fuzz/ci.sh: $target: $(grep -E '^#[0-9]+' "$work/$target.log" | tail -n 1)"
    else
        tail -n 60 "$work/$target.log" >&2
        echo "fuzz/ci.sh: $target failed (reproduce: README.md, 'Crashes')" >&2
        exit 1
    fi
done
echo "fuzz/ci.sh: done in $(($(date +%s) - started)) s"
