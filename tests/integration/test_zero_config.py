"""Zero-config web routing and "ready means routed" (issue 21, points 2 and 3), end to end:
a real `berth server` with its gateway, the CLI as a newcomer uses it.

- `berth component create NAME --app A --source DIR` without --port, for the Node, Python,
  static and Go sample apps: the build gives the web process an automatic HTTP port, the
  command ends by printing the default domain's URL, and that URL answers through the gateway.
- A worker-only Procfile gets no port (and detection says why).
- Right after create, deploy, scale and rollback return, 100 requests through the gateway all
  answer 200 from the new version: the operation ends only once the gateway serves a snapshot
  with the new instances.

Every process the runtime starts is killed by PID in the cleanup (test_runtime.Reaper).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import textwrap
import unittest

from harness import BerthServer, BerthTestCase
from test_runtime import Reaper

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "apps"))
V = "/api/v1/teams/default"
APP = "zc"
TRIES = 100

SERVER_PY = textwrap.dedent("""\
    import http.server, os
    GREETING = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "greeting.txt")).read().strip()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (GREETING + "\\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """)


def gateway_get(port: int, host: str, timeout: float = 5.0) -> tuple[int, str, str]:
    """GET / through the gateway for `host`: (status, body, X-Berth-Reason)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace"), r.getheader("X-Berth-Reason") or ""
    finally:
        conn.close()


class ZeroConfigTest(BerthTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = BerthServer(gateway=True)
        cls.addClassCleanup(cls.srv.close)
        cls.admin = cls.srv.login()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)
        # The gateway listens on a free port; the addresses the API prints carry it.
        cls.http_port = int(cls.srv.gateway_info()["http"].rsplit(":", 1)[1])
        st, body, _ = cls.srv.api("POST", f"{V}/apps", {"name": APP}, token=cls.admin)
        assert st == 201, (st, body)
        r = cls.srv.cli("login", "--server", cls.srv.url, "--user", "admin", "--password-stdin",
                        input=cls.srv.admin_password + "\n")
        assert r.returncode == 0, r.stderr

    def setUp(self) -> None:
        self.addCleanup(self.reaper.scan)

    def must(self, *args: str) -> str:
        r = self.srv.cli(*args, timeout=240)
        self.assertEqual(r.returncode, 0, f"berth {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        self.reaper.scan()
        return r.stdout

    def host(self, component: str) -> str:
        return f"{component}.{APP}.localhost"

    def url(self, component: str) -> str:
        return f"http://{self.host(component)}:{self.http_port}"

    def hammer(self, component: str, want: str) -> None:
        """TRIES requests through the gateway at once: every one answers 200 with `want`."""
        seen: dict[tuple[int, str], int] = {}
        for _ in range(TRIES):
            status, body, reason = gateway_get(self.http_port, self.host(component))
            key = (status, body.strip() if status == 200 else reason)
            seen[key] = seen.get(key, 0) + 1
        self.assertEqual(seen, {(200, want): TRIES}, f"{TRIES} requests to {component}")

    def create_without_port(self, name: str, source: str, answer: str) -> None:
        out = self.must("component", "create", name, "--app", APP, "--source", source)
        # The command ends with the default domain's URL, and it answers at once.
        self.assertIn(f"{name} answers at {self.url(name)}", out)
        self.hammer(name, answer)
        comp = self.ok(self.api("GET", f"{V}/apps/{APP}/components/{name}"))
        [port] = comp["ports"]
        self.assertEqual((port["protocol"], port["outer"], port.get("auto")), ("http", True, True), port)
        versions = self.ok(self.api("GET", f"{V}/apps/{APP}/components/{name}/versions"))["items"]
        reasons = " | ".join(versions[0]["detect"]["reasons"])
        self.assertIn(f"port {port['port']} published automatically", reasons)

    def test_node_python_static_and_go_answer_at_their_default_domain(self):
        self.create_without_port("node", os.path.join(FIXTURES, "node-hello"), "hello from node")
        self.create_without_port("py", os.path.join(FIXTURES, "python-hello"), "hello from python")
        static = self.must("component", "create", "site", "--app", APP, "--source",
                           os.path.join(FIXTURES, "static-site"))
        self.assertIn(f"site answers at {self.url('site')}", static)
        status, body, _ = gateway_get(self.http_port, self.host("site"))
        self.assertEqual(status, 200)
        with open(os.path.join(FIXTURES, "static-site", "index.html")) as f:
            self.assertEqual(body, f.read())
        if shutil.which("go") is None:
            self.skipTest("go is not installed: the Go sample is not built")
        self.create_without_port("go", os.path.join(FIXTURES, "go-hello"), "hello from go")

    def test_a_worker_only_procfile_gets_no_port(self):
        src = tempfile.mkdtemp(prefix="worker-", dir=self.srv.tmp)
        with open(os.path.join(src, "Procfile"), "w") as f:
            f.write("worker: sh ./work.sh\n")
        with open(os.path.join(src, "work.sh"), "w") as f:
            f.write("while true; do echo working; sleep 5; done\n")
        self.must("component", "create", "jobs", "--app", APP, "--source", src, "--no-deploy")
        r = self.srv.cli("build", "jobs", "--app", APP, "-f", timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("no web process: no port published", r.stdout)
        comp = self.ok(self.api("GET", f"{V}/apps/{APP}/components/jobs"))
        self.assertEqual(comp["ports"], [])
        self.assertEqual(comp.get("addresses", []), [])
        # `domain list` says why there is no address, and how to give one.
        r = self.srv.cli("domain", "list", "--app", APP)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("No domains found.", r.stderr)
        self.assertIn("jobs (app zc) has no port", r.stderr)
        self.assertIn("berth component set jobs --app zc --port 8080", r.stderr)

    def test_the_automatic_port_survives_config_and_follows_the_code(self):
        src = tempfile.mkdtemp(prefix="mover-", dir=self.srv.tmp)
        shutil.copytree(os.path.join(FIXTURES, "node-hello"), src, dirs_exist_ok=True)
        self.create_without_port("mover", src, "hello from node")
        # An env change (one rollout) leaves the ports alone: the port stays the builder's.
        self.must("config", "set", "GREETING=hi", "--component", "mover", "--app", APP)
        self.must("wait", "mover", "--app", APP, "--operation", "--timeout", "120")
        [port] = self.ok(self.api("GET", f"{V}/apps/{APP}/components/mover"))["ports"]
        self.assertEqual((port["port"], port.get("auto")), (3000, True), port)
        # So the next build may move it: the code now says 4000.
        index = os.path.join(src, "index.js")
        with open(index) as f:
            code = f.read()
        with open(index, "w") as f:
            f.write(code.replace("|| 3000", "|| 4000"))
        out = self.must("deploy", "mover", "--app", APP)
        self.assertIn("port 4000 published automatically", out)
        [port] = self.ok(self.api("GET", f"{V}/apps/{APP}/components/mover"))["ports"]
        self.assertEqual((port["port"], port.get("auto")), (4000, True), port)
        self.hammer("mover", "hello from node")
        # A port the user sets is declared: no marker, and builds leave it alone.
        self.must("component", "set", "mover", "--app", APP, "--port", "4000/http")
        [port] = self.ok(self.api("GET", f"{V}/apps/{APP}/components/mover"))["ports"]
        self.assertNotIn("auto", port)

    def test_ready_means_routed_for_create_deploy_scale_and_rollback(self):
        src = tempfile.mkdtemp(prefix="greeter-", dir=self.srv.tmp)
        with open(os.path.join(src, "Procfile"), "w") as f:
            f.write("web: python3 server.py\n")
        with open(os.path.join(src, "server.py"), "w") as f:
            f.write(SERVER_PY)
        with open(os.path.join(src, "greeting.txt"), "w") as f:
            f.write("version one\n")
        out = self.must("component", "create", "greet", "--app", APP, "--source", src)
        self.assertIn(f"greet answers at {self.url('greet')}", out)
        self.hammer("greet", "version one")

        with open(os.path.join(src, "greeting.txt"), "w") as f:
            f.write("version two\n")
        out = self.must("deploy", "greet", "--app", APP)
        self.assertIn("greet runs v2", out)
        self.hammer("greet", "version two")

        self.must("scale", "greet", "2", "--app", APP)
        op = self.ok(self.api("GET", f"{V}/apps/{APP}/components/greet/operation"))
        self.assertEqual((op["type"], op["status"]), ("scale", "succeeded"), op)
        self.assertIn("the gateway routes them", op["message"])
        self.hammer("greet", "version two")
        self.must("wait", "greet", "--app", APP, "--ready", "--timeout", "60")

        self.must("rollback", "greet", "v1", "--app", APP)
        self.hammer("greet", "version one")
        self.must("scale", "greet", "1", "--app", APP)
        self.hammer("greet", "version one")


if __name__ == "__main__":
    unittest.main()
