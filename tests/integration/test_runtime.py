"""The local runtime (issue #4) with real processes: shims, apps, checks, adoption.

Sample app: tests/fixtures/runtime/app.py (stdlib HTTP server on $PORT). Versions point at
artifacts the tests write into DATA/artifacts/<hex>/ (what the builder produces).

Every shim and app process a test causes is found through the instances' state files
(DATA/run/**/state.json) and killed by PID — its process group for apps — in the cleanup, even
when the test fails. Polling is bounded; there are no fixed sleeps.
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import threading
import time
import unittest

from harness import BerthServer, BerthTestCase, connect_in, team_networks_dir

V = "/api/v1/teams/default"
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "runtime", "app.py")
WAIT_S = 40.0


# ---------------------------------------------------------------------------------------------
# Process bookkeeping for what the runtime starts: by PID, verified through /proc.

def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def shim_pids(data_dir: str) -> list[int]:
    """The shims of a server's instances (one per instance). A sandboxed instance's init is a
    copy of its shim, with the same command line, whose parent is the shim: not counted."""
    data = os.path.realpath(data_dir)

    def is_shim(pid: int) -> bool:
        args = _cmdline(pid)
        return args[1:2] == ["shim"] and len(args) > 3 and args[3].startswith(data)

    def parent(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return 0
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and is_shim(int(p)) and not is_shim(parent(int(p)))]


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")


def runtime_pids(data_dir: str) -> list[tuple[int, int]]:
    """(shim pid, app pid) of every instance record under DATA/run."""
    out = []
    run = os.path.join(data_dir, "run")
    for root, _dirs, files in os.walk(run):
        if "state.json" in files:
            try:
                with open(os.path.join(root, "state.json")) as f:
                    st = json.load(f)
                out.append((int(st.get("shim_pid", 0)), int(st.get("app_pid", 0))))
            except (OSError, ValueError):
                pass
    return out


class Reaper:
    """Remembers every shim/app PID seen and kills the survivors by PID at the end."""

    def __init__(self, data_dir: str):
        self.data_dir = os.path.realpath(data_dir)
        self.pids: set[tuple[int, int]] = set()

    def scan(self) -> None:
        self.pids.update(runtime_pids(self.data_dir))

    def _is_ours(self, pid: int, shim: bool) -> bool:
        args = _cmdline(pid)
        if shim:
            return len(args) >= 4 and args[1] == "shim" and args[3].startswith(self.data_dir)
        return any(a.endswith("app.py") for a in args)

    def kill_all(self) -> None:
        self.scan()
        for shim, app in self.pids:
            if app > 0 and _alive(app) and self._is_ours(app, shim=False):
                try:
                    os.killpg(app, signal.SIGKILL)  # the app leads its own process group
                except OSError:
                    pass
            if shim > 0 and _alive(shim) and self._is_ours(shim, shim=True):
                try:
                    os.kill(shim, signal.SIGKILL)
                except OSError:
                    pass


def http_get(target, path: str = "/", timeout: float = 3.0) -> tuple[int, str]:
    """GET from an instance (a dict as the API shows it: its port, in its team's network) or
    from a port on this host's loopback."""
    port, netns = (target["port"], target.get("netns")) if isinstance(target, dict) else (target, None)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.sock = connect_in(netns, "127.0.0.1", port, timeout)
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def in_team(srv, port: int, team: str = "default") -> dict:
    """Where a port a CLI printed lives: in the team's network when the server sandboxes."""
    netns = os.path.join(team_networks_dir(srv.data_dir), team)
    return {"port": port, "netns": netns if os.path.exists(netns) else None}


def wait_for(pred, what: str, timeout: float = WAIT_S, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


class RuntimeCase(BerthTestCase):
    """Helpers shared by the runtime test classes."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        # Runs before the server's temp dir is removed (cleanups run last-in, first-out).
        cls.addClassCleanup(cls.reaper.kill_all)

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)

    def make_artifact(self, label: str, start_delay: float = 0.0) -> str:
        tree = os.path.join(self.srv.tmp, "src-" + label)
        os.makedirs(tree, exist_ok=True)
        shutil.copy(FIXTURE, os.path.join(tree, "app.py"))
        with open(os.path.join(tree, "label.txt"), "w") as f:
            f.write(label + "\n")
        if start_delay:
            with open(os.path.join(tree, "start_delay.txt"), "w") as f:
                f.write(str(start_delay))
        digest = hashlib.sha256((label + str(start_delay) + self.id()).encode()).hexdigest()
        dest = os.path.join(self.srv.data_dir, "artifacts", digest)
        if not os.path.isdir(dest):
            shutil.copytree(tree, dest)
        return "sha256:" + digest

    def comp_path(self, app: str, comp: str = "web") -> str:
        return f"{V}/apps/{app}/components/{comp}"

    def add_version(self, app: str, label: str, comp: str = "web", start_delay: float = 0.0):
        art = self.make_artifact(label, start_delay)
        return self.ok(self.api("POST", self.comp_path(app, comp) + "/versions",
                                {"artifact": art, "start_command": "exec python3 app.py",
                                 "status": "ready"}), 201, msg="add version")

    def setup_app(self, app: str, replicas: int = 1, label: str = "v1", **fields) -> None:
        self.make_app("default", app)
        self.addCleanup(self.api, "DELETE", f"{V}/apps/{app}")
        body = {"ports": [{"port": 8080}], "replicas": replicas,
                "health": {"readiness": {"type": "http", "path": "/healthz", "interval_s": 1,
                                         "timeout_s": 1, "failure_threshold": 1}}}
        body.update(fields)
        self.make_component("default", app, "web", **body)
        self.add_version(app, label)

    def instances(self, app: str, comp: str = "web") -> list[dict]:
        items = self.list_all(self.comp_path(app, comp) + "/instances")
        self.reaper.scan()
        return items

    def events(self, app: str, comp: str = "web") -> list[dict]:
        return self.list_all(self.comp_path(app, comp) + "/events")

    def wait_ready(self, app: str, n: int, version: str | None = None) -> list[dict]:
        def ready():
            items = self.instances(app)
            good = [i for i in items if i["ready"] and i["state"] == "running"
                    and not i["outdated"] and (version is None or i["version"] == version)]
            return items if len(items) == n and len(good) == n else None
        return wait_for(ready, f"{n} ready instance(s) of {app}"
                        f"{' at ' + version if version else ''}")

    def patch(self, app: str, body: dict) -> dict:
        return self.ok(self.api("PATCH", self.comp_path(app), body), msg=f"PATCH {body}")

    def cli_login(self) -> None:
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin",
                         "--password-stdin", input=self.srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)


class RuntimeTest(RuntimeCase):

    def test_scale_one_three_zero(self):
        self.setup_app("scale", replicas=1)
        [one] = self.wait_ready("scale", 1)
        self.assertEqual(http_get(one)[1], "hello from web-1 v1")
        env = json.loads(http_get(one, "/env")[1])
        self.assertEqual(env["PORT"], str(one["port"]))
        self.assertEqual(env["PORT_8080"], str(one["port"]))
        for k, v in {"BERTH_TEAM": "default", "BERTH_APP": "scale", "BERTH_COMPONENT": "web",
                     "BERTH_INSTANCE": "web-1", "BERTH_VERSION": "v1"}.items():
            self.assertEqual(env.get(k), v, k)

        self.patch("scale", {"replicas": 3})
        three = self.wait_ready("scale", 3)
        ports = {i["port"] for i in three}
        self.assertEqual(len(ports), 3, three)
        where = [{"port": i["port"], "netns": i.get("netns")} for i in three]
        self.assertEqual(sorted(i["name"] for i in three), ["web-1", "web-2", "web-3"])
        for i in three:
            self.assertEqual(http_get(i), (200, f"hello from {i['name']} v1"))
        self.assertEqual(next(i for i in three if i["name"] == "web-1")["pid"], one["pid"],
                         "scaling up must not restart the running instance")
        pids = [(i["shim_pid"], i["pid"]) for i in three]

        self.patch("scale", {"replicas": 0})
        wait_for(lambda: self.instances("scale") == [], "all instances gone")
        wait_for(lambda: not any(_alive(p) for pair in pids for p in pair), "processes gone")
        for w in where:
            with self.assertRaises(OSError):
                http_get(w, timeout=1)
        base = os.path.join(self.srv.data_dir, "instances", "default", "scale", "web")
        self.assertEqual(os.listdir(base) if os.path.isdir(base) else [], [],
                         "working dirs are removed with the instances")

    def test_kill9_of_an_instance_restarts_it(self):
        self.setup_app("heal", replicas=1)
        [inst] = self.wait_ready("heal", 1)
        os.kill(inst["pid"], signal.SIGKILL)
        def restarted():
            items = self.instances("heal")
            return items if (len(items) == 1 and items[0]["restarts"] >= 1 and items[0]["ready"]
                             and items[0]["pid"] != inst["pid"]) else None
        [again] = wait_for(restarted, "the instance restarted")
        self.assertEqual(again["name"], "web-1")
        self.assertEqual(again["last_exit"]["signal"], 9)
        self.assertEqual(http_get(again)[0], 200)
        reasons = [e["reason"] for e in self.events("heal")]
        self.assertIn("Crashed", reasons)

    def test_crash_loop_backs_off_and_is_reported(self):
        self.setup_app("crashy", replicas=1, env={"CRASH": "3"})
        t0 = time.monotonic()
        def crash_loop_event():
            for e in self.events("crashy"):
                if e["reason"] == "CrashLoop":
                    return e
            return None
        e = wait_for(crash_loop_event, "a CrashLoop event")
        elapsed = time.monotonic() - t0
        self.assertEqual(e["type"], "warning")
        self.assertIn("instance web-1 exited with code 3", e["message"])
        self.assertIn("times in 60 s", e["message"])
        self.assertIn("fatal: cannot connect to database", e["message"])
        # Three crashes with back-off 1 s then 2 s between them: at least ~3 s, not a tight loop.
        self.assertGreaterEqual(elapsed, 2.5, "restarts must back off")
        [inst] = self.instances("crashy")
        self.assertLessEqual(inst["restarts"], 4, inst)
        self.assertEqual(inst["last_exit"]["code"], 3)
        self.assertFalse(inst["ready"])
        self.cli_login()
        r = self.srv.cli("events", "web", "--app", "crashy")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CrashLoop", r.stdout)
        r = self.srv.cli("logs", "web", "--app", "crashy", "--grep", "fatal")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fatal: cannot connect to database", r.stdout)
        self.assertNotIn("starting up", r.stdout)

    def test_liveness_failure_restarts_with_an_event(self):
        self.setup_app("live", replicas=1, health={
            "liveness": {"type": "http", "path": "/healthz", "interval_s": 1, "timeout_s": 1,
                         "failure_threshold": 2}})
        [inst] = self.wait_ready("live", 1)
        self.assertEqual(http_get(inst, "/break"), (200, "broken now"))
        def liveness_event():
            return next((e for e in self.events("live") if e["reason"] == "LivenessFailed"), None)
        e = wait_for(liveness_event, "a LivenessFailed event")
        self.assertIn("instance web-1 failed its liveness check (http GET /healthz", e["message"])
        self.assertIn("HTTP 500: broken", e["message"])
        def restarted():
            items = self.instances("live")
            return items if (len(items) == 1 and items[0]["ready"] and items[0]["restarts"] == 1
                             and items[0]["pid"] != inst["pid"]) else None
        [again] = wait_for(restarted, "the instance restarted after the liveness failure")
        self.assertEqual(http_get(again, "/healthz"), (200, "ok"))

    def test_rolling_update_without_failed_requests_then_rollback(self):
        self.setup_app("roll", replicas=2)
        self.wait_ready("roll", 2, "v1")
        failures: list[str] = []
        served: dict[str, int] = {}
        min_ready = [99]
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    items = self.instances("roll")
                except Exception as ex:  # noqa: BLE001 - reported below
                    failures.append(f"listing instances: {ex}")
                    return
                ready = [i for i in items if i["ready"]]
                min_ready[0] = min(min_ready[0], len(ready))
                for i in ready:
                    try:
                        st, body = http_get(i, timeout=2)
                        if st != 200:
                            failures.append(f"{i['name']}: HTTP {st}")
                        served[body.split()[-1]] = served.get(body.split()[-1], 0) + 1
                    except OSError as ex:
                        # Only a failure if the instance is still listed as ready now.
                        now = {j["name"]: j for j in self.instances("roll")}
                        j = now.get(i["name"])
                        if j and j["ready"] and j["pid"] == i["pid"]:
                            failures.append(f"{i['name']} (ready) refused: {ex}")

        th = threading.Thread(target=client, daemon=True)
        th.start()
        try:
            self.add_version("roll", "v2", start_delay=1.0)  # "" = newest ready: rolls to v2
            self.wait_ready("roll", 2, "v2")
            self.cli_login()
            r = self.srv.cli("rollback", "web", "v1", "--app", "roll")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = self.srv.cli("wait", "web", "--app", "roll", "--ready", "--timeout", "60")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            items = self.wait_ready("roll", 2, "v1")
        finally:
            stop.set()
            th.join(timeout=30)
        self.assertEqual(failures, [])
        self.assertGreaterEqual(min_ready[0], 2, "readiness must never drop below the replicas")
        self.assertGreater(served.get("v2", 0), 0, served)
        for i in items:
            self.assertEqual(http_get(i)[1].split()[-1], "v1")
        r = self.srv.cli("instances", "web", "--app", "roll")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("web-", r.stdout)

    def test_restart_route_replaces_instances_one_at_a_time(self):
        self.setup_app("rs", replicas=1)
        [before] = self.wait_ready("rs", 1)
        self.ok(self.api("POST", self.comp_path("rs") + "/restart"), 202)
        def replaced():
            items = self.instances("rs")
            return items if (len(items) == 1 and items[0]["ready"] and not items[0]["outdated"]
                             and items[0]["pid"] != before["pid"]) else None
        wait_for(replaced, "a restarted instance")
        st, body, _ = self.api("POST", f"{V}/apps/rs/components/nope/restart")
        self.assertEqual(st, 404, body)

    def test_logs_route_filters_and_follows(self):
        self.setup_app("logs", replicas=1)
        [inst] = self.wait_ready("logs", 1)
        http_get(inst, "/marker-one")
        path = self.comp_path("logs") + "/logs"
        def lines(query):
            st, body, _ = self.api("GET", path + query)
            self.assertEqual(st, 200, body)
            text = body if isinstance(body, str) else json.dumps(body)
            return [json.loads(l) for l in text.splitlines() if l.strip()]
        got = wait_for(lambda: [l for l in lines("?grep=marker-one") if l["stream"] == "out"],
                       "the request in the log")
        self.assertEqual(got[0]["instance"], "web-1")
        self.assertEqual(lines("?grep=marker-one&since=1d")[0]["line"], "GET /marker-one")
        self.assertEqual(lines("?grep=marker-one&instance=web-9"), [])
        st, body, _ = self.api("GET", path + "?since=yesterday")
        self.assertEqual((st, body["code"], body["field"]), (400, "invalid_argument", "since"))
        # Follow: a streamed line appears after it is written.
        import urllib.parse
        u = urllib.parse.urlsplit(self.srv.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
        conn.request("GET", path + "?follow=1&tail=0&grep=marker-two",
                     headers={"Authorization": f"Bearer {self.admin}"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        http_get(inst, "/marker-two")
        # Heartbeats keep an idle stream open (every 15 s); on a loaded machine one may come
        # before the line.
        line = json.loads(resp.readline())
        while line.get("type") == "heartbeat":
            line = json.loads(resp.readline())
        self.assertEqual(line.get("line"), "GET /marker-two", line)
        conn.close()

    def test_stop_and_start(self):
        self.setup_app("ss", replicas=2)
        items = self.wait_ready("ss", 2)
        self.cli_login()
        r = self.srv.cli("stop", "web", "--app", "ss")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: self.instances("ss") == [], "stopped")
        wait_for(lambda: not any(_alive(i["pid"]) for i in items), "apps gone")
        r = self.srv.cli("start", "web", "--app", "ss")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("wait", "web", "--app", "ss", "--ready", "--timeout", "60")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_ready("ss", 2)
        r = self.srv.cli("scale", "web", "1", "--app", "ss")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_ready("ss", 1)

    @unittest.skipUnless(os.access("/sys/fs/cgroup/memory", os.W_OK)
                         or os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                         "no writable memory cgroup on this machine")
    def test_oom_kill_under_a_memory_limit_is_an_event(self):
        self.make_app("default", "oom")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/oom")
        self.make_component("default", "oom", "web", resources={"memory_mb": 32})
        # A version without an artifact: the command runs in an empty working dir.
        self.ok(self.api("POST", self.comp_path("oom") + "/versions", {
            "artifact": "", "status": "ready",
            "start_command": "exec python3 -c 'b = bytearray(256 << 20); import time; "
                             "time.sleep(60)'"}), 201)
        def oom_event():
            return next((e for e in self.events("oom") if e["reason"] == "OOMKilled"), None)
        e = wait_for(oom_event, "an OOMKilled event")
        self.assertIn("instance web-1 was killed for exceeding its memory limit of 32 MiB",
                      e["message"])
        inst = wait_for(lambda: [i for i in self.instances("oom")
                                 if i["last_exit"] and i["last_exit"]["oom"]], "oom in last_exit")
        self.assertEqual(inst[0]["last_exit"]["signal"], 9)


class ServerRestartTest(RuntimeCase):
    """Instances outlive `berth server`: kill -9, restart, adoption."""

    def test_kill9_of_the_server_keeps_instances_and_adopts_them(self):
        self.setup_app("keep", replicas=2)
        before = {i["name"]: i for i in self.wait_ready("keep", 2)}
        # A stale record: a shim that no longer exists (as after a reboot).
        stale = os.path.join(self.srv.data_dir, "run", "default", "keep", "web", "web-7")
        os.makedirs(stale)
        with open(os.path.join(stale, "spec.json"), "w") as f:
            json.dump({"team": "default", "app": "keep", "component": "web", "instance": "web-7",
                       "command": "true", "workdir": "/nonexistent", "log_path": "/dev/null"}, f)
        with open(os.path.join(stale, "state.json"), "w") as f:
            json.dump({"state": "running", "shim_pid": 999999, "app_pid": 999998,
                       "app_start": 1}, f)

        self.srv.kill9()
        for i in before.values():
            self.assertEqual(http_get(i)[0], 200, "instances serve without the server")
            self.assertTrue(_alive(i["shim_pid"]) and _alive(i["pid"]))

        self.srv.start()
        self.admin = self.srv.login()
        type(self).admin = self.admin
        after = {i["name"]: i for i in self.wait_ready("keep", 2)}
        self.assertEqual(sorted(after), ["web-1", "web-2"])
        for name, i in before.items():
            self.assertEqual(after[name]["pid"], i["pid"], "the same process is adopted")
            self.assertEqual(after[name]["shim_pid"], i["shim_pid"])
            self.assertEqual(after[name]["port"], i["port"])
        self.assertFalse(os.path.exists(stale), "stale records are cleaned up")
        shims = shim_pids(self.srv.data_dir)
        self.assertEqual(len(shims), 2, "no duplicate instances after adoption")
        # The logs continue in the same files.
        http_get(after["web-1"], "/after-restart")
        def logged():
            st, body, _ = self.api("GET", self.comp_path("keep") + "/logs?grep=after-restart")
            return st == 200 and "GET /after-restart" in str(body)
        wait_for(logged, "the request after the restart in the log")

        # A clean stop of the server leaves the instances running too.
        self.srv.stop()
        for i in after.values():
            self.assertEqual(http_get(i)[0], 200)
        self.srv.start()
        type(self).admin = self.admin = self.srv.login()
        again = {i["name"]: i for i in self.wait_ready("keep", 2)}
        self.assertEqual({n: i["pid"] for n, i in again.items()},
                         {n: i["pid"] for n, i in after.items()})

        # Deleting the component stops its instances and removes their dirs.
        self.ok(self.api("DELETE", self.comp_path("keep")))
        wait_for(lambda: not any(_alive(i["pid"]) or _alive(i["shim_pid"])
                                 for i in again.values()), "deleted component's processes gone")
        wait_for(lambda: not os.path.exists(
            os.path.join(self.srv.data_dir, "instances", "default", "keep", "web", "web-1")),
            "working dirs removed")


if __name__ == "__main__":
    unittest.main()
