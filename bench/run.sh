#!/usr/bin/env bash
# Side-by-side benchmark, one machine, one run:
#   upstream      nginx serving bench/pages (static, sendfile)
#   nginx-plain   nginx as a plain reverse proxy to it (the speed limit for any proxy)
#   nginx-njs     nginx + njs + sub_filter doing our job: verify the session JWT cookie,
#                 sign an HS256 Messenger JWT, insert the snippet before </body>
#   ours          intercom-secure-proxy, JWT session cookie, injection on, its defaults
# Each injecting peer is first checked to really inject a JWT that verifies. Then wrk drives
# each peer at fixed concurrency (34 KB page: 32 connections, 1.7 MB page: 16) and the
# script prints one table. Finally the memory checks: RSS while streaming a 100 MB page, and
# with 1,000 idle keep-alive connections.
#
#   bench/run.sh                 # DURATION=10 (seconds per wrk run)
#   DURATION=30 bench/run.sh
#
# Needs nginx (with sub_filter), libnginx-mod-http-js and wrk from Debian's packages: the
# script installs them when absent (as root). Loopback only; every run is bounded.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
build_release

# --- the njs peer's script (secrets here are the benchmark's own) ----------------------------
cat >"$OUT/isp.js" <<EOF
var crypto = require('crypto');
var SESSION_SECRET = '$SESSION_SECRET';
var MESSENGER_SECRET = '$MESSENGER_SECRET';
function b64url(s) { return Buffer.from(s).toString('base64url'); }
function snippet(r) {
    var cookie = r.variables.cookie_session;
    if (!cookie) { return ''; }
    var parts = cookie.split('.');
    if (parts.length != 3) { return ''; }
    var sig = crypto.createHmac('sha256', SESSION_SECRET).update(parts[0] + '.' + parts[1]).digest('base64url');
    if (sig !== parts[2]) { return ''; }
    var claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    var now = Math.floor(Date.now() / 1000);
    if (!claims.sub || !claims.exp || claims.exp < now) { return ''; }
    var h = b64url(JSON.stringify({alg: 'HS256', typ: 'JWT'}));
    var p = b64url(JSON.stringify({user_id: String(claims.sub), email: claims.email, iat: now, exp: now + 3600}));
    var jwt = h + '.' + p + '.' + crypto.createHmac('sha256', MESSENGER_SECRET).update(h + '.' + p).digest('base64url');
    var settings = JSON.stringify({api_base: 'https://api-iam.intercom.io', app_id: 'abc123de', intercom_user_jwt: jwt})
        .replace(/</g, '\\\\u003c').replace(/>/g, '\\\\u003e').replace(/&/g, '\\\\u0026');
    return '<script>window.intercomSettings=' + settings + ';(function(){var w=window;var ic=w.Intercom;' +
        'if(typeof ic==="function"){ic("reattach_activator");ic("update",w.intercomSettings);}else{var d=document;' +
        'var i=function(){i.c(arguments);};i.q=[];i.c=function(args){i.q.push(args);};w.Intercom=i;var l=function(){' +
        'var s=d.createElement("script");s.type="text/javascript";s.async=true;' +
        's.src="https://widget.intercom.io/widget/abc123de";var x=d.getElementsByTagName("script")[0];' +
        'x.parentNode.insertBefore(s,x);};if(d.readyState==="complete"){l();}else{w.addEventListener("load",l,false);}}})();</script>';
}
export default {snippet};
EOF

nginx_conf upstream $P_UP "root $PAGES;"
nginx_conf plain $P_PLAIN "location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
nginx_conf njs $P_NJS "js_import isp from $OUT/isp.js; js_set \$intercom_snippet isp.snippet;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\";
            proxy_set_header Accept-Encoding \"\"; sub_filter '</body>' '\${intercom_snippet}</body>'; sub_filter_once on; }"

start_ours "$BIN"
wait_ports $P_UP $P_PLAIN $P_NJS

