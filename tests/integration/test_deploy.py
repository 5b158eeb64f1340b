"""The first-deploy journey across builder and runtime: source directory → build → running
instance answering on its port → a changed source deploys as v2 → roll back to v1.

This is what README's walkthrough promises, driven through the CLI the way a developer would,
with the API used only to read what the instances answer. Every process the runtime starts is
killed by PID in the cleanup (test_runtime.Reaper), even when the test fails.
"""

import json
import os
import textwrap
import unittest

from harness import BerthTestCase
from test_runtime import Reaper, http_get, wait_for

V = "/api/v1/teams/default"

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


class FirstDeployTest(BerthTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)
        self.config = os.path.join(self.srv.tmp, "cli-config-" + self._testMethodName)
        r = self.cli("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                     input=self.srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def cli(self, *args, input=None):
        # Builds and waits have their own time limits; give the command room to report them.
        return self.srv.cli(*args, input=input, config=self.config, timeout=180)

    def must(self, *args):
        r = self.cli(*args)
        self.assertEqual(r.returncode, 0, f"berth {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def write_source(self, path: str, greeting: str) -> None:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "Procfile"), "w") as f:
            f.write("web: python3 server.py\n")
        with open(os.path.join(path, "server.py"), "w") as f:
            f.write(SERVER_PY)
        with open(os.path.join(path, "greeting.txt"), "w") as f:
            f.write(greeting + "\n")

    def answers(self, version: str) -> set[str]:
        """What every ready instance at `version` answers, once all desired ones are ready."""
        def ready():
            items = self.ok(self.api("GET", f"{V}/apps/shop/components/web/instances"))["items"]
            self.reaper.scan()
            good = [i for i in items if i.get("ready") and i.get("version") == version]
            if len(good) != 1 or len(items) != 1:
                return None
            status, body = http_get(good[0]["port"])
            return {body.strip()} if status == 200 else None
        return wait_for(ready, f"one ready instance of web at {version} answering")

    def test_source_to_running_then_new_version_then_rollback(self):
        src = os.path.join(self.srv.tmp, "shop-src")
        self.write_source(src, "hello v1")
        self.must("app", "create", "shop")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/shop")
        self.must("component", "create", "web", "--app", "shop", "--source", src,
                  "--port", "8080/http")

        out = self.must("build", "web", "--app", "shop", "-f")
        self.assertIn("v1", out)
        self.must("wait", "web", "--app", "shop", "--ready", "--timeout", "60")
        self.assertEqual(self.answers("v1"), {"hello v1"})

        # A changed source builds v2, which replaces v1 (newest ready version runs).
        self.write_source(src, "hello v2")
        self.must("build", "web", "--app", "shop", "-f")
        self.assertEqual(self.answers("v2"), {"hello v2"})
        versions = json.loads(self.must("versions", "web", "--app", "shop", "-o", "json"))
        names = [v["name"] for v in versions.get("items", versions)]
        self.assertEqual(sorted(names), ["v1", "v2"])

        # Rolling back needs no rebuild: v1's artifact is kept.
        self.must("rollback", "web", "v1", "--app", "shop")
        self.assertEqual(self.answers("v1"), {"hello v1"})
        events = self.ok(self.api("GET", f"{V}/apps/shop/components/web/events"))["items"]
        reasons = {e["reason"] for e in events}
        self.assertIn("BuildSucceeded", reasons, events)

    def test_failed_build_keeps_the_running_version(self):
        src = os.path.join(self.srv.tmp, "fail-src")
        self.write_source(src, "still v1")
        self.must("app", "create", "keep")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/keep")
        self.must("component", "create", "web", "--app", "keep", "--source", src,
                  "--port", "8080/http")
        self.must("build", "web", "--app", "keep", "-f")
        self.must("wait", "web", "--app", "keep", "--ready", "--timeout", "60")
        # Break the build: an explicit build command that fails.
        self.must("component", "set", "web", "--app", "keep", "--build-command",
                  "echo compiling; echo 'error: missing semicolon' >&2; exit 3")
        r = self.cli("build", "web", "--app", "keep", "-f")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        v2 = self.ok(self.api("GET", f"{V}/apps/keep/components/web/versions/v2"))
        self.assertEqual(v2["status"], "failed", v2)
        self.assertIn("3", v2["message"])
        self.assertIn("missing semicolon", v2["message"])
        items = self.ok(self.api("GET", f"{V}/apps/keep/components/web/instances"))["items"]
        self.assertEqual([i["version"] for i in items], ["v1"], items)
        status, body = http_get(items[0]["port"])
        self.assertEqual((status, body.strip()), (200, "still v1"))


if __name__ == "__main__":
    unittest.main()
