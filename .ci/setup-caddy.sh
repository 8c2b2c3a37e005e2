#!/usr/bin/env bash
# Installs Debian's Caddy for the gateway's forward_auth end-to-end test
# (crates/tokenmint-gateway/tests/external_proxies.rs). Idempotent and quick when it is there.
# The package's own service is not used: the test starts Caddy with its own Caddyfile.
set -euo pipefail
if ! command -v caddy >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y caddy
fi
