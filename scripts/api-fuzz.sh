#!/usr/bin/env bash
# API fuzzing of the admin API with schemathesis: starts `tokenmint serve` on a free port with a
# throwaway SQLite database, and runs schemathesis against /admin/v1/openapi.json with admin
# tokens taken with the credential written on first start (see scripts/api_fuzz_hooks.py). It
# fails when any response is a 5xx or does not match the OpenAPI document (status, content type,
# headers, body).
#
#   scripts/api-fuzz.sh [extra schemathesis options]   e.g. --max-examples 200 (default 30)
#   API_FUZZ_CHECKS=all scripts/api-fuzz.sh             every schemathesis check (e.g. that a
#                                                      schema-violating request is refused)
#
# With every check, one is left out: positive_data_acceptance (every request the document
# allows is accepted). The document states each bound JSON Schema can state (lengths, patterns,
# ranges, counts, values, members that exclude each other), and the server refuses exactly what
# it refuses; but these rules of the admin API cannot be written in JSON Schema, so a request
# the document allows can still be refused (400 or 422) for a rule stated in words or implied:
#   - a public key (`public_keys`, `keys`) must be a PEM public key, a JWK or a JWK Set of a
#     supported key type: its structure and mathematics are no pattern, and generated text is
#     never one;
#   - custom claims are bounded in bytes as compact JSON (each value, and all of a credential's
#     or organization's together) and in nesting depth, and a PATCH counts the claims it adds
#     with those already stored;
#   - a claim may not be both set (`claims`) and removed (`remove_claims`) in one request: a
#     comparison of one member's keys with another's items;
#   - a `cursor` must be one a listing returned (an opaque token, the empty string included);
#   - an integer must be written as one: JSON Schema's `integer` is a value, so it admits
#     `86400.0`, which the server's JSON reader (serde) refuses for an integer member.
# negative_data_rejection, its counterpart, runs: whatever the document refuses, the server
# refuses.
#
# schemathesis is installed with pip into a venv under .tools/ (gitignored) when missing.
# CARGO_TARGET_DIR is honoured for the build (TOKENMINT_BIN=PATH runs that binary instead);
# the report is kept in .tools/api-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.tools/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "== installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet schemathesis
fi

if [ -n "${TOKENMINT_BIN:-}" ]; then
  bin="$TOKENMINT_BIN"
else
  echo "== building tokenmint"
  cargo build --quiet --bin tokenmint
  bin="${CARGO_TARGET_DIR:-target}/debug/tokenmint"
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
base="http://127.0.0.1:$port"
echo "== starting tokenmint serve on $base (database in $work)"
TOKENMINT_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --database "sqlite://$work/api-fuzz.db" \
  --product-area eligibility --product-area billing \
  --admin-credential-file "$work/admin.json" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "$base/healthz" >/dev/null 2>&1 && [ -s "$work/admin.json" ]; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then echo "tokenmint serve exited:" >&2; cat "$work/server.log" >&2; exit 1; fi
  sleep 0.2
done

# The hooks take admin tokens with the credential in admin.json, and keep generated cases from
# locking that credential out (see scripts/api_fuzz_hooks.py); no secret or token is printed.
export API_FUZZ_ADMIN_FILE="$work/admin.json"
export API_FUZZ_TOKEN_ENDPOINT="$base/oauth/token"
export SCHEMATHESIS_HOOKS=api_fuzz_hooks
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"

report=.tools/api-fuzz
mkdir -p "$report"
echo "== schemathesis: no 5xx, and status, content type, headers and body as documented"
status=0
exclude=()
if [ "${API_FUZZ_CHECKS:-}" = all ]; then exclude=(--exclude-checks positive_data_acceptance); fi
"$venv/bin/schemathesis" run "$base/admin/v1/openapi.json" \
  --checks "${API_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}" \
  "${exclude[@]}" \
  --report junit --report-dir "$report" \
  --max-examples 30 \
  "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "== server log (last 50 lines)"
  tail -n 50 "$work/server.log"
fi
exit "$status"
