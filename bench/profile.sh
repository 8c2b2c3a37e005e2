#!/usr/bin/env bash
# Where a token request's CPU time goes: tokenmint on core 0 under the harness's load (wrk on
# core 1, 32 connections), sampled with perf, summed into the parts that matter.
#
#   bench/profile.sh [ES256|EdDSA|RS256]      # needs perf (Debian: linux-perf)
#
# Prints the share of the server's samples (children included) in: the signature, the socket
# writes (with the kernel's loopback delivery and the wake-up of the client), the socket reads,
# waiting for events, and everything else (tokenmint's own work and the HTTP stack's). The perf
# data stays in target/bench-profile/ for `perf report -i`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ALG="${1:-ES256}"
command -v perf >/dev/null || { echo "profile: needs perf (apt-get install linux-perf)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "profile: needs wrk (bench/run.sh installs it)" >&2; exit 1; }
cargo build --release --locked -p tokenmint >&2
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
TM="$TARGET_DIR/release/tokenmint"
OUT="$TARGET_DIR/bench-profile"
rm -rf "$OUT" && mkdir -p "$OUT"
export TOKENMINT_LOG=warn NO_PROXY='*'
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
"$TM" init --database "sqlite://$OUT/t.db" --issuer "$url" --signing-alg "$ALG" >"$OUT/admin.json"
taskset -c 0 "$TM" serve --database "sqlite://$OUT/t.db" --listen "127.0.0.1:$port" --issuer "$url" \
  --signing-alg "$ALG" --token-rate-limit 1000000000 --product-area eligibility >"$OUT/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs -o /dev/null "$url/healthz" && break; sleep 0.1; done
"$TM" credentials create --endpoint "$url" --admin-credentials "$OUT/admin.json" --name profile \
  --org bench --environment production --permission eligibility:read --output json >"$OUT/credential.json"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
export BODY="grant_type=client_credentials&client_id=$(field "$OUT/credential.json" client_id)&client_secret=$(field "$OUT/credential.json" client_secret)&scope=eligibility%3Aread"
taskset -c 1 wrk -t1 -c32 -d3s -s bench/post.lua "$url/oauth/token" >/dev/null
taskset -c 1 wrk -t1 -c32 -d10s -s bench/post.lua "$url/oauth/token" >"$OUT/wrk.txt" &
sleep 2
perf record -q -e cpu-clock -F 1999 --call-graph dwarf,16384 -p "$pid" -o "$OUT/perf.data" -- sleep 5 2>/dev/null
wait %2 2>/dev/null || true
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null >"$OUT/report.txt"
python3 - "$OUT/report.txt" "$ALG" <<'EOF'
import re, sys
shares = {}
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(.*?)\s*$", line)
    if m:
        name = m.group(4)
        shares.setdefault(name, float(m.group(1)))
def share(*patterns):
    return max((v for k, v in shares.items() if any(p in k for p in patterns)), default=0.0)
rows = [
    ("the signature (aws-lc-rs)", share("tokenmint_core::keys::SigningKey::sign_into")),
    ("socket writes: kernel send, loopback delivery, waking the client", share("do_writev")),
    ("socket reads", share("__sys_recvfrom")),
    ("waiting for events (epoll)", share("do_epoll_wait")),
]
rows.append(("everything else: HTTP parsing and encoding, routing, middleware, authentication, "
             "limits, claims, response, allocation", max(100 - sum(v for _, v in rows), 0)))
print(f"Profile of tokenmint's token endpoint, {sys.argv[2]}, share of the server's CPU samples:")
print()
print("| part | share |")
print("|---|---|")
for name, value in rows:
    print(f"| {name} | {value:.1f} % |")
EOF
grep RESULT "$OUT/wrk.txt" >&2 || true
