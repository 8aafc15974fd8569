#!/usr/bin/env bash
# Instructions each build of the proxy executes per injected 34 KB page, counted by
# callgrind: repeatable to a fraction of a percent whatever else the machine is doing,
# where req/s and CPU time on a shared 2-core machine move by 5-10% between runs.
# Each build serves 200, then 1,200 sequential keep-alive requests (one worker); the
# difference of the two totals over 1,000 is the figure.
#
#   bench/instructions.sh OLD_BINARY NEW_BINARY [MORE...]
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
BINS=()
for b in "$@"; do BINS+=("$(realpath "$b")"); done
source "$(dirname "$0")/lib.sh"
need valgrind || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
nginx_conf upstream $P_UP "root $PAGES;"
wait_ports $P_UP
# One worker: the count is the same, and valgrind serialises threads anyway.
sed 's/^\[server\]/[server]\nworkers = 1/' "$OUT/ours.toml" >"$OUT/ours-1.toml"

count() { # binary requests
    rm -f "$OUT"/callgrind.out.*
    BENCH_MESSENGER_SECRET=$MESSENGER_SECRET BENCH_SESSION_SECRET=$SESSION_SECRET RUST_LOG=warn \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
        "$1" --config "$OUT/ours-1.toml" 2>"$OUT/callgrind.log" &
    local pid=$!
    for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$P_OURS") 2>/dev/null && break; sleep 0.1; done
    python3 - "$P_OURS" "$TOKEN" "$2" <<'PY'
import http.client, sys
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for _ in range(n):
    c.request("GET", "/page-34k.html", headers={"Cookie": f"session={token}", "Accept": "text/html"})
    assert b"intercom_user_jwt" in c.getresponse().read(), "not injected"
PY
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    callgrind_annotate "$OUT"/callgrind.out.* 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

echo "| build | instructions per injected 34 KB page | vs build 0 |"
echo "|---|---:|---:|"
base=""
for i in "${!BINS[@]}"; do
    short=$(count "${BINS[$i]}" 200)
    long=$(count "${BINS[$i]}" 1200)
    per=$(( (long - short) / 1000 ))
    base=${base:-$per}
    echo "| $i: ${BINS[$i]} | $per | $(python3 -c "print(f'{$per/$base:.4f}x')") |"
done | tee "$OUT/instructions.md"
