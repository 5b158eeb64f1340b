"""The sandbox (docs/security.md): a hostile tenant's build step and app try to read the store,
the keys and the gateway's token, another team's files and the server's environment, to write
outside their dirs, to signal another team's process, to connect to another team's instance and
to the platform's listeners (directly and through the egress proxy), to fork-bomb and to fill
their disk. Every attempt fails, and the platform and the other team keep serving.

Needs root (the sandbox does); the suite runs as root."""

import json
import os
import time
import unittest

from harness import BerthTestCase, http_request, team_networks_dir
from test_runtime import Reaper, http_get, wait_for

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "apps")
V = "/api/v1/teams"
PIDS, TMP_MB, APP_MB, DISK_MB = 200, 16, 32, 96


@unittest.skipUnless(os.geteuid() == 0, "the sandbox needs root")
class HostileTenantTest(BerthTestCase):
    server_kwargs = {"gateway": True, "extra_args": [
        "--sandbox", "on", "--sandbox-pids", str(PIDS), "--sandbox-tmp-mb", str(TMP_MB),
        "--sandbox-app-mb", str(APP_MB), "--sandbox-memory-mb", "512", "--build-pids", str(PIDS),
        "--team-disk-mb", str(DISK_MB)]}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)

    def comp(self, team: str, app: str, name: str) -> str:
        return f"{V}/{team}/apps/{app}/components/{name}"

    def wait_version(self, path: str) -> tuple[dict, str]:
        version = self.ok(self.api("POST", path + "/builds", {}), 201)["name"]

        def done():
            v = self.ok(self.api("GET", f"{path}/versions/{version}"))
            return v if v["status"] in ("ready", "failed", "cancelled") else None
        v = wait_for(done, f"{path} {version} built", timeout=240, interval=0.2)
        log = self.ok(self.api("GET", f"{path}/versions/{version}/log"))["log"]
        return v, log

    def wait_ready(self, path: str) -> dict:
        def ready():
            items = self.list_all(path + "/instances")
            self.reaper.scan()
            good = [i for i in items if i["ready"] and i["state"] == "running"]
            return good[0] if good else None
        return wait_for(ready, f"a ready instance of {path}", timeout=120)

    def assertBlocked(self, report: dict, where: str) -> None:
        opened = {k: v for k, v in report.items()
                  if isinstance(v, str) and v.startswith("OPEN") and k != "connect_own_team"}
        self.assertEqual(opened, {}, f"{where}: attempts that got through:\n"
                                     + json.dumps(report, indent=1))

    def test_a_hostile_tenant_reaches_nothing_and_the_platform_keeps_serving(self):
        # Team "other": a victim app whose volume holds a secret.
        self.make_team("other")
        self.make_app("other", "bank")
        victim = self.comp("other", "bank", "vault")
        self.make_component("other", "bank", "vault", ports=[{"port": 8080, "protocol": "http", "outer": True}],
                            volumes=[{"name": "data", "path": "data"}],
                            source={"type": "dir", "path": os.path.join(FIXTURES, "python-hello")})
        self.wait_version(victim)
        vault = self.wait_ready(victim)
        self.assertTrue(vault.get("netns"), vault)
        secret = os.path.join(self.srv.data_dir, "teams", "other", "volumes", "bank", "vault",
                              "data", "secret.txt")
        wait_for(lambda: os.path.isdir(os.path.dirname(secret)), "the victim's volume")
        with open(secret, "w") as f:
            f.write("the other team's secret\n")
        gw = self.srv.gateway_info()
        gw_port = int(gw["http"].rsplit(":", 1)[1])

        def through_gateway(host: str) -> tuple[int, str]:
            st, body, _ = http_request(f"http://127.0.0.1:{gw_port}", "GET", "/",
                                       headers={"Host": host}, timeout=5)
            return st, body if isinstance(body, str) else json.dumps(body)

        # (the gateway learns of the instance a moment after it is ready)
        wait_for(lambda: through_gateway("vault.bank.other.localhost")[0] == 200,
                 "the victim answering through the gateway")

        # Team "default": a neighbour of its own team, and the hostile tenant, its build step
        # probing too.
        self.make_app("default", "evil")
        friend = self.comp("default", "evil", "friend")
        self.make_component("default", "evil", "friend", ports=[{"port": 8080, "protocol": "http"}],
                            source={"type": "dir", "path": os.path.join(FIXTURES, "python-hello")})
        self.wait_version(friend)
        neighbour = self.wait_ready(friend)
        hostile = self.comp("default", "evil", "probe")
        env = {"PROBE_DATA": os.path.realpath(self.srv.data_dir),
               "PROBE_SERVER_PID": str(self.srv.pid),
               "PROBE_OTHER_PORT": str(vault["port"]), "PROBE_OTHER_PID": str(vault["pid"]),
               "PROBE_OTHER_FILE": secret, "PROBE_OWN_PORT": str(neighbour["port"]),
               "PROBE_API_PORT": self.srv.url.rsplit(":", 1)[1],
               "PROBE_ADMIN_PORT": gw["admin"].rsplit(":", 1)[1]}
        self.make_component("default", "evil", "probe", env=env,
                            ports=[{"port": 8080, "protocol": "http", "outer": True}],
                            volumes=[{"name": "data", "path": "data"}],
                            source={"type": "dir", "path": os.path.join(FIXTURES, "hostile")},
                            # (a build does not get the component's env: the command names it)
                            build={"command": " ".join(f"{k}={v}" for k, v in env.items())
                                   + " python3 probe.py --once",
                                   "start_command": "exec python3 probe.py"})
        v, log = self.wait_version(hostile)
        self.assertEqual(v["status"], "ready", log)
        lines = [l for l in log.splitlines() if l.startswith("PROBE ")]
        self.assertTrue(lines, log)
        build = json.loads(lines[-1][len("PROBE "):])
        self.assertBlocked(build, "the build step")

        probe = self.wait_ready(hostile)
        self.assertEqual(probe["netns"], os.path.join(team_networks_dir(self.srv.data_dir), "default"))
        status, text = http_get(probe, "/probe", timeout=120)
        self.assertEqual(status, 200, text)
        app = json.loads(text)
        self.assertBlocked(app, "the app")

        for report, where in ((build, "build"), (app, "app")):
            self.assertGreaterEqual(report["uid"], 400000000, where)  # the team's own user
            self.assertEqual(report["uid"], report["gid"], where)
            self.assertFalse(report["server_secret_in_env"], where)
            # Contained, not merely failed: the limits were what stopped them.
            self.assertIn("refused after", report["fork_bomb"], where)
        self.assertEqual(build["uid"], app["uid"])
        self.assertEqual(app["hostname"], probe["name"])
        self.assertLessEqual(int(app["fork_bomb"].split("refused after ")[1].split()[0]), PIDS)
        self.assertLessEqual(int(app["fill_tmp"].split("refused after ")[1].split()[0]), TMP_MB)
        self.assertLessEqual(int(app["fill_app"].split("refused after ")[1].split()[0]), APP_MB)
        # Disk: a build's tree and an app's volume are on the team's own disk, and fill only it.
        self.assertLessEqual(int(build["fill_app"].split("refused after ")[1].split()[0]), DISK_MB)
        self.assertLessEqual(int(app["fill_volume"].split("refused after ")[1].split()[0]), DISK_MB)
        self.assertIn("No space left on device", app["fill_volume"])
        self.assertIn("403", app["tunnel_to_api"])
        # Its own team's instances are in reach (dependencies keep working), from the app.
        self.assertTrue(app["connect_own_team"].startswith("OPEN"), app["connect_own_team"])

        # The platform and the other team kept serving, and nothing was written on the host.
        self.ok(self.api("GET", f"{V}/default/apps"))
        self.assertEqual(through_gateway("vault.bank.other.localhost")[0], 200)
        wait_for(lambda: through_gateway("probe.evil.localhost")[0] == 200,
                 "the hostile app answering through the gateway")
        with open(secret) as f:
            self.assertEqual(f.read(), "the other team's secret\n")
        for path in ("/usr/berth-hostile", "/etc/berth-hostile", "/berth-hostile"):
            self.assertFalse(os.path.exists(path), path)
        # The team's use is measured by its own filesystem; the other team's disk is untouched.
        team = self.ok(self.api("GET", f"{V}/default"))
        self.assertEqual(team["quota"]["disk_mb"], 0)
        self.assertLessEqual(team["disk"]["size_bytes"], DISK_MB << 20)
        self.assertGreater(team["disk"]["used_bytes"], 0)
        # A larger quota grows the team's disk: online where the kernel allows it, else once no
        # sandbox holds it (here: the team's instances stopped, then the next build).
        self.ok(self.api("PATCH", f"{V}/default", {"quota": {"disk_mb": 2 * DISK_MB}}))
        for comp in (hostile, friend):
            self.ok(self.api("PATCH", comp, {"desired_state": "stopped"}))
        for comp in (hostile, friend):
            wait_for(lambda: not self.list_all(comp + "/instances"), f"{comp} stopped")
        v, log = self.wait_version(friend)
        self.assertEqual(v["status"], "ready", log)
        wait_for(lambda: self.ok(self.api("GET", f"{V}/default"))["disk"]["size_bytes"] > DISK_MB << 20,
                 "the team's disk grown", timeout=60)
        # The two teams run as different users.
        victim_uid = os.stat(f"/proc/{vault['pid']}").st_uid
        self.assertNotEqual(victim_uid, app["uid"])
        self.assertGreaterEqual(victim_uid, 400000000)


