"""Black-box test harness for berth: starts the real `berth` binary on loopback and talks to it.

Stdlib only (Python 3.11). The binary comes from $BERTH_BIN (set by ctest); when unset, the
first existing build/{it,asan,release}/berth of the repository is used.

Every process started here is tracked by PID and killed by PID when the test (or the Python
process) ends, whatever happened; children also get PR_SET_PDEATHSIG=SIGKILL so a killed test
runner cannot leave a server behind.
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
from typing import Any

ADMIN_PASSWORD = "admin-pass-123"
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 15.0
HTTP_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 60.0

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def berth_bin() -> str:
    path = os.environ.get("BERTH_BIN")
    if path:
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"BERTH_BIN={path!r} is not an executable file")
        return path
    for sub in ("it", "asan", "release"):
        cand = os.path.join(_REPO, "build", sub, "berth")
        if os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("set BERTH_BIN to the path of the berth binary")


# ---------------------------------------------------------------------------------------------
# Process bookkeeping: only processes started here, only by PID.

_live: dict[int, subprocess.Popen] = {}


def _kill_all_live() -> None:
    for pid, proc in list(_live.items()):
        if proc.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        _live.pop(pid, None)


atexit.register(_kill_all_live)

_libc = None


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the test process dies."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "<none>"
    text = data.decode("utf-8", "replace")
    return text[-limit:] if len(text) > limit else text


# ---------------------------------------------------------------------------------------------
# HTTP

class Response(tuple):
    """(status, body, headers) where body is parsed JSON when it parses, else text."""

    @property
    def status(self) -> int:
        return self[0]

    @property
    def body(self) -> Any:
        return self[1]

    @property
    def headers(self):
        return self[2]


def http_request(base_url: str, method: str, path: str, body: Any = None, token: str | None = None,
                 headers: dict | None = None, raw_body: bytes | str | None = None,
                 timeout: float = HTTP_TIMEOUT_S) -> Response:
    """One request on a fresh loopback connection. Never raises for HTTP errors."""
    u = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    hdrs = {}
    data: bytes | None = None
    if raw_body is not None:
        data = raw_body.encode() if isinstance(raw_body, str) else raw_body
        hdrs["Content-Type"] = "application/json"
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if headers:
        hdrs.update(headers)
    if data is None and method in ("POST", "PUT", "PATCH"):
        hdrs.setdefault("Content-Length", "0")
    try:
        try:
            conn.request(method, path, body=data, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (e.g. 413) and close before reading the whole body.
            pass
        resp = conn.getresponse()
        raw = resp.read()
        text = raw.decode("utf-8", "replace")
        parsed: Any = text
        if raw:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        return Response((resp.status, parsed, resp.headers))
    finally:
        conn.close()


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def connect_in(netns: str | None, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to host:port made inside the network namespace `netns` (a file, such as
    an instance's "netns": its team's network), or on this host's network when None. A helper
    thread enters the namespace, connects and ends; the socket stays in the namespace."""
    if not netns:
        return socket.create_connection((host, port), timeout=timeout)
    result: dict = {}

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result["sock"] = socket.create_connection((host, port), timeout=timeout)
        except Exception as e:  # handed to the caller
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["sock"]


def team_networks_dir(data_dir: str) -> str:
    """Where a server keeps its team networks (app/server.cc: /run/berth/<FNV-1a of the data
    dir>/netns)."""
    h = 1469598103934665603
    for c in os.path.realpath(data_dir).encode():
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"/run/berth/{h:016x}/netns"


def release_team_networks(data_dir: str) -> None:
    """Unbinds and removes the team networks of the server that used `data_dir`."""
    d = team_networks_dir(data_dir)
    if not os.path.isdir(d):
        return
    for name in os.listdir(d):
        path = os.path.join(d, name)
        _libc.umount2(path.encode(), 2)  # MNT_DETACH
        try:
            os.unlink(path)
        except OSError:
            pass
    shutil.rmtree(os.path.dirname(d), ignore_errors=True)


