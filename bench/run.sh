#!/usr/bin/env bash
# tokenmint's performance harness: one command, one run, every figure against a reference
# measured in the same run on the same machine.
#
#   bench/run.sh                 # the full run (about 6 minutes after the release build)
#   BENCH_SECONDS=5 BENCH_CREDENTIALS=10000 bench/run.sh     # a shorter run
#   BENCH_ONLY="token gateway" BENCH_ALGS=ES256 bench/run.sh  # some sections, some algorithms
#
# The server under test is pinned to core 0 (taskset), the load generator (wrk, 32 keep-alive
# connections, one thread) to core 1. It measures:
#   1. the token endpoint of tokenmint and of node-oidc-provider (the peer), RS256, ES256 and
#      EdDSA, with the same form-encoded client_secret_post request, and the one-core signing
#      limit of each algorithm with the code tokenmint signs with;
#   2. the gateway against the upstream called directly, with a hot and a cold verified-token
#      cache, beside nginx's plain proxy, HAProxy's plain proxy and HAProxy verifying the same
#      ES256 token with jwt_verify (each alone on core 0, one worker or thread);
#   3. the SDK: 1,000 concurrent callers of one cold client;
#   4. memory (RSS) of an idle server, one holding BENCH_CREDENTIALS (100,000) credentials, and
#      the same after every one of them has obtained a token;
#   5. start-up time, empty and with those credentials.
# It prints a Markdown report and writes it to target/bench-report.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP_SECONDS="${BENCH_WARMUP:-3}"
CREDENTIALS="${BENCH_CREDENTIALS:-100000}"
ONLY="${BENCH_ONLY:-token gateway sdk memory}"
ALGS="${BENCH_ALGS:-RS256 ES256 EdDSA}"
CONNECTIONS=32
SERVER_CPU=0
LOAD_CPU=1
REPORT="$ROOT/target/bench-report.md"

say() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

[ "$(nproc --all)" -ge 2 ] || die "needs at least 2 cores (server on one, load on the other)"
command -v taskset >/dev/null || die "needs taskset (util-linux)"
command -v node >/dev/null || die "needs Node.js 20 or later for the peer (node-oidc-provider)"
command -v python3 >/dev/null || die "needs python3 to format the report"

# --- installs (idempotent) -------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "installing wrk (Debian package)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
    || die "could not install wrk: install it with your package manager"
fi
for pkg in nginx haproxy; do
  if ! command -v "$pkg" >/dev/null && [ ! -x "/usr/sbin/$pkg" ]; then
    say "installing $pkg (Debian package)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null \
      || die "could not install $pkg: install it with your package manager"
  fi
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
if [ ! -d bench/peer/node_modules/oidc-provider ]; then
  say "installing node-oidc-provider (npm)"
  (cd bench/peer && npm install --no-audit --no-fund --no-package-lock --loglevel=error >&2)
