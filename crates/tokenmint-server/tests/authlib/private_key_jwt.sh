#!/usr/bin/env bash
# Runs private_key_jwt.py with authlib (and requests, which its OAuth2Session needs) from the
# virtual environment the other authlib tests use, under the workspace's target directory.
# Exit status: 0 token printed, 1 refused (the reason on stderr), 3 when authlib cannot be
# installed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
requirements="$here/../../../tokenmint-client/tests/authlib/requirements.txt"
venv="${TOKENMINT_AUTHLIB_VENV:-$here/../../../../target/authlib-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import authlib, requests' 2>/dev/null; then
  { { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" requests; } 1>&2 || exit 3
fi
exec "$venv/bin/python" "$here/private_key_jwt.py" "$@"
