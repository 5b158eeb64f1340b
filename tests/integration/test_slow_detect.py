"""Slow git detections cannot starve the server (issue 13).

`POST .../detect` of a git source runs git on the server. A git server that accepts and never
answers (here: a loopback TCP server that does exactly that) must not take the server with it:
detections run on their own pool, each user has at most `--detect-per-user` of them at once
(more are 429 `too_many_detections`), each is stopped after `--detect-timeout-s` (504
`source_timeout`, the git process group killed), and meanwhile everyone else — logins (which
hash passwords on the blocking pool), reads, other users' detections — is served at once.
"""

from __future__ import annotations

import socket
import threading
import time

from harness import BerthTestCase

V = "/api/v1"
TIMEOUT_S = 6
PER_USER = 2
QUICK_S = 3.0  # what "served at once" means on a busy 2-core machine


class BlackHole:
    """A loopback TCP server that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.closed_by_peer = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
                c.settimeout(0)
                self.conns.append(c)
            except OSError:
                pass
            for c in list(self.conns):
                try:
                    if c.recv(65536) == b"":
                        self.conns.remove(c)
                        self.closed_by_peer += 1
                        c.close()
                except BlockingIOError:
                    pass
                except OSError:
                    self.conns.remove(c)
                    self.closed_by_peer += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


class SlowDetectTest(BerthTestCase):
    server_kwargs = {"extra_args": ["--detect-timeout-s", str(TIMEOUT_S),
                                    "--detect-per-user", str(PER_USER)]}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        for user in ("mallory", "alice"):
            st, b, _ = cls.srv.api("POST", f"{V}/users",
                                   {"name": user, "password": user + "-pass-123"}, token=cls.admin)
            assert st == 201, b
            st, b, _ = cls.srv.api("POST", f"{V}/teams/default/members",
                                   {"user": user, "role": "developer"}, token=cls.admin)
            assert st == 201, b
        cls.mallory = cls.srv.login("mallory", "mallory-pass-123")
        cls.alice = cls.srv.login("alice", "alice-pass-123")

    def detect(self, url: str, token: str, timeout: float = 60):
        return self.srv.api("POST", f"{V}/teams/default/detect",
                            {"source": {"type": "git", "url": url}}, token=token, timeout=timeout)

    def timed(self, fn):
        t0 = time.monotonic()
        r = fn()
        return r, time.monotonic() - t0

    def test_hanging_git_servers_do_not_starve_anyone_else(self):
        hole = BlackHole()
        self.addCleanup(hole.close)
        url = f"http://127.0.0.1:{hole.port}/repo.git"
        results: dict[int, tuple] = {}

        def hang(i: int, token: str) -> None:
            t0 = time.monotonic()
            results[i] = (self.detect(url, token), time.monotonic() - t0)

        # Mallory starts as many as she may, plus as many as the old blocking pool had threads.
        threads = [threading.Thread(target=hang, args=(i, self.mallory)) for i in range(PER_USER)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(hole.conns) < PER_USER and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(len(hole.conns), PER_USER, "git never reached the black hole")
        t_start = time.monotonic()

        # One more from her is refused at once.
        (st, body, _), took = self.timed(lambda: self.detect(url, self.mallory))
        self.assertEqual((st, body.get("code")), (429, "too_many_detections"), body)
        self.assertLess(took, QUICK_S)

        # Everyone else is served meanwhile: a login (password hashing on the blocking pool),
        # a read, and Alice's own detections, which get their own slots.
        (st, body, _), took = self.timed(
            lambda: self.srv.api("POST", f"{V}/login",
                                 {"user": "alice", "password": "alice-pass-123"}))
        self.assertEqual(st, 200, body)
        self.assertLess(took, QUICK_S, "a login waited behind the hanging detections")
        (st, body, _), took = self.timed(lambda: self.srv.api("GET", f"{V}/teams",
                                                              token=self.alice))
        self.assertEqual(st, 200, body)
        self.assertLess(took, QUICK_S)
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
        closed.close()  # nothing listens there: git fails at once
        (st, body, _), took = self.timed(
            lambda: self.detect(f"http://127.0.0.1:{closed_port}/x.git", self.alice))
        self.assertEqual((st, body.get("field")), (400, "source"), body)  # git failed at once
        self.assertLess(took, QUICK_S + 2, "another user's detection waited")

        # Mallory's hanging detections end at the time limit, and git is gone.
        for t in threads:
            t.join(timeout=TIMEOUT_S + 30)
        self.assertEqual(len(results), PER_USER)
        for (st, body, _), took in results.values():
            self.assertEqual((st, body.get("code")), (504, "source_timeout"), body)
            self.assertIn(f"{TIMEOUT_S} s", body["message"])
            self.assertLess(took, TIMEOUT_S + 10)
        self.assertLess(time.monotonic() - t_start, TIMEOUT_S + 10)
        deadline = time.monotonic() + 10
        while hole.conns and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(hole.conns, [], "the git processes kept their connections open")
        # Her slots are free again.
        (st, body, _), took = self.timed(
            lambda: self.detect(f"http://127.0.0.1:{closed_port}/x.git", self.mallory))
        self.assertEqual((st, body.get("field")), (400, "source"), body)


if __name__ == "__main__":
    import unittest
    unittest.main()
