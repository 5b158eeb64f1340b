"""Job and cronjob components (issue #4, kinds) with real processes: a job runs each deployed
version to completion and is not restarted, a failing one is retried with back-off and then
fails with an event naming its exit and last log line, `berth run --wait` reports the outcome
in its exit code, the concurrency policy refuses or replaces runs, history is pruned, and a
cronjob fires on its own at a minute boundary.

Jobs here are shell commands in an empty working dir (versions with no artifact). Every shim
and job process is found through the instances' state files and killed by PID in the cleanup
(the app's process group, only when its command line carries MARK).
"""

import os
import signal
import time
import unittest

from harness import BerthTestCase
from test_runtime import V, _alive, _cmdline, runtime_pids, wait_for

MARK = "berth-job-test"


class JobReaper:
    def __init__(self, data_dir: str):
        self.data_dir = os.path.realpath(data_dir)
        self.pids: set[tuple[int, int]] = set()

    def scan(self) -> None:
        self.pids.update(runtime_pids(self.data_dir))

    def kill_all(self) -> None:
        self.scan()
        for shim, app in self.pids:
            if app > 0 and _alive(app) and any(MARK in a for a in _cmdline(app)):
                try:
                    os.killpg(app, signal.SIGKILL)
                except OSError:
                    pass
            args = _cmdline(shim) if shim > 0 else []
            if (len(args) >= 4 and args[1] == "shim" and args[3].startswith(self.data_dir)
                    and _alive(shim)):
                try:
                    os.kill(shim, signal.SIGKILL)
                except OSError:
                    pass


