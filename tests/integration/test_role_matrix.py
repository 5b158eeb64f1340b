"""Role × endpoint matrix (issue 13): every route and method of the OpenAPI document
(GET /api/v1/openapi.json), called as the platform administrator, the owner, an admin, a
developer and a viewer of team alpha, the owner of another team, the gateway's service account
and without a token, with the path parameters filled with real objects of team alpha.

EXPECT (below) says which callers may succeed on each route. The test fails on any 2xx that is
not expected, on a 403 where a non-member must get 404 (team names do not leak,
docs/architecture.md), on anything but 403 service_account_scope for the gateway's credential
outside its routes, on anything but 401 without a token, and on a route of the document that
has no row (or a row for a route the document does not have). It also checks that no response
carries the gateway's secret.

Callers that may succeed are only sent the safe (GET) requests, so the objects the others are
refused on stay in place; the refused callers are sent plausible bodies, so a missing check
would show as a 2xx."""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import unittest

from harness import BerthTestCase, free_port
from test_gateway_api import openssl_cert, read

V = "/api/v1"
T = "/api/v1/teams/{team}"
A = T + "/apps/{app}"
C = A + "/components/{component}"

# Callers.
P, O, AD, D, VW, X, S, N = ("platform", "owner", "admin", "developer", "viewer", "other",
                            "service", "anonymous")
ALL = {P, O, AD, D, VW, X, S, N}
USER = {P, O, AD, D, VW, X}  # any signed-in person
VIEW = {P, O, AD, D, VW}
DEV = {P, O, AD, D}
ADM = {P, O, AD}
OWN = {P, O}
PLAT = {P}
GW = {P, S}

