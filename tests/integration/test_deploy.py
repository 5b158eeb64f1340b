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
from test_runtime import Reaper, http_get, in_team, wait_for

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
            status, body = http_get(good[0])
            return {body.strip()} if status == 200 else None
        return wait_for(ready, f"one ready instance of web at {version} answering")

    def address_answer(self, out: str) -> str:
        """GETs the address a deploy printed last ("web answers at http://127.0.0.1:PORT ...")."""
        lines = [l for l in out.splitlines() if " answers at " in l]
        self.assertTrue(lines, out)
        url = lines[-1].split(" answers at ", 1)[1].split()[0]
        self.assertTrue(url.startswith("http://127.0.0.1:"), url)
        status, body = http_get(in_team(self.srv, int(url.rsplit(":", 1)[1].rstrip("/"))))
        self.assertEqual(status, 200)
        return body.strip()

    def test_source_to_running_then_new_version_then_rollback(self):
        src = os.path.join(self.srv.tmp, "shop-src")
        self.write_source(src, "hello v1")
        self.must("app", "create", "shop")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/shop")
        # One command: create, build (its log streamed), deploy, print the address.
        out = self.must("component", "create", "web", "--app", "shop", "--source", src,
                        "--port", "8080/http", "--timeout", "120")
        self.reaper.scan()
        self.assertIn("build v1 of web queued", out)
        self.assertIn("-----> detected ", out)  # the build log itself
        self.assertIn("web runs v1", out)
        self.assertEqual(self.address_answer(out), "hello v1")
        self.assertEqual(self.answers("v1"), {"hello v1"})

        # A changed source: `berth deploy` builds v2, which replaces v1.
        self.write_source(src, "hello v2")
        out = self.must("deploy", "web", "--app", "shop", "--timeout", "120")
        self.reaper.scan()
        self.assertIn("web runs v2", out)
        self.assertEqual(self.address_answer(out), "hello v2")
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

        # Deploying from another directory after the rollback: the component follows the
        # newest version again.
        other = os.path.join(self.srv.tmp, "shop-src-3")
        self.write_source(other, "hello v3")
        out = self.must("deploy", "web", "--app", "shop", "--source", other, "--timeout", "120")
        self.reaper.scan()
        self.assertEqual(self.address_answer(out), "hello v3")
        comp = self.ok(self.api("GET", f"{V}/apps/shop/components/web"))
        self.assertEqual((comp["version"], comp["source"]["path"]), ("", other))

    def test_failed_build_keeps_the_running_version(self):
        src = os.path.join(self.srv.tmp, "fail-src")
        self.write_source(src, "still v1")
        self.must("app", "create", "keep")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/keep")
        self.must("component", "create", "web", "--app", "keep", "--source", src,
                  "--port", "8080/http", "--timeout", "120")
        self.reaper.scan()
        # Break the build: an explicit build command that fails.
        self.must("component", "set", "web", "--app", "keep", "--build-command",
                  "echo compiling; echo 'error: missing semicolon' >&2; exit 3")
        r = self.cli("deploy", "web", "--app", "keep", "--timeout", "120")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("missing semicolon", r.stdout)  # the streamed log
        self.assertIn("build v2 failed", r.stderr)
        self.assertIn("exit code 3", r.stderr)
        v2 = self.ok(self.api("GET", f"{V}/apps/keep/components/web/versions/v2"))
        self.assertEqual(v2["status"], "failed", v2)
        self.assertIn("3", v2["message"])
        self.assertIn("missing semicolon", v2["message"])
        items = self.ok(self.api("GET", f"{V}/apps/keep/components/web/instances"))["items"]
        self.assertEqual([i["version"] for i in items], ["v1"], items)
        status, body = http_get(items[0])
        self.assertEqual((status, body.strip()), (200, "still v1"))

        # A version that builds but cannot start: the deploy reports why and fails; v1 serves.
        self.must("component", "set", "web", "--app", "keep", "--build-command", "true",
                  "--start-command", "echo 'cannot start' >&2; exit 5")
        r = self.cli("deploy", "web", "--app", "keep", "--timeout", "120")
        self.reaper.scan()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("deploy of v3 failed", r.stderr)
        status, body = http_get(items[0])
        self.assertEqual((status, body.strip()), (200, "still v1"))

    def test_create_without_source_or_with_no_deploy_only_creates(self):
        self.must("app", "create", "plain")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/plain")
        src = os.path.join(self.srv.tmp, "plain-src")
        self.write_source(src, "x")
        out = self.must("component", "create", "web", "--app", "plain", "--source", src, "--no-deploy")
        self.assertNotIn("queued", out)
        self.assertEqual(self.ok(self.api("GET", f"{V}/apps/plain/components/web/versions"))["items"], [])
        r = self.cli("deploy", "nope", "--app", "plain")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not_found", r.stderr)


if __name__ == "__main__":
    unittest.main()
