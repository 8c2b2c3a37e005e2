#!/usr/bin/env bash
# Installs Debian's haproxy for the end-to-end test of X-Forwarded-For handling behind a real
# proxy (crates/tokenmint-server/tests/behind_haproxy.rs) and the load-balanced test bed
# (crates/tokenmint-server/tests/load_balanced.rs). Idempotent and quick when present.
set -euo pipefail
command -v haproxy >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends haproxy)
