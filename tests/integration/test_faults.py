"""Faults (issue 24): a server killed in the middle of a build, a gateway that keeps being
killed. Real `berth server` processes on loopback; every process started here is ended by its
PID.
"""

from __future__ import annotations

import os
import signal
import time
import unittest

from harness import BerthServer, BerthTestCase, free_port

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "apps"))
TEAM = "default"
O_CLOEXEC = 0o2000000


def fd_flags(pid: int) -> dict[int, tuple[int, str]]:
    """fd → (open flags, what it is) for every descriptor above 2 of `pid`."""
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                flags = next(int(l.split()[1], 8) for l in f if l.startswith("flags:"))
        except (OSError, StopIteration):
            continue  # closed meanwhile
        out[fd] = (flags, target)
    return out


def processes_with_env(entry: bytes, root: str) -> list[int]:
    """PIDs whose environment holds `entry` and whose working directory is under `root`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
            cwd = os.readlink(f"/proc/{name}/cwd")
        except OSError:
            continue
        if entry in env and cwd.startswith(root):
            found.append(int(name))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class FixedPortServer(BerthServer):
    """A server whose API listens on one fixed port across restarts (port 0 would hide a port
    that is still held)."""

    def __init__(self, api_port: int, **kw):
        self.api_port = api_port
        super().__init__(**kw)

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--api") + 1] = f"127.0.0.1:{self.api_port}"
        return cmd


class KilledDuringABuildTest(BerthTestCase):
    """Children never inherit the platform's sockets or files, and a restarted server ends the
    build steps the killed one left running."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = FixedPortServer(free_port(), gateway=True)
        cls.addClassCleanup(cls.srv.close)
        cls.admin = cls.srv.login()
        cls.srv.api("POST", f"/api/v1/teams/{TEAM}/apps", {"name": "faults"}, token=cls.admin)

    def comp(self, name: str) -> str:
        return f"/api/v1/teams/{TEAM}/apps/faults/components/{name}"

    def start_long_build(self, name: str) -> tuple[dict, list[int]]:
        self.make_component(TEAM, "faults", name,
                            source={"type": "dir", "path": os.path.join(FIXTURES, "procfile-app")},
                            build={"command": "echo started; sleep 300"})
        v = self.ok(self.api("POST", self.comp(name) + "/builds", {}), 201)
        deadline = time.monotonic() + 60
        steps: list[int] = []
        while time.monotonic() < deadline:
            steps = [p for p in processes_with_env(b"BERTH_BUILD=1",
                                                   os.path.realpath(self.srv.data_dir))
                     if alive(p)]
            with_sleep = []
            for p in steps:
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        if b"sleep" in f.read():
                            with_sleep.append(p)
                except OSError:
                    pass
            if with_sleep:
                return v, steps
            time.sleep(0.1)
        self.fail("the build step `sleep 300` did not start")

    def test_a_step_gets_only_stdin_stdout_stderr(self):
        v, steps = self.start_long_build("fds")
        for pid in steps:
            fds = fd_flags(pid)
            self.assertEqual(fds, {}, f"build step {pid} inherited descriptors: {fds}")
        # And everything the server and its gateway hold is close-on-exec (listening and
        # accepted sockets, the store, logs), with a client connection open meanwhile.
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        c.request("GET", "/healthz")
        c.getresponse().read()
        gw = int(self.srv.gateway_info()["pid"])
        for who, pid in (("server", self.srv.pid), ("gateway", gw)):
            leaky = {fd: t for fd, (fl, t) in fd_flags(pid).items() if not fl & O_CLOEXEC}
            self.assertEqual(leaky, {}, f"descriptors of the {who} without O_CLOEXEC")
        c.close()
        self.ok(self.api("POST", self.comp("fds") + f"/versions/{v['name']}/cancel"))

    def test_restart_at_once_after_kill9_during_a_build_step(self):
        v, steps = self.start_long_build("slow")
        self.srv.kill9()
        # At once, on the same port: before, the step held the API's listening socket and the
        # new server died with "Address already in use" (until the step ended).
        self.srv.start()
        type(self).admin = self.srv.login()
        self.ok(self.api("GET", "/api/v1/teams"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(p) for p in steps):
            time.sleep(0.1)
        self.assertEqual([p for p in steps if alive(p)], [],
                         "the steps of the killed server still run")
        self.assertIn("killed the build steps a previous server left running",
                      self.srv.stderr_text())
        # The build resumes (a new step) and can be cancelled as usual.
        self.ok(self.api("POST", self.comp("slow") + f"/versions/{v['name']}/cancel"))



class GatewayRestartTest(BerthTestCase):
    """A supervised gateway killed again and again is back at once each time it had served for
    a while (issue 24: five kills 3 s apart pushed the restart delay to 16.8 s)."""

    server_kwargs = {"gateway": True}

    def gateway_pids(self) -> list[int]:
        state = os.path.realpath(os.path.join(self.srv.data_dir, "gateway"))
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    args = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if len(args) > 3 and args[1] == "gateway" and state in args and alive(int(name)):
                found.append(int(name))
        return found

    def test_killed_gateway_is_back_within_a_second(self):
        info = self.srv.gateway_info()
        relaunched, listening = [], []
        for _ in range(4):
            pid = int(info["pid"])
            time.sleep(1.5)  # it served for more than its first second
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            deadline = killed_at + 30
            while time.monotonic() < deadline and not [p for p in self.gateway_pids() if p != pid]:
                time.sleep(0.01)
            relaunched.append(round(time.monotonic() - killed_at, 2))
            info = self.srv.gateway_info(timeout=30, not_pid=pid)
            listening.append(round(time.monotonic() - killed_at, 2))
        print(f"\n[gateway restart] relaunched after {relaunched} s, listening after {listening} s")
        # Started again at once each time; before, the delays doubled (2, 4, 8, 16 s) and the
        # exit was seen up to a second late. (Listening takes the binary's own start-up on top,
        # about a second for the ASan build on a loaded machine.)
        self.assertLess(max(relaunched), 1.0, relaunched)
        self.assertIn("ran_ms=", self.srv.stderr_text())

if __name__ == "__main__":
    unittest.main()