@unittest.skipUnless(os.geteuid() == 0, "the sandbox needs root")
class NoSandboxTest(BerthTestCase):
    """A machine that cannot sandbox: builds are refused with the reason, and doctor says it."""
    server_kwargs = {"env": {"BERTH_SANDBOX_UNAVAILABLE_FOR_TEST": "no user namespaces here"}}

    def test_builds_are_refused_with_the_reason_and_doctor_says_so(self):
        d = self.ok(self.api("GET", "/api/v1/doctor"))
        self.assertFalse(d["sandbox"]["enabled"])
        self.assertIn("no user namespaces here", d["sandbox"]["problem"])
        r = self.srv.cli("doctor", "--server", self.srv.url, env={"BERTH_TOKEN": self.admin})
        self.assertIn("sandbox: NOT AVAILABLE: builds are refused", r.stdout, r.stdout + r.stderr)
        self.make_app("default", "shop")
        path = f"{V}/default/apps/shop/components/web"
        self.make_component("default", "shop", "web",
                            source={"type": "dir", "path": os.path.join(FIXTURES, "python-hello")})
        v = self.ok(self.api("POST", path + "/builds", {}), 201)["name"]
        done = wait_for(lambda: (lambda x: x if x["status"] in ("ready", "failed") else None)(
            self.ok(self.api("GET", f"{path}/versions/{v}"))), "the build ends")
        self.assertEqual(done["status"], "failed")
        self.assertIn("builds run only in a sandbox", done["message"])
        self.assertIn("--sandbox off", done["message"])


