"""`berth logs -f` as people use it (issue 21, item 1): the CLI runs as a subprocess, the test
reads its stdout line by line as it comes, then interrupts it (SIGINT, as Ctrl-C does).

Follow prints the backlog (`--tail N`) at once and then each new line within about a second,
for a service's instances, a job's runs and a build's log. Before the fix the CLI printed
nothing until 8 KiB had arrived and failed after 60 s ("the stream broke").

Services and jobs here are shell commands in an empty working directory (versions with no
artifact, as in test_jobs.py); every process the runtime starts is killed by PID in the
cleanups (test_jobs.JobReaper).
"""

import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import _die_with_parent, _live
from test_jobs import MARK, JobCase
from test_runtime import V, wait_for

# A new line must reach the terminal within this many seconds of being written (the CLI
# prints each chunk as the server sends it; the server follows files about every 250 ms). The
# slack over "within a second" is for a loaded 2-core machine running ASan builds.
NEW_LINE_S = 2.0


class FollowedCli:
    """`berth ARGS` with stdout read by a thread; lines() waits for them with deadlines."""

    def __init__(self, srv, *args: str):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("BERTH_") and k != "BERTH_BIN":
                del env[k]
        env["BERTH_CONFIG"] = srv.cli_config
        self.args = args
        self.proc = subprocess.Popen([srv.bin, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, preexec_fn=_die_with_parent)
        _live[self.proc.pid] = self.proc
        self.lines_q: queue.Queue = queue.Queue()
        self.all: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines_q.put((time.time(), line.rstrip("\n")))
        self.lines_q.put(None)

    def next(self, timeout: float) -> tuple[float, str] | None:
        """The next line (arrival time, text), None at EOF; fails after `timeout` seconds."""
        try:
            item = self.lines_q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"`berth {' '.join(self.args)}` printed no line within {timeout:.1f}s; "
                f"so far: {[l for _, l in self.all]!r}; stderr: {self.stderr_now()!r}") from None
        if item is not None:
            self.all.append(item)
        return item

    def stderr_now(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def interrupt(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        _live.pop(self.proc.pid, None)
        return self.proc.returncode

    def close(self) -> None:
        self.interrupt()
        self.reader.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


def tick_of(line: str, word: str) -> int:
    m = re.search(word + r"-(\d+)", line)
    if not m:
        raise AssertionError(f"not a {word} line: {line!r}")
    return int(m.group(1))


class LogsFollowTest(JobCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        r = cls.srv.cli("login", "--server", cls.srv.url, "--user", "admin", "--password-stdin",
                        input=cls.srv.admin_password + "\n")
        assert r.returncode == 0, r.stderr

    def follow(self, *args: str) -> FollowedCli:
        f = FollowedCli(self.srv, *args)
        self.addCleanup(f.close)
        return f

    def log_lines(self, app: str, comp: str, word: str) -> list[str]:
        st, body, _ = self.api("GET", self.path(app, comp) + f"/logs?grep={word}")
        self.assertEqual(st, 200, body)
        text = body if isinstance(body, str) else ""
        return [l for l in text.splitlines() if word in l]

    def check_backlog_then_live(self, f: FollowedCli, word: str, backlog: int) -> None:
        # The backlog: the last `backlog` lines written before the CLI started, at once.
        old = []
        for _ in range(backlog):
            item = f.next(timeout=15)
            self.assertIsNotNone(item, f"the stream ended in the backlog: {f.all}")
            old.append(tick_of(item[1], word))
        self.assertEqual(old, list(range(old[0], old[0] + backlog)), f.all)
        # Then new lines, each printed soon after it was written: the line's own timestamp
        # (the CLI prints "TIME INSTANCE LINE") against the moment the test read it.
        seen = old[-1]
        for _ in range(3):
            item = f.next(timeout=NEW_LINE_S + 2)
            self.assertIsNotNone(item, f"the stream ended: {f.all}")
            arrived, line = item
            n = tick_of(line, word)
            self.assertGreater(n, seen, f.all)
            seen = n
            written = line.split(" ", 1)[0]
            lag = arrived - parse_rfc3339(written)
            self.assertLess(lag, NEW_LINE_S, f"{line!r} reached the terminal {lag:.2f}s after "
                                             f"it was written")

    def test_service_logs_follow_prints_backlog_then_new_lines(self):
        self.job("follow", "ticker",
                 "i=0; while :; do echo svc-tick-$i; i=$((i+1)); sleep 0.3; done",
                 kind="service")
        wait_for(lambda: len(self.log_lines("follow", "ticker", "svc-tick")) >= 4,
                 "four lines in the service's log")
        f = self.follow("logs", "ticker", "--app", "follow", "-f", "--tail", "3")
        self.check_backlog_then_live(f, "svc-tick", 3)
        # Until interrupted: the CLI still runs, and Ctrl-C ends it.
        self.assertIsNone(f.proc.poll(), "berth logs -f ended by itself")
        f.interrupt()

    def test_job_logs_follow_prints_backlog_then_new_lines(self):
        self.job("follow", "counter",
                 "i=0; while [ $i -lt 200 ]; do echo job-tick-$i; i=$((i+1)); sleep 0.3; done",
                 kind="job")
        wait_for(lambda: len(self.log_lines("follow", "counter", "job-tick")) >= 3,
                 "three lines in the job's log")
        f = self.follow("logs", "counter", "--app", "follow", "--follow", "--tail", "2",
                        "--instance", "counter-run-1")
        self.check_backlog_then_live(f, "job-tick", 2)

    def test_build_log_follow_prints_lines_while_the_build_runs(self):
        src = tempfile.mkdtemp(prefix="follow-src-", dir=self.srv.tmp)
        with open(os.path.join(src, "index.html"), "w") as fh:
            fh.write("<h1>hi</h1>\n")
        # A build command that writes a line, then takes a while, then another.
        marker = os.path.join(src, "go-on")
        command = (f"echo build-step-one; i=0; while [ ! -e {marker} ] && [ $i -lt 300 ]; "
                   f"do sleep 0.1; i=$((i+1)); done; echo build-step-two")
        if self.api("GET", f"{V}/apps/follow").status == 404:
            self.make_app("default", "follow")
            self.addCleanup(self.api, "DELETE", f"{V}/apps/follow")
        self.make_component("default", "follow", "site", source={"type": "dir", "path": src},
                            build={"command": command})
        v = self.ok(self.api("POST", self.path("follow", "site") + "/builds", {}), 201)
        f = self.follow("logs", "site", "--app", "follow", "--build", v["name"], "-f")
        # The first line comes while the build still waits for the marker.
        deadline = time.monotonic() + 60
        while True:
            item = f.next(timeout=max(1.0, deadline - time.monotonic()))
            self.assertIsNotNone(item, f"the build log ended early: {f.all}")
            if "build-step-one" in item[1]:
                break
        status = self.ok(self.api("GET", self.path("follow", "site") + "/versions/" + v["name"]))
        self.assertEqual(status["status"], "building", status)
        open(marker, "w").close()
        # The rest, then the stream ends with the build and the CLI exits 0 by itself.
        while True:
            item = f.next(timeout=60)
            if item is None:
                break
        self.assertIn("build-step-two", "\n".join(l for _, l in f.all))
        self.assertEqual(f.proc.wait(timeout=30), 0, f.stderr_now())


def parse_rfc3339(text: str) -> float:
    """'2026-01-02T03:04:05.678Z' (as the server writes log times) → seconds since the epoch."""
    import datetime
    t = text.rstrip("Z")
    if "." in t:
        base, frac = t.split(".", 1)
    else:
        base, frac = t, "0"
    dt = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return dt.timestamp() + float("0." + frac)


if __name__ == "__main__":
    unittest.main()
