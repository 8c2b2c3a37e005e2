"""Fetches ISSUER's RFC 8414 and OpenID Connect discovery documents and validates each with
authlib's own validators, as a Python client would before trusting them. Prints "valid" and
exits 0, or prints the validator's complaint and exits 1."""

import json
import sys
import urllib.request

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def main(issuer):
    checks = [
        ("/.well-known/oauth-authorization-server", AuthorizationServerMetadata),
        ("/.well-known/openid-configuration", OpenIDProviderMetadata),
    ]
    for path, model in checks:
        document = fetch(issuer + path)
        try:
            model(document).validate()
        except ValueError as error:
            print(f"{path}: {error}", file=sys.stderr)
            return 1
        if document.get("issuer") != issuer:
            print(f"{path}: issuer {document.get('issuer')!r} is not {issuer!r}", file=sys.stderr)
            return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
