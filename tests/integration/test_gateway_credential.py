"""The gateway's service credential (issue 13): DATA/gateway/token belongs to a service account
that is not a platform administrator; the token reaches the routing snapshot, the watch and the
status report and nothing else (403 service_account_scope on every other route of the OpenAPI
document); `berth gateway rotate-credential` gives the gateway a new token and revokes the old
one while the gateway keeps serving without dropping a request."""

from __future__ import annotations

import http.client
import os
import stat
import threading
import time
import unittest

from harness import BerthTestCase
from test_gateway_role import SERVER_PY, via_gateway
from test_runtime import Reaper, wait_for

V = "/api/v1"
ALLOWED = {"GET /api/v1/gateway/snapshot", "GET /api/v1/watch", "PUT /api/v1/gateway/status"}


class GatewayCredentialTest(BerthTestCase):
    server_kwargs = {"gateway": True}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)
        cls.token_path = os.path.join(cls.srv.data_dir, "gateway", "token")

    def secret(self) -> str:
        with open(self.token_path) as f:
            return f.read().strip()

    def cli_ok(self, *args) -> str:
        r = self.srv.cli(*args, timeout=180)
        self.assertEqual(r.returncode, 0, f"berth {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def test_the_gateway_token_reaches_only_the_gateways_routes(self):
        self.srv.gateway_info()
        self.assertEqual(stat.S_IMODE(os.stat(self.token_path).st_mode), 0o600)
        tok = self.secret()
        listed = {u["name"]: u for u in self.list_all(f"{V}/users?all=true")}
        self.assertEqual((listed["berth-gateway"]["service"], listed["berth-gateway"]["admin"]),
                         (True, False), "a service account, not a platform administrator")

        snap = self.ok(self.api("GET", f"{V}/gateway/snapshot", token=tok))
        self.assertIn("http_routes", snap)
        c = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10)
        c.request("GET", f"{V}/watch", headers={"Authorization": f"Bearer {tok}"})
        self.assertEqual(c.getresponse().status, 200)
        c.close()

        doc = self.ok(self.api("GET", f"{V}/openapi.json"))
        checked = 0
        for pattern, ops in doc["paths"].items():
            path = pattern
            for p in ("team", "app", "component", "user", "token", "dependency", "version",
                      "instance", "run", "rule", "certificate", "domain", "id"):
                path = path.replace("{" + p + "}", "default" if p == "team" else "x")
            for method in ops:
                route = f"{method.upper()} {pattern}"
                if route in ALLOWED or ops[method].get("security") == []:
                    continue  # its own routes, and the public ones (no token is read)
                body = {} if method in ("post", "put", "patch") else None
                st, b, _ = self.api(method.upper(), path, body, token=tok)
                self.assertEqual((st, b.get("code") if isinstance(b, dict) else b),
                                 (403, "service_account_scope"), route)
                checked += 1
        self.assertGreater(checked, 80)

    def test_rotation_switches_the_running_gateway_without_dropping_traffic(self):
        srv = self.srv
        self.addCleanup(self.reaper.kill_all)
        gw = srv.gateway_info()
        r = srv.cli("login", "--server", srv.url, "--user", "admin", "--password-stdin",
                    input=srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        src = os.path.join(srv.tmp, "rot-src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "Procfile"), "w") as f:
            f.write("web: python3 server.py\n")
        with open(os.path.join(src, "server.py"), "w") as f:
            f.write(SERVER_PY)
        with open(os.path.join(src, "greeting.txt"), "w") as f:
            f.write("hello\n")
        self.cli_ok("app", "create", "rot")
        self.cli_ok("component", "create", "web", "--app", "rot", "--source", src,
                    "--port", "8080/http", "--no-deploy")
        self.cli_ok("build", "web", "--app", "rot", "-f")
        self.cli_ok("wait", "web", "--app", "rot", "--ready", "--timeout", "60")
        host = "web.rot.localhost"
        wait_for(lambda: via_gateway(gw["http"], host)[0] == 200, "the app through the gateway",
                 timeout=30)

        # Traffic all along.
        results: list = []
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                try:
                    results.append(via_gateway(gw["http"], host)[0])
                except OSError as e:
                    results.append(repr(e))
                time.sleep(0.02)
        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        try:
            old = self.secret()
            self.assertStatus(self.api("POST", f"{V}/gateway/credential/rotate",
                                       token=srv.login("admin")), 200)
            mid = self.secret()
            self.assertNotEqual(mid, old)
            out = self.cli_ok("gateway", "rotate-credential")
            self.assertIn("rotated", out)
            new = self.secret()
            self.assertNotEqual(new, mid)
            self.assertEqual(stat.S_IMODE(os.stat(self.token_path).st_mode), 0o600)
            for gone in (old, mid):
                self.assertStatus(self.api("GET", f"{V}/gateway/snapshot", token=gone), 401,
                                  "unauthenticated")
            self.ok(self.api("GET", f"{V}/gateway/snapshot", token=new))
            # The running gateway follows with the new token: a rule made now is served.
            self.ok(self.api("POST", f"{V}/teams/default/apps/rot/http-rules",
                             {"domain": "rot.example.test", "backends": [{"component": "web"}]}),
                    201)
            wait_for(lambda: via_gateway(gw["http"], "rot.example.test")[0] == 200,
                     "a rule made after the rotation to be served", timeout=30)
            time.sleep(0.5)
        finally:
            stop.set()
            t.join(10)
        self.assertGreater(len(results), 20)
        self.assertEqual([r for r in results if r != 200], [], "requests failed during rotation")
        self.assertEqual(srv.gateway_info()["pid"], gw["pid"], "the gateway was not restarted")
        # Only platform administrators rotate.
        self.make_user("kim")
        self.assertStatus(self.api("POST", f"{V}/gateway/credential/rotate",
                                   token=srv.login("kim", "kim-pass-123")), 403,
                          "permission_denied")
        self.ok(self.api("DELETE", f"{V}/teams/default/apps/rot"))


if __name__ == "__main__":
    unittest.main()
