"""Connection floods (issue 13: descriptor limits and connection caps).

The API and the gateway raise their open-file soft limit to the hard limit at start, refuse
connections beyond their cap (`--max-connections`, `--gateway-max-connections`) at once, and
when the process does run out of descriptors (EMFILE) they close new connections at once
instead of leaving them hanging or spinning on accept — logging it once. Floods stay well below
the machine's hard limit of 20000 descriptors.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import time

from harness import BerthServer, BerthTestCase, http_request

CAP = 200
FLOOD = 320


def limits_of(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                parts = line.split()
                return int(parts[3]), int(parts[4])
    raise AssertionError("no open-file limit in /proc/<pid>/limits")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def flood(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def hanging_after(socks: list[socket.socket], timeout: float) -> list[int]:
    """The indices of the connections the server neither answered nor closed within
    `timeout` (a readable socket has data or EOF/reset waiting)."""
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    ready: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(ready) < len(socks):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            ready.add(key.data)
            sel.unregister(key.fileobj)
    sel.close()
    return [i for i in range(len(socks)) if i not in ready]


def low_soft_limit(soft: int, hard: int):
    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return pre


class ConnectionCapTest(BerthTestCase):
    server_kwargs = {"extra_args": ["--max-connections", str(CAP),
                                    "--gateway-max-connections", str(CAP)],
                     "gateway": True}

    def test_connections_beyond_the_cap_are_refused_at_once(self):
        pid = self.srv.pid
        soft, hard = limits_of(pid)
        self.assertEqual(soft, hard, "the server did not raise its open-file soft limit")
        for name, port in (("api", self.srv.port),
                           ("gateway", int(self.srv.gateway_info()["http"].rsplit(":", 1)[1]))):
            with self.subTest(listener=name):
                socks = flood(port, FLOOD)
                try:
                    # Which connections get in is the kernel's and the io threads' business
                    # (the gateway accepts on one listener per thread); how many is the cap's.
                    held = hanging_after(socks, 3.0)
                    self.assertLessEqual(len(held), CAP + 4,
                                         f"{name}: {len(held)} connections held, cap {CAP}: "
                                         "connections beyond the cap were left hanging")
                    self.assertGreaterEqual(len(held), CAP - 4, f"{name}: below the cap refused")
                    # Those within the cap are served normally meanwhile.
                    inside = socks[held[0]]
                    inside.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    inside.settimeout(5)
                    self.assertIn(b" 200 " if name == "api" else b"HTTP/1.1 ", inside.recv(4096))
                finally:
                    for s in socks:
                        s.close()
        # Once the flood is gone, new connections are welcome again.
        deadline = time.monotonic() + 10
        while True:
            try:
                st = http_request(self.srv.url, "GET", "/healthz", timeout=3)[0]
                if st == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "the API did not recover")
            time.sleep(0.1)
        gw = self.srv.gateway_info()
        gsoft, ghard = limits_of(int(gw["pid"]))
        self.assertEqual(gsoft, ghard, "the gateway did not raise its open-file soft limit")


class OutOfDescriptorsTest(BerthTestCase):
    """A server whose hard limit is low (256): the flood runs it out of descriptors."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = BerthServer(start=False, extra_args=["--max-connections", "5000"])
        cls.addClassCleanup(cls.srv.close)
        real_spawn = cls.srv.spawn

        def spawn(cmd=None, env=None, tag="server"):
            # The server (and only it) starts with a soft limit of 128 under a hard limit of 256.
            import subprocess
            from harness import _live, _die_with_parent
            cls.srv.runs += 1
            out = os.path.join(cls.srv.tmp, f"{tag}-{cls.srv.runs}.stdout")
            err = os.path.join(cls.srv.tmp, f"{tag}-{cls.srv.runs}.stderr")

            def pre():
                _die_with_parent()
                low_soft_limit(128, 256)()
            with open(out, "wb") as fo, open(err, "wb") as fe:
                proc = subprocess.Popen(cmd or cls.srv.command(), stdin=subprocess.DEVNULL,
                                        stdout=fo, stderr=fe, env=env or cls.srv.server_env(),
                                        cwd=cls.srv.tmp, preexec_fn=pre)
            _live[proc.pid] = proc
            return proc, out, err
        cls.srv.spawn = spawn
        del real_spawn
        cls.srv.start()
        cls.admin = cls.srv.login()

    def test_running_out_of_descriptors_closes_new_connections_without_spinning(self):
        pid = self.srv.pid
        soft, hard = limits_of(pid)
        self.assertEqual((soft, hard), (256, 256), "the soft limit was not raised to the hard one")
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        socks = flood(self.srv.port, 400)
        try:
            # At most the soft limit (256, less what the server holds anyway) stay open; every
            # other connection is closed at once, none hangs in the backlog.
            held = hanging_after(socks, 3.0)
            self.assertLess(len(held), 256, "connections past the descriptor limit were left hanging")
            self.assertGreater(len(held), 100, "the server held too few connections")
            time.sleep(2)  # the flood sits there: the server must not spin meanwhile
            used = cpu_seconds(pid) - cpu0
            elapsed = time.monotonic() - t0
            self.assertLess(used, 0.5 * elapsed,
                            f"the server used {used:.1f} s of CPU in {elapsed:.1f} s of flood")
        finally:
            for s in socks:
                s.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                if http_request(self.srv.url, "GET", "/healthz", timeout=3)[0] == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "the API did not recover")
            time.sleep(0.1)
        self.ok(self.api("GET", "/api/v1/teams"))
        lines = [l for l in self.srv.stderr_text().splitlines() if "out of file descriptors" in l]
        self.assertEqual(len(lines), 1, "\n".join(lines[:5]))


if __name__ == "__main__":
    import unittest
    unittest.main()
