"""An authlib authorization server with the client-credentials grant, for tokenmint-client's tests.

Listens on a free localhost port and prints one line, "listening <issuer>", once it accepts
requests. Its clients' ids and secrets hold a space, a plus, a colon and a percent sign: the
characters on which RFC 6749 section 2.3.1 encoders and authlib's decoder may disagree.
"""

import sys
import threading
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from flask import Flask, jsonify
from werkzeug.serving import make_server

CLIENTS = {
    "basic client:1": ("basic secret+with:odd%chars", "client_secret_basic"),
    "post client+2": ("post secret+with:odd%chars", "client_secret_post"),
}


class Client(ClientMixin):
    def __init__(self, client_id):
        self.client_id = client_id
        self.client_secret, self.auth_method = CLIENTS[client_id]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        allowed = {"api:read", "api:write"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.auth_method

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"


def query_client(client_id):
    return Client(client_id) if client_id in CLIENTS else None


def save_token(token, request):
    pass


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


app = Flask(__name__)
app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"client_credentials": 600}
server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
server.register_grant(ClientCredentialsGrant)


@app.post("/oauth/token")
def issue_token():
    return server.create_token_response()


http = make_server("127.0.0.1", 0, app, threaded=True)
issuer = f"http://127.0.0.1:{http.server_port}"


@app.get("/.well-known/oauth-authorization-server")
def metadata():
    return jsonify(
        issuer=issuer,
        token_endpoint=f"{issuer}/oauth/token",
        grant_types_supported=["client_credentials"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
    )


def stop_with_parent():
    # The parent closes stdin when it is done or dies.
    sys.stdin.read()
    http.shutdown()


threading.Thread(target=stop_with_parent, daemon=True).start()
print(f"listening {issuer}", flush=True)
http.serve_forever()