class JobCase(BerthTestCase):
    """Helpers; every process the runtime starts is killed by PID in the cleanups."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = JobReaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)


    def path(self, app: str, comp: str) -> str:
        return f"{V}/apps/{app}/components/{comp}"

    def job(self, app: str, comp: str, command: str, kind: str = "job", **fields) -> None:
        if self.api("GET", f"{V}/apps/{app}").status == 404:
            self.make_app("default", app)
            self.addCleanup(self.api, "DELETE", f"{V}/apps/{app}")
        self.make_component("default", app, comp, kind=kind, **fields)
        self.ok(self.api("POST", self.path(app, comp) + "/versions",
                         {"start_command": f"{command}; : {MARK}", "status": "ready"}), 201)

    def runs(self, app: str, comp: str) -> dict:
        self.reaper.scan()
        return {r["name"]: r for r in self.list_all(self.path(app, comp) + "/runs")}

    def wait_run(self, app: str, comp: str, name: str, status: str, timeout: float = 30):
        seen = [None]

        def done():
            seen[0] = self.runs(app, comp).get(name)
            return seen[0] if seen[0] and seen[0]["status"] == status else None
        try:
            return wait_for(done, f"{name} of {comp} to be {status}", timeout=timeout)
        except AssertionError as ex:
            raise AssertionError(f"{ex}; run: {seen[0]}; events: {self.events(app, comp)[:6]}") \
                from None

    def events(self, app: str, comp: str) -> list[dict]:
        return self.list_all(self.path(app, comp) + "/events")

    def instances(self, app: str, comp: str) -> list[dict]:
        self.reaper.scan()
        return self.list_all(self.path(app, comp) + "/instances")

    def cli_login(self) -> None:
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin",
                         "--password-stdin", input=self.srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)



class JobTest(JobCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # The cronjob starts now so its wait for a minute boundary overlaps the other tests
        # (test_zz_* runs last).
        cls.cron_created = time.time()
        http_ok(cls, "POST", f"{V}/apps", {"name": "cron"})
        http_ok(cls, "POST", f"{V}/apps/cron/components",
                {"name": "tick", "kind": "cronjob", "schedule": "* * * * *",
                 "job": {"history_limit": 3}})
        http_ok(cls, "POST", f"{V}/apps/cron/components/tick/versions",
                {"start_command": f"echo tick from cron; : {MARK}", "status": "ready"})

    def test_a_job_runs_to_completion_once(self):
        self.job("once", "hello", "echo job says hello")
        run = self.wait_run("once", "hello", "run-1", "succeeded")
        self.assertEqual((run["trigger"], run["version"], run["attempts"]), ("deploy", "v1", 1),
                         run)
        self.assertEqual(run["last_exit"]["code"], 0, run)
        self.assertTrue(run["finished_at"], run)
        self.assertEqual(run["component"], "hello")
        # Not restarted: no instance comes back, no other run starts.
        time.sleep(1.5)
        self.assertEqual(self.instances("once", "hello"), [])
        self.assertEqual(list(self.runs("once", "hello")), ["run-1"])
        # Its output is in the instance logs.
        # Through the CLI, as people read them.
        self.cli_login()
        out = self.srv.cli("logs", "hello", "--app", "once", "--instance", "hello-run-1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("job says hello", out.stdout)
        events = [e["reason"] for e in self.events("once", "hello")]
        self.assertIn("JobSucceeded", events)

        r = self.srv.cli("run", "hello", "--app", "once", "--wait", "--timeout", "30")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("run-2 succeeded (manual", r.stdout)
        r = self.srv.cli("runs", "hello", "--app", "once")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("NAME"), r.stdout)
        self.assertTrue(lines[1].startswith("run-2"), r.stdout)  # newest first
        self.assertIn("succeeded", lines[2])
        r = self.srv.cli("wait", "hello", "--app", "once", "--ready", "--timeout", "5")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not_a_service", r.stderr)
        r = self.srv.cli("runs", "hello", "--app", "once", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"trigger": "manual"', r.stdout)

    def test_a_failing_job_is_retried_then_fails(self):
        self.job("fails", "migrate", "echo fatal: cannot reach the database; exit 3",
                 job={"retries": 2})
        run = self.wait_run("fails", "migrate", "run-1", "failed")
        self.assertEqual(run["attempts"], 3, run)
        self.assertEqual(run["last_exit"]["code"], 3, run)
        self.assertEqual(run["message"], "exited with code 3 on attempt 3 of 3", run)
        self.assertIn("fatal: cannot reach the database", run["log_tail"])
        events = self.events("fails", "migrate")
        failed = [e["message"] for e in events if e["reason"] == "JobFailed"]
        self.assertEqual(len(failed), 1, events)
        self.assertIn("exited with code 3", failed[0])
        self.assertIn("fatal: cannot reach the database", failed[0])
        retrying = [e for e in events if e["reason"] == "JobRetrying"]
        self.assertTrue(retrying, events)
        self.assertEqual(self.instances("fails", "migrate"), [])

        self.cli_login()
        r = self.srv.cli("run", "migrate", "--app", "fails", "--wait", "--timeout", "30")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("run-2 failed", r.stdout)
        self.assertIn("fatal: cannot reach the database", r.stdout)

    def test_concurrency_policy_and_history(self):
        self.job("policy", "hold", "echo holding; sleep 60",
                 job={"concurrency_policy": "forbid", "history_limit": 2})
        self.make_component("default", "policy", "svc")
        p = self.path("policy", "hold")
        run = self.wait_run("policy", "hold", "run-1", "running")
        wait_for(lambda: [i for i in self.instances("policy", "hold") if i["pid"] > 0],
                 "the run's instance to run")
        st, body, _ = self.api("POST", p + "/runs")
        self.assertEqual((st, body["code"]), (409, "run_in_progress"), body)
        self.assertIn("run-1", body["message"])
        self.cli_login()
        r = self.srv.cli("run", "hold", "--app", "policy")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("run_in_progress", r.stderr)
        st, body, _ = self.api("POST", self.path("policy", "svc") + "/runs")
        self.assertEqual((st, body["code"]), (409, "not_a_job"), body)
        self.assertEqual(list(self.runs("policy", "hold")), ["run-1"])

        # replace: each new run cancels the one going; finished runs beyond 2 are deleted.
        self.ok(self.api("PATCH", p, {"job": {"concurrency_policy": "replace",
                                              "history_limit": 2}}))
        for n in (2, 3, 4):
            run = self.ok(self.api("POST", p + "/runs"), 202)
            self.assertEqual((run["name"], run["status"], run["trigger"], run["by"]),
                             (f"run-{n}", "running", "manual", "admin"), run)
        self.wait_run("policy", "hold", "run-3", "cancelled")
        runs = wait_for(lambda: (lambda r: r if "run-1" not in r else None)(
            self.runs("policy", "hold")), "run-1 to be pruned")
        self.assertEqual(sorted(runs), ["run-2", "run-3", "run-4"], runs)
        self.assertIn("replaced (concurrency policy replace) by run-3",
                      runs["run-2"]["message"])
        st, body, _ = self.api("GET", p + "/runs/run-1")
        self.assertEqual(st, 404, body)
        wait_for(lambda: [i["name"] for i in self.instances("policy", "hold")] == ["hold-run-4"],
                 "only run-4's instance to be left")
        # Stopping the component cancels the run going.
        self.ok(self.api("PATCH", p, {"desired_state": "stopped"}))
        self.wait_run("policy", "hold", "run-4", "cancelled")
        wait_for(lambda: self.instances("policy", "hold") == [], "the instances to stop")
        wait_for(lambda: sorted(self.runs("policy", "hold")) == ["run-3", "run-4"],
                 "history pruned to 2")

    def test_create_from_source_runs_the_built_version(self):
        src = os.path.join(self.srv.tmp, "report-src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "Procfile"), "w") as f:
            f.write("web: sh ./report.sh\n")
        with open(os.path.join(src, "report.sh"), "w") as f:
            f.write(f"echo report from $BERTH_INSTANCE; : {MARK}\n")
        self.cli_login()
        self.make_app("default", "built")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/built")
        r = self.srv.cli("component", "create", "report", "--app", "built", "--kind", "job",
                         "--source", src, "--timeout", "60", "--retries", "1",
                         "--history-limit", "5", "--concurrency-policy", "forbid")
        self.reaper.scan()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("report is a job: run-1 runs v1", r.stdout)
        self.wait_run("built", "report", "run-1", "succeeded")
        comp = self.ok(self.api("GET", self.path("built", "report")))
        self.assertEqual(comp["job"], {"retries": 1, "timeout_s": 0, "history_limit": 5,
                                       "concurrency_policy": "forbid", "suspend": False})
        r = self.srv.cli("component", "set", "report", "--app", "built", "--job-timeout", "30")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        comp = self.ok(self.api("GET", self.path("built", "report")))
        self.assertEqual((comp["job"]["timeout_s"], comp["job"]["retries"]), (30, 1), comp)
        out = self.srv.cli("logs", "report", "--app", "built")
        self.assertIn("report from report-run-1", out.stdout)

    def test_zz_a_cronjob_fires_on_its_schedule(self):
        # Created in setUpClass; the first whole minute after that fires (at most ~60 s, less
        # the time the other tests took).
        p = self.path("cron", "tick")
        deadline = self.cron_created + 65 - time.time()
        run = wait_for(lambda: self.runs("cron", "tick").get("run-1"), "a scheduled run",
                       timeout=max(deadline, 5))
        self.assertEqual(run["trigger"], "schedule", run)
        self.assertTrue(run["scheduled_at"].endswith(":00.000Z"), run)
        run = self.wait_run("cron", "tick", "run-1", "succeeded")
        self.assertEqual(run["attempts"], 1, run)
        # A manual run of a cronjob works too; suspend stops the schedule.
        self.ok(self.api("PATCH", p, {"job": {"suspend": True, "history_limit": 3}}))
        run = self.ok(self.api("POST", p + "/runs"), 202)
        self.wait_run("cron", "tick", run["name"], "succeeded")
        comp = self.ok(self.api("GET", p))
        self.assertTrue(comp["job"]["suspend"], comp)


class JobAdoptionTest(JobCase):
    """A server killed with -9 while a run goes: the run's process lives on, the next server
    adopts it and records its end — one attempt, no second launch."""

    def test_a_run_survives_a_server_kill9(self):
        self.job("survive", "slow", "sleep 3; echo finished after the restart")
        self.wait_run("survive", "slow", "run-1", "running")
        [inst] = wait_for(lambda: [i for i in self.instances("survive", "slow") if i["pid"] > 0],
                          "the run's instance to run")
        self.srv.kill9()
        self.assertTrue(_alive(inst["pid"]), "the job runs on without the server")
        self.srv.start()
        type(self).admin = self.admin = self.srv.login()
        run = self.wait_run("survive", "slow", "run-1", "succeeded")
        self.assertEqual(run["attempts"], 1, run)
        self.assertEqual(list(self.runs("survive", "slow")), ["run-1"])
        self.cli_login()
        out = self.srv.cli("logs", "slow", "--app", "survive")
        self.assertIn("finished after the restart", out.stdout)
        self.assertEqual(self.instances("survive", "slow"), [])


def http_ok(cls, method: str, path: str, body: dict):
    resp = cls.srv.api(method, path, body, token=cls.admin)
    if resp[0] >= 300:
        raise AssertionError(f"{method} {path}: {resp[0]} {resp[1]}")
    return resp


if __name__ == "__main__":
    unittest.main()