# --- a benchmark of a broken peer is worthless: check each injecting peer first -------------
check_peer() { # name port
    curl -s -H "Cookie: session=$TOKEN" -H "Accept: text/html" "http://127.0.0.1:$2/page-34k.html" >"$OUT/$1.html"
    python3 - "$MESSENGER_SECRET" "$OUT/$1.html" "$PAGES/page-34k.html" "$1" <<'EOF'
import base64, hashlib, hmac, json, re, sys
secret, got, original, name = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read(), sys.argv[4]
m = re.search(r'"intercom_user_jwt":"([^"]+)"', got)
assert m, f"{name}: no snippet injected"
h, p, s = m.group(1).split(".")
pad = lambda x: x + "=" * (-len(x) % 4)
expected = base64.urlsafe_b64encode(hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
assert s == expected, f"{name}: the JWT does not verify"
claims = json.loads(base64.urlsafe_b64decode(pad(p)))
assert claims["user_id"] == "u-bench", f"{name}: wrong user"
start = got.index("<script>window.intercomSettings")
end = got.index("</script>", start) + len("</script>")
assert got[:start] + got[end:] == original, f"{name}: page altered outside the snippet"
print(f"  {name}: injects a JWT that verifies (user_id={claims['user_id']}), page intact")
EOF
}
echo "checking the injecting peers"
check_peer nginx-njs $P_NJS
check_peer ours $P_OURS

# --- throughput and latency --------------------------------------------------------------
declare -A RPS P50 P99
run_wrk() { # peer port page conns
    local out
    out=$(wrk -t"$THREADS" -c"$4" -d"${DURATION}s" --latency -H "Cookie: session=$TOKEN" -H "Accept: text/html" \
        "http://127.0.0.1:$2/$3")
    echo "$out" >"$OUT/wrk-$1-$3.txt"
    RPS[$1,$3]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    P50[$1,$3]=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
    P99[$1,$3]=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
}
for page in page-34k.html page-1.7m.html; do
    conns=32; [ "$page" = page-1.7m.html ] && conns=16
    for peer in nginx-plain:$P_PLAIN nginx-njs:$P_NJS ours:$P_OURS; do
        echo "wrk ${peer%%:*} $page (-c$conns, ${DURATION}s)"
        run_wrk "${peer%%:*}" "${peer##*:}" "$page" "$conns"
    done
done

ratio() { python3 -c "import sys;print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}x')" "$1" "$2"; }
{
    echo
    echo "| page | peer | req/s | p50 ms | p99 ms | ours / nginx-plain | ours / njs-peer |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for page in page-34k.html page-1.7m.html; do
        for peer in nginx-plain nginx-njs ours; do
            extra="| |"
            if [ "$peer" = ours ]; then
                extra="| $(ratio "${RPS[ours,$page]}" "${RPS[nginx-plain,$page]}") | $(ratio "${RPS[ours,$page]}" "${RPS[nginx-njs,$page]}") |"
            fi
            echo "| $page | $peer | ${RPS[$peer,$page]} | ${P50[$peer,$page]} | ${P99[$peer,$page]} $extra"
        done
    done
} | tee "$OUT/table.md"

# --- memory ----------------------------------------------------------------------------------
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$OURS_PID/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$OURS_PID/status"; }
python3 - "$OUT/page-100m.html" <<'EOF'
import sys
row = "<tr><td>order</td><td>pending</td><td>&euro;10.00</td></tr>\n"
with open(sys.argv[1], "w") as f:
    f.write("<!DOCTYPE html><html><head><title>big</title></head><body><table>\n")
    while f.tell() < 100 * 1024 * 1024:
        f.write(row * 1000)
    f.write("</table></body></html>\n")
EOF
# Served by the upstream from its root: copy into a private root beside the 100 MB page.
mkdir -p "$OUT/root" && cp "$PAGES"/*.html "$OUT/root/" && mv "$OUT/page-100m.html" "$OUT/root/"
kill "$(cat "$OUT/upstream.pid")"; sleep 0.2
nginx_conf upstream $P_UP "root $OUT/root;"
sleep 0.2
before=$(rss_kb)
curl -s -H "Cookie: session=$TOKEN" -H "Accept: text/html" "http://127.0.0.1:$P_OURS/page-100m.html" -o "$OUT/got-100m.html"
peak=$(hwm_kb)
grep -q intercom_user_jwt "$OUT/got-100m.html" && injected=yes || injected=no
echo
echo "memory: RSS before the 100 MB page ${before} KiB, peak while streaming it ${peak} KiB (growth $(( (peak - before) / 1024 )) MiB, injected: $injected)" | tee -a "$OUT/table.md"

coproc IDLE { python3 -u - "$P_OURS" <<'EOF'
import socket, sys, time
conns = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /page-34k.html HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    s.settimeout(10)
    got = b""
    while b"</html>" not in got:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
print("ready", flush=True)
time.sleep(8)
EOF
}
read -r _ <&"${IDLE[0]}"
# Right after the burst, and once the connections have sat idle for 3 s (the proxy hands
# memory freed by the burst back every 2 s).
at_once=$(( $(rss_kb) / 1024 ))
sleep 3
echo "memory: RSS with 1,000 idle keep-alive connections ${at_once} MiB right after their requests, $(( $(rss_kb) / 1024 )) MiB after 3 s idle" | tee -a "$OUT/table.md"
wait "$IDLE_PID" 2>/dev/null || true
rm -f "$OUT/got-100m.html"
echo
echo "table: $OUT/table.md"
