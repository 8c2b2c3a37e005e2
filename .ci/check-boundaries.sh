#!/usr/bin/env bash
# Keeps the gateway (and the shared HTTP crate it is built on) free of the server's storage,
# password hashing and portal: a gateway build must not compile sqlx, SQLite's C library,
# argon2, tokenmint-server or tokenmint-store. Judged from `cargo tree` over the normal
# dependencies (tests may still start a real server).
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='^(sqlx|sqlx-[a-z0-9-]+|libsqlite3-sys|argon2|tokenmint-server|tokenmint-store) '
status=0
for package in tokenmint-gateway tokenmint-http; do
  # A failing `cargo tree` stops the script (set -e) rather than passing for an empty tree.
  tree="$(cargo tree --locked -p "$package" -e normal --prefix none)"
  found="$(grep -E "$forbidden" <<<"$tree" | awk '{print $1}' | sort -u | tr '\n' ' ' || true)"
  if [ -n "$found" ]; then
    echo "$package depends on ${found% }: it must be built from tokenmint-verify, tokenmint-client," \
      "tokenmint-proto and tokenmint-http alone. Find the path with" \
      "\`cargo tree -p $package -e normal -i <crate>\` and remove that dependency." >&2
    status=1
  else
    echo "$package: no sqlx, argon2, tokenmint-server or tokenmint-store"
  fi
done
exit "$status"
