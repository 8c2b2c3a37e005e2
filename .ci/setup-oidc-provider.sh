#!/usr/bin/env bash
# Installs node-oidc-provider (npm) into bench/peer for the gateway's test with tokens from an
# issuer tokenmint did not write (crates/tokenmint-gateway/tests/oidc_provider.rs) and for the
# performance harness. Idempotent and quick when it is there.
set -euo pipefail
cd "$(dirname "$0")/../bench/peer"
if [ ! -d node_modules/oidc-provider ]; then
  npm install --no-audit --no-fund --no-package-lock --loglevel=error
fi
