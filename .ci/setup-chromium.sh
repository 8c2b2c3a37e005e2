#!/usr/bin/env bash
# Installs Debian's chromium for the portal's browser tests (e2e/run.sh). Idempotent and quick
# when it is already there.
set -euo pipefail
command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)
