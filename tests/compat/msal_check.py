#!/usr/bin/env python3
"""Checks podid-entra-emulator against a real Entra client: Debian's python3-msal.

Runs msal.ConfidentialClientApplication.acquire_token_for_client against the emulator with
  (a) a client secret, with MSAL's instance discovery pointed at the emulator,
  (b) a federated client assertion (a token from an issuer the emulator hosts),
  (c) a certificate (MSAL signs the assertion itself, RS256 with a padded SHA-1 x5t and an x5c header),
  (d) a wrong secret, which must come back as MSAL's error dict with AADSTS7000215,
and checks each access token's signature (the tenant's keys endpoint) and claims. Every request goes through a
session that refuses anything but loopback, so a wrong setting cannot reach the real Entra ID.

The emulator's CA must be trusted through REQUESTS_CA_BUNDLE. Exit status: 0 all passed, 1 a check failed,
3 python3-msal is missing.
"""
import argparse
import base64
import hashlib
import json
import ssl
import sys
import urllib.parse

try:
    import msal
    import jwt
    import requests
    from jwt.algorithms import RSAAlgorithm
except ImportError as err:  # the test that drives this script fails on exit status 3 with this line
    print(f"msal_check: python3-msal is not installed ({err}); run tools/install-deps.sh "
          "or apt-get install python3-msal", file=sys.stderr)
    sys.exit(3)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class LoopbackOnly(requests.adapters.HTTPAdapter):
    """Refuses any request to a host other than loopback and records the URLs it lets through."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def send(self, request, **kwargs):
        host = urllib.parse.urlsplit(request.url).hostname
        if host not in LOOPBACK:
            raise RuntimeError(f"msal_check: refusing a request to {request.url} (loopback only)")
        self.seen.append(f"{request.method} {urllib.parse.urlsplit(request.url).path}")
        return super().send(request, **kwargs)


def session(seen):
    s = requests.Session()
    adapter = LoopbackOnly(seen)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


def b64url_json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


class Checker:
    def __init__(self, args):
        self.args = args
        self.failures = 0
        self.passed = 0
        self.authority = f"{args.base}/{args.tenant}"
        self.scope = args.resource + "/.default"

    def fail(self, name, message):
        self.failures += 1
        print(f"FAIL {name}: {message}")

    def app(self, client_id, credential, seen, **kwargs):
        return msal.ConfidentialClientApplication(
            client_id, client_credential=credential, authority=self.authority, http_client=session(seen), **kwargs)

    def check_token(self, name, result, client_id, acr, seen):
        if "access_token" not in result:
            return self.fail(name, f"no access token: {result}")
        if result.get("token_type") != "Bearer" or not isinstance(result.get("expires_in"), int):
            return self.fail(name, f"unexpected answer: {dict(result, access_token='...')}")
        token = result["access_token"]
        keys = session([]).get(f"{self.args.base}/{self.args.tenant}/discovery/v2.0/keys", timeout=10).json()
        kid = b64url_json(token.split(".")[0]).get("kid")
        jwk = next((k for k in keys["keys"] if k.get("kid") == kid), None)
        if jwk is None:
            return self.fail(name, f"kid {kid} not in the tenant's keys")
        try:
            claims = jwt.decode(token, RSAAlgorithm.from_jwk(json.dumps(jwk)), algorithms=["RS256"],
                                audience=self.args.resource)
        except jwt.PyJWTError as err:
            return self.fail(name, f"access token does not verify: {err}")
        want = {"appid": client_id, "appidacr": acr, "tid": self.args.tenant_id, "aud": self.args.resource}
        for key, value in want.items():
            if claims.get(key) != value:
                return self.fail(name, f"claim {key} = {claims.get(key)!r}, want {value!r}")
        self.passed += 1
        print(f"ok   {name}: appid={claims['appid']} appidacr={claims['appidacr']} expires_in={result['expires_in']}"
              f" via {', '.join(seen)}")

    def secret(self):
        seen = []
        app = self.app(self.args.secret_client, self.args.secret, seen,
                       instance_discovery=f"{self.args.base}/common/discovery/instance")
        result = app.acquire_token_for_client(scopes=[self.scope])
        if not any(s.startswith("GET /common/discovery/instance") for s in seen):
            return self.fail("secret", f"MSAL did not use the emulator's instance discovery: {seen}")
        self.check_token("secret", result, self.args.secret_client, "1", seen)

    def federated(self):
        seen = []
        with open(self.args.fed_assertion_file) as f:
            assertion = f.read().strip()
        app = self.app(self.args.fed_client, {"client_assertion": assertion}, seen, instance_discovery=False)
        self.check_token("federated", app.acquire_token_for_client(scopes=[self.scope]), self.args.fed_client, "2",
                         seen)

    def certificate(self):
        seen = []
        with open(self.args.cert_pem) as f:
            cert_pem = f.read()
        with open(self.args.cert_key) as f:
            key_pem = f.read()
        thumbprint = hashlib.sha1(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest().upper()
        credential = {"private_key": key_pem, "thumbprint": thumbprint, "public_certificate": cert_pem}
        app = self.app(self.args.cert_client, credential, seen, validate_authority=False)
        self.check_token("certificate", app.acquire_token_for_client(scopes=[self.scope]), self.args.cert_client,
                         "2", seen)

    def wrong_secret(self):
        seen = []
        app = self.app(self.args.secret_client, "not-the-secret", seen, instance_discovery=False)
        result = app.acquire_token_for_client(scopes=[self.scope])
        if "access_token" in result:
            return self.fail("wrong secret", "got a token")
        if result.get("error") != "invalid_client" or result.get("error_codes") != [7000215] \
                or not result.get("error_description", "").startswith("AADSTS7000215: "):
            return self.fail("wrong secret", f"unexpected error: {result}")
        self.passed += 1
        print(f"ok   wrong secret: error={result['error']} error_codes={result['error_codes']}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="https://127.0.0.1:PORT")
    p.add_argument("--tenant", required=True, help="tenant id or name in the authority URL")
    p.add_argument("--tenant-id", required=True, help="the tenant id tokens must carry")
    p.add_argument("--resource", required=True)
    p.add_argument("--secret-client", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--fed-client", required=True)
    p.add_argument("--fed-assertion-file", required=True)
    p.add_argument("--cert-client", required=True)
    p.add_argument("--cert-pem", required=True)
    p.add_argument("--cert-key", required=True)
    args = p.parse_args()
    if urllib.parse.urlsplit(args.base).hostname not in LOOPBACK:
        print(f"msal_check: --base must be a loopback URL, not {args.base}", file=sys.stderr)
        return 2

    checker = Checker(args)
    for check in (checker.secret, checker.federated, checker.certificate, checker.wrong_secret):
        try:
            check()
        except Exception as err:  # a check that raises is a failed check; the others still run
            checker.fail(check.__name__, f"{type(err).__name__}: {err}")
    if checker.failures:
        print(f"msal_check: {checker.failures} check(s) failed, {checker.passed} passed (msal {msal.__version__})")
        return 1
    print(f"msal_check: all {checker.passed} checks passed (msal {msal.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
