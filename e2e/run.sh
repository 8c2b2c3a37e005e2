#!/usr/bin/env bash
# Browser end-to-end tests of the credential portal.
#
# Builds the real binary, starts `tokenmint serve` on a free port with a throw-away SQLite
# database, creates organizations and users through the CLI, and drives headless Chromium
# through the portal (portal.test.js); then creates more credentials than one page of the list
# holds and checks every page's layout, the dark scheme and the credential pages
# (credentials.test.js). Screenshots of the main pages go to
# e2e/screenshots/NAME.tmp.png (ignored by git); TOKENMINT_UPDATE_SCREENSHOTS=1 writes the
# committed NAME.png instead.
#
# Needs chromium (Debian's package, /usr/bin/chromium; override with TOKENMINT_CHROMIUM) and
# node with npm. Without them the tests are skipped with a message, unless
# TOKENMINT_REQUIRE_SERVICES=1 (CI), which makes a missing tool a failure.
set -euo pipefail
cd "$(dirname "$0")"
E2E_DIR=$(pwd)
ROOT=$(cd .. && pwd)

skip() {
  if [ "${TOKENMINT_REQUIRE_SERVICES:-0}" = "1" ]; then
    echo "e2e: $1, and TOKENMINT_REQUIRE_SERVICES=1 requires the browser tests" >&2
    exit 1
  fi
  echo "e2e: skipping the browser tests: $1"
  exit 0
}

export TOKENMINT_CHROMIUM="${TOKENMINT_CHROMIUM:-/usr/bin/chromium}"
[ -x "$TOKENMINT_CHROMIUM" ] || skip "chromium not found at $TOKENMINT_CHROMIUM (apt-get install chromium)"
command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"

if [ ! -d node_modules/playwright-core ]; then
  echo "e2e: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "e2e: building tokenmint"
(cd "$ROOT" && cargo build --quiet --bin tokenmint)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tokenmint"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"

"$BIN" serve --listen "127.0.0.1:$PORT" --database "sqlite://$WORK/tokenmint.db" \
  --admin-credential-file "$WORK/admin.json" \
  --product-area eligibility --product-area billing \
  --org-editable-claim tenant >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 100); do
  if node -e "fetch('$BASE/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/server.log" >&2; echo "e2e: the server exited" >&2; exit 1; fi
  sleep 0.2
done

admin() { "$BIN" "$@" --endpoint "$BASE" --admin-credentials "$WORK/admin.json"; }
export ADMIN_PASSWORD="acme-admin-$(date +%s)-pw"
export VIEWER_PASSWORD="acme-viewer-$(date +%s)-pw"
export OTHER_PASSWORD="globex-admin-$(date +%s)-pw"
admin orgs create acme --name "Acme Health" >/dev/null
admin orgs create globex --name "Globex" >/dev/null
printf '%s\n' "$ADMIN_PASSWORD" | admin users create --org acme --email admin@acme.test --role admin --password-stdin >/dev/null
printf '%s\n' "$VIEWER_PASSWORD" | admin users create --org acme --email viewer@acme.test --role viewer --password-stdin >/dev/null
printf '%s\n' "$OTHER_PASSWORD" | admin users create --org globex --email admin@globex.test --password-stdin >/dev/null
admin users list

export BASE
export SCREENSHOTS="$E2E_DIR/screenshots"
run_test() {
  if ! node "$E2E_DIR/$1"; then
    echo "e2e: $1 failed; server log:" >&2
    tail -n 50 "$WORK/server.log" >&2
    exit 1
  fi
}
run_test portal.test.js

# More credentials than a page of the list holds, through the CLI: every fifth in production.
export BATCH=25
for i in $(seq 0 $((BATCH - 1))); do
  env=sandbox
  if [ $((i % 5)) -eq 0 ]; then env=production; fi
  admin credentials create --name "Batch $i" --org acme --environment "$env" \
    --permission eligibility:read >/dev/null
done
admin credentials create --name "Claims demo" --org acme --environment sandbox \
  --permission eligibility:read --claim tier=gold --claim tenant=t-1 >/dev/null
run_test credentials.test.js
