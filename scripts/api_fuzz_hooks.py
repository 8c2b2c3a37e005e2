"""schemathesis hooks for scripts/api-fuzz.sh.

The run authenticates as the platform-admin credential that `tokenmint serve` wrote on first
start, and the admin API lets that credential act on itself. Generated cases would then lock the
rest of the run out, leaving most operations answered 401 and untested:

- the token is fetched again whenever a request is answered 401, so that revoking the admin's
  tokens or withdrawing the key that signed them costs one token request;
- cases aimed at the admin credential itself (deactivate, delete or rotate its secret, ...) are
  skipped: they are valid requests, but the run cannot survive them.

Two more credentials are created before the run, so that the operations on one credential have
something other than the admin credential to act on.

The credential comes from the file named by API_FUZZ_ADMIN_FILE; the secret and the tokens are
never printed.
"""

import base64
import json
import os
import urllib.parse
import urllib.request

import schemathesis

_CREDENTIAL = json.load(open(os.environ["API_FUZZ_ADMIN_FILE"]))
_TOKEN_ENDPOINT = os.environ["API_FUZZ_TOKEN_ENDPOINT"]


def _admin_token() -> str:
    quote = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731  (RFC 6749 §2.3.1)
    basic = f"{quote(_CREDENTIAL['client_id'])}:{quote(_CREDENTIAL['client_secret'])}"
    request = urllib.request.Request(
        _TOKEN_ENDPOINT,
        data=urllib.parse.urlencode(
            {"grant_type": "client_credentials", "scope": "tokenmint:admin"}
        ).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def _seed() -> None:
    base = _TOKEN_ENDPOINT.rsplit("/oauth/token", 1)[0]
    token = _admin_token()
    for name, permissions in (("fuzz reader", ["eligibility:read"]), ("fuzz writer", ["billing:write"])):
        body = {"name": name, "org": "fuzz", "environment": "sandbox", "permissions": permissions}
        request = urllib.request.Request(
            base + "/admin/v1/credentials",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


_seed()


@schemathesis.auth(refresh_interval=300, retry_on=[401])
class AdminToken:
    def get(self, case, ctx):
        return _admin_token()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def filter_case(ctx, case):
    return (case.path_parameters or {}).get("client_id") != _CREDENTIAL["client_id"]
