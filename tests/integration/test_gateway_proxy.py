"""The gateway data plane through real sockets on loopback (issue 5).

Drives tests/gateway/harness_main.cc ($BERTH_GATEWAY_HARNESS): a DataPlane fed from a snapshot
file, re-applied on SIGHUP. Upstreams are small threaded stdlib servers on 127.0.0.1 port 0.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import warnings
from http.server import BaseHTTPRequestHandler, HTTPServer

import harness

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def harness_bin() -> str:
    path = os.environ.get("BERTH_GATEWAY_HARNESS")
    if path:
        return path
    for sub in ("it", "asan", "release"):
        cand = os.path.join(_REPO, "build", sub, "gateway_harness")
        if os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("set BERTH_GATEWAY_HARNESS to the gateway_harness binary")


# ---------------------------------------------------------------------------------------------
# Upstreams

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


class Upstream:
    """A threaded HTTP/1.1 upstream that says who it is; also sinks/streams big bodies and
    echoes WebSocket frames."""

    def __init__(self, name: str):
        self.name = name
        self.hits = 0
        self.conns: set[socket.socket] = set()
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                up.conns.add(self.connection)

            def finish(self):
                up.conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, *a):
                pass

            def reply(self, code, body: bytes, ctype="application/json", extra=None):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                up.hits += 1
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    return self.websocket()
                u = urllib.parse.urlparse(self.path)
                if u.path == "/big":
                    n = int(urllib.parse.parse_qs(u.query)["n"][0])
                    self.send_response(200)
                    self.send_header("Content-Length", str(n))
                    self.end_headers()
                    chunk = bytes(range(256)) * 256
                    left = n
                    while left:
                        k = min(left, len(chunk))
                        self.wfile.write(chunk[:k])
                        left -= k
                    return
                body = json.dumps({"name": up.name, "path": self.path,
                                   "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.reply(200, body.encode())

            def do_POST(self):
                up.hits += 1
                h = hashlib.sha256()
                size = 0
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        line = self.rfile.readline()
                        n = int(line.strip().split(b";")[0], 16)
                        if n == 0:
                            self.rfile.readline()
                            break
                        left = n
                        while left:
                            b = self.rfile.read(min(left, 1 << 20))
                            h.update(b)
                            left -= len(b)
                        size += n
                        self.rfile.readline()
                else:
                    left = int(self.headers.get("Content-Length", "0"))
                    while left:
                        b = self.rfile.read(min(left, 1 << 20))
                        if not b:
                            break
                        h.update(b)
                        size += len(b)
                        left -= len(b)
                self.reply(200, json.dumps({"name": up.name, "size": size,
                                            "sha256": h.hexdigest()}).encode())

            def websocket(self):
                key = self.headers["Sec-WebSocket-Key"]
                accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept.decode())
                self.end_headers()
                self.wfile.flush()
                while True:
                    frame = ws_read(self.rfile)
                    if frame is None:
                        return
                    op, data = frame
                    if op == 8:
                        self.wfile.write(ws_frame(8, b"", mask=False))
                        return
                    self.wfile.write(ws_frame(op, b"echo:" + data, mask=False))
                    self.wfile.flush()

        class Server(socketserver.ThreadingMixIn, HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def endpoint(self) -> dict:
        return {"instance": self.name, "host": "127.0.0.1", "port": self.port}

    def close(self):
        """Dies like a killed process: the listener and every open connection go."""
        self.server.shutdown()
        self.server.server_close()
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def ws_frame(op: int, data: bytes, mask: bool) -> bytes:
    head = bytes([0x80 | op])
    n = len(data)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        key = os.urandom(4)
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        head += key
    return head + data


def ws_read(f):
    h = f.read(2)
    if len(h) < 2:
        return None
    op = h[0] & 0x0F
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", f.read(8))[0]
    key = f.read(4) if h[1] & 0x80 else None
    data = f.read(n)
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return op, data


class ClosingUpstream:
    """An HTTP/1.1 upstream that closes each connection after one response without saying
    Connection: close, and answers POSTs with the size and sha256 of the body it read."""

    def __init__(self):
        self.connections = 0
        self.closed = 0  # connections it has closed
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                up.connections += 1

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                out = json.dumps({"size": len(body),
                                  "sha256": hashlib.sha256(body).hexdigest()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                self.close_connection = True  # closes without having said so

        class Server(socketserver.ThreadingMixIn, HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def shutdown_request(self, request):
                super().shutdown_request(request)
                up.closed += 1

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def endpoint(self) -> dict:
        return {"instance": "closing", "host": "127.0.0.1", "port": self.port}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class CloseDelimitedUpstream:
    """An HTTP/1.1 upstream that answers without Content-Length or chunking and closes at once:
    its header, its body and its FIN leave together, so the gateway reads the last bytes and
    the end of the body in one go. Every fourth answer is cut inside its header instead."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.served = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                try:
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        got = c.recv(65536)
                        if not got:
                            break
                        buf += got
                    self.served += 1
                    if self.served % 4 == 0:
                        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty")
                    else:
                        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                                  + b"until-close-%d" % self.served)
                except OSError:
                    pass

    def endpoint(self) -> dict:
        return {"instance": "eof", "host": "127.0.0.1", "port": self.port}

    def close(self):
        self.sock.close()


