"""Gets a token from TOKEN_ENDPOINT as CLIENT_ID with authlib's own `private_key_jwt` client
authentication (authlib.oauth2.rfc7523.PrivateKeyJWT on a requests OAuth2Session), signing with
the PEM private key in KEY_FILE and algorithm ALG. Prints the access token and exits 0, or prints
the error and exits 1.

authlib dates its assertions an hour ahead by default; tokenmint accepts at most five minutes
(RFC 7523 §3 leaves the bound to the server), so each assertion is given `exp` 60 seconds ahead,
the one change a partner makes."""

import sys
import time

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey, OKPKey, RSAKey


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    def sign(self, auth, token_endpoint):
        # A fresh dict every time: authlib writes the jti into it.
        self.claims = {"exp": int(time.time()) + 60}
        return super().sign(auth, token_endpoint)


def main(token_endpoint, client_id, key_file, alg):
    pem = open(key_file, "rb").read()
    kind = {"RS": RSAKey, "PS": RSAKey, "ES": ECKey, "Ed": OKPKey}[alg[:2]]
    key = kind.import_key(pem)
    session = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt")
    session.register_client_auth_method(ShortLivedPrivateKeyJWT(token_endpoint, alg=alg))
    try:
        token = session.fetch_token(token_endpoint, grant_type="client_credentials")
    except Exception as error:  # noqa: BLE001 - the test prints whatever authlib raised
        print(f"fetch_token failed: {error!r}", file=sys.stderr)
        return 1
    print(token["access_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
