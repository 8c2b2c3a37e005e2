#!/usr/bin/env bash
# Installs Debian's nginx for the gateway's differential path test and its auth_request
# end-to-end test (crates/tokenmint-gateway/tests). Idempotent and quick when it is there.
# The package's own service is not used: the tests start nginx with their own configuration.
set -euo pipefail
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y nginx
fi
