#!/usr/bin/env bash
# tokenmint's performance harness: one command, one run, every figure against a reference
# measured in the same run on the same machine.
#
#   bench/run.sh                 # the full run (about 10 minutes after the release build)
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
#   5. start-up time, empty and with those credentials;
#   6. the load-balanced deployment: 1, 2 and 3 `tokenmint serve` instances over one PostgreSQL
#      database and one Redis behind HAProxy (round robin, /readyz health checks), all on core
#      0, against one instance called directly: tokens/s, CPU per token of the instances and of
#      HAProxy, PostgreSQL round trips and Redis commands per 1,000 tokens (skipped, with a
#      message, when PostgreSQL or Redis does not answer).
# It prints a Markdown report and writes it to target/bench-report.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP_SECONDS="${BENCH_WARMUP:-3}"
CREDENTIALS="${BENCH_CREDENTIALS:-100000}"
ONLY="${BENCH_ONLY:-token gateway sdk memory balancer}"
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
# Run at exit, after every process has stopped (the balancer section's database and Redis
# keys); each entry is one command line.
AT_EXIT=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for cmd in "${AT_EXIT[@]}"; do eval "$cmd" || true; done
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

# --- 6. the load-balanced deployment ----------------------------------------------------------
# N `tokenmint serve` instances over one PostgreSQL database and one Redis behind HAProxy, as
# README's "several instances" describes and crates/tokenmint-server/tests/load_balanced.rs
# runs it: round robin, every request on its own, /readyz health checks, token requests retried
# on another instance when one drops them. Every instance and HAProxy share core 0 (wrk has core
# 1), so on two cores more instances show what each one costs, not scaling. PostgreSQL and Redis
# are the machine's own services and are not pinned.
LB_PG_HOST="${BENCH_PG_HOST:-127.0.0.1}"
LB_PG_PORT="${BENCH_PG_PORT:-5432}"
LB_PG_USER="${BENCH_PG_USER:-postgres}"
LB_DB="${BENCH_LB_DATABASE:-tokenmint_bench_lb}"
LB_REDIS_HOST="${BENCH_REDIS_HOST:-127.0.0.1}"
LB_REDIS_PORT="${BENCH_REDIS_PORT:-6379}"
LB_REDIS_DB="${BENCH_REDIS_DB:-15}"
lb_psql() { # SQL... : each one in the maintenance database, on a connection of its own
  local sql
  for sql in "$@"; do
    PGCONNECT_TIMEOUT=5 PGOPTIONS='-c client_min_messages=warning' psql -X -q -At -v ON_ERROR_STOP=1 -h "$LB_PG_HOST" -p "$LB_PG_PORT" \
      -U "$LB_PG_USER" -d postgres -c "$sql"
  done
}
lb_redis() { timeout 5 redis-cli -h "$LB_REDIS_HOST" -p "$LB_REDIS_PORT" "$@"; }
lb_unavailable() { # prints why the section cannot run, nothing when it can
  command -v psql >/dev/null || { echo "psql (the PostgreSQL client) is not installed"; return; }
  command -v redis-cli >/dev/null || { echo "redis-cli is not installed"; return; }
  lb_psql "select 1" >/dev/null 2>&1 \
    || { echo "PostgreSQL does not answer at $LB_PG_HOST:$LB_PG_PORT as $LB_PG_USER"; return; }
  [ "$(lb_redis ping 2>/dev/null)" = PONG ] \
    || { echo "Redis does not answer at $LB_REDIS_HOST:$LB_REDIS_PORT"; return; }
}
if section balancer; then
lb_why="$(lb_unavailable)"
if [ -n "$lb_why" ]; then
  say "skipping the balancer section: $lb_why"
else
say "balancer: 1, 2 and 3 instances over PostgreSQL ($LB_DB) and Redis (db $LB_REDIS_DB)"
AT_EXIT+=("lb_psql 'DROP DATABASE IF EXISTS $LB_DB WITH (FORCE)' >/dev/null 2>&1")
AT_EXIT+=("lb_redis -n $LB_REDIS_DB flushdb >/dev/null 2>&1")
# The instances reach PostgreSQL through a relay that counts round trips (see its docstring),
# on the load generator's core like wrk.
relay_port="$(free_port)"
relay_count_port="$(free_port)"
start_pinned "$LOAD_CPU" "$WORK/pg-relay.log" python3 bench/pg_relay.py "$relay_port" \
  "$LB_PG_HOST" "$LB_PG_PORT" "$relay_count_port"
