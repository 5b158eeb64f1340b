"""CLI polish and the Heroku habits (issue 21, item 8), through the real binary:

- `berth --version`; an unknown command is named with the closest ones (exit 2);
- with `-o json` errors are JSON on stderr ({"error":{"code","message"}}), usage errors too;
- `app delete`, `component delete` and `team delete` ask on a terminal (a pty here) and need
  --yes without one (exit 2, nothing deleted);
- `berth doctor` prints no raw colour codes (Maven prints its version in bold);
- commands suggested in messages name the app;
- `berth config get|set|unset` over the component's env, one rolling update per change;
- `berth releases`, `berth ps`, `berth open`.

Services are shell commands in an empty working directory (versions with no artifact, as in
test_jobs.py) or a static site built by the builder; every process the runtime starts is
killed by PID in the cleanups (test_jobs.JobReaper). The server runs its gateway, so
components have addresses (`berth open`); nothing here connects to an instance directly.
"""

import json
import os
import pty
import re
import select
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BerthTestCase, _die_with_parent, _live
from test_jobs import MARK, JobCase
from test_runtime import V, wait_for

APP = "habits"


class CliHabitsTest(JobCase):
    server_kwargs = {"gateway": True}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        r = cls.srv.cli("login", "--server", cls.srv.url, "--user", "admin", "--password-stdin",
                        input=cls.srv.admin_password + "\n")
        assert r.returncode == 0, r.stderr
        st, body, _ = cls.srv.api("POST", f"{V}/apps", {"name": APP}, token=cls.admin)
        assert st == 201, body

    def berth(self, *args, expect=0, env=None, timeout=60.0):
        r = self.srv.cli(*args, env=env, timeout=timeout)
        if expect is not None:
            self.assertEqual(r.returncode, expect,
                             f"`berth {' '.join(args)}`: exit {r.returncode}, expected {expect}"
                             f"\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
        self.assertNotIn("AddressSanitizer", r.stderr)
        return r

    def service(self, comp: str, command: str, **fields) -> None:
        self.job(APP, comp, command, kind="service", **fields)

    # -- the CLI itself ------------------------------------------------------------------------

    def test_version_and_unknown_commands(self):
        r = self.berth("--version")
        self.assertRegex(r.stdout.strip(), r"^berth \d+\.\d+\.\d+$")
        r = self.berth("aps", expect=2)
        self.assertIn('unknown command "aps"', r.stderr)
        self.assertIn("`berth app`", r.stderr)
        self.assertIn("`berth ps`", r.stderr)
        self.assertEqual(r.stdout, "")
        r = self.berth("component", "lst", "--app", APP, expect=2)
        self.assertIn('unknown command "component lst"; did you mean `berth component list`',
                      r.stderr)

    def test_json_errors(self):
        r = self.berth("app", "show", "nope", "-o", "json", expect=1)
        self.assertEqual(r.stdout, "")
        err = json.loads(r.stderr)
        self.assertEqual(err["error"]["code"], "not_found", err)
        self.assertIn("nope", err["error"]["message"])
        # The runtime verbs, the build verbs and usage errors print the same shape.
        for args, code, rc in ((("scale", "nope", "2", "--app", APP), "not_found", 1),
                               (("versions", "nope", "--app", APP), "not_found", 1),
                               (("scale", "nope", "--app", APP), "usage", 2),
                               (("aps",), "usage", 2)):
            r = self.berth(*args, "-o", "json", expect=rc)
            self.assertEqual(json.loads(r.stderr)["error"]["code"], code, r.stderr)
        # Unreachable server: the client's own error, also JSON.
        r = self.berth("app", "list", "-o", "json", "--server", "http://127.0.0.1:1", expect=1)
        self.assertEqual(json.loads(r.stderr)["error"]["code"], "unavailable", r.stderr)
        # Without -o json: the human form.
        r = self.berth("app", "show", "nope", expect=1)
        self.assertTrue(r.stderr.startswith("error: "), r.stderr)

    def test_destructive_verbs_need_yes_without_a_terminal(self):
        self.make_app("default", "doomed")
        self.make_component("default", "doomed", "web")
        for args in (("app", "delete", "doomed"),
                     ("component", "delete", "web", "--app", "doomed")):
            r = self.berth(*args, expect=2)
            self.assertIn("--yes", r.stderr)
        self.make_team("doomed-team")
        r = self.berth("team", "delete", "doomed-team", expect=2)
        self.assertIn("--yes", r.stderr)
        # Nothing was deleted.
        self.ok(self.api("GET", f"{V}/apps/doomed/components/web"))
        self.ok(self.api("GET", "/api/v1/teams/doomed-team"))
        # On a terminal: a wrong name deletes nothing, the right one deletes.
        rc, _, err = self.on_terminal(["component", "delete", "web", "--app", "doomed"], "wbe\n")
        self.assertEqual(rc, 1, err)
        self.assertIn('Type "web" to confirm', err)
        self.ok(self.api("GET", f"{V}/apps/doomed/components/web"))
        rc, out, err = self.on_terminal(["component", "delete", "web", "--app", "doomed"], "web\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted component web", out)
        self.assertStatus(self.api("GET", f"{V}/apps/doomed/components/web"), 404)
        self.berth("app", "delete", "doomed", "--yes")
        self.berth("team", "delete", "doomed-team", "-y")
        self.assertStatus(self.api("GET", "/api/v1/teams/doomed-team"), 404)

    def test_app_delete_removes_caches_artifacts_logs_and_run_dirs(self):
        app = "leftovers"
        data = self.srv.data_dir
        src = tempfile.mkdtemp(prefix="leftovers-site-", dir=self.srv.tmp)
        with open(os.path.join(src, "index.html"), "w") as f:
            f.write(f"<h1>{src}</h1>\n")  # content no other component has: its own artifact
        self.make_app("default", app)
        self.addCleanup(self.api, "DELETE", f"{V}/apps/{app}")
        self.make_component("default", app, "site", source={"type": "dir", "path": src},
                            build={"command": f"echo built; : {MARK}"})
        v = self.ok(self.api("POST", self.path(app, "site") + "/builds", {}), 201)

        def built():
            got = self.ok(self.api("GET", self.path(app, "site") + "/versions/" + v["name"]))
            return got if got["status"] in ("ready", "failed") else None
        version = wait_for(built, "the build", timeout=120)
        self.assertEqual(version["status"], "ready", version)
        # A sandboxing server keeps caches and artifacts on the team's disk (DATA/teams/<team>).
        team_disk = os.path.ismount(os.path.join(data, "teams", "default"))
        artifact = os.path.join(data, *(["teams", "default"] if team_disk else []), "artifacts",
                                version["artifact"].removeprefix("sha256:"))
        self.job(app, "svc", "echo leftover-line; sleep 600", kind="service")
        wait_for(lambda: [i for i in self.instances(app, "svc") if i["state"] == "running"],
                 "the service's instance")
        scope = os.path.join("default", app)
        dirs = {d: os.path.join(data, d, scope)
                for d in ("cache", "logs/builds", "logs/instances", "run", "instances")}
        if team_disk:
            dirs["cache"] = os.path.join(data, "teams", "default", "cache", app)
        for d, path in dirs.items():
            self.assertTrue(os.path.isdir(path), f"{d}: {path} before the delete")
        self.assertTrue(os.path.isdir(artifact), artifact)

        self.berth("app", "delete", app, "--yes")
        self.assertStatus(self.api("GET", f"{V}/apps/{app}"), 404)

        def gone():
            left = [d for d, path in dirs.items() if os.path.exists(path)]
            left += [artifact] if os.path.exists(artifact) else []
            return None if left else True
        try:
            wait_for(gone, "the app's files to go", timeout=30)
        except AssertionError:
            left = [d for d, path in dirs.items() if os.path.exists(path)]
            self.fail(f"left after `berth app delete`: {left}"
                      f"{' and the artifact' if os.path.exists(artifact) else ''}")

    def on_terminal(self, args: list[str], typed: str) -> tuple[int, str, str]:
        """Runs berth with a pseudo-terminal as stdin, types `typed` once it asks."""
        master, slave = pty.openpty()
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("BERTH_") and k != "BERTH_BIN":
                del env[k]
        env["BERTH_CONFIG"] = self.srv.cli_config
        proc = subprocess.Popen([self.srv.bin, *args], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, text=True,
                                preexec_fn=_die_with_parent)
        _live[proc.pid] = proc
        os.close(slave)
        try:
            # The question goes to stderr; answer once it is there.
            deadline = time.monotonic() + 30
            err = ""
            while "to confirm" not in err and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stderr], [], [], 1)
                if ready:
                    chunk = os.read(proc.stderr.fileno(), 4096).decode()
                    if not chunk:
                        break
                    err += chunk
            os.write(master, typed.encode())
            out, rest = proc.communicate(timeout=30)
            return proc.returncode, out, err + rest
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _live.pop(proc.pid, None)

    def test_doctor_prints_no_colour_codes(self):
        r = self.berth("doctor")
        self.assertNotIn("\x1b", r.stdout)
        self.assertIn("LANGUAGE", r.stdout)
        report = self.ok(self.api("GET", "/api/v1/doctor"))
        mvn = [t for t in report["toolchains"] if t["program"] == "mvn"]
        for t in report["toolchains"]:
            self.assertNotIn("\x1b", t["version"], t)
        if mvn and mvn[0]["found"]:
            # Maven writes "\x1b[1mApache Maven 3.8.7\x1b[m"; the report says it plainly.
            self.assertTrue(mvn[0]["version"].startswith("Apache Maven"), mvn)
            self.assertIn(mvn[0]["version"], r.stdout)

    def test_suggested_commands_name_the_app(self):
        self.make_component("default", APP, "never", replicas=1)
        r = self.berth("wait", "never", "--app", APP, "--ready", "--timeout", "1", expect=1)
        self.assertIn(f"`berth instances never --app {APP}`", r.stderr)
        self.assertIn(f"`berth events never --app {APP}`", r.stderr)
        self.job(APP, "once", "echo hi", kind="job")
        r = self.berth("wait", "once", "--app", APP, "--ready", expect=1)
        self.assertIn(f"`berth runs once --app {APP}`", r.stderr)
        # No hint anywhere names a command without its app.
        for text in (r.stderr,):
            for hint in re.findall(r"`(berth (?:logs|events|instances|runs|wait|cancel) [^`]*)`",
                                   text):
                self.assertIn("--app", hint, text)

    # -- config ------------------------------------------------------------------------------

    def config_lines(self, comp: str) -> list[str]:
        st, body, _ = self.api("GET", self.path(APP, comp) + "/logs?grep=cfg")
        self.assertEqual(st, 200, body)
        return [json.loads(l)["line"] for l in (body if isinstance(body, str) else "").splitlines()
                if l.strip()]

    def wait_operation(self, comp: str) -> dict:
        def done():
            op = self.api("GET", self.path(APP, comp) + "/operation")
            return op.body if op.status == 200 and op.body["status"] != "in_progress" else None
        return wait_for(done, f"the operation of {comp} to end", timeout=60)

    def test_config_set_get_unset_roll_once_per_change(self):
        self.service("cfg", 'echo "cfg A=$A B=$B"; sleep 600')
        wait_for(lambda: "cfg A= B=" in self.config_lines("cfg"), "the first instance")
        self.wait_operation("cfg")
        r = self.berth("config", "set", "A=1", "B=two words", "--component", "cfg", "--app", APP)
        self.assertIn("set A, B on cfg", r.stdout)
        self.assertIn(f"`berth wait cfg --app {APP} --operation`", r.stdout)
        op = self.wait_operation("cfg")
        self.assertEqual((op["type"], op["status"]), ("update", "succeeded"), op)
        # The instance is ready as soon as it runs (no readiness check), maybe before its first
        # line reached the log: wait for the line, then look at every line.
        wait_for(lambda: "cfg A=1 B=two words" in self.config_lines("cfg"), "the new instance's line")
        lines = self.config_lines("cfg")
        # One rolling update: the new instance saw both values at once, never one of them.
        self.assertEqual(lines.count("cfg A=1 B=two words"), 1, lines)
        self.assertFalse([l for l in lines if l.startswith("cfg A=1 B=") and l != "cfg A=1 B=two words"]
                         + [l for l in lines if l.startswith("cfg A= B=two")], lines)
        self.assertEqual(self.berth("config", "get", "B", "--component", "cfg", "--app", APP)
                         .stdout, "two words\n")
        out = self.berth("config", "get", "--component", "cfg", "--app", APP).stdout
        self.assertRegex(out, r"(?m)^A\s+1$")
        self.assertRegex(out, r"(?m)^B\s+two words$")
        env = json.loads(self.berth("config", "get", "--component", "cfg", "--app", APP,
                                    "-o", "json").stdout)
        self.assertEqual(env, {"A": "1", "B": "two words"})
        # unset: one more rolling update; a key that is not set changes nothing.
        self.berth("config", "unset", "B", "--component", "cfg", "--app", APP)
        self.wait_operation("cfg")
        wait_for(lambda: "cfg A=1 B=" in self.config_lines("cfg"), "the instance without B")
        r = self.berth("config", "get", "B", "--component", "cfg", "--app", APP, expect=1)
        self.assertIn("B is not set on cfg", r.stderr)
        r = self.berth("config", "unset", "NOPE", "--component", "cfg", "--app", APP, expect=1)
        self.assertIn("nothing changed", r.stderr)
        comp = self.ok(self.api("GET", self.path(APP, "cfg")))
        self.assertEqual(comp["env"], {"A": "1"})
        self.berth("config", "set", "JUSTKEY", "--component", "cfg", "--app", APP, expect=2)

    # -- releases, ps, open --------------------------------------------------------------------

    def test_releases_ps_and_open(self):
        src = tempfile.mkdtemp(prefix="habits-site-", dir=self.srv.tmp)
        with open(os.path.join(src, "index.html"), "w") as f:
            f.write("<h1>habits</h1>\n")
        self.berth("component", "create", "site", "--app", APP, "--source", src,
                   "--port", "8080/http", timeout=300)
        # A version made without a build (by the API), newest: what runs moves to it.
        self.service("idle", "sleep 600")
        self.make_component("default", APP, "off", desired_state="stopped")
        self.make_component("default", APP, "unbuilt")

        r = self.berth("releases", "site", "--app", APP)
        rows = [l.split() for l in r.stdout.splitlines()]
        self.assertEqual(rows[0], ["VERSION", "STATUS", "CREATED", "WHAT", "BY", "NOW"])
        self.assertEqual(rows[1][:2], ["v1", "ready"])
        self.assertIn(f"dir {src}", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^v1 .* admin\s+running$")
        rel = json.loads(self.berth("releases", "site", "--app", APP, "-o", "json").stdout)
        self.assertEqual([v["name"] for v in rel["items"]], ["v1"])
        self.assertTrue(rel["items"][0]["running"])
        self.assertEqual(rel["items"][0]["build_request"]["requested_by"], "admin")
        r = self.berth("releases", "idle", "--app", APP)
        self.assertIn("start: sleep 600", r.stdout)

        def ps_ready():
            out = self.berth("ps", "--app", APP).stdout
            return out if re.search(r"(?m)^idle .*idle-1\s+v1\s+running\s+yes", out) else None
        out = wait_for(ps_ready, "idle running in berth ps")
        self.assertRegex(out, r"(?m)^site \(service, 1 wanted\)\s+site-1\s+v1\s+running\s+yes")
        self.assertRegex(out, r"(?m)^off \(service, 1 wanted\)\s+-\s+-\s+stopped")
        self.assertRegex(out, r"(?m)^unbuilt \(service, 1 wanted\)\s+-\s+-\s+never built")
        ps = json.loads(self.berth("ps", "--app", APP, "-o", "json").stdout)
        by_name = {c["name"]: c for c in ps["items"]}
        self.assertEqual([i["name"] for i in by_name["site"]["instances"]], ["site-1"])
        self.assertEqual(by_name["off"]["state"], "stopped")

        # open: no display, so it prints; with one (and xdg-open), it also opens.
        comp = self.ok(self.api("GET", self.path(APP, "site")))
        url = comp["addresses"][0]
        self.assertTrue(url.startswith(f"http://site.{APP}.localhost:"), comp["addresses"])
        bin_dir = tempfile.mkdtemp(prefix="habits-bin-", dir=self.srv.tmp)
        opened = os.path.join(bin_dir, "opened")
        fake = os.path.join(bin_dir, "xdg-open")
        with open(fake, "w") as f:
            f.write(f'#!/bin/sh\necho "$@" > {opened}\n')
        os.chmod(fake, 0o755)
        path = bin_dir + ":" + os.environ.get("PATH", "/usr/bin:/bin")
        r = self.berth("open", "site", "--app", APP,
                       env={"DISPLAY": "", "WAYLAND_DISPLAY": "", "PATH": path})
        self.assertEqual(r.stdout, url + "\n")
        time.sleep(0.5)
        self.assertFalse(os.path.exists(opened), "opened without a display")
        r = self.berth("open", "site", "--app", APP, env={"DISPLAY": ":99", "PATH": path})
        self.assertEqual(r.stdout, url + "\n")
        def opened_url():
            if not os.path.exists(opened):
                return None
            with open(opened) as f:
                return f.read().strip() == url or None
        wait_for(opened_url, "xdg-open to get the URL", timeout=10)
        r = self.berth("open", "idle", "--app", APP, expect=1)
        self.assertIn(f"`berth component set idle --app {APP} --port 8080/http`", r.stderr)


class DoctorPathTest(BerthTestCase):
    """`berth doctor` reports the tools builds really run: those on the server's PATH, in its
    order (before: /usr/local/bin:/usr/bin:/bin first, and versions asked on that PATH, so a
    node earlier on the server's PATH was never the one reported)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.bin_dir = tempfile.mkdtemp(prefix="doctor-bin-")
        cls.addClassCleanup(shutil.rmtree, cls.bin_dir, True)
        fake = os.path.join(cls.bin_dir, "node")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho v99.1.2\n")
        os.chmod(fake, 0o755)
        # Unsandboxed builds run on the server's PATH; sandboxed ones on the system's own
        # directories only (docs/security.md), which test_sandbox covers.
        cls.server_kwargs = {"env": {"PATH": cls.bin_dir + ":" + os.environ.get("PATH", "/usr/bin:/bin")},
                             "extra_args": ["--sandbox", "off"]}
        super().setUpClass()

    def test_doctor_reports_the_node_on_the_servers_path(self):
        report = self.ok(self.api("GET", "/api/v1/doctor"))
        node = [t for t in report["toolchains"] if t["program"] == "node"]
        self.assertEqual(len(node), 1, report)
        self.assertEqual((node[0]["path"], node[0]["version"], node[0]["found"]),
                         (os.path.join(self.bin_dir, "node"), "v99.1.2", True), node)


if __name__ == "__main__":
    unittest.main()