fi
say "building tokenmint and the harness helpers (release)"
cargo build --release --locked -p tokenmint -p tokenmint-bench --bins >&2
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
TM="$TARGET_DIR/release/tokenmint"
TB="$TARGET_DIR/release/tokenmint-bench"
REPORT="$TARGET_DIR/bench-report.md"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export TOKENMINT_LOG=warn NO_PROXY='*'

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL
  for _ in $(seq 1 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  die "$1 did not answer"
}
# start_pinned CPU LOG CMD... : starts CMD on core CPU in the background; sets PID.
start_pinned() {
  local cpu="$1" log="$2"; shift 2
  taskset -c "$cpu" "$@" >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

# wrk_run SECONDS URL [BODY] [AUTHORIZATION] : one wrk run from core 1; prints its RESULT fields.
wrk_run() {
  local seconds="$1" url="$2"
  BODY="${3:-}" AUTHORIZATION="${4:-}" taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency -s bench/post.lua "$url" \
    | grep '^RESULT' | cut -d' ' -f2-
}
# measure NAME PID URL [BODY] [AUTHORIZATION] : a warm-up run, then the measured run, with the
# CPU time the process PID spent during it.
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
measure() {
  local name="$1" pid="$2"; shift 2
  local before after result
  wrk_run "$WARMUP_SECONDS" "$@" >/dev/null
  before="$(cpu_ticks "$pid")"
  result="$(wrk_run "$SECONDS_PER_RUN" "$@")"
  after="$(cpu_ticks "$pid")"
  [ -n "$result" ] || die "no result from wrk for $name"
  say "$name: $result"
  printf '%s\t%s cpu_ticks=%s clk_tck=%s\n' "$name" "$result" "$((after - before))" "$(getconf CLK_TCK)" >>"$RESULTS"
}
record() { printf '%s\t%s\n' "$1" "$2" >>"$RESULTS"; }

# tokenmint_instance ALG DIR PORT : an initialised database, a running server on core 0 and a
# credential; sets PID, CLIENT_ID, SECRET.
tokenmint_instance() {
  local alg="$1" dir="$2" port="$3"
  mkdir -p "$dir"
  "$TM" init --database "sqlite://$dir/tokenmint.db" --issuer "http://127.0.0.1:$port" \
    --signing-alg "$alg" >"$dir/admin.json"
  start_pinned "$SERVER_CPU" "$dir/server.log" "$TM" serve --database "sqlite://$dir/tokenmint.db" \
    --listen "127.0.0.1:$port" --issuer "http://127.0.0.1:$port" --signing-alg "$alg" \
    --token-rate-limit 1000000000 --product-area eligibility \
    --admin-credential-file "$dir/admin.json"
  wait_for "http://127.0.0.1:$port/healthz"
  "$TM" credentials create --endpoint "http://127.0.0.1:$port" --admin-credentials "$dir/admin.json" \
    --name bench --org bench --environment production --permission eligibility:read \
    --output json >"$dir/credential.json"
  CLIENT_ID="$(json_field "$dir/credential.json" client_id)"
  SECRET="$(json_field "$dir/credential.json" client_secret)"
}

# check_jwt URL BODY ALG : one request by hand; the answer must be a JWT of that algorithm.
check_jwt() {
  curl -fsS -X POST "$1" -H 'content-type: application/x-www-form-urlencoded' --data "$2" \
    | python3 -c '
import base64, json, sys
token = json.load(sys.stdin)["access_token"]
header = token.split(".")[0]
alg = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
sys.exit(0 if alg == sys.argv[1] else "expected a %s JWT, got %s" % (sys.argv[1], alg))' "$3"
}

section() { [[ " $ONLY " == *" $1 "* ]]; }

# --- 1. token endpoint: tokenmint, the peer, the signing limit --------------------------------
if section token; then
say "signing limit on core $SERVER_CPU"
# shellcheck disable=SC2086 # one word per algorithm
taskset -c "$SERVER_CPU" "$TB" signing-limit --seconds 5 $ALGS | while read -r line; do
  alg="$(echo "$line" | sed 's/.*alg=\([^ ]*\).*/\1/')"
  record "signing/$alg" "$line"
done

for alg in $ALGS; do
  port="$(free_port)"
  tokenmint_instance "$alg" "$WORK/tokenmint-$alg" "$port"
  body="grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$SECRET&scope=eligibility%3Aread"
  url="http://127.0.0.1:$port/oauth/token"
  check_jwt "$url" "$body" "$alg"
  measure "tokenmint/$alg" "$PID" "$url" "$body"
  stop "$PID"

  port="$(free_port)"
  peer_secret="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  start_pinned "$SERVER_CPU" "$WORK/peer-$alg.log" node bench/peer/server.mjs "$alg" "$port" "$peer_secret"
  wait_for "http://127.0.0.1:$port/.well-known/openid-configuration"
  body="grant_type=client_credentials&client_id=bench&client_secret=$peer_secret&scope=eligibility%3Aread"
  url="http://127.0.0.1:$port/token"
  check_jwt "$url" "$body" "$alg"
  measure "peer/$alg" "$PID" "$url" "$body"
  stop "$PID"
done
fi

# --- 2. gateway and 3. SDK (both need a running issuer) --------------------------------------
if section gateway || section sdk; then
port="$(free_port)"
tokenmint_instance ES256 "$WORK/gateway-issuer" "$port"
issuer_pid="$PID"
issuer="http://127.0.0.1:$port"
fi
if section gateway; then
say "gateway"
token="$(curl -fsS -X POST "$issuer/oauth/token" \
  --data "grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$SECRET" | json_field /dev/stdin access_token)"
up_port="$(free_port)"
start_pinned "$LOAD_CPU" "$WORK/upstream.log" "$TB" upstream --listen "127.0.0.1:$up_port"
upstream_pid="$PID"
wait_for "http://127.0.0.1:$up_port/"
json_field "$WORK/gateway-issuer/admin.json" client_secret >"$WORK/gateway-secret"
gateway() { # NAME EXTRA_SETTING : writes the config and starts the gateway on core 0
  local gport; gport="$(free_port)"
  cat >"$WORK/$1.toml" <<EOF
listen = "127.0.0.1:$gport"
issuer = "$issuer"
client_id = "$(json_field "$WORK/gateway-issuer/admin.json" client_id)"
client_secret_file = "$WORK/gateway-secret"
$2

[[route]]
path_prefix = "/eligibility"
upstream = "http://127.0.0.1:$up_port"
read_scope = "eligibility:read"
write_scope = "eligibility:write"
EOF
  start_pinned "$SERVER_CPU" "$WORK/$1.log" "$TM" gateway --config "$WORK/$1.toml"
  wait_for "http://127.0.0.1:$gport/healthz"
  GATEWAY_URL="http://127.0.0.1:$gport/eligibility/7"
}
# Each path twice: at 32 connections (throughput), then at 1 connection with the process moved
# to the load generator's core (the latency one request sees; at 32 connections latency is
# mostly queueing, and across cores an idle virtual CPU takes ~150 µs to wake, which would
# drown what the gateway itself adds).
both() { # NAME PID URL
  measure "$1" "$2" "$3" "" "Bearer $token"
  taskset -a -p -c "$LOAD_CPU" "$2" >/dev/null
  CONNECTIONS=1 measure "$1/c1" "$2" "$3" "" "Bearer $token"
}
both "gateway/direct" "$upstream_pid" "http://127.0.0.1:$up_port/eligibility/7"
proxy_port="$(free_port)"
start_pinned "$SERVER_CPU" "$WORK/proxy.log" "$TB" proxy --listen "127.0.0.1:$proxy_port" \
  --upstream "http://127.0.0.1:$up_port"
wait_for "http://127.0.0.1:$proxy_port/"
both "gateway/proxy" "$PID" "http://127.0.0.1:$proxy_port/eligibility/7"
stop "$PID"
# The reference proxies, each alone on core 0 with one worker or thread, keep-alive to the
# upstream like the gateway.
nginx_port="$(free_port)"
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream api { server 127.0.0.1:$up_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
start_pinned "$SERVER_CPU" "$WORK/nginx.log" "$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
wait_for "http://127.0.0.1:$nginx_port/"
measure "gateway/nginx" "$PID" "http://127.0.0.1:$nginx_port/eligibility/7" "" "Bearer $token"
stop "$PID"
# HAProxy checks the token's ES256 signature against the issuer's key (tokenmint serves it as
# PEM); jwt_verify checks nothing else (no exp, iss or aud), so it is a floor for "verifying".
curl -fsS "$issuer/pem" >"$WORK/issuer.pem"
haproxy_run() { # NAME CHECKS
  local hport; hport="$(free_port)"
  cat >"$WORK/$1.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend api
    bind 127.0.0.1:$hport
$2
    default_backend upstream
backend upstream
    server api 127.0.0.1:$up_port
EOF
  start_pinned "$SERVER_CPU" "$WORK/$1.log" "$HAPROXY" -db -f "$WORK/$1.cfg"
  # Any answer will do (jwt_verify refuses the tokenless probe).
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$hport/" && break; sleep 0.1; done
  measure "gateway/$1" "$PID" "http://127.0.0.1:$hport/eligibility/7" "" "Bearer $token"
  stop "$PID"
}
haproxy_run haproxy ""
haproxy_run haproxy-jwt "    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request deny unless { var(txn.alg) -m str ES256 }
    http-request deny unless { var(txn.bearer),jwt_verify(txn.alg,\"$WORK/issuer.pem\") -m int 1 }"
gateway gateway-hot ""
both "gateway/hot" "$PID" "$GATEWAY_URL"
stop "$PID"
gateway gateway-cold "verified_cache = 0"
measure "gateway/cold" "$PID" "$GATEWAY_URL" "" "Bearer $token"
stop "$PID"
stop "$upstream_pid"
fi

if section sdk; then
say "SDK: 1,000 concurrent callers"
printf '%s' "$SECRET" >"$WORK/sdk-secret"
record "sdk" "$(taskset -c "$LOAD_CPU" "$TB" sdk-callers --token-url "$issuer/oauth/token" \
  --client-id "$CLIENT_ID" --secret-file "$WORK/sdk-secret" --callers 1000)"
fi
if section gateway || section sdk; then stop "$issuer_pid"; fi

# --- 4. memory and 5. start-up ----------------------------------------------------------------
if section memory; then
say "memory and start-up"
dir="$WORK/memory"
port="$(free_port)"
mkdir -p "$dir"
"$TM" init --database "sqlite://$dir/tokenmint.db" --issuer "http://127.0.0.1:$port" >"$dir/admin.json"
serve_args=(serve --database "sqlite://$dir/tokenmint.db" --listen "127.0.0.1:$port"
  --issuer "http://127.0.0.1:$port" --token-rate-limit 1000000000 --product-area eligibility
  --admin-credential-file "$dir/admin.json")
startup() { # NAME : the median of five start-ups
  local runs=()
  for _ in 1 2 3 4 5; do
    runs+=("$("$TB" startup --url "http://127.0.0.1:$port/healthz" -- taskset -c "$SERVER_CPU" "$TM" "${serve_args[@]}" | sed 's/startup_ms=//')")
  done
  record "$1" "startup_ms=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p)"
}
startup "startup/empty"
start_pinned "$SERVER_CPU" "$dir/server.log" "$TM" "${serve_args[@]}"
wait_for "http://127.0.0.1:$port/healthz"
sleep 2
record "memory/idle" "rss_mb=$(rss_mb "$PID")"
say "creating $CREDENTIALS credentials through the admin API"
record "memory/create" "$(taskset -c "$LOAD_CPU" "$TB" create-credentials --endpoint "http://127.0.0.1:$port" \
  --admin-credentials "$dir/admin.json" --count "$CREDENTIALS" --out "$dir/credentials.txt")"
stop "$PID"
start_pinned "$SERVER_CPU" "$dir/server.log" "$TM" "${serve_args[@]}"
wait_for "http://127.0.0.1:$port/healthz"
sleep 2
record "memory/stored" "rss_mb=$(rss_mb "$PID") credentials=$CREDENTIALS"
record "memory/use" "$(taskset -c "$LOAD_CPU" "$TB" use-credentials --endpoint "http://127.0.0.1:$port" \
  --file "$dir/credentials.txt")"
sleep 2
record "memory/used" "rss_mb=$(rss_mb "$PID") credentials=$CREDENTIALS"
stop "$PID"
startup "startup/stored"
fi

# --- report -----------------------------------------------------------------------------------
python3 bench/report.py "$RESULTS" \
  --seconds "$SECONDS_PER_RUN" --connections "$CONNECTIONS" --credentials "$CREDENTIALS" \
  | tee "$REPORT"
say "report written to $REPORT"
