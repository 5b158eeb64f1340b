"""Durability and process life cycle (docs/server.md "First start", "Files", "Signals"):
restart persistence, the generated first password, kill -9 in the middle of a write loop,
one server per data dir, health without auth."""

import json
import os
import random
import signal
import stat
import subprocess
import shutil
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import quote

from harness import ADMIN_PASSWORD, BerthServer, BerthTestCase, _tail, http_request

V = "/api/v1"


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_text(path):
    with open(path) as f:
        return f.read()


class DurabilityTest(BerthTestCase):
    """These tests start their own servers; the class server is only used for health checks."""

    def own_server(self, **kw) -> BerthServer:
        srv = BerthServer(**kw)
        self.addCleanup(srv.close)
        return srv

    def test_health_without_auth(self):
        st, body, _ = self.anon("GET", "/healthz")
        self.assertEqual(st, 200, body)
        self.assertEqual(body.get("status"), "ok", body)
        st, body, _ = self.anon("GET", "/readyz")
        self.assertEqual(st, 200, body)
        self.assertEqual(body.get("status"), "ready", body)
        self.assertIsInstance(body.get("revision"), int, body)
        info = read_json(os.path.join(self.srv.data_dir, "server.json"))
        self.assertEqual(info["pid"], self.srv.pid)
        self.assertEqual(info["api"].rstrip("/"), self.srv.url)
        self.assertIn("started_at", info)

    def test_restart_keeps_everything(self):
        srv = self.own_server()
        tok = srv.login()
        a = lambda m, p, b=None, t=tok: srv.api(m, p, b, token=t)  # noqa: E731

        def must(resp, status=(200, 201)):
            st = resp[0]
            self.assertIn(st, status if isinstance(status, tuple) else (status,), resp[1])
            return resp[1]

        must(a("POST", f"{V}/teams", {"name": "keep", "display_name": "Keep"}), 201)
        must(a("POST", f"{V}/users", {"name": "kuser", "password": "kuser-pass-1"}), 201)
        must(a("POST", f"{V}/teams/keep/members", {"user": "kuser", "role": "developer"}), 201)
        must(a("POST", f"{V}/teams/keep/apps", {"name": "shop", "description": "d"}), 201)
        must(a("PATCH", f"{V}/teams/keep/apps/shop", {"description": "d2"}), 200)
        must(a("POST", f"{V}/teams/keep/apps/shop/components",
               {"name": "web", "env": {"A": "1"}, "ports": [{"port": 80, "protocol": "http"}]}),
             201)
        must(a("POST", f"{V}/teams/keep/apps/shop/components", {"name": "db"}), 201)
        must(a("POST", f"{V}/teams/keep/apps/shop/components/web/dependencies",
               {"target_component": "db"}), 201)
        must(a("POST", f"{V}/teams/keep/apps/shop/components",
               {"name": "doomed"}), 201)
        must(a("DELETE", f"{V}/teams/keep/apps/shop/components/doomed"), (200, 204))
        api_token = must(a("POST", f"{V}/tokens", {"name": "persist"}), 201)["token"]

        paths = [f"{V}/teams/keep", f"{V}/users/kuser", f"{V}/teams/keep/members/kuser",
                 f"{V}/teams/keep/apps/shop", f"{V}/teams/keep/apps/shop/components/web",
                 f"{V}/teams/keep/apps/shop/components/db",
                 f"{V}/teams/keep/apps/shop/components/web/dependencies/db"]
        before = {p: must(a("GET", p), 200) for p in paths}
        lists = [f"{V}/teams/keep/apps/shop/components", f"{V}/teams/keep/audit"]
        before_lists = {p: must(a("GET", p), 200)["items"] for p in lists}
        rev_before = must(srv.api("GET", "/readyz"))["revision"]

        srv.stop()  # SIGTERM; exit code 0 checked
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "server.json")),
                         "a graceful stop removes server.json")
        # Restart with a *different* BERTH_ADMIN_PASSWORD: the first one stays.
        srv.admin_password = "some-other-pass-9"
        srv.start()
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "initial-admin-password")))
        st, body, _ = srv.api("POST", f"{V}/login", {"user": "admin",
                                                     "password": "some-other-pass-9"})
        self.assertEqual(st, 401, f"admin password must not be reset on restart: {st} {body!r}")
        tok2 = srv.login("admin", ADMIN_PASSWORD)
        for p in paths:
            self.assertEqual(must(srv.api("GET", p, token=tok2), 200), before[p],
                             f"{p} after restart")
        for p in lists:
            self.assertEqual(must(srv.api("GET", p, token=tok2), 200)["items"], before_lists[p],
                             f"{p} after restart")
        self.assertEqual(srv.api("GET", f"{V}/teams/keep/apps/shop/components/doomed",
                                 token=tok2)[0], 404)
        self.assertGreaterEqual(must(srv.api("GET", "/readyz"))["revision"], rev_before)
        # Sessions and API tokens survive a restart (they are stored, hashed).
        must(srv.api("GET", f"{V}/whoami", token=tok), 200)
        must(srv.api("GET", f"{V}/whoami", token=api_token), 200)
        srv.login("kuser", "kuser-pass-1")
        # Writes continue with higher revisions.
        new = must(srv.api("PATCH", f"{V}/teams/keep/apps/shop", {"description": "d3"},
                           token=tok2), 200)
        self.assertGreater(new["revision"], before[f"{V}/teams/keep/apps/shop"]["revision"])
        # SIGINT stops gracefully too.
        srv.stop(sig=signal.SIGINT)
        srv.start()
        self.assertEqual(must(srv.api("GET", f"{V}/teams/keep/apps/shop", token=tok2))
                         ["description"], "d3")
        srv.stop()

    def test_generated_admin_password(self):
        # A data dir that does not exist yet: the server creates it 0700.
        parent = tempfile.mkdtemp(prefix="berth-it-gen-")
        self.addCleanup(shutil.rmtree, parent, True)
        data = os.path.join(parent, "data")
        srv = self.own_server(admin_password=None, data_dir=data)
        self.assertEqual(stat.S_IMODE(os.stat(data).st_mode), 0o700, "data dir mode")
        pw_file = os.path.join(data, "initial-admin-password")
        self.assertTrue(os.path.exists(pw_file), "initial-admin-password is written")
        self.assertEqual(stat.S_IMODE(os.stat(pw_file).st_mode), 0o600,
                         "initial-admin-password mode")
        password = read_text(pw_file).strip()
        self.assertGreaterEqual(len(password), 12, "a generated password is long enough")
        self.assertIn(password, srv.stdout_text(), "the password is printed once on stdout")
        srv.login("admin", password)
        self.assertEqual(srv.api("POST", f"{V}/login", {"user": "admin",
                                                        "password": ADMIN_PASSWORD})[0], 401)
        srv.stop()
        # Second start: no new password, the old one still works, nothing printed again.
        srv.start()
        self.assertEqual(read_text(pw_file).strip(), password)
        self.assertNotIn(password, srv.stdout_text(), "printed only on first start")
        srv.login("admin", password)
        srv.stop()

    def test_second_server_refused(self):
        srv = self.own_server()
        proc, out, err = srv.spawn(tag="second")
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        text = _tail(err) + _tail(out)
        self.assertIsNotNone(rc, "a second server on the same data dir must exit, not run")
        self.assertNotEqual(rc, 0, f"second server exit code; output: {text}")
        low = text.lower()
        self.assertTrue(srv.data_dir in text or "lock" in low or "in use" in low
                        or "already" in low,
                        f"the refusal names the data dir or the lock: {text!r}")
        # The first server is untouched.
        self.assertEqual(srv.api("GET", "/readyz")[0], 200)
        info = read_json(os.path.join(srv.data_dir, "server.json"))
        self.assertEqual(info["pid"], srv.pid, "server.json still describes the first server")
        srv.login()
        srv.stop()

    def test_kill9_loses_no_acknowledged_write(self):
        seed = int(os.environ.get("BERTH_IT_SEED", time.time_ns() % 1_000_000))
        rnd = random.Random(seed)
        srv = self.own_server()
        tok = srv.login()
        acked: list[str] = []
        total_acked = 0
        report = []
        for rnd_no in range(3):
            url = srv.url
            stop = threading.Event()
            lock = threading.Lock()
            acked_round: list[str] = []
            errors: list[str] = []

            def writer(wid: int):
                i = 0
                while not stop.is_set():
                    name = f"k{rnd_no}-w{wid}-{i}"
                    i += 1
                    try:
                        st, body, _ = http_request(url, "POST", f"{V}/teams/default/apps",
                                                   {"name": name}, token=tok, timeout=10)
                    except OSError:
                        return  # the server is gone
                    if st == 201:
                        with lock:
                            acked_round.append(name)
                    else:
                        errors.append(f"{name}: {st} {body!r}")
                        return

            threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(2)]
            for t in threads:
                t.start()
            # Kill at a random moment once some writes went through.
            want = rnd.randint(10, 60)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with lock:
                    if len(acked_round) >= want:
                        break
                if errors:
                    break
                time.sleep(0.005)
            time.sleep(rnd.uniform(0, 0.05))
            srv.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=15)
            self.assertEqual(errors, [], "writes failed before the kill")
            with lock:
                acked.extend(acked_round)
                n = len(acked_round)
            total_acked += n
            report.append(n)
            self.assertGreater(n, 0, f"round {rnd_no}: no write was acknowledged within 30 s")

            srv.start()
            present = set()
            after = ""
            while True:
                q = f"{V}/teams/default/apps?limit=500" + (f"&after={quote(after, safe='')}" if after else "")
                st, body, _ = srv.api("GET", q, token=tok)
                self.assertEqual(st, 200, body)
                present.update(i["name"] for i in body["items"])
                after = body.get("next") or ""
                if not after:
                    break
            lost = [n for n in acked if n not in present]
            self.assertEqual(lost, [], f"round {rnd_no} (seed {seed}): {len(lost)} of "
                                       f"{len(acked)} acknowledged writes lost after kill -9")
            # The store still takes writes.
            st, body, _ = srv.api("POST", f"{V}/teams/default/apps", {"name": f"after-{rnd_no}"},
                                  token=tok)
            self.assertEqual(st, 201, body)
        print(f"\n[kill -9] seed {seed}: acknowledged writes per round {report}, "
              f"total {total_acked}, none lost", file=sys.stderr)
        srv.stop()


if __name__ == "__main__":
    unittest.main()
