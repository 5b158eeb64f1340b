"""One TCP route whose port cannot be bound never freezes the gateway, and no TCP rule takes a
port berth listens on itself (issue 13, item 2).

TcpListenerFailureTest drives tests/gateway/harness_main.cc (the data plane alone, fed from a
snapshot file; see test_gateway_proxy.py): a port held by a test socket; the snapshot that asks
for it is applied anyway, every other route is served and changes keep coming through, the
route's bind error is reported (/healthz "tcp_failed"), and once the port is free the listener
comes up by itself.

TcpRuleStatusTest does the same through a real `berth server` with its gateway, the API and the
CLI: the rule shows the bind error (`status`) and an event, an HTTP rule added after it works,
and the rule comes up once the port is freed.
"""

from __future__ import annotations

import json
import os
import socket
import time
import unittest

from harness import BerthTestCase
from test_gateway_proxy import EchoTcp, Gateway, Upstream, free_port, get, pool, route
from test_gateway_role import via_gateway
from test_runtime import Reaper


def wait_for(fn, what: str, timeout: float = 10.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class TcpListenerFailureTest(unittest.TestCase):
    def test_a_taken_port_is_reported_and_retried_while_the_rest_updates(self):
        up_a, up_b = Upstream("a"), Upstream("b")
        echo = EchoTcp("t1")
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        good_port = free_port()
        self.addCleanup(up_a.close)
        self.addCleanup(up_b.close)
        self.addCleanup(echo.close)

        def snap(rev: int, **extra) -> dict:
            s = {"revision": rev,
                 "pools": {"A": pool(up_a), "B": pool(up_b),
                           "T": {"endpoints": [{"instance": "t1", "host": "127.0.0.1",
                                                "port": echo.port}]}},
                 "http_routes": [route("a", ["a.test"], "A")],
                 "tcp_routes": [{"id": "team/app/db/tcp-taken", "listen_port": taken,
                                 "pool": "T"},
                                {"id": "team/app/db/tcp-good", "listen_port": good_port,
                                 "pool": "T"}]}
            s.update(extra)
            return s

        gw = Gateway(snap(1))
        self.addCleanup(gw.close)
        try:
            # Applied, not refused: the HTTP route and the other TCP route serve.
            self.assertEqual(get(gw.http, "a.test")[0], 200)
            with socket.create_connection(("127.0.0.1", good_port), timeout=10) as s:
                s.sendall(b"ping")
                self.assertEqual(s.recv(100), b"t1:ping")
            health = json.loads(gw.admin_get("/healthz")[1])
            self.assertEqual(health["revision"], 1)
            self.assertEqual(len(health["tcp_failed"]), 1, health)
            failed = health["tcp_failed"][0]
            self.assertEqual(failed["route"], "team/app/db/tcp-taken")
            self.assertEqual(failed["address"], f"127.0.0.1:{taken}")
            self.assertIn("Address already in use", failed["error"])

            # A later snapshot (a new HTTP route) is applied too, with the port still taken.
            gw.apply(snap(2, http_routes=[route("a", ["a.test"], "A"),
                                          route("b", ["b.test"], "B")]))
            self.assertEqual(get(gw.http, "b.test")[0], 200)
            self.assertEqual(json.loads(gw.admin_get("/healthz")[1])["revision"], 2)

            # The port is freed: the listener comes up without a new snapshot.
            blocker.close()
            wait_for(lambda: json.loads(gw.admin_get("/healthz")[1])["tcp_failed"] == [],
                     "the freed port to be bound", timeout=10)
            with socket.create_connection(("127.0.0.1", taken), timeout=10) as s:
                s.sendall(b"up")
                self.assertEqual(s.recv(100), b"t1:up")
        finally:
            blocker.close()


SERVER_PY = """\
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"hello from web"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

T = "/api/v1/teams/default"
A = T + "/apps/shop"


class TcpRuleStatusTest(BerthTestCase):
    server_kwargs = {"gateway": True}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)

    def cli_ok(self, *args) -> str:
        r = self.srv.cli(*args, timeout=180)
        self.assertEqual(r.returncode, 0, f"berth {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def test_platform_ports_are_reserved(self):
        gw = self.srv.gateway_info()
        self.make_app("default", "ports")
        self.make_component("default", "ports", "db", ports=[{"port": 5432, "protocol": "tcp"}])
        api_port = self.srv.port
        for what, port in (("api", api_port),
                           ("gateway http", int(gw["http"].rsplit(":", 1)[1])),
                           ("gateway https", int(gw["https"].rsplit(":", 1)[1])),
                           ("gateway admin", int(gw["admin"].rsplit(":", 1)[1]))):
            with self.subTest(what):
                err = self.assertStatus(
                    self.api("POST", f"{T}/apps/ports/tcp-rules",
                             {"listen_port": port, "component": "db"}), 409, "port_reserved")
                self.assertEqual(err["field"], "listen_port")
        self.assertEqual(self.names(f"{T}/apps/ports/tcp-rules"), [])
        # A rule on a free port is fine; moving it onto the API's port is refused too.
        free = free_port()
        self.ok(self.api("POST", f"{T}/apps/ports/tcp-rules",
                         {"name": "db", "listen_port": free, "component": "db"}), 201)
        self.assertStatus(self.api("PATCH", f"{T}/apps/ports/tcp-rules/db",
                                   {"listen_port": api_port}), 409, "port_reserved")
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin",
                         "--password-stdin", input=self.srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("tcp", "add", str(api_port), "--app", "ports", "--component", "db")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("port_reserved", r.stderr + r.stdout)
        self.ok(self.api("DELETE", f"{T}/apps/ports"))

    def test_a_taken_port_shows_on_the_rule_and_does_not_block_the_next_rules(self):
        srv = self.srv
        self.addCleanup(self.reaper.kill_all)
        gw = srv.gateway_info()
        r = srv.cli("login", "--server", srv.url, "--user", "admin", "--password-stdin",
                    input=srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        src = os.path.join(srv.tmp, "shop-src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "Procfile"), "w") as f:
            f.write("web: python3 server.py\n")
        with open(os.path.join(src, "server.py"), "w") as f:
            f.write(SERVER_PY)
        self.cli_ok("app", "create", "shop")
        self.cli_ok("component", "create", "web", "--app", "shop", "--source", src,
                    "--port", "8080/http", "--no-deploy")
        self.cli_ok("build", "web", "--app", "shop", "-f")
        self.cli_ok("wait", "web", "--app", "shop", "--ready", "--timeout", "60")

        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]

        # The TCP rule first, then an HTTP rule: the HTTP rule must work all the same.
        self.cli_ok("tcp", "add", str(taken), "--app", "shop", "--component", "web",
                    "--name", "web-tcp")
        self.ok(self.api("POST", f"{A}/http-rules",
                         {"domain": "shop.example.test", "backends": [{"component": "web"}]}),
                201)
        deadline = time.time() + 30
        last = None
        while time.time() < deadline:
            try:
                last = via_gateway(gw["http"], "shop.example.test")
            except OSError as e:
                last = repr(e)
            if isinstance(last, tuple) and last[0] == 200:
                break
            time.sleep(0.1)
        self.assertEqual(last, (200, "hello from web"), "the HTTP rule after the failing one")

        def rule_state(want):
            rule = self.ok(self.api("GET", f"{A}/tcp-rules/web-tcp"))
            return rule if rule["status"]["state"] == want else None

        rule = wait_for(lambda: rule_state("failed"), "the rule to show its bind error", 20)
        self.assertIn("Address already in use", rule["status"]["error"])
        self.assertEqual(rule["status"]["address"], f"127.0.0.1:{taken}")
        listed = self.cli_ok("tcp", "list", "--app", "shop")
        self.assertIn("failed: cannot listen on", listed)
        events = self.list_all(f"{A}/components/web/events")
        failed = [e for e in events if e.get("reason") == "TcpListenFailed"]
        self.assertTrue(failed, events)
        self.assertIn("web-tcp", failed[0]["message"])
        self.assertEqual(failed[0]["type"], "warning")

        # The port is freed: the rule comes up with no change to it, and forwards.
        blocker.close()
        rule = wait_for(lambda: rule_state("listening"), "the rule to come up", 20)
        with socket.create_connection(("127.0.0.1", taken), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertIn(b"hello from web", data)
        events = self.list_all(f"{A}/components/web/events")
        self.assertTrue([e for e in events if e.get("reason") == "TcpListening"], events)
        self.ok(self.api("DELETE", f"{A}"))


if __name__ == "__main__":
    unittest.main()