def release_mounts(root: str) -> None:
    """Unmounts (lazily, deepest first) every mount under `root`: the teams' disks a sandboxing
    server mounted in its data dir (sandbox/team_disk.h), so the directory can be removed."""
    root = os.path.realpath(root)
    points = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(root + os.sep):
                    points.append(point)
    except OSError:
        return
    for point in sorted(points, key=len, reverse=True):
        _libc.umount2(point.encode(), 2)  # MNT_DETACH


def reap_runtime(root: str) -> None:
    """Kills every instance process a server under `root` started and left running.

    Instances and the gateway outlive `berth server` by design (they are detached), so a test
    server's cleanup must end them itself: shims and gateways are recognised by their command
    line (`berth shim --dir <under root>`, `berth gateway ... --state <under root>`), apps by
    their working directory (under root); all by PID, read from /proc, never by name."""
    root = os.path.realpath(root)

    def under_root(path: str) -> bool:
        path = path.removesuffix(" (deleted)")
        return path == root or path.startswith(root + os.sep)

    victims = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        is_shim = len(args) >= 4 and args[1] == "shim" and args[2] == "--dir" \
            and under_root(os.path.realpath(args[3]))
        is_gateway = len(args) >= 4 and args[1] == "gateway" and any(
            a == "--state" and under_root(os.path.realpath(b)) for a, b in zip(args, args[1:]))
        if is_shim or is_gateway or under_root(cwd):
            victims.append(pid)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The server

class ServerError(AssertionError):
    pass


