"""Several servers on one machine (issue 21, item 9): two `berth server`s with two data
directories both come up with their gateways. The API, HTTP and HTTPS listeners are on free
ports (port 0); the gateway's admin listener is left at its default, which is a free port
recorded in DATA/gateway/admin-address (before: both wanted 127.0.0.1:9090, and the second
server's gateway was restarted forever).

An admin address that another process already holds, given explicitly, stops the start with
one message naming --gateway-admin instead of a restart loop.

The gateways outlive their servers by design; the harness reaps them by PID (reap_runtime).
"""

import http.client
import os
import subprocess
import time
import unittest

from harness import BerthServer, _live, _tail


def healthz(address: str) -> int:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


class TwoServersTest(unittest.TestCase):

    def server(self, **kw) -> BerthServer:
        srv = BerthServer(gateway=True, gateway_admin=None, **kw)
        self.addCleanup(srv.close)
        return srv

    def test_two_data_dirs_both_come_up_with_their_gateways(self):
        a = self.server()
        b = self.server()
        ga, gb = a.gateway_info(), b.gateway_info()
        self.assertNotEqual(ga["pid"], gb["pid"])
        self.assertNotEqual(ga["admin"], gb["admin"])
        for srv, g in ((a, ga), (b, gb)):
            self.assertTrue(g["admin"].startswith("127.0.0.1:"), g)
            self.assertEqual(healthz(g["admin"]), 200, g)
            with open(os.path.join(srv.data_dir, "gateway", "admin-address")) as f:
                self.assertEqual(f.read().strip(), g["admin"])
            # The server says where the metrics are.
            self.assertIn(f"metrics http://{g['admin']}/metrics", srv.stdout_text())
        # Still both up a little later: neither gateway is being restarted.
        time.sleep(2)
        self.assertEqual(a.gateway_info()["pid"], ga["pid"])
        self.assertEqual(b.gateway_info()["pid"], gb["pid"])
        self.assertNotIn("starting it again", a.stderr_text() + b.stderr_text())

        # A restart keeps the recorded address and adopts the running gateway.
        a.restart()
        again = a.gateway_info()
        self.assertEqual((again["pid"], again["admin"]), (ga["pid"], ga["admin"]))
        a.stop()
        b.stop()

    def test_an_admin_address_in_use_stops_the_start_with_one_message(self):
        a = self.server()
        taken = a.gateway_info()["admin"]
        c = BerthServer(gateway=True, gateway_admin=taken, start=False)
        self.addCleanup(c.close)
        proc, out, err = c.spawn()
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.fail(f"the server did not stop by itself; stderr: {_tail(err)}")
        finally:
            _live.pop(proc.pid, None)
        text = _tail(err)
        self.assertEqual(rc, 1, text)
        self.assertIn(f"cannot listen on {taken} (admin)", text)
        self.assertIn("--gateway-admin", text)
        self.assertEqual(text.count("berth server:"), 1, text)
        # No gateway was left behind to be restarted.
        self.assertFalse(os.path.exists(os.path.join(c.data_dir, "gateway", "gateway.json")))
        a.stop()


if __name__ == "__main__":
    unittest.main()
