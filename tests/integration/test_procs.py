"""Every Procfile process runs (issue 21, point 4), with a real server, real builds and real
processes: a worker-only Procfile runs its worker without a port; `berth scale web=2 worker=1`
sets each process type's count and `berth ps` shows them; a `release:` command runs once per
deploy before the rollout and a failing one aborts the deploy with its log lines while the old
version keeps serving; `berth run COMPONENT -- CMD` runs a command in a fresh instance of the
current version of a service, prints its output and returns its exit code; a member of another
team can neither run nor scale.

The apps are one Python file (app.py) playing web, worker or release by its argument; every
process the runtime starts is killed by PID in the cleanup (test_runtime.Reaper).
"""

import json
import os
import textwrap
import unittest

from harness import BerthTestCase
from test_runtime import Reaper, http_get, wait_for

V = "/api/v1/teams/default"

APP_PY = textwrap.dedent("""\
    import http.server, os, sys, time
    here = os.path.dirname(os.path.abspath(__file__))
    def read(name):
        p = os.path.join(here, name)
        return open(p).read().strip() if os.path.exists(p) else ""
    role = sys.argv[1]
    if role == "web":
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = (read("greeting.txt") + "\\n").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a):
                pass
        http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    elif role == "worker":
        print("worker up, PORT=" + os.environ.get("PORT", "none"), flush=True)
        n = 0
        while True:
            n += 1
            print("worker tick %d" % n, flush=True)
            time.sleep(0.5)
    elif role == "release":
        print("release of " + read("greeting.txt") + " ran", flush=True)
        if read("fail.txt"):
            print("error: migration 0042 failed: " + read("fail.txt"), file=sys.stderr, flush=True)
            sys.exit(1)
    """)


