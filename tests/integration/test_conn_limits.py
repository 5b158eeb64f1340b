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


def answered_or_closed(s: socket.socket, timeout: float) -> bool:
    """True when the server wrote something or closed the connection within `timeout`."""
    s.settimeout(timeout)
    try:
        return s.recv(4096) is not None  # b"" (closed) or a 503 answer
    except socket.timeout:
        return False
    except OSError:
        return True  # reset: closed at once


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
                    refused = 0
                    for s in socks[CAP + 20:]:
                        if answered_or_closed(s, 3.0):
                            refused += 1
                    self.assertEqual(refused, len(socks) - CAP - 20,
                                     f"{name}: connections beyond the cap were left hanging")
                    # Those within the cap are served normally meanwhile.
                    socks[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    socks[0].settimeout(5)
                    self.assertIn(b" 200 " if name == "api" else b"HTTP/1.1 ",
                                  socks[0].recv(4096))
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
            hanging = [s for s in socks[300:] if not answered_or_closed(s, 3.0)]
            self.assertEqual(hanging, [], "connections past the descriptor limit were left hanging")
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
