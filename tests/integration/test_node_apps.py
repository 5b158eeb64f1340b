"""Node projects as they come, and failures that explain themselves (issue 21, points 5 and 6).

- A yarn.lock project and a pnpm project (packageManager field) build and answer with no yarn or
  pnpm installed by the admin: npx fetches the one the project names from the npm registry
  into the component's cache (through the egress proxy under the sandbox). Nothing here uses
  the machine's yarnpkg, pnpm or corepack: the build log shows what ran.
- The start script runs as it is (not through `npm start`), so a crash's summary is the app's
  own last lines, not npm's notices.
- A new version that crash-loops is not left beside the serving one: the failed rollout
  returns the component to the version that served, with an event.

Driven through the CLI as a developer would; instances are reached in the team's network.
"""

import json
import os
import shutil
import textwrap
import unittest

from harness import BerthTestCase
from test_runtime import Reaper, http_get, wait_for

V = "/api/v1/teams/default"
FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "apps"))


def have(program: str) -> bool:
    return shutil.which(program) is not None


class NodeAppsTest(BerthTestCase):
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
        return self.srv.cli(*args, input=input, config=self.config, timeout=240)

    def must(self, *args):
        r = self.cli(*args)
        self.assertEqual(r.returncode, 0, f"berth {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def app(self, name: str) -> None:
        self.must("app", "create", name)
        self.addCleanup(self.api, "DELETE", f"{V}/apps/{name}")

    def instances(self, app: str, comp: str = "web") -> list:
        return self.ok(self.api("GET", f"{V}/apps/{app}/components/{comp}/instances"))["items"]

    def answer(self, app: str, version: str, comp: str = "web") -> str:
        def ready():
            items = self.instances(app, comp)
            self.reaper.scan()
            good = [i for i in items if i.get("ready") and i.get("version") == version]
            if len(good) != 1 or len(items) != 1:
                return None
            status, body = http_get(good[0])
            return body.strip() if status == 200 else None
        return wait_for(ready, f"one ready instance of {comp} at {version} answering", timeout=60)

    def build_log(self, app: str, version: str, comp: str = "web") -> str:
        return self.ok(self.api("GET", f"{V}/apps/{app}/components/{comp}/versions/{version}/log"))["log"]

    def events(self, app: str, comp: str = "web") -> list:
        return self.ok(self.api("GET", f"{V}/apps/{app}/components/{comp}/events?limit=100"))["items"]

    # -- point 5 ------------------------------------------------------------------------------

    def check_package_manager_app(self, fixture: str, name: str, expect: str, fetched: str):
        self.app(name)
        self.must("component", "create", "web", "--app", name, "--source",
                  os.path.join(FIXTURES, fixture), "--port", "3000/http", "--timeout", "200")
        self.reaper.scan()
        self.assertEqual(self.answer(name, "v1"), expect)
        v1 = self.ok(self.api("GET", f"{V}/apps/{name}/components/web/versions/v1"))
        # What detection said is what runs: the start script's command, no package manager.
        self.assertEqual(v1["start_command"], "node server.js")
        self.assertEqual(v1["detect"]["start_command"], "node server.js")
        log = self.build_log(name, "v1")
        self.assertIn(f"npx --yes --package={fetched}", log)
        self.assertIn("fetched from the npm registry by npx", log)
        self.assertNotIn("yarnpkg", log)
        self.assertNotIn("corepack", log)
        return log

    @unittest.skipUnless(have("npm"), "npm is not installed")
    def test_yarn_lock_app_builds_and_answers(self):
        log = self.check_package_manager_app("node-yarn", "yarnshop", "hello from yarn: 1m", "yarn@1")
        self.assertIn("yarn.lock → yarn 1", log)

    @unittest.skipUnless(have("npm"), "npm is not installed")
    def test_pnpm_app_builds_and_answers(self):
        log = self.check_package_manager_app("node-pnpm", "pnpmshop", "hello from pnpm: 1m",
                                             "pnpm@9.15.9")
        self.assertIn("packageManager `pnpm@9.15.9` → pnpm 9.15.9", log)

    # -- point 6 ------------------------------------------------------------------------------

    @unittest.skipUnless(have("npm"), "npm is not installed")
    def test_crash_summary_is_the_apps_own_error(self):
        self.app("crashy")
        r = self.cli("component", "create", "web", "--app", "crashy", "--source",
                     os.path.join(FIXTURES, "node-crash"), "--port", "3000/http", "--timeout", "120")
        self.reaper.scan()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # The deploy's failure names the app's own last line, and no npm notice.
        self.assertIn("fatal: cannot connect to database at db.internal:5432", r.stderr)
        self.assertNotIn("npm", r.stderr.replace("npm install", ""))
        self.assertIn("--app crashy", r.stderr)  # suggested commands are complete

        def crashloop():
            return [e for e in self.events("crashy") if e["reason"] == "CrashLoop"]
        loop = wait_for(crashloop, "a CrashLoop event", timeout=60)
        self.assertIn("fatal: cannot connect to database at db.internal:5432", loop[0]["message"])
        self.assertNotIn("npm", loop[0]["message"])
        # `component list` shows it as it is, not as "running".
        row = [l for l in self.must("component", "list", "--app", "crashy").splitlines()
               if l.startswith("web ")]
        self.assertTrue(row and "crash-looping" in row[0], row)

    def test_failed_rollout_returns_to_the_serving_version(self):
        src = os.path.join(self.srv.tmp, "rollout-src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "Procfile"), "w") as f:
            f.write("web: python3 app.py\n")
        with open(os.path.join(src, "app.py"), "w") as f:
            f.write(textwrap.dedent("""\
                import http.server, os
                class H(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        self.send_response(200); self.end_headers(); self.wfile.write(b"v1 serving\\n")
                    def log_message(self, *a):
                        pass
                http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
                """))
        self.app("roll")
        self.must("component", "create", "web", "--app", "roll", "--source", src,
                  "--port", "8080/http", "--timeout", "120")
        self.reaper.scan()
        self.assertEqual(self.answer("roll", "v1"), "v1 serving")

        # v2 cannot start: its deploy fails, and the component goes back to v1.
        with open(os.path.join(src, "app.py"), "w") as f:
            f.write("import sys\nprint('fatal: missing SECRET_KEY', file=sys.stderr)\nsys.exit(2)\n")
        r = self.cli("deploy", "web", "--app", "roll", "--timeout", "120")
        self.reaper.scan()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("deploy of v2 failed", r.stderr)
        self.assertIn("fatal: missing SECRET_KEY", r.stderr)

        def returned():
            comp = self.ok(self.api("GET", f"{V}/apps/roll/components/web"))
            back = [e for e in self.events("roll") if e["reason"] == "RolledBack"]
            return back if comp["version"] == "v1" and back else None
        back = wait_for(returned, "the component pinned back to v1 with a RolledBack event", timeout=90)
        self.assertIn("the rollout of v2 failed", back[0]["message"])
        self.assertIn("returned to v1", back[0]["message"])
        self.assertIn("`berth deploy web --app roll`", back[0]["message"])
        op = self.ok(self.api("GET", f"{V}/apps/roll/components/web/operation"))
        self.assertEqual(op["status"], "failed", op)
        self.assertIn("returned to v1", op["message"])
        # Only v1 runs again (the crash-looping v2 instance is gone), and it answers.
        self.assertEqual(self.answer("roll", "v1"), "v1 serving")
        self.assertEqual([i["version"] for i in self.instances("roll")], ["v1"])
        row = [l for l in self.must("component", "list", "--app", "roll").splitlines()
               if l.startswith("web ")]
        self.assertTrue(row and "running (1/1 ready)" in row[0], row)


if __name__ == "__main__":
    unittest.main()