class ProcessTypesTest(BerthTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)
        cls.config = os.path.join(cls.srv.tmp, "cli-config-procs")
        r = cls.srv.cli("login", "--server", cls.srv.url, "--user", "admin", "--password-stdin",
                        input=cls.srv.admin_password + "\n", config=cls.config)
        assert r.returncode == 0, r.stderr

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)

    def cli(self, *args, config=None):
        r = self.srv.cli(*args, config=config or self.config, timeout=180)
        self.reaper.scan()
        return r

    def must(self, *args):
        r = self.cli(*args)
        self.assertEqual(r.returncode, 0, f"berth {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def source(self, name: str, procfile: str, greeting: str = "v1", fail: str = "") -> str:
        path = os.path.join(self.srv.tmp, name)
        os.makedirs(path, exist_ok=True)
        files = {"Procfile": procfile, "app.py": APP_PY, "greeting.txt": greeting + "\n",
                 "fail.txt": fail + "\n"}
        for f, text in files.items():
            with open(os.path.join(path, f), "w") as out:
                out.write(text)
        return path

    def new_app(self, app: str) -> None:
        self.must("app", "create", app)
        self.addCleanup(self.api, "DELETE", f"{V}/apps/{app}")

    def instances(self, app: str, comp: str = "web") -> list:
        self.reaper.scan()
        return self.ok(self.api("GET", f"{V}/apps/{app}/components/{comp}/instances"))["items"]

    def logs(self, app: str, *extra) -> str:
        return self.must("logs", "web", "--app", app, *extra)

    def test_a_worker_only_procfile_runs_its_worker_without_a_port(self):
        self.new_app("wk")
        src = self.source("wk-src", "worker: python3 app.py worker\n")
        out = self.must("component", "create", "web", "--app", "wk", "--source", src,
                        "--timeout", "120")
        self.assertIn("web runs v1", out)
        insts = self.instances("wk")
        self.assertEqual([(i["name"], i.get("process"), i["port"], i["ports"]) for i in insts],
                         [("web-worker-1", "worker", 0, {})], insts)
        comp = self.ok(self.api("GET", f"{V}/apps/wk/components/web"))
        self.assertEqual(comp["process_types"], {"worker": 1}, comp)
        self.assertEqual(comp["addresses"], [], comp)
        # It really runs: its output reaches the log, and it got no PORT.
        text = wait_for(lambda: (lambda t: t if "worker tick 3" in t else None)(self.logs("wk")),
                        "three worker ticks in the log")
        self.assertIn("worker up, PORT=none", text)
        self.assertIn("web-worker-1", text)

    def test_scale_each_process_type_and_ps_shows_them(self):
        self.new_app("sc")
        src = self.source("sc-src", "web: python3 app.py web\nworker: python3 app.py worker\n")
        self.must("component", "create", "web", "--app", "sc", "--source", src, "--port",
                  "8080/http", "--timeout", "120")
        wait_for(lambda: sorted(i["name"] for i in self.instances("sc")
                                if i["ready"]) == ["web-1", "web-worker-1"],
                 "web-1 and web-worker-1 ready")
        out = self.must("scale", "web=2", "worker=1", "--app", "sc")
        self.assertIn("scaling web to web=2 worker=1", out)
        self.assertIn("web 2, worker 1", out)
        self.must("wait", "web", "--app", "sc", "--ready", "--timeout", "60")
        want = {("web-1", "web"), ("web-2", "web"), ("web-worker-1", "worker")}
        got = {(i["name"], i.get("process") or "web") for i in self.instances("sc") if i["ready"]}
        self.assertEqual(got, want)
        ps = self.must("ps", "--app", "sc")
        self.assertIn("web=2", ps)
        self.assertIn("worker=1", ps)
        rows = {(next(t for t in line.split() if t.startswith("web-")), line.split()[-1])
                for line in ps.splitlines() if "web-" in line}
        self.assertIn(("web-worker-1", "worker"), rows, ps)
        self.assertIn(("web-2", "web"), rows, ps)
        # The worker count goes its own way: 0 stops only the worker.
        self.must("scale", "web", "worker=0", "--app", "sc")
        wait_for(lambda: sorted(i["name"] for i in self.instances("sc")) == ["web-1", "web-2"],
                 "the worker to stop, web to stay")
        comp = self.ok(self.api("GET", f"{V}/apps/sc/components/web"))
        self.assertEqual((comp["replicas"], comp["processes"], comp["process_types"]),
                         (2, {"worker": 0}, {"web": 2, "worker": 0}), comp)
        # Bad counts are refused with a stable code and change nothing.
        r = self.cli("scale", "web", "worker=lots", "--app", "sc")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("worker must be a whole number", r.stderr)
        r = self.cli("scale", "web", "cron=1", "--app", "sc")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('runs no process type "cron"', r.stderr)
        st, body, _ = self.api("PATCH", f"{V}/apps/sc/components/web",
                               {"processes": {"web": 3}})
        self.assertEqual((st, body["code"], body.get("field")), (400, "invalid_argument",
                                                                  "processes.web"), body)
        st, body, _ = self.api("PATCH", f"{V}/apps/sc/components/web",
                               {"processes": {"Bad_Type": 1}})
        self.assertEqual(st, 400, body)
        comp = self.ok(self.api("GET", f"{V}/apps/sc/components/web"))
        self.assertEqual(comp["processes"], {"worker": 0})

    def test_release_runs_once_per_deploy_and_a_failing_one_aborts(self):
        self.new_app("rel")
        procfile = ("web: python3 app.py web\nrelease: python3 app.py release\n")
        src = self.source("rel-src", procfile, greeting="v1")
        out = self.must("component", "create", "web", "--app", "rel", "--source", src,
                        "--port", "8080/http", "--timeout", "120")
        self.assertIn("web runs v1", out)
        # v2: its release runs once, before its instances.
        self.source("rel-src", procfile, greeting="v2")
        out = self.must("deploy", "web", "--app", "rel", "--timeout", "120")
        self.assertIn("web runs v2", out)
        events = self.ok(self.api("GET", f"{V}/apps/rel/components/web/events?limit=100"))["items"]
        ok = [e for e in events if e["reason"] == "ReleaseSucceeded"]
        self.assertEqual(len(ok), 2, events)  # v1's and v2's
        self.assertEqual(sum(e.get("count", 1) for e in ok if "v2" in e["message"]), 1, ok)
        log = self.logs("rel", "--instance", "web-release-v2")
        self.assertEqual(log.count("release of v2 ran"), 1, log)
        started_v2 = [i for i in self.instances("rel") if i["version"] == "v2"]
        self.assertTrue(started_v2)
        # v3's release fails: the deploy fails with its log lines; v2 keeps serving.
        self.source("rel-src", procfile, greeting="v3", fail="duplicate column email")
        r = self.cli("deploy", "web", "--app", "rel", "--timeout", "120")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("ReleaseFailed", r.stderr)
        self.assertIn("migration 0042 failed: duplicate column email", r.stderr)
        self.assertIn("v2 keeps running", r.stderr)
        insts = self.instances("rel")
        self.assertEqual({(i["version"], i.get("process", "")) for i in insts}, {("v2", "")},
                         insts)
        status, body = http_get(insts[0])
        self.assertEqual((status, body.strip()), (200, "v2"))
        op = self.ok(self.api("GET", f"{V}/apps/rel/components/web/operation"))
        self.assertEqual(op["status"], "failed", op)
        self.assertIn("migration 0042 failed", op["message"])
        events = self.ok(self.api("GET", f"{V}/apps/rel/components/web/events?limit=100"))["items"]
        self.assertTrue([e for e in events if e["reason"] == "ReleaseFailed"
                         and "duplicate column email" in e["message"]], events)

    def test_run_a_command_in_a_service_returns_its_output_and_exit_code(self):
        self.new_app("one")
        src = self.source("one-src", "web: python3 app.py web\n", greeting="hello run")
        self.must("component", "create", "web", "--app", "one", "--source", src, "--port",
                  "8080/http", "--timeout", "120")
        r = self.cli("run", "web", "--app", "one", "--",
                     "cat greeting.txt; echo PORT=${PORT:-none} VERSION=$BERTH_VERSION; "
                     "echo oops >&2; exit 7")
        self.assertEqual(r.returncode, 7, r.stdout + r.stderr)
        self.assertIn("hello run", r.stdout)
        self.assertIn("PORT=none VERSION=v1", r.stdout)
        self.assertIn("oops", r.stderr)
        # Several words are quoted for the shell; success is exit 0.
        r = self.cli("run", "web", "--app", "one", "--", "echo", "two  spaces", "$HOME")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("two  spaces $HOME", r.stdout)
        r = self.cli("run", "web", "--app", "one", "-o", "json", "--", "echo json out")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual((j["output"], j["exit_code"], j["command"]), (["json out"], 0, "echo json out"))
        # The service itself was not touched; the runs' instances are gone.
        insts = wait_for(lambda: (lambda l: l if [i["name"] for i in l] == ["web-1"] else None)(
            self.instances("one")), "only web-1 left")
        self.assertEqual(insts[0]["restarts"], 0)
        # A service's runs without a command are still refused, clearly.
        st, body, _ = self.api("POST", f"{V}/apps/one/components/web/runs")
        self.assertEqual((st, body["code"]), (409, "not_a_job"), body)
        st, body, _ = self.api("POST", f"{V}/apps/one/components/web/runs", {"command": ""})
        self.assertEqual((st, body["code"], body.get("field")), (400, "invalid_argument", "command"))

    def test_another_team_can_neither_run_nor_scale(self):
        self.new_app("mine")
        self.make_component("default", "mine", "web", replicas=0)
        token = self.make_user("mallory")
        self.make_team("mallorys", token=self.admin)
        self.add_member("mallorys", "mallory", "owner")
        # A viewer of our team cannot either.
        self.make_user("vic")
        self.add_member("default", "vic", "viewer")
        vic = self.srv.login("vic", "vic-pass-123")
        p = f"{V}/apps/mine/components/web"
        for who, tok in (("mallory", token), ("vic", vic)):
            st, body, _ = self.srv.api("POST", p + "/runs", {"command": "id"}, token=tok)
            self.assertIn(st, (403, 404), f"{who}: {st} {body}")
            st, body, _ = self.srv.api("PATCH", p, {"processes": {"worker": 5}}, token=tok)
            self.assertIn(st, (403, 404), f"{who}: {st} {body}")
        comp = self.ok(self.api("GET", p))
        self.assertEqual(comp["processes"], {})
        self.assertEqual(self.ok(self.api("GET", p + "/runs"))["items"], [])


if __name__ == "__main__":
    unittest.main()
