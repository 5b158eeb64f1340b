#!/usr/bin/env python3
"""Measures berth's start-to-ready time: from exec of `berth server` to the first 200 of
GET /readyz, polling every millisecond. Prints the milliseconds on stdout, then stops the
server with SIGTERM (SIGKILL after 10 s) and waits for it.

Usage: ready_time.py BERTH_BIN DATA_DIR
"""
import http.client
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    binary, data = sys.argv[1], sys.argv[2]
    port = free_port()
    env = dict(os.environ, BERTH_ADMIN_PASSWORD=os.environ.get("BERTH_ADMIN_PASSWORD",
                                                                "bench-pass-123"))
    cmd = [binary, "server", "--data", data, "--api", f"127.0.0.1:{port}",
           "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--gateway", "off",
           "--log-level", "warn"]
    log = open(os.path.join(os.path.dirname(data.rstrip("/")) or ".", "ready_time.log"), "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    ms = None
    try:
        deadline = t0 + 30
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                print(f"ready_time: server exited with {proc.returncode}", file=sys.stderr)
                return 1
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/readyz")
                st = c.getresponse().status
                c.close()
                if st == 200:
                    ms = (time.perf_counter() - t0) * 1000
                    break
            except OSError:
                pass
            time.sleep(0.001)
        if ms is None:
            print("ready_time: not ready within 30 s", file=sys.stderr)
            return 1
        print(f"{ms:.1f}")
        return 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