# Who may get a 2xx, per "METHOD PATTERN". Path parameters are filled as FILL says: {user} is
# the developer, {token} a token of the owner, {user} of members the viewer (who may leave).
EXPECT = {
    "GET /healthz": ALL,
    "GET /readyz": ALL,
    "GET /api/v1/openapi.json": ALL,
    "POST /api/v1/login": ALL,
    "POST /api/v1/logout": USER,
    "GET /api/v1/whoami": USER,
    "GET /api/v1/settings": USER,
    "PUT /api/v1/settings": PLAT,
    "PATCH /api/v1/settings": PLAT,
    "GET /api/v1/users": USER,
    "POST /api/v1/users": PLAT,
    "GET /api/v1/users/{user}": {P, D},
    "PUT /api/v1/users/{user}": {P, D},
    "PATCH /api/v1/users/{user}": {P, D},
    "DELETE /api/v1/users/{user}": PLAT,
    "GET /api/v1/tokens": USER,
    "POST /api/v1/tokens": USER,
    "DELETE /api/v1/tokens/{token}": {O},
    "GET /api/v1/audit": PLAT,
    "GET /api/v1/doctor": USER,
    "GET /api/v1/teams": USER,
    "POST /api/v1/teams": PLAT,  # team_creation "admins" (the default)
    f"GET {T}": VIEW,
    f"PUT {T}": ADM,
    f"PATCH {T}": ADM,
    f"DELETE {T}": OWN,
    f"GET {T}/audit": ADM,
    f"GET {T}/events": VIEW,
    f"GET {T}/watch": VIEW,
    f"POST {T}/detect": DEV,
    f"GET {T}/members": VIEW,
    f"POST {T}/members": ADM,
    f"GET {T}/members/{{user}}": VIEW,
    f"PUT {T}/members/{{user}}": ADM,
    f"PATCH {T}/members/{{user}}": ADM,
    f"DELETE {T}/members/{{user}}": ADM | {VW},  # a member may leave
    f"GET {T}/apps": VIEW,
    f"POST {T}/apps": DEV,
    f"GET {A}": VIEW,
    f"PUT {A}": DEV,
    f"PATCH {A}": DEV,
    f"DELETE {A}": DEV,
    f"GET {A}/components": VIEW,
    f"POST {A}/components": DEV,
    f"GET {C}": VIEW,
    f"PUT {C}": DEV,
    f"PATCH {C}": DEV,
    f"DELETE {C}": DEV,
    f"GET {C}/dependencies": VIEW,
    f"POST {C}/dependencies": DEV,
    f"GET {C}/dependencies/{{dependency}}": VIEW,
    f"DELETE {C}/dependencies/{{dependency}}": DEV,
    f"GET {C}/versions": VIEW,
    f"POST {C}/versions": DEV,
    f"GET {C}/versions/{{version}}": VIEW,
    f"DELETE {C}/versions/{{version}}": DEV,
    f"POST {C}/versions/{{version}}/cancel": DEV,
    f"GET {C}/versions/{{version}}/log": VIEW,
    f"POST {C}/builds": DEV,
    f"PUT {C}/archive": DEV,
    f"GET {C}/instances": VIEW,
    f"GET {C}/instances/{{instance}}": VIEW,
    f"GET {C}/events": VIEW,
    f"GET {C}/logs": VIEW,
    f"POST {C}/restart": DEV,
    f"GET {C}/operation": VIEW,
    f"POST {C}/operation/cancel": DEV,
    f"GET {C}/runs": VIEW,
    f"POST {C}/runs": DEV,
    f"GET {C}/runs/{{run}}": VIEW,
    f"GET {C}/webhook": DEV,
    f"PUT {C}/webhook": DEV,
    f"DELETE {C}/webhook": DEV,
    # git push (issue 21): the URL for every member; the git protocol for developers; the
    # pre-receive hook's callback only with the one-push credential the server made (nobody).
    f"GET {C}/git-url": VIEW,
    f"GET {C}/git/info/refs": DEV,
    f"POST {C}/git/git-receive-pack": DEV,
    f"POST {C}/git/git-upload-pack": DEV,
    f"POST {C}/git/hook": set(),
    "POST /api/v1/hooks/{id}": ALL,  # no bearer token: the signature decides
    "GET /api/v1/watch": GW,
    f"GET {T}/http-rules": VIEW,
    f"GET {A}/http-rules": VIEW,
    f"POST {A}/http-rules": DEV,
    f"GET {A}/http-rules/{{rule}}": VIEW,
    f"PUT {A}/http-rules/{{rule}}": DEV,
    f"PATCH {A}/http-rules/{{rule}}": DEV,
    f"DELETE {A}/http-rules/{{rule}}": DEV,
    f"GET {T}/tcp-rules": VIEW,
    f"GET {A}/tcp-rules": VIEW,
    f"POST {A}/tcp-rules": DEV,
    f"GET {A}/tcp-rules/{{rule}}": VIEW,
    f"PUT {A}/tcp-rules/{{rule}}": DEV,
    f"PATCH {A}/tcp-rules/{{rule}}": DEV,
    f"DELETE {A}/tcp-rules/{{rule}}": DEV,
    f"GET {T}/certificates": VIEW,
    f"POST {T}/certificates": DEV,
    f"GET {T}/certificates/{{certificate}}": VIEW,
    f"PUT {T}/certificates/{{certificate}}": DEV,
    f"DELETE {T}/certificates/{{certificate}}": DEV,
    "GET /api/v1/gateway/snapshot": GW,
    "PUT /api/v1/gateway/status": GW,
    "GET /api/v1/gateway/claims": PLAT,
    "GET /api/v1/gateway/domains": PLAT,
    "PUT /api/v1/gateway/domains/{domain}": PLAT,
    "DELETE /api/v1/gateway/domains/{domain}": PLAT,
    "POST /api/v1/gateway/credential/rotate": PLAT,
}
# Routes that take no user or service token at all, only a credential of their own (the git
# push hook's callback: one made by the server for one running push): 401 for every caller,
# members or not, so they tell nothing of the team either.
OWN_CREDENTIAL = {f"POST {C}/git/hook"}