relay_pid="$PID"
for _ in $(seq 1 100); do (: </dev/tcp/127.0.0.1/"$relay_count_port") 2>/dev/null && break; sleep 0.1; done
openssl rand -hex 32 >"$WORK/lb-master.key" 2>/dev/null \
  || python3 -c 'import secrets; print(secrets.token_hex(32))' >"$WORK/lb-master.key"
# lb_sample : PostgreSQL round trips through the relay, the bench database's transactions,
# and Redis's commands and scripts run so far (server-wide: the INFO of each sample is one).
lb_sample() {
  local trips xacts
  read -r trips </dev/tcp/127.0.0.1/"$relay_count_port"
  xacts="$(lb_psql "select xact_commit + xact_rollback from pg_stat_database where datname = '$LB_DB'")"
  echo "$trips" "$xacts" "$(lb_redis info all | tr -d '\r' | awk -F'[:=,]' '
    /^total_commands_processed:/ { total = $2 }
    /^cmdstat_eval(sha)?(_ro)?:/ { scripts += $3 }
    END { print total + 0, scripts + 0 }')"
}
# The commands of one sample as Redis counts them: the least of a few back-to-back samples (more
# only when another client of this Redis was busy in between).
lb_own_commands() {
  local least="" a b
  for _ in 1 2 3 4 5; do
    read -r _ _ a _ <<<"$(lb_sample)"
    read -r _ _ b _ <<<"$(lb_sample)"
    if [ -z "$least" ] || [ $((b - a)) -lt "$least" ]; then least=$((b - a)); fi
  done
  echo "$least"
}
LB_OWN="$(lb_own_commands)"
lb_ticks() { local pid; for pid in "$@"; do cpu_ticks "$pid"; done | paste -sd' '; }
lb_haproxy_config() { # PORT STATS_PORT SERVER_PORTS...
  local port="$1" stats="$2" i=0 p; shift 2
  cat <<CFG
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    option forwardfor
    retries 3
    option redispatch 1
frontend edge
    bind 127.0.0.1:$port
    default_backend tokenmint
listen stats
    bind 127.0.0.1:$stats
    stats enable
    stats uri /stats
backend tokenmint
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    retry-on conn-failure empty-response
    http-request disable-l7-retry unless { path /oauth/token }
    default-server inter 1s fastinter 100ms downinter 100ms fall 2 rise 2
CFG
  for p in "$@"; do echo "    server s$i 127.0.0.1:$p check"; i=$((i + 1)); done
}
# balancer_bed NAME N MODE : a fresh database and Redis db, N instances (MODE lb: behind
# HAProxy; direct: the one instance called directly), one credential; then an idle window and
# a measured run of the same length, recorded as NAME; then everything is stopped and dropped.
balancer_bed() {
  local name="$1" n="$2" mode="$3" dir="$WORK/$1"
  mkdir -p "$dir"
  lb_psql "DROP DATABASE IF EXISTS $LB_DB WITH (FORCE)" "CREATE DATABASE $LB_DB"
  lb_redis -n "$LB_REDIS_DB" flushdb >/dev/null
  local ports=() pids=() i entry lb_port stats_port haproxy_pid=""
  for i in $(seq 1 "$n"); do ports+=("$(free_port)"); done
  if [ "$mode" = lb ]; then
    lb_port="$(free_port)"
    stats_port="$(free_port)"
    entry="http://127.0.0.1:$lb_port"
  else
    entry="http://127.0.0.1:${ports[0]}"
  fi
  local db_url="postgres://$LB_PG_USER@127.0.0.1:$relay_port/$LB_DB?sslmode=disable"
  # Every instance names the balancer as its issuer and holds the same master key; init
  # migrates and makes the first signing key and the admin credential once.
  "$TM" init --database "$db_url" --master-key-file "$WORK/lb-master.key" --issuer "$entry" \
    --signing-alg ES256 >"$dir/admin.json"
  for i in "${!ports[@]}"; do
    start_pinned "$SERVER_CPU" "$dir/s$i.log" "$TM" serve --database "$db_url" --no-migrate \
      --master-key-file "$WORK/lb-master.key" --listen "127.0.0.1:${ports[$i]}" \
      --issuer "$entry" --signing-alg ES256 --token-rate-limit 1000000000 \
      --product-area eligibility --admin-credential-file "$dir/admin-s$i.json" \
      --redis "redis://$LB_REDIS_HOST:$LB_REDIS_PORT/$LB_REDIS_DB" \
      --redis-prefix "tokenmint-bench:" --behind-proxy 127.0.0.1
    pids+=("$PID")
  done
  for i in "${!ports[@]}"; do wait_for "http://127.0.0.1:${ports[$i]}/readyz"; done
  if [ "$mode" = lb ]; then
    lb_haproxy_config "$lb_port" "$stats_port" "${ports[@]}" >"$dir/haproxy.cfg"
    start_pinned "$SERVER_CPU" "$dir/haproxy.log" "$HAPROXY" -db -f "$dir/haproxy.cfg"
    haproxy_pid="$PID"
    # Until its health checks have every instance UP.
    local up=0
    for _ in $(seq 1 300); do
      up="$(curl -fs "http://127.0.0.1:$stats_port/stats;csv" 2>/dev/null \
        | awk -F, '$1 == "tokenmint" && $2 ~ /^s[0-9]+$/ && $18 == "UP"' | wc -l)" || up=0
      [ "$up" -eq "$n" ] && break
      sleep 0.1
    done
    [ "$up" -eq "$n" ] || die "HAProxy never had all $n instances UP (see $dir/haproxy.log)"
  fi
  "$TM" credentials create --endpoint "$entry" --admin-credentials "$dir/admin.json" \
    --name bench --org bench --environment production --permission eligibility:read \
    --output json >"$dir/credential.json"
  local body url
  body="grant_type=client_credentials&client_id=$(json_field "$dir/credential.json" client_id)"
  body+="&client_secret=$(json_field "$dir/credential.json" client_secret)&scope=eligibility%3Aread"
  url="$entry/oauth/token"
  check_jwt "$url" "$body" ES256
  # Idle: what the instances (change-log polls, health checks, batched writes) and other
  # clients of this Redis do without a token request.
  sleep 1
  local idle0 idle1 load0 load1 ticks0 ticks1 hticks0=0 hticks1=0 result
  idle0="$(lb_sample)"
  sleep "$SECONDS_PER_RUN"
  idle1="$(lb_sample)"
  wrk_run "$WARMUP_SECONDS" "$url" "$body" >/dev/null
  load0="$(lb_sample)"
  ticks0="$(lb_ticks "${pids[@]}")"
  [ -z "$haproxy_pid" ] || hticks0="$(cpu_ticks "$haproxy_pid")"
  result="$(wrk_run "$SECONDS_PER_RUN" "$url" "$body")"
  [ -z "$haproxy_pid" ] || hticks1="$(cpu_ticks "$haproxy_pid")"
  ticks1="$(lb_ticks "${pids[@]}")"
  load1="$(lb_sample)"
  [ -n "$result" ] || die "no result from wrk for $name"
  say "$name: $result"
  python3 - "$name" "$n" "$result" "$idle0" "$idle1" "$load0" "$load1" "$ticks0" "$ticks1" \
    "$((hticks1 - hticks0))" "$LB_OWN" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import sys