@unittest.skipUnless(os.geteuid() == 0, "the sandbox needs root")
class SandboxOffTest(BerthTestCase):
    """--sandbox off: the operator's explicit opt-out; builds and instances run as before."""
    server_kwargs = {"extra_args": ["--sandbox", "off"]}

    def test_builds_and_instances_run_unsandboxed(self):
        d = self.ok(self.api("GET", "/api/v1/doctor"))
        self.assertEqual((d["sandbox"]["mode"], d["sandbox"]["enabled"]), ("off", False))
        reaper = Reaper(self.srv.data_dir)
        self.addCleanup(reaper.kill_all)
        self.make_app("default", "shop")
        path = f"{V}/default/apps/shop/components/web"
        self.make_component("default", "shop", "web", ports=[{"port": 8080, "protocol": "http"}],
                            source={"type": "dir", "path": os.path.join(FIXTURES, "python-hello")})
        v = self.ok(self.api("POST", path + "/builds", {}), 201)["name"]
        wait_for(lambda: self.ok(self.api("GET", f"{path}/versions/{v}"))["status"] == "ready",
                 "the build", timeout=240)

        def ready():
            items = self.list_all(path + "/instances")
            reaper.scan()
            return [i for i in items if i["ready"]]
        [inst] = wait_for(ready, "a ready instance", timeout=120)
        self.assertNotIn("netns", inst)  # the host's network
        self.assertEqual(http_get(inst)[0], 200)
        self.assertEqual(os.stat(f"/proc/{inst['pid']}").st_uid, os.geteuid())


if __name__ == "__main__":
    unittest.main()
