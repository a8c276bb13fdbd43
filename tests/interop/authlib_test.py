"""The OpenID Provider with Python's authlib (1.9): a confidential web app (client_secret_basic)
runs the authorization code flow with PKCE and nonce against local-api through the hosted
pages (a requests session keeps the cookies, the forms are filled by their input names),
validates the ID token with authlib's own JOSE against the published JWKS, reads userinfo,
refreshes, and revokes.

local-api registers only public clients, so the test registers its own confidential client
with auth-admin in local-api's DynamoDB mode. Environment: LOCAL_API and AUTH_ADMIN (the
binaries, default target/debug/), AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local, as scripts/test
exports it). Run by scripts/test, with authlib and requests from .tools/interop-py.
"""

import html
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import unittest
from urllib.parse import parse_qs, urljoin, urlparse

import warnings

import requests
from authlib.integrations.requests_client import OAuth2Session

# authlib's OpenID Connect claim checks (CodeIDToken) still live on authlib.jose, which warns
# that it will move to joserfc in 2.0; the checks are what this test is for.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
EMAIL = "authlib@example.com"
PASSWORD = "correct horse battery staple"
REDIRECT = "https://webapp.example/callback"


def start_local_api(table):
    binary = os.environ.get("LOCAL_API", os.path.join(ROOT, "target/debug/local-api"))
    env = dict(os.environ, BCRYPT_COST="4", BCRYPT_ALLOW_LOW_COST="true", RUST_LOG="warn",
               USERS_TABLE=table)
    child = subprocess.Popen([binary, "--port", "0", "--no-web"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    found = {}

    def read():
        for line in child.stdout:
            log.append(line)
            match = re.search(r"listening on (http://(?:127\.0\.0\.1|localhost):\d+)", line)
            if match:
                found["api"] = match.group(1)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 30
    while "api" not in found:
        if child.poll() is not None or time.time() > deadline:
            child.kill()
            raise RuntimeError("local-api did not start:\n" + "".join(log))
        time.sleep(0.05)
    return child, found["api"]


def admin(table, *args):
    binary = os.environ.get("AUTH_ADMIN", os.path.join(ROOT, "target/debug/auth-admin"))
    out = subprocess.run([binary, "--table", table, "--output", "json", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


class Browser:
    """A browser: cookies by name and redirects by hand. Kept here rather than in requests' jar,
    which (rightly, for real hosts) never sends a Secure cookie over plain http, while browsers
    treat 127.0.0.1 as a secure origin."""

    def __init__(self):
        self.cookies = {}

    def _send(self, method, url, **kwargs):
        headers = {}
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        answer = requests.request(method, url, headers=headers, allow_redirects=False,
                                  timeout=10, **kwargs)
        for cookie in answer.raw.headers.getlist("Set-Cookie"):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return answer

    def get(self, url):
        return self._send("GET", url)

    def submit(self, page_url, page, fields):
        action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
        form = {name: html.unescape(value) for name, value in
                re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}
        form.update(fields)
        return self._send("POST", urljoin(page_url, action), data=form)

    def sign_in(self, authorization_url):
        start = self.get(authorization_url)
        assert start.status_code == 303, start.text
        location = urljoin(authorization_url, start.headers["location"])
        if location.startswith(REDIRECT):
            return location
        page = self.get(location)
        assert page.status_code == 200, page.text
        assert 'name="email"' in page.text and 'name="password"' in page.text
        done = self.submit(location, page.text, {"email": EMAIL, "password": PASSWORD})
        assert done.status_code == 303, done.text
        return done.headers["location"]


class AuthlibCodeFlow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = "authlib-" + secrets.token_hex(4)
        cls.child, cls.api = start_local_api(cls.table)
        created = admin(cls.table, "clients", "create", "--name", "Web app", "--type",
                        "confidential", "--grant-types", "authorization_code,refresh_token",
                        "--redirect-uri", REDIRECT, "--first-party", "--scopes", "api:read")
        cls.client_id, cls.client_secret = created["client_id"], created["client_secret"]
        registered = requests.post(cls.api + "/register", json={"email": EMAIL,
                                                                  "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        cls.metadata = requests.get(cls.api + "/.well-known/openid-configuration").json()
        cls.jwks = JsonWebKey.import_key_set(requests.get(cls.metadata["jwks_uri"]).json())

    @classmethod
    def tearDownClass(cls):
        cls.child.send_signal(signal.SIGINT)
        cls.child.wait(timeout=10)

    def client(self):
        return OAuth2Session(self.client_id, self.client_secret,
                             token_endpoint_auth_method="client_secret_basic",
                             redirect_uri=REDIRECT, scope="openid email offline_access api:read",
                             code_challenge_method="S256")

    def test_code_flow_id_token_userinfo_refresh_and_revocation(self):
        client = self.client()
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(16)
        url, state = client.create_authorization_url(self.metadata["authorization_endpoint"],
                                                     code_verifier=verifier, nonce=nonce)
        returned = Browser().sign_in(url)
        query = parse_qs(urlparse(returned).query)
        self.assertEqual(query["iss"], [self.metadata["issuer"]])
        token = client.fetch_token(self.metadata["token_endpoint"], authorization_response=returned,
                                   code_verifier=verifier, state=state)
        self.assertEqual(token["token_type"], "Bearer")
        self.assertIn("refresh_token", token)

        claims = jwt.decode(token["id_token"], self.jwks, claims_cls=CodeIDToken,
                            claims_options={"iss": {"values": [self.metadata["issuer"]]}},
                            claims_params={"nonce": nonce, "client_id": self.client_id,
                                           "access_token": token["access_token"]})
        claims.validate()  # iss, aud, exp, iat, nonce, at_hash
        self.assertEqual(claims["email"], EMAIL)

        info = client.get(self.metadata["userinfo_endpoint"]).json()
        self.assertEqual(info, {"sub": claims["sub"], "email": EMAIL, "email_verified": False})

        refreshed = client.refresh_token(self.metadata["token_endpoint"],
                                         refresh_token=token["refresh_token"])
        self.assertNotEqual(refreshed["refresh_token"], token["refresh_token"])

        revoked = client.revoke_token(self.metadata["revocation_endpoint"],
                                      token=refreshed["refresh_token"],
                                      token_type_hint="refresh_token")
        self.assertEqual(revoked.status_code, 200)
        again = requests.post(self.metadata["token_endpoint"],
                              auth=(self.client_id, self.client_secret),
                              data={"grant_type": "refresh_token",
                                    "refresh_token": refreshed["refresh_token"]})
        self.assertEqual(again.status_code, 400)
        self.assertEqual(again.json()["error"], "invalid_grant")

    def test_a_wrong_secret_is_invalid_client(self):
        client = OAuth2Session(self.client_id, "not-the-secret", redirect_uri=REDIRECT,
                               scope="openid", code_challenge_method="S256")
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(self.metadata["authorization_endpoint"],
                                                     code_verifier=verifier)
        returned = Browser().sign_in(url)
        with self.assertRaises(Exception) as refused:
            client.fetch_token(self.metadata["token_endpoint"], authorization_response=returned,
                               code_verifier=verifier, state=state)
        self.assertIn("invalid_client", str(refused.exception))


if __name__ == "__main__":
    sys.exit(unittest.main())