class RoleMatrixTest(BerthTestCase):
    server_kwargs = {"gateway": True}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv, a = cls.srv, cls.admin

        def ok(method, path, body=None, token=a, raw=None):
            st, b, _ = srv.api(method, path, body, token=token, raw_body=raw)
            assert st in (200, 201, 202), (method, path, st, b)
            return b

        def user(name):
            ok("POST", f"{V}/users", {"name": name, "password": f"{name}-pass-123"})
            return srv.login(name, f"{name}-pass-123")

        cls.tokens = {P: a, N: None}
        for role, name in ((O, "alice"), (AD, "tadm"), (D, "devv"), (VW, "vwr"), (X, "olly")):
            cls.tokens[role] = user(name)
        with open(os.path.join(srv.data_dir, "gateway", "token")) as f:
            cls.gateway_secret = f.read().strip()
        cls.tokens[S] = cls.gateway_secret
        t = f"{V}/teams/alpha"
        ok("POST", f"{V}/teams", {"name": "alpha"})
        ok("POST", f"{V}/teams", {"name": "beta"})
        for name, role in (("alice", "owner"), ("tadm", "admin"), ("devv", "developer"),
                           ("vwr", "viewer")):
            ok("POST", f"{t}/members", {"user": name, "role": role})
        ok("POST", f"{V}/teams/beta/members", {"user": "olly", "role": "owner"})
        ok("POST", f"{t}/apps", {"name": "shop"})
        comps = f"{t}/apps/shop/components"
        ok("POST", comps, {"name": "web", "ports": [{"port": 8080, "protocol": "http",
                                                     "outer": True}]})
        ok("POST", comps, {"name": "db", "ports": [{"port": 5432, "protocol": "tcp"}]})
        dep = ok("POST", f"{comps}/web/dependencies", {"target_component": "db"})
        version = ok("POST", f"{comps}/web/versions", {"start_command": "true"})
        ok("POST", f"{t}/apps/shop/http-rules",
           {"name": "www", "domain": "www.alpha.test", "backends": [{"component": "web"}]})
        cls.tcp_port = free_port()
        ok("POST", f"{t}/apps/shop/tcp-rules",
           {"name": "pg", "listen_port": cls.tcp_port, "component": "db"})
        certs = tempfile.mkdtemp(prefix="certs-", dir=srv.tmp)
        crt, key = openssl_cert(certs, "alpha", "www.alpha.test", ["www.alpha.test"])
        cls.cert_body = {"name": "alpha-cert", "cert_pem": read(crt), "key_pem": read(key)}
        ok("POST", f"{t}/certificates", cls.cert_body)
        hook = ok("PUT", f"{comps}/web/webhook", {"provider": "generic"})
        owner_token = ok("POST", f"{V}/tokens", {"name": "spare"}, token=cls.tokens[O])
        cls.fill = {
            "team": "alpha", "app": "shop", "component": "web", "user": "devv",
            "token": owner_token["id"], "dependency": dep["name"], "version": version["name"],
            "instance": "web-1", "run": "run-1", "certificate": "alpha-cert",
            "domain": "www.alpha.test", "id": hook.get("id", "nope"),
        }

    def path_of(self, pattern: str) -> str:
        fill = dict(self.fill)
        if "/members/{user}" in pattern:
            fill["user"] = "vwr"
        if "/http-rules/{rule}" in pattern:
            fill["rule"] = "www"
        if "/tcp-rules/{rule}" in pattern:
            fill["rule"] = "pg"
        return pattern.format(**fill)

    def body_of(self, method: str, pattern: str):
        """A plausible body, so that a missing check would succeed."""
        if method in ("GET", "DELETE"):
            return None
        tail = pattern.rsplit("/", 1)[-1]
        bodies = {
            "users": {"name": "mx-user", "password": "mx-pass-12345"},
            "{user}": {"role": "developer"} if "/members/" in pattern else {"display_name": "X"},
            "tokens": {"name": "mx"},
            "teams": {"name": "mx-team"},
            "{team}": {"display_name": "X"},
            "members": {"user": "olly", "role": "viewer"},
            "apps": {"name": "mx-app"},
            "{app}": {"description": "x"},
            "components": {"name": "mx-comp"},
            "{component}": {"env": {"MX": "1"}},
            "dependencies": {"target_component": "db"},
            "versions": {"start_command": "true"},
            "webhook": {"provider": "generic"},
            "http-rules": {"domain": "mx.alpha.test", "backends": [{"component": "web"}]},
            "tcp-rules": {"listen_port": free_port(), "component": "db"},
            "certificates": self.cert_body | {"name": "mx-cert"},
            "{certificate}": self.cert_body,
            "settings": {"team_creation": "everyone"},
            "{domain}": {"team": "beta"},
            "status": {"revision": 0, "tcp": []},
            "login": {"user": "nobody", "password": "wrong-pass-123"},
        }
        if tail == "{rule}":
            return ({"domain": "www.alpha.test", "backends": [{"component": "web"}]}
                    if "/http-rules/" in pattern else
                    {"listen_port": self.tcp_port, "component": "db"})
        return bodies.get(tail, {})

    def call(self, method: str, path: str, body, token) -> tuple[int, dict | str]:
        c = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=30)
        headers = {}
        data = None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if path.endswith("/archive"):
            data = b"not really an archive"
            headers["Content-Type"] = "application/octet-stream"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = "0"
        try:
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            # Streams (watch, followed logs) stay open: their head is the answer.
            ctype = r.headers.get("Content-Type", "")
            if r.status == 200 and "ndjson" in ctype and r.headers.get("Transfer-Encoding"):
                return r.status, {}
            raw = r.read().decode("utf-8", "replace")
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw
        finally:
            c.close()

    def test_every_route_and_role(self):
        doc = self.ok(self.api("GET", f"{V}/openapi.json"))
        routes = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
        self.assertEqual(sorted(routes - EXPECT.keys()), [],
                         "routes in the OpenAPI document without an expectation in EXPECT")
        self.assertEqual(sorted(EXPECT.keys() - routes), [],
                         "expectations for routes the OpenAPI document does not have")

        bodies_seen: list[str] = []
        failures: list[str] = []
        order = [N, S, X, VW, D, AD, O, P]  # the least privileged first
        for route in sorted(routes):
            method, pattern = route.split(" ", 1)
            path = self.path_of(pattern)
            allowed = EXPECT[route]
            is_team = pattern.startswith("/api/v1/teams/{team}")
            for role in order:
                if role in allowed and method != "GET":
                    continue  # would change what the others are refused on
                st, body = self.call(method, path, self.body_of(method, pattern),
                                     self.tokens[role])
                bodies_seen.append(json.dumps(body) if not isinstance(body, str) else body)
                code = body.get("code") if isinstance(body, dict) else None
                where = f"{route} as {role}: {st} {str(body)[:160]}"
                if role in allowed:
                    if st in (401, 403):
                        failures.append("refused but expected to be allowed: " + where)
                    continue
                if 200 <= st < 300:
                    failures.append("unexpected success: " + where)
                elif route in OWN_CREDENTIAL:
                    if st != 401:
                        failures.append("expected 401 (its own credential only): " + where)
                elif role == N and st != 401:
                    failures.append("expected 401 without a token: " + where)
                elif role == S and (st, code) != (403, "service_account_scope"):
                    failures.append("expected 403 service_account_scope: " + where)
                elif role == X and is_team and st != 404:
                    failures.append("expected 404 (not 403) for a non-member: " + where)
        self.assertEqual(failures, [], "\n".join(failures))
        self.assertGreater(len(bodies_seen), 6 * len(routes), "every route was called")
        leaked = [b[:200] for b in bodies_seen if self.gateway_secret in b]
        self.assertEqual(leaked, [], "a response carried the gateway's secret")
        # Nothing the refused callers sent changed team alpha.
        self.assertEqual(self.names(f"{V}/teams/alpha/apps"), ["shop"])
        self.assertEqual(self.names(f"{V}/teams/alpha/apps/shop/components"), ["db", "web"])
        self.assertNotIn("mx-team", self.names(f"{V}/teams"))
        self.assertEqual(self.ok(self.api("GET", f"{V}/settings"))["team_creation"], "admins")


if __name__ == "__main__":
    unittest.main()
