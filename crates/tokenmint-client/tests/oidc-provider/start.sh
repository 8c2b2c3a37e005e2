#!/usr/bin/env bash
# Installs node-oidc-provider into ./node_modules (once; git-ignored) and starts it on a free
# localhost port. Prints "listening <issuer>" on stdout when ready; everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/oidc-provider ]; then
  npm install --no-audit --no-fund --no-package-lock --loglevel=error 1>&2
fi
exec node server.mjs
