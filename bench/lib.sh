# Shared by bench/run.sh and bench/compare.sh (sourced, not run): the tools, the upstream
# nginx, the proxy's config and session token, and process clean-up. Loopback only.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
OUT="$ROOT/bench/out"
PAGES="$ROOT/bench/pages"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
P_UP=18080 P_PLAIN=18081 P_NJS=18082 P_OURS=18083
SESSION_SECRET="bench-app-session-secret"
MESSENGER_SECRET="bench-messenger-secret"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || [ ! -e /usr/lib/nginx/modules/ngx_http_js_module.so ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-http-js wrk
fi

mkdir -p "$OUT"
# 1,000 client connections plus the pooled upstream ones need more than 1,024 descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n 4096

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for conf in upstream plain njs; do
        [ -f "$OUT/$conf.pid" ] && kill "$(cat "$OUT/$conf.pid")" 2>/dev/null || true
    done
}
trap cleanup EXIT

nginx_conf() { # name port body
    cat >"$OUT/$1.conf" <<EOF
$( [ "$1" = njs ] && echo "load_module /usr/lib/nginx/modules/ngx_http_js_module.so;" )
worker_processes auto;
pid $OUT/$1.pid;
error_log $OUT/$1.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    types { text/html html; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    upstream app { server 127.0.0.1:$P_UP; keepalive 64; }
    server {
        listen 127.0.0.1:$2;
        $3
    }
}
EOF
    nginx -c "$OUT/$1.conf"
}

wait_ports() { # port...
    local port
    for port in "$@"; do
        for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    done
}

cat >"$OUT/ours.toml" <<EOF
[server]
listen = "127.0.0.1:$P_OURS"
[upstream]
url = "http://127.0.0.1:$P_UP"
[intercom]
app_id = "abc123de"
secret_env = "BENCH_MESSENGER_SECRET"
[session]
cookie = "session"
resolver = "jwt"
[session.fields]
user_id = "/sub"
email = "/email"
[session.jwt]
algorithms = ["HS256"]
key_env = "BENCH_SESSION_SECRET"
EOF

start_ours() { # binary; sets OURS_PID
    # In its own session, as the nginx daemons are: with the kernel's autogroup scheduling
    # (on by default) a process started from this script would otherwise share one CPU group
    # with wrk, while each nginx gets a group of its own.
    BENCH_MESSENGER_SECRET=$MESSENGER_SECRET BENCH_SESSION_SECRET=$SESSION_SECRET RUST_LOG=warn \
        setsid "$1" --config "$OUT/ours.toml" 2>"$OUT/ours.log" &
    OURS_PID=$!
    PIDS+=("$OURS_PID")
    wait_ports "$P_OURS"
}

TOKEN=$(python3 - "$SESSION_SECRET" <<'EOF'
import base64, hashlib, hmac, json, sys, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b(json.dumps({"sub": "u-bench", "email": "bench@example.com", "exp": int(time.time()) + 86400}).encode())
s = b(hmac.new(sys.argv[1].encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
print(f"{h}.{p}.{s}")
EOF
)

to_ms() { # wrk latency like 1.23ms / 850.00us / 1.02s
    python3 -c "import sys;v=sys.argv[1];print(f'{float(v[:-2])/1000:.3f}' if v.endswith('us') else f'{float(v[:-2]):.3f}' if v.endswith('ms') else f'{float(v[:-1])*1000:.3f}')" "$1"
}

# The benchmark's binary: the release profile, as deployed.
build_release() {
    cargo build --release --quiet
    BIN="$ROOT/target/release/intercom-secure-proxy"
}
