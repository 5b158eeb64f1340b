"""The gateway role in the all-in-one server (issue #5): `berth server` runs `berth gateway` as
its own process, which routes `<component>.<app>.localhost` to the ready instances, follows
scale and redeploys through the control plane's watch, keeps serving while the server is
killed, serves its persisted snapshot after its own restart with the control plane down, and
is adopted (same PID) by the next server.

Every listener is on a free loopback port. The gateway and the instances outlive the server by
design; the harness reaps them by PID (reap_runtime) and test_runtime.Reaper kills instances.
Polling is bounded; there are no fixed sleeps.
"""

import http.client
import json
import os
import signal
import stat
import subprocess
import textwrap
import time
import unittest

from harness import BerthServer, BerthTestCase, ServerError, _die_with_parent, _live, _tail
from test_runtime import Reaper, wait_for

V = "/api/v1/teams/default"

SERVER_PY = textwrap.dedent("""\
    import http.server, os
    HERE = os.path.dirname(os.path.abspath(__file__))
    GREETING = open(os.path.join(HERE, "greeting.txt")).read().strip()
    INSTANCE = os.environ.get("BERTH_INSTANCE", "?")
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = f"{GREETING} from {INSTANCE}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """)


def via_gateway(addr: str, host: str, path: str = "/", timeout: float = 3.0) -> tuple[int, str]:
    h, p = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(p), timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(")") + 2:].split()[0] not in ("Z", "X")


