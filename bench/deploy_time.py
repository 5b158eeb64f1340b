#!/usr/bin/env python3
"""Source to ready: the time from asking for a build of a component (a directory source) to the
first 200 through the gateway at its default domain, for the same app on two servers started
side by side from the same binary — one with the sandbox (`--sandbox on`), one without
(`--sandbox off`) — in alternating rounds, so the machine's noise falls on both. Prints each
round and the medians, with the build's and the start's share (version ready, instance ready).

Usage: deploy_time.py BERTH_BIN [FIXTURE_DIR] [ROUNDS]
  FIXTURE_DIR defaults to tests/fixtures/apps/node-hello; ROUNDS to 5. Needs root (the sandbox).
Everything runs on loopback; the servers and their apps are stopped at the end.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "bench-pass-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, token=None, host=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    if host:
        headers["Host"] = host
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = conn.getresponse()
        data = r.read().decode()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data
    finally:
        conn.close()


class Server:
    def __init__(self, binary, sandbox):
        self.tmp = tempfile.mkdtemp(prefix=f"berth-deploy-{sandbox}-")
        self.data = os.path.join(self.tmp, "data")
        self.api = free_port()
        self.http = free_port()
        env = dict(os.environ, BERTH_ADMIN_PASSWORD=PASSWORD)
        self.log = open(os.path.join(self.tmp, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "server", "--data", self.data, "--api", f"127.0.0.1:{self.api}",
             "--http", f"127.0.0.1:{self.http}", "--https", "127.0.0.1:0",
             "--gateway-admin", "127.0.0.1:0", "--sandbox", sandbox, "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call(self.api, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        st, body = call(self.api, "POST", "/api/v1/login", {"user": "admin", "password": PASSWORD})
        assert st == 200, body
        self.token = body["token"]

    def deploy(self, fixture, app):
        t = self.token
        assert call(self.api, "POST", "/api/v1/teams/default/apps", {"name": app}, t)[0] == 201
        comp = f"/api/v1/teams/default/apps/{app}/components"
        st, body = call(self.api, "POST", comp, {
            "name": "web", "source": {"type": "dir", "path": fixture},
            "ports": [{"port": 8080, "protocol": "http", "outer": True}]}, t)
        assert st == 201, body
        t0 = time.monotonic()
        st, v = call(self.api, "POST", comp + "/web/builds", {}, t)
        assert st == 201, v
        built = ready = None
        deadline = t0 + 300
        host = f"web.{app}.localhost"
        while time.monotonic() < deadline:
            if built is None:
                st, ver = call(self.api, "GET", f"{comp}/web/versions/{v['name']}", None, t)
                if ver.get("status") == "ready":
                    built = time.monotonic()
                elif ver.get("status") in ("failed", "cancelled"):
                    raise RuntimeError(f"build failed: {ver.get('message')}")
            try:
                st, _ = call(self.http, "GET", "/", host=host, timeout=2)
                if st == 200:
                    ready = time.monotonic()
                    break
            except OSError:
                pass
            time.sleep(0.005)
        if ready is None:
            raise RuntimeError("no 200 through the gateway within 300 s")
        return (built or ready) - t0, ready - t0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        # Apps and the gateway outlive the server by design: end them by their recorded pids.
        for root, _, files in os.walk(os.path.join(self.data, "run")):
            if "state.json" in files:
                try:
                    st = json.load(open(os.path.join(root, "state.json")))
                    for pid in (st.get("app_pid"), st.get("shim_pid")):
                        if pid:
                            os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        try:
            gw = json.load(open(os.path.join(self.data, "gateway", "gateway.json")))
            os.kill(gw["pid"], signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass
        subprocess.run(["sh", "-c", f"grep -o ' {self.tmp}[^ ]*' /proc/self/mountinfo | "
                        "sort -r | xargs -r -n1 umount -l"], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    binary = sys.argv[1]
    fixture = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else
                              os.path.join(HERE, "..", "tests", "fixtures", "apps", "node-hello"))
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    servers = {"sandbox": Server(binary, "on"), "no sandbox": Server(binary, "off")}
    results = {k: [] for k in servers}
    try:
        for i in range(rounds):
            for name, srv in (servers.items() if i % 2 == 0 else reversed(servers.items())):
                built, ready = srv.deploy(fixture, f"a{i}")
                results[name].append((built, ready))
                print(f"round {i + 1} {name:>10}: built {built * 1000:6.0f} ms, "
                      f"answers {ready * 1000:6.0f} ms", flush=True)
    finally:
        for srv in servers.values():
            srv.stop()
    print(f"\nsource → ready of {os.path.basename(fixture)}, medians of {rounds} rounds:")
    med = {}
    for name, rs in results.items():
        b = statistics.median(r[0] for r in rs) * 1000
        r = statistics.median(r[1] for r in rs) * 1000
        med[name] = r
        print(f"  {name:>10}: {r:6.0f} ms (build {b:.0f} ms, start and route {r - b:.0f} ms)")
    print(f"  sandbox / no sandbox: ×{med['sandbox'] / med['no sandbox']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
