#!/usr/bin/env bash
# Installs authlib and Flask into a virtual environment under the workspace's target directory
# (once; never committed) and starts tests/authlib/server.py on a free localhost port. Prints
# "listening <issuer>" on stdout when ready; everything else goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${TOKENMINT_AUTHLIB_VENV:-$here/../../../../target/authlib-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import authlib, flask' 2>/dev/null; then
  python3 -m venv "$venv" 1>&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" 1>&2
fi
exec "$venv/bin/python" "$here/server.py"
