"""The builder end to end (issue #3): real `berth server`, real toolchains on this machine.

Sample apps live in tests/fixtures/apps/. Each build is queued through the API (or the CLI),
polled with a deadline until it is ready or failed, and the resulting artifact is started
from its directory with the version's start command to prove it runs. Every process started
here is killed by its process group in a finally block.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import BerthTestCase, free_port, http_request

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "apps"))
BUILD_TIMEOUT_S = 150.0
TEAM = "default"


def have(program: str) -> bool:
    return shutil.which(program) is not None


class BuildTest(BerthTestCase):
    app = "builds"

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.make_app_once()

    @classmethod
    def make_app_once(cls) -> None:
        st, body, _ = cls.srv.api("POST", f"/api/v1/teams/{TEAM}/apps", {"name": cls.app},
                                  token=cls.admin)
        assert st == 201, (st, body)

    # -- helpers ---------------------------------------------------------------------------

    def comp_path(self, name: str) -> str:
        return f"/api/v1/teams/{TEAM}/apps/{self.app}/components/{name}"

    def component(self, name: str, source: dict, build: dict | None = None) -> dict:
        fields = {"source": source}
        if build:
            fields["build"] = build
        return self.make_component(TEAM, self.app, name, **fields)

    def dir_component(self, name: str, fixture: str, build: dict | None = None) -> dict:
        return self.component(name, {"type": "dir", "path": os.path.join(FIXTURES, fixture)}, build)

    def queue(self, name: str, body: dict | None = None) -> dict:
        v = self.ok(self.api("POST", self.comp_path(name) + "/builds", body or {}), 201,
                    msg=f"queue build of {name}")
        self.assertEqual(v["status"], "queued")
        return v

    def wait(self, name: str, version: str, statuses=("ready", "failed", "cancelled"),
             timeout: float = BUILD_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.ok(self.api("GET", f"{self.comp_path(name)}/versions/{version}"))
            if last["status"] in statuses:
                return last
            time.sleep(0.05)
        log = self.api("GET", f"{self.comp_path(name)}/versions/{version}/log").body
        self.fail(f"{name}/{version} not in {statuses} after {timeout}s: {last!r}\nlog: {log!r}")

    def build_ready(self, name: str, body: dict | None = None) -> dict:
        v = self.queue(name, body)
        done = self.wait(name, v["name"])
        if done["status"] != "ready":
            log = self.api("GET", f"{self.comp_path(name)}/versions/{v['name']}/log").body
            self.fail(f"build of {name} {done['status']}: {done.get('message')}\nlog: {log}")
        return done

    def artifact_dir(self, version: dict) -> str:
        art = version["artifact"]
        self.assertTrue(art.startswith("sha256:"), art)
        self.assertEqual(len(art), 7 + 64)
        return os.path.join(self.srv.data_dir, "teams", TEAM, "artifacts", art[7:])

    def run_artifact(self, version: dict, path: str = "/", expect: str = "",
                     extra_env: dict | None = None, then=None) -> str:
        """Starts the version's web process from its artifact (as the runtime would: cwd = the
        app dir, PORT set, the detected env) and returns the body of GET `path`; `then(port)`
        runs more checks while it is up."""
        app_dir = os.path.join(self.artifact_dir(version), "app")
        port = free_port()
        env = {"PORT": str(port), "HOME": app_dir, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k, v in version["detect"].get("env", {}).items():
            if k == "PATH":  # relative entries are relative to the app dir
                v = ":".join(p if p.startswith("/") else os.path.join(app_dir, p)
                             for p in v.split(":")) + ":" + env["PATH"]
            env[k] = v
        env.update(extra_env or {})
        # Detection's commands bind ${HOST:-127.0.0.1}; a Procfile may still say 0.0.0.0.
        cmd = version["start_command"].replace("0.0.0.0", "127.0.0.1")
        out = open(os.path.join(self.srv.tmp, f"run-{port}.log"), "wb")
        proc = subprocess.Popen(["/bin/sh", "-c", cmd], cwd=app_dir, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            last = None
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    st, body, _ = http_request(f"http://127.0.0.1:{port}", "GET", path, timeout=2)
                    if st == 200:
                        text = body if isinstance(body, str) else json.dumps(body)
                        if expect:
                            self.assertIn(expect, text)
                        if then:
                            then(port)
                        return text
                    last = st
                except OSError as e:
                    last = e
                time.sleep(0.05)
            out.flush()
            with open(out.name, "rb") as f:
                output = f.read().decode("utf-8", "replace")
            self.fail(f"`{cmd}` did not answer on port {port} ({last}); exit {proc.poll()}; "
                      f"output: {output[-2000:]}")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
            out.close()

    def log_of(self, name: str, version: str) -> str:
        body = self.ok(self.api("GET", f"{self.comp_path(name)}/versions/{version}/log"))
        return body["log"]

    def events_of(self, name: str) -> list:
        return self.ok(self.api("GET", self.comp_path(name) + "/events"))["items"]

    # -- detection -------------------------------------------------------------------------

    def test_detect_api_reports_reasons(self):
        d = self.ok(self.api("POST", f"/api/v1/teams/{TEAM}/detect",
                             {"source": {"type": "dir", "path": os.path.join(FIXTURES, "node-ms")}}))
        self.assertEqual(d["language"], "node")
        self.assertEqual(d["processes"], {"web": "node server.js"})
        self.assertEqual(d["port"], 3000)
        self.assertTrue(any("start script `node server.js`" in r for r in d["reasons"]), d)
        # Overrides win.
        d = self.ok(self.api("POST", f"/api/v1/teams/{TEAM}/detect",
                             {"source": {"type": "dir", "path": os.path.join(FIXTURES, "node-ms")},
                              "build": {"start_command": "node other.js", "command": "make"}}))
        self.assertEqual(d["processes"]["web"], "node other.js")
        self.assertEqual(d["build_steps"], ["make"])

    def test_detect_bad_input_changes_nothing(self):
        url = f"/api/v1/teams/{TEAM}/detect"
        self.assertStatus(self.api("POST", url, {}), 400, "invalid_argument")
        self.assertStatus(self.api("POST", url, {"source": {"type": "dir", "path": "relative"}}),
                          400, "invalid_argument")
        self.assertStatus(self.api("POST", url, {"source": {"type": "dir", "path": "/nonexistent"}}),
                          400, "invalid_argument")
        self.assertStatus(self.api("POST", url, {"source": {"type": "dir", "path": FIXTURES},
                                                 "bogus": 1}), 400, "unknown_field")
        empty = tempfile.mkdtemp(prefix="berth-empty-")
        try:
            body = self.assertStatus(self.api("POST", url, {"source": {"type": "dir", "path": empty}}),
                                     400, "invalid_argument")
            self.assertIn("cannot tell how to build", body["message"])
        finally:
            os.rmdir(empty)
        viewer = self.make_user("detect-viewer")
        self.add_member(TEAM, "detect-viewer", "viewer")
        self.assertStatus(self.api("POST", url, {"source": {"type": "dir", "path": FIXTURES}},
                                   token=viewer), 403, "permission_denied")
        outsider = self.make_user("detect-outsider")
        self.assertStatus(self.api("POST", url, {"source": {"type": "dir", "path": FIXTURES}},
                                   token=outsider), 404, "not_found")

    # -- real builds -----------------------------------------------------------------------

    def test_python_app_without_dependencies(self):
        self.dir_component("py", "python-hello")
        v = self.build_ready("py")
        self.assertEqual(v["detect"]["language"], "python")
        self.assertEqual(v["start_command"], ".venv/bin/python app.py")
        self.assertGreater(v["size_bytes"], 0)
        self.assertTrue(v["built_at"])
        self.assertEqual(v["build_log"], f"logs/builds/{TEAM}/{self.app}/py/{v['name']}.log")
        app_dir = os.path.join(self.artifact_dir(v), "app")
        self.assertTrue(os.path.exists(os.path.join(app_dir, ".venv", "bin", "python")))
        with open(os.path.join(self.artifact_dir(v), "config.json")) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["start_command"], v["start_command"])
        self.run_artifact(v, expect="hello from python")
        events = [e["reason"] for e in self.events_of("py")]
        self.assertIn("BuildSucceeded", events)

    @unittest.skipUnless(have("npm"), "npm is not installed")
    def test_node_app_with_npm_dependency_and_cache(self):
        self.dir_component("node", "node-ms")
        v1 = self.build_ready("node")
        self.assertEqual(v1["detect"]["language"], "node")
        self.assertTrue(os.path.isdir(os.path.join(self.artifact_dir(v1), "app", "node_modules", "ms")))
        self.run_artifact(v1, expect="hello from node: 1m")
        cache = os.path.join(self.srv.data_dir, "teams", TEAM, "cache", self.app, "node")
        self.assertTrue(os.path.isdir(os.path.join(cache, "npm")), "npm cache not kept")
        self.assertTrue(os.path.isdir(os.path.join(cache, "node_modules", "ms")))
        # The second build reuses the component's cache and dedupes to the same artifact.
        v2 = self.build_ready("node")
        self.assertIn("restoring node_modules from the component's cache", self.log_of("node", v2["name"]))
        self.assertEqual(v2["artifact"], v1["artifact"])

    def test_static_site(self):
        self.dir_component("site", "static-site")
        v = self.build_ready("site")
        self.assertEqual(v["detect"]["language"], "static")
        self.assertEqual(v["detect"]["build_steps"], [])
        # Served by berth itself (`berth static`): no toolchain, loopback only.
        self.assertIn(" static --root . --listen ${HOST:-127.0.0.1}:$PORT", v["start_command"])
        self.assertTrue(os.path.isabs(v["start_command"].split()[0]), v["start_command"])
        self.assertEqual(v["detect"]["tools"], [])

        def headers(port):
            base = f"http://127.0.0.1:{port}"
            st, body, h = http_request(base, "GET", "/site.css")
            self.assertEqual(st, 200)
            self.assertTrue(h["Content-Type"].startswith("text/css"), h["Content-Type"])
            self.assertEqual(h["Cache-Control"], "no-cache")
            etag = h["ETag"]
            self.assertTrue(etag)
            st, _, h2 = http_request(base, "GET", "/site.css", headers={"If-None-Match": etag})
            self.assertEqual(st, 304)
            st, body, h = http_request(base, "GET", "/")
            self.assertEqual(st, 200)
            self.assertIn("hello from a static site", body)
            self.assertTrue(h["Content-Type"].startswith("text/html"))
            self.assertEqual(http_request(base, "GET", "/no/such/page")[0], 404)
            self.assertEqual(http_request(base, "GET", "/../../etc/passwd")[0], 404)
            self.assertEqual(http_request(base, "POST", "/", body={})[0], 405)
        self.run_artifact(v, path="/index.html", expect="hello from a static site", then=headers)

        def spa(port):
            base = f"http://127.0.0.1:{port}"
            st, body, _ = http_request(base, "GET", "/app/route/42")
            self.assertEqual(st, 200)
            self.assertIn("hello from a static site", body)
            self.assertEqual(http_request(base, "GET", "/missing.js")[0], 404)  # assets stay 404
        self.run_artifact(v, path="/", extra_env={"BERTH_STATIC_SPA": "1"}, then=spa)

    def test_procfile_app(self):
        self.dir_component("proc", "procfile-app")
        v = self.build_ready("proc")
        self.assertEqual(v["detect"]["processes"], {"web": "sh ./serve.sh", "worker": "sh ./work.sh"})
        self.assertEqual(v["detect"]["release"], "echo migrating")
        self.assertEqual(v["start_command"], "sh ./serve.sh")
        self.run_artifact(v, path="/hello.txt", expect="procfile app")

    @unittest.skipUnless(have("go"), "go is not installed (apt-get install golang-go)")
    def test_go_app(self):
        self.dir_component("gosvc", "go-hello")
        v = self.build_ready("gosvc")
        self.assertEqual(v["detect"]["language"], "go")
        self.assertTrue(os.access(os.path.join(self.artifact_dir(v), "app", "bin", "app"), os.X_OK))
        self.assertTrue(os.path.isdir(os.path.join(self.srv.data_dir, "teams", TEAM, "cache", self.app,
                                                   "gosvc", "go-build")))
        self.run_artifact(v, expect="hello from go")

    @unittest.skipUnless(have("npm"), "npm is not installed")
    def test_failing_build_reports_step_exit_code_and_last_lines(self):
        comp = self.dir_component("broken", "node-build-fails")
        v = self.queue("broken")
        done = self.wait("broken", v["name"])
        self.assertEqual(done["status"], "failed")
        msg = done["message"]
        self.assertIn("step 2/2 `npm run build`", msg)
        self.assertIn("exit code", msg)
        self.assertIn("Cannot find name frobnicate", msg)
        self.assertEqual(done["artifact"], "")
        failed = [e for e in self.events_of("broken") if e["reason"] == "BuildFailed"]
        self.assertEqual(len(failed), 1, self.events_of("broken"))
        self.assertEqual(failed[0]["type"], "warning")
        self.assertIn("Cannot find name frobnicate", failed[0]["message"])
        self.assertIn("npm run build", failed[0]["message"])
        # The component (and so the version it runs) is untouched.
        now = self.ok(self.api("GET", self.comp_path("broken")))
        self.assertEqual(now["revision"], comp["revision"])
        self.assertEqual(now["version"], "")
        self.assertIn("error TS2304", self.log_of("broken", v["name"]))

    def test_git_source_at_tag(self):
        repo = tempfile.mkdtemp(prefix="berth-git-")
        try:
            def git(*args):
                subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                               env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
                                    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"})
            git("init", "-q", "-b", "main")
            with open(os.path.join(repo, "Procfile"), "w") as f:
                f.write("web: sh ./serve.sh\n")
            with open(os.path.join(repo, "serve.sh"), "w") as f:
                f.write('exec python3 -m http.server "$PORT" --bind 127.0.0.1\n')
            with open(os.path.join(repo, "version.txt"), "w") as f:
                f.write("one\n")
            git("add", ".")
            git("commit", "-q", "-m", "one")
            git("tag", "v1.0")
            tagged = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip()
            with open(os.path.join(repo, "version.txt"), "w") as f:
                f.write("two\n")
            git("commit", "-q", "-am", "two")
            self.component("gitapp", {"type": "git", "url": "file://" + repo, "ref": "main"})
            v = self.build_ready("gitapp", {"ref": "v1.0"})
            self.assertEqual(v["commit"], tagged)
            app_dir = os.path.join(self.artifact_dir(v), "app")
            with open(os.path.join(app_dir, "version.txt")) as f:
                self.assertEqual(f.read(), "one\n")
            self.assertFalse(os.path.exists(os.path.join(app_dir, ".git")))
            self.run_artifact(v, path="/version.txt", expect="one")
            # Without a ref the component's own (main) is built.
            v2 = self.build_ready("gitapp")
            with open(os.path.join(self.artifact_dir(v2), "app", "version.txt")) as f:
                self.assertEqual(f.read(), "two\n")
            # A ref that does not exist fails clearly.
            bad = self.queue("gitapp", {"ref": "no-such-tag"})
            done = self.wait("gitapp", bad["name"])
            self.assertEqual(done["status"], "failed")
            self.assertIn("no-such-tag", done["message"])
        finally:
            shutil.rmtree(repo, ignore_errors=True)

    def test_build_log_readable_afterwards_and_followed_live(self):
        self.dir_component("ticker", "procfile-app",
                           build={"command": "for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done"})
        v = self.queue("ticker")
        # Follow while it builds: lines arrive in order and the stream ends with the status.
        u = urllib.parse.urlsplit(self.srv.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            conn.request("GET", f"{self.comp_path('ticker')}/versions/{v['name']}/log?follow=1",
                         headers={"Authorization": f"Bearer {self.admin}"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            lines = []
            end = None
            deadline = time.monotonic() + BUILD_TIMEOUT_S
            while time.monotonic() < deadline:
                raw = resp.readline()
                if not raw:
                    break
                j = json.loads(raw)
                if j["type"] == "line":
                    lines.append(j["text"])
                elif j["type"] == "end":
                    end = j
                    break
        finally:
            conn.close()
        self.assertIsNotNone(end, lines)
        self.assertEqual(end["status"], "ready")
        ticks = [l for l in lines if l.startswith("tick ")]
        self.assertEqual(ticks, [f"tick {i}" for i in range(1, 6)])
        # And readable afterwards.
        log = self.log_of("ticker", v["name"])
        self.assertIn("tick 5\n", log)
        self.assertIn("-----> ready", log)
        self.assertStatus(self.api("GET", f"{self.comp_path('ticker')}/versions/{v['name']}/log?follow=maybe"),
                          400, "invalid_argument")

    def test_cancel_a_running_build(self):
        self.dir_component("slow", "procfile-app", build={"command": "echo started; sleep 120"})
        v = self.queue("slow")
        self.wait("slow", v["name"], statuses=("building",))
        t0 = time.monotonic()
        c = self.ok(self.api("POST", f"{self.comp_path('slow')}/versions/{v['name']}/cancel"))
        self.assertEqual(c["status"], "cancelled")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "cancelled during" not in self.log_of("slow", v["name"]):
            time.sleep(0.05)
        self.assertIn("cancelled during", self.log_of("slow", v["name"]))
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(self.ok(self.api("GET", f"{self.comp_path('slow')}/versions/{v['name']}"))["status"],
                         "cancelled")
        self.assertStatus(self.api("POST", f"{self.comp_path('slow')}/versions/{v['name']}/cancel"),
                          409, "failed_precondition")

    def test_build_errors_change_nothing(self):
        self.make_component(TEAM, self.app, "nosource")
        self.assertStatus(self.api("POST", self.comp_path("nosource") + "/builds", {}), 409,
                          "failed_precondition")
        self.dir_component("dirsrc", "static-site")
        self.assertStatus(self.api("POST", self.comp_path("dirsrc") + "/builds", {"ref": "main"}), 400,
                          "invalid_argument")
        self.assertStatus(self.api("POST", self.comp_path("dirsrc") + "/builds", {"nope": 1}), 400,
                          "unknown_field")
        self.assertStatus(self.api("POST", self.comp_path("missing") + "/builds", {}), 404, "not_found")
        self.assertStatus(self.api("GET", self.comp_path("dirsrc") + "/versions/v99/log"), 404, "not_found")
        self.assertEqual(self.list_all(self.comp_path("dirsrc") + "/versions"), [])
        viewer = self.make_user("build-viewer")
        self.add_member(TEAM, "build-viewer", "viewer")
        self.assertStatus(self.api("POST", self.comp_path("dirsrc") + "/builds", {}, token=viewer), 403,
                          "permission_denied")

    def test_missing_toolchain_names_the_package(self):
        if have("ruby") and have("bundle"):
            self.skipTest("ruby is installed here")
        src = tempfile.mkdtemp(prefix="berth-ruby-")
        try:
            with open(os.path.join(src, "Gemfile"), "w") as f:
                f.write("source 'https://rubygems.org'\n")
            with open(os.path.join(src, "config.ru"), "w") as f:
                f.write("run ->(e){[200,{},['hi']]}\n")
            self.component("rb", {"type": "dir", "path": src})
            v = self.queue("rb")
            done = self.wait("rb", v["name"])
            self.assertEqual(done["status"], "failed")
            self.assertIn("install the Debian package ruby", done["message"])
        finally:
            shutil.rmtree(src, ignore_errors=True)

    def test_doctor_lists_toolchains_and_what_to_install(self):
        d = self.ok(self.api("GET", "/api/v1/doctor"))
        by = {t["program"]: t for t in d["toolchains"]}
        for program in ("node", "npm", "npx", "python3", "python3 -m pip", "python3 -m venv",
                        "go", "java", "mvn", "gradle", "php", "composer", "ruby", "bundle", "git"):
            self.assertIn(program, by)
        self.assertTrue(by["git"]["found"], by["git"])
        self.assertRegex(by["git"]["version"], r"\d")
        self.assertEqual(by["python3"]["found"], have("python3"))
        for t in d["toolchains"]:
            if not t["found"]:
                self.assertIn(t["package"], d["missing"])
                self.assertEqual(t["version"], "")
        if not have("ruby"):
            self.assertFalse(by["ruby"]["found"])
            self.assertIn("ruby", d["install"])
        # Any signed-in user may ask; nobody else.
        self.assertStatus(self.anon("GET", "/api/v1/doctor"), 401, "unauthenticated")
        config = os.path.join(self.srv.tmp, "cli-config-doctor")
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                         input=self.srv.admin_password + "\n", config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("doctor", config=config, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("LANGUAGE", r.stdout)
        self.assertIn("git", r.stdout)

    # -- the CLI ---------------------------------------------------------------------------

    def test_cli_detect_build_versions_logs(self):
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                         input=self.srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("detect", os.path.join(FIXTURES, "python-hello"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("language:  python", r.stdout)
        self.assertIn("web: .venv/bin/python app.py", r.stdout)
        self.assertIn("requirements.txt found", r.stdout)
        self.dir_component("clipy", "python-hello")
        r = self.srv.cli("build", "clipy", "--app", self.app, "-f", timeout=BUILD_TIMEOUT_S)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("-----> ready", r.stdout)
        r = self.srv.cli("versions", "clipy", "--app", self.app)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("v1", r.stdout)
        self.assertIn("ready", r.stdout)
        r = self.srv.cli("logs", "clipy", "--app", self.app, "--build", "v1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("detected python", r.stdout)
        # A failing build followed from the CLI exits 1.
        self.dir_component("clibad", "procfile-app", build={"command": "echo nope >&2; exit 9"})
        r = self.srv.cli("build", "clibad", "--app", self.app, "--follow", timeout=BUILD_TIMEOUT_S)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("exit code 9", r.stderr)
        r = self.srv.cli("logs", "clibad", "--app", self.app, "--build", "-f", timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("nope", r.stdout)


class BuildRestartTest(BerthTestCase):
    """A build interrupted by a server stop resumes when the server comes back."""

    def test_queued_build_survives_restart(self):
        self.make_app(TEAM, "restart")
        path = f"/api/v1/teams/{TEAM}/apps/restart/components/web"
        self.make_component(TEAM, "restart", "web",
                            source={"type": "dir", "path": os.path.join(FIXTURES, "procfile-app")},
                            build={"command": "echo step; sleep 1"})
        v = self.ok(self.api("POST", path + "/builds", {}), 201)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ok(self.api("GET", f"{path}/versions/{v['name']}"))["status"] == "building":
                break
            time.sleep(0.02)
        self.srv.restart()
        BuildRestartTest.admin = self.srv.login()
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            status = self.ok(self.api("GET", f"{path}/versions/{v['name']}"))
            if status["status"] in ("ready", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(status["status"], "ready", status)


class BuildMemoryLimitTest(BerthTestCase):
    """build_memory_mb: a step that needs more memory than the limit fails and says why."""

    server_kwargs = {"env": {"BERTH_BUILD_MEMORY_MB": "64"}}

    def test_step_over_the_memory_limit_fails_clearly(self):
        self.make_app(TEAM, "mem")
        path = f"/api/v1/teams/{TEAM}/apps/mem/components/web"
        # Touches 400 MiB: far over 64 MiB whether the limit is a cgroup (resident memory) or
        # RLIMIT_AS (address space).
        self.make_component(TEAM, "mem", "web", replicas=0,
                            source={"type": "dir", "path": os.path.join(FIXTURES, "procfile-app")},
                            build={"command": "python3 -c 'b = bytearray(400 << 20); print(len(b))'"})
        v = self.ok(self.api("POST", path + "/builds", {}), 201)
        deadline = time.monotonic() + 60
        done = None
        while time.monotonic() < deadline:
            done = self.ok(self.api("GET", f"{path}/versions/{v['name']}"))
            if done["status"] in ("ready", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(done["status"], "failed", done)
        log = self.ok(self.api("GET", f"{path}/versions/{v['name']}/log"))["log"]
        self.assertIn("memory limit 64 MiB", log)
        if "(cgroup" in log:
            self.assertIn("out of memory", done["message"])
        else:  # RLIMIT_AS: python cannot allocate and says so
            self.assertIn("MemoryError", done["message"])
        # Within the limit the same machinery builds fine.
        self.ok(self.api("PATCH", path, {"build": {"command": "python3 -c 'print(1)'"}}))
        v2 = self.ok(self.api("POST", path + "/builds", {}), 201)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = self.ok(self.api("GET", f"{path}/versions/{v2['name']}"))
            if done["status"] in ("ready", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(done["status"], "ready", done)


if __name__ == "__main__":
    unittest.main()
