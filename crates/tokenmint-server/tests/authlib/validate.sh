#!/usr/bin/env bash
# Validates a live server's two discovery documents with authlib: RFC 8414's
# AuthorizationServerMetadata and OpenID Connect Discovery's OpenIDProviderMetadata. Reuses the
# virtual environment (and the pinned versions) of the client crate's authlib test, under the
# workspace's target directory. Exit status: 0 valid, 1 invalid (the reason on stderr), 3 when
# authlib cannot be installed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
requirements="$here/../../../tokenmint-client/tests/authlib/requirements.txt"
venv="${TOKENMINT_AUTHLIB_VENV:-$here/../../../../target/authlib-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import authlib' 2>/dev/null; then
  { python3 -m venv "$venv" &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"; } 1>&2 || exit 3
fi
exec "$venv/bin/python" "$here/validate_metadata.py" "$@"
