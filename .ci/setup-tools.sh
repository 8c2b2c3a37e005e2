#!/usr/bin/env bash
# Tools .ci/run needs beyond the Rust toolchain. Idempotent, and instant when they are present.
set -euo pipefail
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