class GatewayRoleTest(BerthTestCase):
    server_kwargs = {"gateway": True}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)
        self.config = os.path.join(self.srv.tmp, "cli-config-" + self._testMethodName)
        self.login()

    def login(self) -> None:
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                         input=self.srv.admin_password + "\n", config=self.config)
        self.assertEqual(r.returncode, 0, r.stderr)

    def must(self, *args) -> str:
        r = self.srv.cli(*args, config=self.config, timeout=180)
        self.assertEqual(r.returncode, 0, f"berth {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def write_source(self, path: str, greeting: str) -> None:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "Procfile"), "w") as f:
            f.write("web: python3 server.py\n")
        with open(os.path.join(path, "server.py"), "w") as f:
            f.write(SERVER_PY)
        with open(os.path.join(path, "greeting.txt"), "w") as f:
            f.write(greeting + "\n")

    def answers(self, addr: str, host: str, want, what: str, tries: int = 12,
                timeout: float = 40.0) -> set[str]:
        """Polls the gateway until `tries` requests in a row answer 200 and the set of bodies
        seen among them is `want` (a set, or a predicate on the set)."""
        last = []

        def check():
            seen = set()
            for _ in range(tries):
                try:
                    st, body = via_gateway(addr, host)
                except OSError as e:
                    last[:] = [repr(e)]
                    return None
                if st != 200:
                    last[:] = [st, body[:300]]
                    return None
                seen.add(body)
            self.reaper.scan()
            last[:] = [seen]
            ok = want(seen) if callable(want) else seen == want
            return seen if ok else None
        try:
            return wait_for(check, what, timeout=timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; last answer: {last!r}\n--- gateway.log tail ---\n"
                                 f"{_tail(os.path.join(self.srv.data_dir, 'gateway', 'gateway.log'))}")

    def gateways(self) -> list[int]:
        """PIDs of every `berth gateway` process serving this server's state directory."""
        state = os.path.join(self.srv.data_dir, "gateway")
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or not alive(int(entry)):
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            except OSError:
                continue
            if len(args) > 2 and args[1] == "gateway" and any(
                    a == "--state" and b == state for a, b in zip(args, args[1:])):
                out.append(int(entry))
        return out

    def test_routes_follows_changes_survives_the_server_and_is_adopted(self):
        srv = self.srv
        gw = srv.gateway_info()
        addr, first_pid = gw["http"], gw["pid"]
        host = "web.shop.localhost"

        # Unknown hosts get the gateway's 404 page, not a connection error.
        st, _ = via_gateway(addr, "nothing.localhost")
        self.assertEqual(st, 404)

        # The credential: a 0600 token of the service user; the state dir is private.
        gdir = os.path.join(srv.data_dir, "gateway")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(gdir, "token")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(gdir).st_mode), 0o700)

        # Deploy from a local directory; the default domain reaches it through the gateway.
        src = os.path.join(srv.tmp, "shop-src")
        self.write_source(src, "hello v1")
        self.must("app", "create", "shop")
        self.must("component", "create", "web", "--app", "shop", "--source", src,
                  "--port", "8080/http", "--no-deploy")
        self.must("build", "web", "--app", "shop", "-f")
        self.must("wait", "web", "--app", "shop", "--ready", "--timeout", "60")
        self.answers(addr, host, {"hello v1 from web-1"}, "v1 through the gateway")

        # Scale and redeploy are seen without restarting the gateway.
        self.ok(self.api("PATCH", f"{V}/apps/shop/components/web", {"replicas": 2}))
        self.answers(addr, host, {"hello v1 from web-1", "hello v1 from web-2"},
                     "both instances through the gateway")
        self.write_source(src, "hello v2")
        self.must("build", "web", "--app", "shop", "-f")
        # A rolling update names its instances anew (web-3, web-4).
        v2 = self.answers(addr, host, lambda seen: len(seen) == 2 and all(
            b.startswith("hello v2 from web-") for b in seen), "v2 through the gateway")
        self.assertEqual(srv.gateway_info()["pid"], first_pid, "the gateway was not restarted")

        # The snapshot on disk is sealed: neither the domain nor the pools are readable.
        with open(os.path.join(gdir, "snapshot.enc"), "rb") as f:
            sealed = f.read()
        self.assertTrue(sealed.startswith(b"BGS1"))
        self.assertNotIn(b"web.shop.localhost", sealed)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(gdir, "snapshot.enc")).st_mode), 0o600)

        # A gateway that dies is started again by the server, and catches up.
        os.kill(first_pid, signal.SIGKILL)
        gw = srv.gateway_info(not_pid=first_pid)
        second_pid = gw["pid"]
        self.assertEqual(gw["http"].rsplit(":", 1)[0], "127.0.0.1")
        addr = gw["http"]
        self.answers(addr, host, v2,
                     "the restarted gateway serves")

        # kill -9 of the server: the gateway keeps serving.
        srv.kill9()
        self.answers(addr, host, v2,
                     "serving with the control plane killed")

        # The gateway restarts while the control plane is down: it serves what it persisted.
        with open(f"/proc/{second_pid}/cmdline", "rb") as f:
            cmd = [a.decode() for a in f.read().split(b"\0") if a]
        os.kill(second_pid, signal.SIGTERM)
        wait_for(lambda: not alive(second_pid), "the gateway stopped", timeout=20)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env["BERTH_GATEWAY_PIN_IO_THREADS"] = "1"  # its 2 io threads on 2 CPUs, when there are
        log = open(os.path.join(srv.tmp, "gateway-by-test.log"), "ab")
        self.addCleanup(log.close)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                cwd="/", preexec_fn=_die_with_parent)
        _live[proc.pid] = proc
        gw = srv.gateway_info(not_pid=second_pid)
        self.assertEqual(gw["pid"], proc.pid)
        addr = gw["http"]
        self.answers(addr, host, v2,
                     "the persisted snapshot served with the control plane down")
        if len(os.sched_getaffinity(0)) >= 2:
            pinned = []
            for tid in os.listdir(f"/proc/{proc.pid}/task"):
                with open(f"/proc/{proc.pid}/task/{tid}/status") as f:
                    cpus = [ln.split()[1] for ln in f if ln.startswith("Cpus_allowed_list:")][0]
                if cpus.isdigit():
                    pinned.append(cpus)
            self.assertEqual(len(set(pinned)), 2, f"io threads pinned to two CPUs: {pinned}")

        # The next server adopts that gateway (same PID) rather than starting a second one,
        # and the gateway follows the new server (its API port changed) for the next change.
        srv.start()
        self.login()
        self.ok(self.api("PATCH", f"{V}/apps/shop/components/web", {"replicas": 1}))
        self.answers(addr, host, lambda seen: len(seen) == 1 and
                     next(iter(seen)).startswith("hello v2 from web-"),
                     "the scale-down seen after the server's restart")
        self.assertEqual(srv.gateway_info()["pid"], proc.pid, "the gateway was adopted")
        self.assertIsNone(proc.poll())
        self.assertEqual(self.gateways(), [proc.pid], "exactly one gateway for the data dir")

        # Deleting the app: the gateway stops routing its default domain (404, no route).
        self.ok(self.api("DELETE", f"{V}/apps/shop"))

        def gone():
            try:
                st, body = via_gateway(addr, host)
            except OSError:
                return None
            return (st, body) if st == 404 else None
        st, body = wait_for(gone, "the deleted app's domain to answer 404", timeout=20)
        self.assertNotIn("hello", body)
        snap = self.ok(self.api("GET", "/api/v1/gateway/snapshot"))
        self.assertNotIn(host, [d for r in snap["http_routes"] for d in r["domains"]])

    def test_io_threads_are_pinned_one_per_cpu_by_default(self):
        # `berth gateway` pins its io threads, one per CPU, when there is one io thread per CPU
        # it may use (--pin-io-threads auto); with more threads than CPUs it leaves them alone;
        # a bad mode is refused before anything starts.
        cpus = sorted(os.sched_getaffinity(0))
        snap = os.path.join(self.srv.tmp, "pin-snapshot.json")
        with open(snap, "w") as f:
            json.dump({"revision": 1, "http_routes": [], "pools": {}}, f)

        def start(name: str, *extra: str) -> tuple[dict, list[str]]:
            state = os.path.join(self.srv.tmp, "pin-" + name)
            proc = subprocess.Popen(
                [self.srv.bin, "gateway", "--snapshot", snap, "--state", state,
                 "--http", "127.0.0.1:0", "--https", "off", "--admin", "off", *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                preexec_fn=_die_with_parent)
            self.addCleanup(lambda: (proc.kill(), proc.wait(), proc.stderr.close()))
            status_file = os.path.join(state, "gateway.json")
            deadline = time.monotonic() + 20
            while not os.path.exists(status_file):
                self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
                self.assertLess(time.monotonic(), deadline, "the gateway did not get ready")
                time.sleep(0.05)
            with open(status_file) as f:
                status = json.load(f)
            # Each thread's allowed CPUs, as the kernel has them.
            allowed = []
            for tid in os.listdir(f"/proc/{proc.pid}/task"):
                with open(f"/proc/{proc.pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith("Cpus_allowed_list:"):
                            allowed.append(line.split()[1])
            return status, allowed

        status, allowed = start("auto", "--io-threads", str(len(cpus)))
        self.assertEqual(status["io_threads"], len(cpus))
        self.assertEqual(status["io_cpus"], cpus)
        single = [a for a in allowed if "," not in a and "-" not in a]  # pinned threads
        if len(cpus) > 1:
            # Exactly one thread on each CPU; the main thread and the helpers stay free.
            self.assertEqual(sorted(single), sorted(map(str, cpus)))

        status, allowed = start("more", "--io-threads", str(len(cpus) + 1))
        self.assertEqual(status["io_cpus"], [])
        if len(cpus) > 1:
            self.assertEqual([a for a in allowed if "," not in a and "-" not in a], [])

        status, _ = start("off", "--io-threads", str(len(cpus)), "--pin-io-threads", "off")
        self.assertEqual(status["io_cpus"], [])

        bad = subprocess.run([self.srv.bin, "gateway", "--snapshot", snap, "--http", "127.0.0.1:0",
                              "--https", "off", "--admin", "off", "--pin-io-threads", "sometimes"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("--pin-io-threads must be auto, on or off", bad.stderr)

    def test_the_server_passes_its_gateway_settings_on(self):
        # `berth server --gateway-io-threads N --gateway-pin-io-threads MODE` reach the gateway
        # it runs; a bad value stops the server before anything starts, naming the flag.
        first_cpu = sorted(os.sched_getaffinity(0))[0]
        with BerthServer(gateway=True, extra_args=["--gateway-io-threads", "1",
                                                   "--gateway-pin-io-threads", "on"]) as srv:
            info = srv.gateway_info()
            self.assertEqual((info["io_threads"], info["io_cpus"]), (1, [first_cpu]))
        bad = BerthServer(gateway=True, extra_args=["--gateway-pin-io-threads", "sometimes"],
                          start=False)
        self.addCleanup(bad.close)
        with self.assertRaises(ServerError) as e:
            bad.start()
        self.assertIn("--gateway-pin-io-threads must be auto, on or off", str(e.exception))
        self.assertFalse(os.path.exists(os.path.join(bad.data_dir, "gateway", "gateway.json")))

    def test_the_gateway_user_is_a_hidden_service_account(self):
        users = "/api/v1/users"
        self.assertNotIn("berth-gateway", self.names(users))
        listed = {u["name"]: u for u in self.list_all(users + "?all=true")}
        self.assertIn("berth-gateway", listed)
        self.assertEqual((listed["berth-gateway"]["service"], listed["berth-gateway"]["admin"]),
                         (True, False))
        self.assertFalse(listed["admin"]["service"])
        self.assertNotIn("password_hash", listed["berth-gateway"])
        self.assertStatus(self.api("GET", users + "?all=yes"), 400, "invalid_argument")
        # It cannot be deleted, changed, logged in as, or made a team member.
        one = users + "/berth-gateway"
        self.assertStatus(self.api("DELETE", one), 409, "service_account")
        self.assertStatus(self.api("PATCH", one, {"disabled": True}), 409, "service_account")
        self.assertStatus(self.api("PUT", one, {"password": "taken-over-123"}), 409,
                          "service_account")
        self.assertStatus(self.anon("POST", "/api/v1/login",
                                    {"user": "berth-gateway", "password": "anything-123"}),
                          401, "service_account")
        self.assertStatus(self.api("POST", f"{V}/members", {"user": "berth-gateway",
                                                            "role": "viewer"}),
                          409, "service_account")
        # Nobody makes service accounts through the API.
        err = self.assertStatus(self.api("POST", users, {"name": "svc", "password": "svc-pass-123",
                                                         "service": True}),
                                400, "invalid_argument")
        self.assertEqual(err["field"], "service")
        self.ok(self.api("POST", users, {"name": "plain", "password": "plain-pass-123"}), 201)
        self.assertStatus(self.api("PATCH", users + "/plain", {"service": True}), 400,
                          "invalid_argument")
        self.ok(self.api("DELETE", users + "/plain"))
        # Still there, still enabled: the gateway's token keeps working.
        self.assertEqual(self.ok(self.api("GET", one))["disabled"], False)
        # The CLI hides it too, unless asked.
        self.assertNotIn("berth-gateway", self.must("user", "list"))
        self.assertIn("berth-gateway", self.must("user", "list", "--all"))


if __name__ == "__main__":
    unittest.main()
