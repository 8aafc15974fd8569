#!/usr/bin/env bash
# Two or more builds of the proxy, same machine, same run: each in turn behind the same
# upstream nginx, driven by wrk with the session cookie of an injected page, ROUNDS times in
# alternation. For each build and page: the median req/s, and the median CPU the proxy's
# process spent per request (user and system time from /proc, all threads); ratios are
# against the first build.
#
#   bench/compare.sh OLD_BINARY NEW_BINARY [MORE...]   # ROUNDS=3 DURATION=10
#   PAGES_TO_RUN="page-34k.html" bench/compare.sh a b
#
# Build an older commit for it with e.g.
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
BINS=()
for b in "$@"; do BINS+=("$(realpath "$b")"); done
source "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-3}"
PAGES_TO_RUN="${PAGES_TO_RUN:-page-34k.html page-1.7m.html}"
TICKS=$(getconf CLK_TCK)

nginx_conf upstream $P_UP "root $PAGES;"
wait_ports $P_UP

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; } # user system

: >"$OUT/compare.tsv"
for round in $(seq 1 "$ROUNDS"); do
    for page in $PAGES_TO_RUN; do
        conns=32; [ "$page" = page-1.7m.html ] && conns=16
        for i in "${!BINS[@]}"; do
            start_ours "${BINS[$i]}"
            curl -s -H "Cookie: session=$TOKEN" -H "Accept: text/html" -o "$OUT/compare-page.html" \
                "http://127.0.0.1:$P_OURS/$page"
            grep -q intercom_user_jwt "$OUT/compare-page.html" \
                || { echo "build $i does not inject on $page" >&2; exit 1; }
            wrk -t"$THREADS" -c"$conns" -d2s -H "Cookie: session=$TOKEN" -H "Accept: text/html" \
                "http://127.0.0.1:$P_OURS/$page" >/dev/null
            read -r user0 sys0 < <(cpu_ticks "$OURS_PID")
            out=$(wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" -H "Cookie: session=$TOKEN" \
                -H "Accept: text/html" "http://127.0.0.1:$P_OURS/$page")
            read -r user1 sys1 < <(cpu_ticks "$OURS_PID")
            kill "$OURS_PID"; wait "$OURS_PID" 2>/dev/null || true
            requests=$(echo "$out" | awk '/requests in/ {print $1}')
            rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
            per_request() { python3 -c "import sys;print(f'{int(sys.argv[1])/int(sys.argv[2])*1e6/int(sys.argv[3]):.1f}')" "$1" "$TICKS" "$requests"; }
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$page" "$i" "$rps" \
                "$(per_request $((user1 - user0)))" "$(per_request $((sys1 - sys0)))" | tee -a "$OUT/compare.tsv"
        done
    done
done

python3 - "$OUT/compare.tsv" "${BINS[@]}" <<'PY' | tee "$OUT/compare.md"
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
bins = sys.argv[2:]
print("| page | build | req/s (median) | runs | user µs/req | sys µs/req | req/s vs build 0 | user CPU vs build 0 |")
print("|---|---|---:|---|---:|---:|---:|---:|")
for page in dict.fromkeys(r[1] for r in rows):
    base = None
    for i, b in enumerate(bins):
        mine = [r for r in rows if r[1] == page and r[2] == str(i)]
        rps = statistics.median(float(r[3]) for r in mine)
        user = statistics.median(float(r[4]) for r in mine)
        system = statistics.median(float(r[5]) for r in mine)
        base = base or (rps, user)
        runs = ", ".join(f"{float(r[3]):.0f}" for r in mine)
        print(f"| {page} | {i}: {b} | {rps:.0f} | {runs} | {user:.1f} | {system:.1f} "
              f"| {rps / base[0]:.3f}x | {user / base[1]:.3f}x |")
PY