class EchoTcp:
    """A TCP upstream that answers every chunk with its name and the chunk."""

    def __init__(self, name: str):
        self.name = name
        self.ended = 0  # connections whose peer (the gateway) closed or reset them
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    while True:
                        data = self.request.recv(65536)
                        if not data:
                            return
                        self.request.sendall(outer.name.encode() + b":" + data)
                except OSError:
                    pass
                finally:
                    with outer.lock:
                        outer.ended += 1

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(dirname: str, name: str) -> tuple[str, str, str]:
    """A self-signed certificate for `name` (openssl CLI). Returns (cert_pem, key_pem, path)."""
    key = os.path.join(dirname, name + ".key")
    crt = os.path.join(dirname, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name],
                   check=True, capture_output=True, timeout=60)
    with open(crt) as f:
        cert_pem = f.read()
    with open(key) as f:
        key_pem = f.read()
    return cert_pem, key_pem, crt


# ---------------------------------------------------------------------------------------------
# The gateway under test

class Gateway:
    def __init__(self, snapshot: dict, *flags: str):
        self.dir = tempfile.mkdtemp(prefix="berth-gw-")
        self.snapshot_path = os.path.join(self.dir, "snapshot.json")
        self.access_log = os.path.join(self.dir, "access.log")
        self.write(snapshot)
        self.stderr_path = os.path.join(self.dir, "stderr")
        cmd = [harness_bin(), "--snapshot", self.snapshot_path, "--http", "127.0.0.1:0",
               "--https", "127.0.0.1:0", "--admin", "127.0.0.1:0",
               "--access-log", self.access_log, *flags]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr,
                                     preexec_fn=harness._die_with_parent)
        harness._live[self.proc.pid] = self.proc
        line = self._readline(30)
        if not line:
            self.close()
            raise AssertionError("gateway_harness did not start: " + self.stderr_text())
        ready = json.loads(line)
        self.http = ready["http"]
        self.https = ready["https"]
        self.admin = ready["admin"]
        self.revision = snapshot.get("revision", 0)

    def _readline(self, timeout: float) -> str:
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0].decode() if out else ""

    def write(self, snapshot: dict):
        tmp = self.snapshot_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(snapshot, f)
        os.replace(tmp, self.snapshot_path)

    def stderr_text(self) -> str:
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def apply(self, snapshot: dict, expect_ok: bool = True):
        """Writes the snapshot, SIGHUPs, and waits until it is served (or rejected)."""
        before = self.stderr_text().count("\n")
        self.write(snapshot)
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            lines = self.stderr_text().splitlines()[before:]
            if lines:
                last = json.loads(lines[-1])
                if expect_ok:
                    assert "applied" in last, last
                return last
            time.sleep(0.02)
        raise AssertionError("no answer to SIGHUP")

    def admin_get(self, path: str) -> tuple[int, str]:
        host, port = self.admin.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    def rss_peak_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        harness._live.pop(self.proc.pid, None)
        self.proc.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def conn(addr: str, timeout: float = 10) -> http.client.HTTPConnection:
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def get(addr: str, host: str, path: str = "/", headers: dict | None = None,
        c: http.client.HTTPConnection | None = None):
    own = c is None
    c = c or conn(addr)
    h = {"Host": host}
    h.update(headers or {})
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read()
    if own:
        c.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = body.decode("utf-8", "replace")
    return r.status, data, r


def route(rid: str, domains: list[str], pools: list[tuple[str, int]] | str, **kw) -> dict:
    if isinstance(pools, str):
        pools = [(pools, 100)]
    r = {"id": rid, "domains": domains, "backends": [{"pool": p, "weight": w} for p, w in pools]}
    r.update(kw)
    return r


def pool(*ups, reason: str = "") -> dict:
    return {"endpoints": [u.endpoint() for u in ups], "reason": reason}


class GatewayProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="berth-gw-certs-")
        cls.ups = {n: Upstream(n) for n in ("a", "b", "c", "d", "e", "f")}
        cls.tcp_up = EchoTcp("t1")
        cls.tcp_port = free_port()
        cls.tcp_idle_up = EchoTcp("t2")
        cls.tcp_idle_port = free_port()
        cls.certs = {n: make_cert(cls.tmp, n) for n in ("one.test", "two.test")}
        cls.rev = 1
        cls.gw = Gateway(cls.snapshot(), "--header-timeout-ms", "1000",
                         "--max-header-bytes", "16384", "--threads", "2")

    @classmethod
    def tearDownClass(cls):
        cls.gw.close()
        for u in cls.ups.values():
            try:
                u.close()
            except Exception:
                pass
        cls.tcp_up.close()
        cls.tcp_idle_up.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def snapshot(cls, **override) -> dict:
        u = cls.ups
        cls.rev += 1
        s = {
            "revision": cls.rev,
            "pools": {
                "A": pool(u["a"]), "B": pool(u["b"]), "C": pool(u["c"]),
                "ABC": pool(u["a"], u["b"], u["c"]),
                "DEF": pool(u["d"], u["e"], u["f"]),
                "EMPTY": pool(reason="no ready instance (1 starting)"),
                "T": {"endpoints": [{"instance": "t1", "host": "127.0.0.1",
                                     "port": cls.tcp_up.port}]},
                "T2": {"endpoints": [{"instance": "t2", "host": "127.0.0.1",
                                      "port": cls.tcp_idle_up.port}]},
            },
            "http_routes": [
                route("host-a", ["a.test"], "A"),
                route("host-a-api", ["a.test"], "B", path_prefix="/api"),
                route("host-a-api-canary", ["a.test"], "C", path_prefix="/api",
                      headers=[{"name": "X-Canary", "value": "1"}]),
                route("wild", ["*.wild.test"], "B"),
                route("weights", ["w.test"], [("A", 75), ("B", 25)]),
                route("rr", ["rr.test"], "ABC"),
                route("sticky", ["sticky.test"], "ABC", balance="hash_cookie"),
                route("ip", ["ip.test"], "ABC", balance="hash_ip"),
                route("eject", ["eject.test"], "DEF"),
                route("empty", ["empty.test"], "EMPTY"),
                route("swap", ["swap.test"], "A"),
                route("tls-one", ["one.test"], "A", certificate="one.test"),
                route("tls-two", ["two.test"], "B", certificate="two.test"),
                route("redirect", ["secure.test"], "A", redirect_https=True),
                route("limited", ["limited.test"], "A",
                      rate_limit={"requests_per_second": 1, "burst": 2}),
                route("small", ["small.test"], "A", max_body_bytes=1000),
            ],
            "tcp_routes": [{"id": "tcp", "listen_port": cls.tcp_port, "pool": "T"},
                           {"id": "tcp-idle", "listen_port": cls.tcp_idle_port, "pool": "T2",
                            "idle_timeout_ms": 1500}],
            "certificates": [
                {"name": n, "domains": [n], "cert_pem": c[0], "key_pem": c[1]}
                for n, c in cls.certs.items()
            ],
        }
        s.update(override)
        return s

    # --- routing -------------------------------------------------------------------------------

    def test_routing_by_host_path_header(self):
        gw = self.gw.http
        cases = [
            ("a.test", "/", {}, "a"),
            ("A.TEST:80", "/x", {}, "a"),
            ("a.test", "/api", {}, "b"),
            ("a.test", "/api/users?q=1", {}, "b"),
            ("a.test", "/apix", {}, "a"),
            ("a.test", "/api/x", {"X-Canary": "1"}, "c"),
            ("a.test", "/api/x", {"X-Canary": "0"}, "b"),
            ("x.wild.test", "/", {}, "b"),
            ("y.x.wild.test", "/", {}, "b"),
        ]
        for host, path, headers, want in cases:
            status, body, _ = get(gw, host, path, headers)
            self.assertEqual(status, 200, (host, path, body))
            self.assertEqual(body["name"], want, (host, path))
            self.assertEqual(body["path"], path)

    def test_forwarded_headers_and_request_id(self):
        status, body, r = get(self.gw.http, "a.test", "/h", {"X-Forwarded-For": "10.1.2.3"})
        self.assertEqual(status, 200)
        h = body["headers"]
        self.assertEqual(h["x-forwarded-for"], "10.1.2.3, 127.0.0.1")
        self.assertEqual(h["x-forwarded-proto"], "http")
        self.assertEqual(h["x-forwarded-host"], "a.test")
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertEqual(r.getheader("X-Request-Id"), h["x-request-id"])
        _, body, r = get(self.gw.http, "a.test", "/h", {"X-Request-Id": "mine-1"})
        self.assertEqual(body["headers"]["x-request-id"], "mine-1")
        self.assertEqual(r.getheader("X-Request-Id"), "mine-1")

    def test_unknown_host_404_and_empty_pool_503(self):
        status, body, r = get(self.gw.http, "nothing.test")
        self.assertEqual(status, 404)
        self.assertIn("text/html", r.getheader("Content-Type"))
        self.assertIn("nothing.test", body)
        self.assertIn("No route", body)
        status, body, r = get(self.gw.http, "empty.test")
        self.assertEqual(status, 503)
        self.assertEqual(r.getheader("X-Berth-Reason"), "no ready instance (1 starting)")

    def test_weights(self):
        c = conn(self.gw.http)
        counts = {"a": 0, "b": 0}
        for _ in range(200):
            _, body, _ = get(self.gw.http, "w.test", c=c)
            counts[body["name"]] += 1
        c.close()
        self.assertAlmostEqual(counts["a"], 150, delta=10)
        self.assertAlmostEqual(counts["b"], 50, delta=10)

    # --- balancing -----------------------------------------------------------------------------

    def test_round_robin_over_three(self):
        c = conn(self.gw.http)
        counts = {}
        for _ in range(30):
            _, body, _ = get(self.gw.http, "rr.test", c=c)
            counts[body["name"]] = counts.get(body["name"], 0) + 1
        c.close()
        self.assertEqual(counts, {"a": 10, "b": 10, "c": 10})

    def test_sticky_cookie_and_client_ip(self):
        status, body, r = get(self.gw.http, "sticky.test")
        self.assertEqual(status, 200)
        cookie = r.getheader("Set-Cookie")
        self.assertTrue(cookie and cookie.startswith("berth_affinity="), cookie)
        value = cookie.split(";")[0]
        first = body["name"]
        for _ in range(10):
            _, body, r = get(self.gw.http, "sticky.test", headers={"Cookie": value})
            self.assertEqual(body["name"], first)
            self.assertIsNone(r.getheader("Set-Cookie"))
        seen = set()
        for i in range(30):
            _, body, _ = get(self.gw.http, "sticky.test",
                             headers={"Cookie": f"berth_affinity=client-{i}"})
            seen.add(body["name"])
        self.assertGreater(len(seen), 1)  # different clients spread
        names = {get(self.gw.http, "ip.test")[1]["name"] for _ in range(10)}
        self.assertEqual(len(names), 1)  # one client address, one instance

    def test_ejection_and_retry_when_an_instance_dies(self):
        ups = self.ups
        # Warm pooled connections to every instance, then kill one.
        for _ in range(6):
            self.assertEqual(get(self.gw.http, "eject.test")[0], 200)
        dead = ups["e"]
        dead.close()
        counts = {}
        for _ in range(30):
            status, body, _ = get(self.gw.http, "eject.test")
            self.assertEqual(status, 200, body)
            counts[body["name"]] = counts.get(body["name"], 0) + 1
        self.assertNotIn("e", counts)
        self.assertEqual(set(counts), {"d", "f"})
        _, metrics = self.gw.admin_get("/metrics")
        errors = [l for l in metrics.splitlines()
                  if l.startswith("berth_gateway_upstream_errors_total") and 'route="eject"' in l]
        self.assertTrue(errors, metrics)
        # Ejected after its first refusals: without ejection every third request would fail
        # over (about 10 errors); with it, one or two per worker.
        self.assertTrue(1 <= int(errors[0].split()[-1]) <= 4, errors)
        # Bring a fresh "e" back for the other tests' snapshots.
        ups["e"] = Upstream("e")
        type(self).ups = ups
        self.gw.apply(self.snapshot())

    # --- live reconfiguration ------------------------------------------------------------------

    def test_swap_during_a_stream_of_requests(self):
        failures, names = [], []
        stop = threading.Event()

        def client(keepalive: bool):
            c = conn(self.gw.http) if keepalive else None
            while not stop.is_set():
                try:
                    status, body, _ = get(self.gw.http, "swap.test", c=c)
                    if status != 200:
                        failures.append((status, body))
                    else:
                        names.append(body["name"])
                except Exception as e:  # noqa: BLE001 - any failure counts
                    failures.append(repr(e))
                    if c:
                        c.close()
                        c = conn(self.gw.http)
            if c:
                c.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in (True, True, False, False)]
        for t in threads:
            t.start()
        try:
            for i in range(10):
                target = "B" if i % 2 == 0 else "A"
                snap = self.snapshot()
                for r in snap["http_routes"]:
                    if r["id"] == "swap":
                        r["backends"] = [{"pool": target, "weight": 100}]
                self.gw.apply(snap)
                time.sleep(0.15)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertEqual(failures, [])
        self.assertGreater(len(names), 50)
        self.assertEqual(set(names), {"a", "b"})
        _, health = self.gw.admin_get("/healthz")
        self.assertEqual(json.loads(health)["revision"], self.rev)
        self.gw.apply(self.snapshot())

    def test_bad_snapshot_keeps_the_previous_one(self):
        snap = self.snapshot()
        snap["certificates"][0]["cert_pem"] = "-----BEGIN CERTIFICATE-----\nnot base64\n"
        err = self.gw.apply(snap, expect_ok=False)
        self.assertIn("one.test", err["message"])
        self.assertEqual(err["field"], "certificates[0].cert_pem")
        self.assertEqual(get(self.gw.http, "a.test")[0], 200)
        self.assertEqual(json.loads(self.gw.admin_get("/healthz")[1])["revision"], self.rev - 1)
        self.gw.apply(self.snapshot())

    # --- TLS -----------------------------------------------------------------------------------

    def tls_get(self, server_name: str):
        host, port = self.gw.https.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=self.certs[server_name][2])
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as s:
                cert = s.getpeercert()
                version = s.version()
                s.sendall(f"GET /tls HTTP/1.1\r\nHost: {server_name}\r\n"
                          "Connection: close\r\n\r\n".encode())
                data = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
                return cert, version, data.decode()

    def test_tls_certificate_chosen_by_sni(self):
        for name, upstream in (("one.test", "a"), ("two.test", "b")):
            cert, version, resp = self.tls_get(name)
            subject = dict(x[0] for x in cert["subject"])
            self.assertEqual(subject["commonName"], name)
            self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
            self.assertTrue(resp.startswith("HTTP/1.1 200"), resp[:200])
            body = json.loads(resp.split("\r\n\r\n", 1)[1])
            self.assertEqual(body["name"], upstream)
            self.assertEqual(body["headers"]["x-forwarded-proto"], "https")
        # TLS 1.1 and older are refused.
        host, port = self.gw.https.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
                ctx.minimum_version = ssl.TLSVersion.TLSv1
        except (ValueError, OSError):
            return
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                ctx.wrap_socket(raw, server_hostname="one.test").do_handshake()

    def test_redirect_https_and_rate_limit_and_body_limit(self):
        status, _, r = get(self.gw.http, "secure.test", "/p?q=1")
        self.assertEqual(status, 308)
        port = self.gw.https.rsplit(":", 1)[1]
        self.assertEqual(r.getheader("Location"), f"https://secure.test:{port}/p?q=1")
        statuses = [get(self.gw.http, "limited.test")[0] for _ in range(4)]
        self.assertEqual(statuses[:2], [200, 200])
        self.assertEqual(statuses[3], 429)
        c = conn(self.gw.http)
        c.request("POST", "/", body=b"x" * 2000, headers={"Host": "small.test"})
        self.assertEqual(c.getresponse().status, 413)
        c.close()
        # A client still sending a big body reads the 413 (lingering close, not a reset).
        c = conn(self.gw.http)
        c.request("POST", "/", body=b"x" * (16 << 20), headers={"Host": "small.test"})
        self.assertEqual(c.getresponse().status, 413)
        c.close()
        c = conn(self.gw.http)
        c.request("POST", "/", body=b"x" * 500, headers={"Host": "small.test"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["size"], 500)
        c.close()

    # --- streaming and upgrades ----------------------------------------------------------------

    def test_websocket_echo(self):
        host, port = self.gw.http.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            f = s.makefile("rb")
            status = f.readline()
            self.assertIn(b" 101 ", status)
            headers = {}
            while True:
                line = f.readline().strip()
                if not line:
                    break
                k, v = line.decode().split(":", 1)
                headers[k.lower()] = v.strip()
            want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.assertEqual(headers["sec-websocket-accept"], want)
            for msg in (b"hello", b"x" * 70000, b"bye"):
                s.sendall(ws_frame(1, msg, mask=True))
                op, data = ws_read(f)
                self.assertEqual(op, 1)
                self.assertEqual(data, b"echo:" + msg)
            s.sendall(ws_frame(8, b"", mask=True))
            self.assertEqual(ws_read(f)[0], 8)

    def test_large_streamed_bodies(self):
        size = 200 * 1024 * 1024
        chunk = os.urandom(1 << 20)
        h = hashlib.sha256()
        for _ in range(size // len(chunk)):
            h.update(chunk)

        def body():
            for _ in range(size // len(chunk)):
                yield chunk

        c = conn(self.gw.http, timeout=60)
        c.request("POST", "/upload", body=body(),
                  headers={"Host": "a.test", "Content-Length": str(size)})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        got = json.loads(r.read())
        self.assertEqual(got["size"], size)
        self.assertEqual(got["sha256"], h.hexdigest())
        # Chunked upload and a streamed download.
        c.request("POST", "/upload", body=body(),
                  headers={"Host": "a.test", "Transfer-Encoding": "chunked"},
                  encode_chunked=True)
        r = c.getresponse()
        self.assertEqual(json.loads(r.read())["sha256"], h.hexdigest())
        n = 50 * 1024 * 1024
        c.request("GET", f"/big?n={n}", headers={"Host": "a.test"})
        r = c.getresponse()
        total = 0
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            total += len(b)
        self.assertEqual(total, n)
        c.close()
        # Nothing was buffered whole: the gateway's peak RSS stays far below the body size.
        self.assertLess(self.gw.rss_peak_kb(), 160 * 1024)

    # --- protection ----------------------------------------------------------------------------

    def test_slow_client_and_oversize_header(self):
        host, port = self.gw.http.rsplit(":", 1)
        # A client that trickles its header is cut at the header timeout (1 s here).
        with socket.create_connection((host, int(port)), timeout=10) as s:
            start = time.time()
            s.sendall(b"GET / HTTP/1.1\r\n")
            closed = False
            for _ in range(40):
                try:
                    s.sendall(b"X-A: b\r\n")
                    s.settimeout(0.2)
                    if s.recv(1024) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
            self.assertTrue(closed)
            self.assertLess(time.time() - start, 5)
        # A silent connection too.
        with socket.create_connection((host, int(port)), timeout=10) as s:
            start = time.time()
            self.assertEqual(s.recv(10), b"")
            self.assertLess(time.time() - start, 5)
        c = conn(self.gw.http)
        c.request("GET", "/", headers={"Host": "a.test", "X-Big": "x" * 40000})
        self.assertEqual(c.getresponse().status, 431)
        c.close()
        self.assertEqual(get(self.gw.http, "a.test")[0], 200)

    # --- TCP -----------------------------------------------------------------------------------

    def test_tcp_route(self):
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=10) as s:
            s.sendall(b"ping")
            self.assertEqual(s.recv(100), b"t1:ping")
            s.sendall(b"again")
            self.assertEqual(s.recv(100), b"t1:again")

    def test_tcp_idle_timeout(self):
        """idle_timeout_ms 1500: a silent pair is closed on both sides, a chatty one lives on."""
        timeout = 1.5
        results = {}

        def active():
            with socket.create_connection(("127.0.0.1", self.tcp_idle_port), timeout=10) as s:
                start = time.time()
                n = 0
                while time.time() - start < 2.5 * timeout:
                    msg = b"tick%d" % n
                    s.sendall(msg)
                    got = s.recv(100)
                    if got != b"t2:" + msg:
                        results["active"] = "got %r after %.2f s" % (got, time.time() - start)
                        return
                    n += 1
                    time.sleep(0.3)
                results["active"] = "ok"

        t = threading.Thread(target=active, daemon=True)
        t.start()
        ended_before = self.tcp_idle_up.ended
        with socket.create_connection(("127.0.0.1", self.tcp_idle_port), timeout=10) as s:
            s.sendall(b"hello")
            self.assertEqual(s.recv(100), b"t2:hello")
            last = time.time()
            try:
                eof = s.recv(100)  # blocks until the gateway closes the idle pair
            except ConnectionResetError:
                eof = b""
            idle = time.time() - last
        self.assertEqual(eof, b"")
        self.assertGreaterEqual(idle, timeout - 0.1)
        self.assertLess(idle, timeout + 1.5)  # the watchdog wakes at the deadline
        # The upstream side was closed too.
        deadline = time.time() + 3
        while time.time() < deadline and self.tcp_idle_up.ended <= ended_before:
            time.sleep(0.05)
        self.assertGreater(self.tcp_idle_up.ended, ended_before)
        t.join(10)
        self.assertEqual(results.get("active"), "ok")

    # --- observability -------------------------------------------------------------------------

    def test_metrics_healthz_and_access_log(self):
        get(self.gw.http, "a.test", "/logged")
        status, health = self.gw.admin_get("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(health)["status"], "ok")
        status, metrics = self.gw.admin_get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn('berth_gateway_requests_total{kind="http",route="host-a"', metrics)
        self.assertIn("berth_gateway_request_duration_seconds_bucket", metrics)
        self.assertIn("berth_gateway_active_connections", metrics)
        self.assertIn("berth_gateway_sent_bytes_total", metrics)
        deadline = time.time() + 5
        lines = []
        while time.time() < deadline:
            with open(self.gw.access_log) as f:
                lines = [json.loads(l) for l in f if l.strip()]
            if any(l["path"] == "/logged" for l in lines):
                break
            time.sleep(0.1)
        entry = [l for l in lines if l["path"] == "/logged"][0]
        self.assertEqual(entry["route"], "host-a")
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["instance"], "a")
        self.assertRegex(entry["request_id"], r"^[0-9a-f]{32}$")
        for k in ("time", "bytes_in", "bytes_out", "duration_ms", "component"):
            self.assertIn(k, entry)


class GatewayLimitsTest(unittest.TestCase):
    def test_tcp_connect_timeout_tries_the_next_instance(self):
        """An instance that never answers the SYN (a listener with a full accept queue) costs
        connect_timeout_ms, then the next instance serves the same client connection."""
        blackhole = socket.socket()
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(0)
        fill = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(blackhole.getsockname())
            except BlockingIOError:
                pass
            fill.append(s)
        up = EchoTcp("t3")
        port = free_port()
        snap = {"revision": 1,
                "pools": {"P": {"endpoints": [
                    {"instance": "hole", "host": "127.0.0.1", "port": blackhole.getsockname()[1]},
                    {"instance": "t3", "host": "127.0.0.1", "port": up.port}]}},
                "tcp_routes": [{"id": "failover", "listen_port": port, "pool": "P",
                                "connect_timeout_ms": 300}]}
        gw = Gateway(snap)
        try:
            took = []
            for i in range(2):  # round robin: one of the two tries the black hole first
                start = time.time()
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"hi%d" % i)
                    self.assertEqual(s.recv(100), b"t3:hi%d" % i)
                took.append(time.time() - start)
            self.assertGreaterEqual(max(took), 0.25, took)
            self.assertLess(max(took), 3, took)
        finally:
            gw.close()
            up.close()
            for s in fill:
                s.close()
            blackhole.close()

    def test_body_retried_on_a_stale_pooled_connection(self):
        """An upstream that closes every keep-alive connection right after its response, without
        saying Connection: close (as an idle timeout firing does): the gateway's next request on
        that pooled connection fails before any response byte. POSTs with bodies (up to 64 KiB,
        read whole first) are sent again on a new connection, so the client sees no failure,
        whether the gateway finds the connection closed before sending (idle > 20 ms: peeked)
        or only when the upstream resets it."""
        up, gw = self.closing_upstream_gateway()
        c = conn(gw.http)
        sizes = [1, 100, 4096, 65536, 0, 30000]
        for i in range(48):
            self.post_to_closing(c, os.urandom(sizes[i % len(sizes)]), i)
            if i % 4 == 3:
                time.sleep(0.03)  # past the peek threshold: found closed before sending
        c.close()
        # Every request had its own upstream connection: the stale ones were really used.
        self.assertGreaterEqual(up.connections, 48)

    def closing_upstream_gateway(self) -> tuple["ClosingUpstream", "Gateway"]:
        """A ClosingUpstream behind a one-thread gateway on s.test (both closed at cleanup)."""
        up = ClosingUpstream()
        self.addCleanup(up.close)
        snap = {"revision": 1, "pools": {"P": {"endpoints": [up.endpoint()]}},
                "http_routes": [route("r", ["s.test"], "P")]}
        gw = Gateway(snap, "--threads", "1")
        self.addCleanup(gw.close)
        return up, gw

    def post_to_closing(self, c, body: bytes, i: int) -> dict:
        """POSTs `body` to s.test: a 200 whose size and sha256 are the body's."""
        c.request("POST", "/p", body=body, headers={"Host": "s.test"})
        r = c.getresponse()
        data = r.read()
        self.assertEqual(r.status, 200, (i, data))
        got = json.loads(data)
        self.assertEqual(got["size"], len(body))
        self.assertEqual(got["sha256"], hashlib.sha256(body).hexdigest())
        return got

    def test_streamed_body_not_sent_on_a_pooled_connection_already_closed(self):
        """A request whose body streams (over 64 KiB) cannot be sent again, so the gateway looks
        at a pooled connection before using it however briefly it was idle: one the upstream
        has closed (here just after each response, without saying Connection: close) is left
        for a new one, and the request succeeds."""
        up, gw = self.closing_upstream_gateway()
        c = conn(gw.http)
        for i in range(12):
            self.post_to_closing(c, os.urandom(100_000 + i), i)
            # The upstream has closed that connection before the next request comes
            # (well within the 20 ms after which every pooled connection is looked at).
            deadline = time.monotonic() + 5
            while up.closed < i + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
        c.close()
        self.assertGreaterEqual(up.connections, 12)

    def test_ends_that_come_with_the_last_bytes(self):
        """A peer's close that arrives together with its last bytes is still seen: the gateway
        reads only when epoll says a socket is readable (FastSocket), and such a close raises no
        further event. A close-delimited body ends when the upstream closes and an upstream that
        closes inside its header is a 502, at once (not at the header timeout); a client that
        sends its request and shuts its side gets the answer and then the close within about a
        second (the watchdog's look), not at the 60 s idle timeout."""
        up = CloseDelimitedUpstream()
        snap = {"revision": 1, "pools": {"P": {"endpoints": [up.endpoint()]}},
                "http_routes": [route("r", ["eof.test"], "P")]}
        gw = Gateway(snap, "--threads", "1", "--idle-timeout-ms", "60000")  # upstream header: 30 s
        try:
            for i in range(1, 21):
                # socket timeouts well under the gateway's: a missed close fails here
                c = conn(gw.http, timeout=5)
                c.request("GET", "/", headers={"Host": "eof.test"})
                r = c.getresponse()
                body = r.read()
                if i % 4 == 0:
                    self.assertEqual(r.status, 502, (i, body))
                else:
                    self.assertEqual((r.status, body), (200, b"until-close-%d" % i), i)
                    self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
                c.close()
            host, port = gw.http.rsplit(":", 1)
            for i in range(10):
                with socket.create_connection((host, int(port)), timeout=5) as s:
                    s.sendall(b"GET /h HTTP/1.1\r\nHost: a.test\r\n\r\n")
                    s.shutdown(socket.SHUT_WR)
                    got = b""
                    while True:
                        part = s.recv(65536)  # socket.timeout here: the close never came
                        if not part:
                            break
                        got += part
                    self.assertTrue(got.startswith(b"HTTP/1.1 404"), got[:100])
        finally:
            gw.close()
            up.close()

    def test_max_connections_and_port_conflict(self):
        up = Upstream("solo")
        snap = {"revision": 1, "pools": {"P": pool(up)}, "http_routes": [route("r", ["s.test"], "P")]}
        gw = Gateway(snap, "--max-connections", "2")
        try:
            held = [conn(gw.http), conn(gw.http)]
            for c in held:
                self.assertEqual(get(gw.http, "s.test", c=c)[0], 200)
            host, port = gw.http.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: s.test\r\n\r\n")
                try:
                    self.assertEqual(s.recv(100), b"")  # closed at accept
                except ConnectionResetError:
                    pass
            held.pop().close()
            deadline = time.time() + 5
            status = None
            while time.time() < deadline:
                try:
                    status = get(gw.http, "s.test")[0]
                    break
                except (ConnectionError, http.client.HTTPException):
                    time.sleep(0.05)
            self.assertEqual(status, 200)
            for c in held:
                c.close()
            # Another process cannot silently share the port (SO_REUSEPORT): a clear error.
            p = subprocess.run([harness_bin(), "--http", gw.http], capture_output=True,
                               timeout=30, preexec_fn=harness._die_with_parent)
            self.assertNotEqual(p.returncode, 0)
            err = json.loads(p.stderr.decode().strip().splitlines()[-1])
            self.assertEqual(err["field"], "http")
            self.assertIn(gw.http, err["message"])
        finally:
            gw.close()
            up.close()


# ---------------------------------------------------------------------------------------------
# Request framing (issue 24): raw bytes in, the exact bytes the app receives checked.

class RawUpstream:
    """An upstream that records the exact bytes of every request it reads and answers each with
    those bytes as its body. It delimits requests strictly (RFC 9112: Content-Length or chunked,
    refusing both), as an app would."""

    def __init__(self):
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket):
        f = c.makefile("rb")
        try:
            while True:
                raw = b""
                while True:
                    line = f.readline(65536)
                    if not line:
                        return
                    raw += line
                    if line in (b"\r\n", b"\n"):
                        break
                head = raw.decode("latin-1").split("\r\n")
                fields = [h.split(":", 1) for h in head[1:] if ":" in h]
                te = [v.strip().lower() for k, v in fields if k.strip().lower() == "transfer-encoding"]
                cl = [v.strip() for k, v in fields if k.strip().lower() == "content-length"]
                if te and cl:
                    return  # an app refuses this; the gateway must never send it
                if te:
                    while True:
                        size_line = f.readline()
                        raw += size_line
                        n = int(size_line.split(b";")[0], 16)
                        if n == 0:
                            while True:
                                t = f.readline()
                                raw += t
                                if t in (b"\r\n", b"\n", b""):
                                    break
                            break
                        raw += f.read(n + 2)
                elif cl:
                    raw += f.read(int(cl[0]))
                with self.lock:
                    self.requests.append(raw)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def endpoint(self) -> dict:
        return {"instance": "raw", "host": "127.0.0.1", "port": self.port}

    def close(self):
        self.sock.close()