class BerthServer:
    """A `berth server` on a temporary data dir, loopback only.

    with BerthServer() as srv:
        token = srv.login()
        status, body, headers = srv.api("GET", "/api/v1/teams", token=token)
    """

    def __init__(self, admin_password: str | None = ADMIN_PASSWORD, data_dir: str | None = None,
                 extra_args: tuple | list = (), env: dict | None = None, log_level: str = "warn",
                 start: bool = True, gateway: bool = False,
                 gateway_admin: str | None = "127.0.0.1:0"):
        self.bin = berth_bin()
        self.tmp = tempfile.mkdtemp(prefix="berth-it-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        if data_dir is None:
            os.makedirs(self.data_dir, mode=0o700)
        self.admin_password = admin_password
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.log_level = log_level
        # The gateway process (`berth gateway`, started by the server) is off unless a test
        # asks for it; when on, every listener is on a free port (parallel tests).
        self.gateway = gateway
        # None: the server's default (a free port recorded in DATA/gateway/admin-address).
        self.gateway_admin = gateway_admin
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.runs = 0
        self.stdout_path = ""
        self.stderr_path = ""
        self.last_exit_code: int | None = None
        self._cli_home = os.path.join(self.tmp, "home")
        os.makedirs(self._cli_home, exist_ok=True)
        self.cli_config = os.path.join(self.tmp, "cli-config.json")
        self._closed = False
        if start:
            try:
                self.start()
            except BaseException:
                self.close()  # nobody else holds this object yet
                raise

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def server_env(self) -> dict:
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("BERTH_"):
                del env[k]
        if self.admin_password is not None:
            env["BERTH_ADMIN_PASSWORD"] = self.admin_password
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        admin = ["--gateway-admin", self.gateway_admin] if self.gateway_admin is not None else []
        gateway = admin if self.gateway else ["--gateway", "off"]
        # Only root can sandbox (docs/security.md); run by another user, the suite still tests
        # everything else (test_sandbox.py skips).
        sandbox = [] if os.geteuid() == 0 or "--sandbox" in self.extra_args else ["--sandbox", "off"]
        return [self.bin, "server", "--data", self.data_dir, "--api", "127.0.0.1:0",
                "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", *gateway,
                "--log-level", self.log_level, *sandbox, *self.extra_args]

    def spawn(self, cmd: list[str] | None = None, env: dict | None = None,
              tag: str = "server") -> tuple[subprocess.Popen, str, str]:
        """Starts a process (tracked, killed by PID at cleanup). Returns (proc, out, err) paths."""
        self.runs += 1
        out = os.path.join(self.tmp, f"{tag}-{self.runs}.stdout")
        err = os.path.join(self.tmp, f"{tag}-{self.runs}.stderr")
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen(cmd or self.command(), stdin=subprocess.DEVNULL, stdout=fo,
                                    stderr=fe, env=env or self.server_env(), cwd=self.tmp,
                                    preexec_fn=_die_with_parent)
        _live[proc.pid] = proc
        return proc, out, err

    def start(self, timeout: float = START_TIMEOUT_S) -> "BerthServer":
        if self.proc is not None and self.proc.poll() is None:
            raise ServerError("server already running")
        self.url = None
        self.port = None
        t0 = time.monotonic()
        self.proc, self.stdout_path, self.stderr_path = self.spawn()
        self.started_at = t0
        deadline = t0 + timeout
        info_path = os.path.join(self.data_dir, "server.json")
        last_info = None
        last_err = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                _live.pop(self.proc.pid, None)
                raise ServerError(
                    f"berth server exited early with code {rc} (cmd: {' '.join(self.command())})"
                    f"\n--- stderr tail ---\n{_tail(self.stderr_path)}"
                    f"\n--- stdout tail ---\n{_tail(self.stdout_path)}")
            if self.url is None:
                try:
                    with open(info_path) as f:
                        last_info = f.read()
                    info = json.loads(last_info)
                    if info.get("pid") == self.proc.pid and str(info.get("api", "")).startswith(
                            "http://"):
                        self.url = info["api"].rstrip("/")
                        u = urllib.parse.urlsplit(self.url)
                        self.host, self.port = u.hostname, u.port
                except (OSError, ValueError):
                    pass
            if self.url is not None:
                try:
                    st = http_request(self.url, "GET", "/readyz", timeout=2)[0]
                    if st == 200:
                        self.ready_after_s = time.monotonic() - t0
                        return self
                    last_err = f"/readyz answered {st}"
                except OSError as e:
                    last_err = f"/readyz: {e}"
            if time.monotonic() > deadline:
                self._hard_kill()
                raise ServerError(
                    f"berth server not ready within {timeout:.0f}s "
                    f"(server.json: {last_info!r}; expected pid {self.proc.pid}; {last_err})"
                    f"\n--- stderr tail ---\n{_tail(self.stderr_path)}")
            time.sleep(0.02)

    def _hard_kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _live.pop(self.proc.pid, None)

    def stop(self, sig: int = signal.SIGTERM, grace: float = STOP_GRACE_S,
             check: bool = True) -> int:
        """Graceful stop: `sig`, then SIGKILL after `grace` seconds. With `check`, a non-zero
        exit code (ASan/LSan report, crash, slow shutdown) raises with the stderr tail."""
        if self.proc is None:
            return 0
        proc = self.proc
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._hard_kill()
                self.last_exit_code = proc.returncode
                self.proc = None
                if check:
                    raise ServerError(
                        f"berth server (pid {proc.pid}) did not exit within {grace:.0f}s of "
                        f"{signal.Signals(sig).name}; killed with SIGKILL"
                        f"\n--- stderr tail ---\n{_tail(self.stderr_path)}")
                return proc.returncode
        _live.pop(proc.pid, None)
        rc = proc.returncode
        self.last_exit_code = rc
        self.proc = None
        if check and rc != 0:
            err = _tail(self.stderr_path, 8000)
            what = "exit code"
            if "LeakSanitizer" in err:
                what = "LeakSanitizer reported leaks; exit code"
            elif "AddressSanitizer" in err or "runtime error:" in err:
                what = "sanitizer error; exit code"
            raise ServerError(
                f"berth server (pid {proc.pid}) stopped by {signal.Signals(sig).name} with "
                f"{what} {rc} (expected 0)\n--- stderr tail ---\n{err}")
        return rc

    def kill9(self) -> None:
        if self.proc is None:
            return
        proc = self.proc
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        _live.pop(proc.pid, None)
        self.last_exit_code = proc.returncode
        self.proc = None

    def restart(self, **kw) -> "BerthServer":
        self.stop()
        return self.start(**kw)

    def close(self) -> None:
        """Always safe: kills what is left, removes the temp dir."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop(check=False, grace=5)
        finally:
            self._hard_kill()
            reap_runtime(self.tmp)
            if not os.path.realpath(self.data_dir).startswith(os.path.realpath(self.tmp) + os.sep):
                reap_runtime(self.data_dir)
            release_team_networks(self.data_dir)
            release_mounts(self.tmp)
            release_mounts(self.data_dir)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "BerthServer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.proc is not None and self.proc.poll() is None:
                self.stop()  # checks the exit code
        finally:
            self.close()

    def gateway_info(self, timeout: float = START_TIMEOUT_S, not_pid: int | None = None) -> dict:
        """DATA/gateway/gateway.json of a live gateway ({"pid", "http", "https", "admin", ...}),
        waiting for it to listen; `not_pid` waits for another gateway than that one."""
        path = os.path.join(self.data_dir, "gateway", "gateway.json")
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    last = json.load(f)
                pid = int(last.get("pid", 0))
                if pid != not_pid and pid > 0 and os.path.exists(f"/proc/{pid}/cmdline"):
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        args = f.read().split(b"\0")
                    if len(args) > 1 and args[1] == b"gateway":
                        return last
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        log = _tail(os.path.join(self.data_dir, "gateway", "gateway.log"))
        raise ServerError(f"no gateway listening within {timeout:.0f}s (gateway.json: {last!r})"
                          f"\n--- gateway.log tail ---\n{log}")

    def stderr_text(self) -> str:
        return _tail(self.stderr_path, 1 << 20)

    def stdout_text(self) -> str:
        return _tail(self.stdout_path, 1 << 20)

    # -- clients -----------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, token: str | None = None,
            headers: dict | None = None, raw_body: bytes | str | None = None,
            timeout: float = HTTP_TIMEOUT_S) -> Response:
        if self.url is None:
            raise ServerError("server not running")
        return http_request(self.url, method, path, body=body, token=token, headers=headers,
                            raw_body=raw_body, timeout=timeout)

    def login(self, user: str = "admin", password: str | None = None) -> str:
        if password is None:
            password = self.admin_password
        st, body, _ = self.api("POST", "/api/v1/login", {"user": user, "password": password})
        if st != 200 or not isinstance(body, dict) or not body.get("token"):
            raise AssertionError(f"login as {user!r} failed: {st} {body!r}")
        return body["token"]

    def cli(self, *args: str, input: str | None = None, config: str | None = None,
            env: dict | None = None, timeout: float = CLI_TIMEOUT_S
            ) -> subprocess.CompletedProcess:
        """Runs `berth ARGS` with BERTH_CONFIG=config (default: this server's temp config)."""
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("BERTH_") and k != "BERTH_BIN":
                del e[k]
        e["HOME"] = self._cli_home
        e["BERTH_CONFIG"] = config or self.cli_config
        if env:
            e.update(env)
        return run_cli(self.bin, list(args), input=input, env=e, timeout=timeout)


def run_cli(binary: str, args: list[str], input: str | None, env: dict,
            timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([binary, *args], stdin=subprocess.PIPE if input is not None
                            else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True,
                            preexec_fn=_die_with_parent)
    _live[proc.pid] = proc
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"`berth {' '.join(args)}` did not finish within {timeout}s;"
                             f" stderr: {err[-2000:]}")
    finally:
        _live.pop(proc.pid, None)
    return subprocess.CompletedProcess([binary, *args], proc.returncode, out, err)


# ---------------------------------------------------------------------------------------------
# unittest helpers

class BerthTestCase(unittest.TestCase):
    """One server per test class (started in setUpClass, checked and removed at the end)."""

    server_kwargs: dict = {}
    srv: BerthServer
    admin: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = BerthServer(**cls.server_kwargs)
        cls.addClassCleanup(cls.srv.close)
        cls.admin = cls.srv.login()

    @classmethod
    def tearDownClass(cls) -> None:
        # A clean SIGTERM stop with exit code 0 is part of what every test file checks
        # (sanitizer leak reports make the exit code non-zero).
        cls.srv.stop()

    # shortcuts
    def api(self, method, path, body=None, token=None, **kw) -> Response:
        return self.srv.api(method, path, body, token=self.admin if token is None else token,
                            **kw)

    def anon(self, method, path, body=None, **kw) -> Response:
        return self.srv.api(method, path, body, **kw)

    def assertStatus(self, resp: Response, status: int | tuple, code: str | None = None,
                     msg: str = "") -> Any:
        st, body, _ = resp
        ok = st in status if isinstance(status, tuple) else st == status
        self.assertTrue(ok, f"{msg} expected HTTP {status}"
                        f"{' ' + code if code else ''}, got {st}: {body!r}")
        if code is not None:
            self.assertIsInstance(body, dict, f"{msg} error body is not a JSON object: {body!r}")
            self.assertEqual(body.get("code"), code, f"{msg} error code; body {body!r}")
            self.assertIsInstance(body.get("message"), str, f"{msg} error message: {body!r}")
            self.assertTrue(body["message"], f"{msg} empty error message: {body!r}")
        return body

    def ok(self, resp: Response, status: int | tuple = 200, msg: str = "") -> Any:
        return self.assertStatus(resp, status, msg=msg)

    def list_all(self, path: str, token: str | None = None, limit: int = 500) -> list:
        """Follows `next` through every page of a collection."""
        items: list = []
        after = ""
        sep = "&" if "?" in path else "?"
        for _ in range(1000):
            q = f"{path}{sep}limit={limit}"
            if after:
                q += "&after=" + urllib.parse.quote(after, safe="")
            body = self.ok(self.api("GET", q, token=token), msg=f"GET {q}")
            items.extend(body["items"])
            after = body.get("next") or ""
            if not after:
                return items
        raise AssertionError(f"pagination of {path} did not end")

    def names(self, path: str, token: str | None = None) -> list[str]:
        return [i["name"] for i in self.list_all(path, token=token)]

    def make_user(self, name: str, password: str | None = None, admin: bool = False) -> str:
        """Creates a user (as the platform admin) and returns a login token for it."""
        password = password or f"{name}-pass-123"
        self.ok(self.api("POST", "/api/v1/users",
                         {"name": name, "password": password, "admin": admin}), 201,
                msg=f"create user {name}")
        return self.srv.login(name, password)

    def make_team(self, name: str, token: str | None = None) -> dict:
        return self.ok(self.api("POST", "/api/v1/teams", {"name": name}, token=token), 201,
                       msg=f"create team {name}")

    def add_member(self, team: str, user: str, role: str, token: str | None = None) -> dict:
        return self.ok(self.api("POST", f"/api/v1/teams/{team}/members",
                                {"user": user, "role": role}, token=token), 201,
                       msg=f"add {user} to {team} as {role}")

    def make_app(self, team: str, name: str, token: str | None = None, **fields) -> dict:
        return self.ok(self.api("POST", f"/api/v1/teams/{team}/apps", {"name": name, **fields},
                                token=token), 201, msg=f"create app {team}/{name}")

    def make_component(self, team: str, app: str, name: str, token: str | None = None,
                       **fields) -> dict:
        return self.ok(self.api("POST", f"/api/v1/teams/{team}/apps/{app}/components",
                                {"name": name, **fields}, token=token), 201,
                       msg=f"create component {team}/{app}/{name}")


def free_port() -> int:
    return _free_port()
