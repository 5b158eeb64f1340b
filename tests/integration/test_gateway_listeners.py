"""One TCP route whose port cannot be bound never freezes the gateway (issue 13, item 2).

Drives tests/gateway/harness_main.cc (the data plane alone, fed from a snapshot file; see
test_gateway_proxy.py): a port held by a test socket; the snapshot that asks for it is applied
anyway, every other route is served and changes keep coming through, the route's bind error is
reported (/healthz "tcp_failed"), and once the port is free the listener comes up by itself.
"""

from __future__ import annotations

import json
import socket
import time
import unittest

from test_gateway_proxy import EchoTcp, Gateway, Upstream, free_port, get, pool, route


def wait_for(fn, what: str, timeout: float = 10.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class TcpListenerFailureTest(unittest.TestCase):
    def test_a_taken_port_is_reported_and_retried_while_the_rest_updates(self):
        up_a, up_b = Upstream("a"), Upstream("b")
        echo = EchoTcp("t1")
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        good_port = free_port()
        self.addCleanup(up_a.close)
        self.addCleanup(up_b.close)
        self.addCleanup(echo.close)

        def snap(rev: int, **extra) -> dict:
            s = {"revision": rev,
                 "pools": {"A": pool(up_a), "B": pool(up_b),
                           "T": {"endpoints": [{"instance": "t1", "host": "127.0.0.1",
                                                "port": echo.port}]}},
                 "http_routes": [route("a", ["a.test"], "A")],
                 "tcp_routes": [{"id": "team/app/db/tcp-taken", "listen_port": taken,
                                 "pool": "T"},
                                {"id": "team/app/db/tcp-good", "listen_port": good_port,
                                 "pool": "T"}]}
            s.update(extra)
            return s

        gw = Gateway(snap(1))
        self.addCleanup(gw.close)
        try:
            # Applied, not refused: the HTTP route and the other TCP route serve.
            self.assertEqual(get(gw.http, "a.test")[0], 200)
            with socket.create_connection(("127.0.0.1", good_port), timeout=10) as s:
                s.sendall(b"ping")
                self.assertEqual(s.recv(100), b"t1:ping")
            health = json.loads(gw.admin_get("/healthz")[1])
            self.assertEqual(health["revision"], 1)
            self.assertEqual(len(health["tcp_failed"]), 1, health)
            failed = health["tcp_failed"][0]
            self.assertEqual(failed["route"], "team/app/db/tcp-taken")
            self.assertEqual(failed["address"], f"127.0.0.1:{taken}")
            self.assertIn("Address already in use", failed["error"])

            # A later snapshot (a new HTTP route) is applied too, with the port still taken.
            gw.apply(snap(2, http_routes=[route("a", ["a.test"], "A"),
                                          route("b", ["b.test"], "B")]))
            self.assertEqual(get(gw.http, "b.test")[0], 200)
            self.assertEqual(json.loads(gw.admin_get("/healthz")[1])["revision"], 2)

            # The port is freed: the listener comes up without a new snapshot.
            blocker.close()
            wait_for(lambda: json.loads(gw.admin_get("/healthz")[1])["tcp_failed"] == [],
                     "the freed port to be bound", timeout=10)
            with socket.create_connection(("127.0.0.1", taken), timeout=10) as s:
                s.sendall(b"up")
                self.assertEqual(s.recv(100), b"t1:up")
        finally:
            blocker.close()


if __name__ == "__main__":
    unittest.main()