def read_responses(s: socket.socket, timeout: float = 10) -> list[tuple[int, dict, bytes]]:
    """Reads responses (Content-Length framed) until the gateway closes the connection."""
    s.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        assert end >= 0, data
        head = data[:end].decode("latin-1").split("\r\n")
        fields = {}
        for h in head[1:]:
            k, v = h.split(":", 1)
            fields[k.strip().lower()] = v.strip()
        n = int(fields.get("content-length", "0"))
        out.append((int(head[0].split()[1]), fields, data[end + 4:end + 4 + n]))
        data = data[end + 4 + n:]
    return out


# Fields the gateway adds to every request, with values that change from run to run.
ADDED = (b"x-forwarded-for:", b"x-forwarded-proto:", b"x-forwarded-host:", b"x-request-id:")


def without_added(raw: bytes) -> bytes:
    lines = raw.split(b"\r\n")
    return b"\r\n".join(l for l in lines if not l.lower().startswith(ADDED))


class GatewayFramingTest(unittest.TestCase):
    """A request whose end or host the gateway and the app could read differently is refused
    before it reaches the app (RFC 9112 §3.2, §6; nginx and haproxy do the same), and what
    reaches the app is exactly what the gateway decided (docs/gateway.md "Request framing")."""

    @classmethod
    def setUpClass(cls):
        cls.up = RawUpstream()
        snap = {"revision": 1, "pools": {"RAW": pool(cls.up)},
                "http_routes": [route("framing", ["fr.test"], "RAW"),
                                route("other", ["other.test"], "RAW", path_prefix="/never")]}
        cls.gw = Gateway(snap, "--header-timeout-ms", "2000")

    @classmethod
    def tearDownClass(cls):
        cls.gw.close()
        cls.up.close()

    def exchange(self, raw: bytes) -> list[tuple[int, dict, bytes]]:
        host, port = self.gw.http.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            return read_responses(s)

    def assert_refused(self, raw: bytes, status: int = 400, why: str = ""):
        before = self.up.count()
        got = self.exchange(raw)
        self.assertEqual(len(got), 1, f"one answer, then the connection closes: {got}")
        self.assertEqual(got[0][0], status, got)
        self.assertEqual(got[0][1].get("connection"), "close")
        if why:
            self.assertIn(why, got[0][1].get("x-berth-reason", ""))
        self.assertEqual(self.up.count(), before, "nothing of it reached the app")

    def assert_forwarded(self, raw: bytes, expect: bytes, chunked_body: bytes | None = None):
        """The app received `expect` (minus the fields the gateway adds); with `chunked_body`,
        `expect` is the header and the body is a chunked encoding of `chunked_body` with no
        trailer (where the gateway cuts chunks is its own business)."""
        got = self.exchange(raw)
        self.assertEqual([g[0] for g in got], [200], got)
        received = without_added(got[0][2])
        if chunked_body is None:
            self.assertEqual(received, expect)
            return
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertEqual(head + b"\r\n\r\n", expect)
        decoded = b""
        while True:
            size_line, _, body = body.partition(b"\r\n")
            n = int(size_line, 16)  # no chunk extensions either
            if n == 0:
                self.assertEqual(body, b"\r\n", "no trailer")
                break
            decoded += body[:n]
            self.assertEqual(body[n:n + 2], b"\r\n")
            body = body[n + 2:]
        self.assertEqual(decoded, chunked_body)

    SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: fr.test\r\n\r\n"

    def test_final_coding_not_chunked_is_refused(self):
        # Before: accepted with an empty body, the header forwarded, the next bytes a request.
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: gzip\r\n\r\n"
                            + self.SMUGGLED, why="final transfer coding is not chunked")
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: chunked, gzip"
                            b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + self.SMUGGLED)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: chunked, chunked"
                            b"\r\n\r\n0\r\n\r\n", why="more than once")
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: gzip, chunked"
                            b"\r\n\r\n0\r\n\r\n", 501, why="gzip is not supported")
        self.assert_refused(b"POST / HTTP/1.0\r\nHost: fr.test\r\nTransfer-Encoding: chunked"
                            b"\r\n\r\n0\r\n\r\n", why="HTTP/1.0")

    def test_transfer_encoding_with_content_length_is_refused(self):
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: gzip\r\n"
                            b"Content-Length: 5\r\n\r\nhello" + self.SMUGGLED)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: chunked\r\n"
                            b"Content-Length: 5\r\n\r\n0\r\n\r\n" + self.SMUGGLED)
        self.assert_refused(b"POST / HTTP/1.1\r\nHost: fr.test\r\nContent-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + self.SMUGGLED)

    def test_host_rules(self):
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: fr.test\r\nHost: other.test\r\n\r\n",
                            why="more than one Host")
        self.assert_refused(b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", why="no Host")
        self.assert_refused(b"GET / HTTP/1.1\r\nHost: evil@fr.test\r\n\r\n", why="invalid Host")
        self.assert_refused(b"CONNECT fr.test:443 HTTP/1.1\r\nHost: fr.test:443\r\n\r\n",
                            why="invalid request target")

    def test_absolute_form_routes_by_its_authority(self):
        # Before: routed by Host (other.test: no route for "/x" → 404) while the app would
        # have seen another authority.
        self.assert_forwarded(
            b"GET http://fr.test:8080/x?y=1 HTTP/1.1\r\nHost: other.test\r\nX-A: 1\r\n\r\n",
            b"GET /x?y=1 HTTP/1.1\r\nX-A: 1\r\nHost: fr.test:8080\r\n\r\n")

    def test_exact_bytes_the_app_receives(self):
        self.assert_forwarded(
            b"POST /c HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: Chunked\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"POST /c HTTP/1.1\r\nHost: fr.test\r\nTransfer-Encoding: chunked\r\n\r\n",
            chunked_body=b"abcde")
        self.assert_forwarded(
            b"POST /l HTTP/1.1\r\nHost: fr.test\r\nContent-Length: 5, 5\r\n\r\nhello",
            b"POST /l HTTP/1.1\r\nHost: fr.test\r\nContent-Length: 5\r\n\r\nhello")
        # Hop-by-hop fields and those Connection names go; Connection cannot remove the
        # framing or Host the gateway forwards.
        self.assert_forwarded(
            b"POST /h HTTP/1.1\r\nHost: fr.test\r\nConnection: keep-alive, Content-Length, Host, "
            b"X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
            b"TE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok",
            b"POST /h HTTP/1.1\r\nHost: fr.test\r\nContent-Length: 2\r\n\r\nok")

    def test_keep_alive_goes_on_after_a_good_request(self):
        got = self.exchange(b"GET /1 HTTP/1.1\r\nHost: fr.test\r\n\r\n"
                            b"GET /2 HTTP/1.1\r\nHost: fr.test\r\n\r\n")
        self.assertEqual([g[0] for g in got], [200, 200])
        self.assertTrue(got[1][2].startswith(b"GET /2 HTTP/1.1\r\n"))


if __name__ == "__main__":
    unittest.main()