name, n, result, i0, i1, l0, l1, t0, t1, hticks, own, clk = sys.argv[1:]
def delta(a, b):
    return [y - x for x, y in zip(map(int, a.split()), map(int, b.split()))]
idle, load = delta(i0, i1), delta(l0, l1)
ticks = delta(t0, t1)
fields = [result, f"instances={n}", f"cpu_ticks={sum(ticks)}",
          "instance_ticks=" + ",".join(map(str, ticks)), f"haproxy_ticks={hticks}", f"clk_tck={clk}"]
for prefix, d in (("", load), ("idle_", idle)):
    # The sample that opened the window is counted by Redis in it.
    fields += [f"{prefix}pg_round_trips={d[0]}", f"{prefix}pg_xacts={d[1]}",
               f"{prefix}redis_commands={d[2] - int(own)}", f"{prefix}redis_scripts={d[3]}"]
print(f"{name}\t{' '.join(fields)}")
PY
  [ -z "$haproxy_pid" ] || stop "$haproxy_pid"
  for i in "${pids[@]}"; do stop "$i"; done
  lb_psql "DROP DATABASE IF EXISTS $LB_DB WITH (FORCE)"
  lb_redis -n "$LB_REDIS_DB" flushdb >/dev/null
}
balancer_bed "balancer/direct" 1 direct
for n in 1 2 3; do balancer_bed "balancer/lb$n" "$n" lb; done
stop "$relay_pid"
fi
fi

# --- report -----------------------------------------------------------------------------------
python3 bench/report.py "$RESULTS" \
  --seconds "$SECONDS_PER_RUN" --connections "$CONNECTIONS" --credentials "$CREDENTIALS" \
  | tee "$REPORT"
say "report written to $REPORT"
