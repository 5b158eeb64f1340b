"""Lifecycle operations of the local runtime (issue #4): one at a time per component, with a
visible status, a refusal (409 operation_in_progress) for a second one, cancel, failure on a
crash loop; rollout settings and the grace period through the API and the CLI.

Uses the runtime test helpers (tests/integration/test_runtime.py): real shims and the fixture
app, every process killed by PID in the cleanup.
"""

import time
import unittest

from test_runtime import RuntimeCase, V, http_get, wait_for


class OperationTest(RuntimeCase):

    def operation(self, app: str) -> dict:
        return self.ok(self.api("GET", self.comp_path(app) + "/operation"), msg="operation")

    def wait_operation(self, app: str, status: str) -> dict:
        return wait_for(lambda: (lambda op: op if op["status"] == status else None)(
            self.operation(app)), f"the operation of {app} to be {status}")

    def test_second_operation_is_refused_while_a_rollout_runs(self):
        self.setup_app("busy", replicas=1)
        self.wait_ready("busy", 1, "v1")
        op = self.wait_operation("busy", "succeeded")
        self.assertEqual((op["type"], op["by"]), ("deploy", "berth"), op)
        self.assertIn("v1", op["detail"])
        self.assertTrue(op["finished_at"], op)

        # A slow new version: its deploy stays in progress for a few seconds.
        self.add_version("busy", "v2", start_delay=4.0)
        op = self.wait_operation("busy", "in_progress")
        self.assertEqual(op["type"], "deploy")
        before = self.ok(self.api("GET", self.comp_path("busy")))
        st, body, _ = self.api("PATCH", self.comp_path("busy"), {"replicas": 2})
        self.assertEqual((st, body["code"]), (409, "operation_in_progress"), body)
        self.assertIn("deploy", body["message"])
        self.assertIn("berth wait web --app busy --operation", body["message"])
        self.assertIn("berth cancel web --app busy", body["message"])
        st, body, _ = self.api("POST", self.comp_path("busy") + "/restart")
        self.assertEqual((st, body["code"]), (409, "operation_in_progress"), body)
        after = self.ok(self.api("GET", self.comp_path("busy")))
        self.assertEqual(after["revision"], before["revision"], "a refused change changes nothing")
        # Settings that only matter to builds are not an operation.
        self.ok(self.api("PATCH", self.comp_path("busy"), {"build": {"command": "true"}}))

        self.cli_login()
        r = self.srv.cli("scale", "web", "2", "--app", "busy")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("operation_in_progress", r.stderr)
        r = self.srv.cli("instances", "web", "--app", "busy")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Operation: deploy", r.stdout)
        r = self.srv.cli("wait", "web", "--app", "busy", "--operation", "--timeout", "60")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("succeeded", r.stdout)
        # The operation ended in the same commit that shows the new version ready.
        items = self.instances("busy")
        self.assertEqual([(i["version"], i["ready"]) for i in items], [("v2", True)], items)

        r = self.srv.cli("scale", "web", "2", "--app", "busy")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        op = self.operation("busy")
        self.assertEqual((op["type"], op["by"], op["detail"]),
                         ("scale", "admin", "scale from 1 to 2 instance(s)"), op)
        self.wait_ready("busy", 2, "v2")
        self.wait_operation("busy", "succeeded")
        reasons = [e["reason"] for e in self.events("busy")]
        self.assertIn("OperationSucceeded", reasons)

    def test_a_crash_loop_fails_the_operation_and_cancel_ends_a_slow_one(self):
        self.setup_app("stuck", replicas=1)
        self.wait_ready("stuck", 1, "v1")
        self.wait_operation("stuck", "succeeded")

        # A settings change whose instances crash: the update fails, the old instance serves.
        self.patch("stuck", {"env": {"CRASH": "3"}})
        self.assertEqual(self.operation("stuck")["type"], "update")
        op = self.wait_operation("stuck", "failed")
        self.assertIn("exited with code 3", op["message"])
        self.assertIn("OperationFailed", [e["reason"] for e in self.events("stuck")])
        old = [i for i in self.instances("stuck") if i["ready"]]
        self.assertEqual(len(old), 1, old)
        self.assertEqual(http_get(old[0]["port"])[0], 200)
        # A failed operation frees the component: undo the change.
        self.patch("stuck", {"env": {"CRASH": None}})
        self.wait_ready("stuck", 1, "v1")
        self.wait_operation("stuck", "succeeded")

        # A slow deploy, cancelled, then rolled back at once.
        self.add_version("stuck", "v2", start_delay=30.0)
        self.wait_operation("stuck", "in_progress")
        self.cli_login()
        r = self.srv.cli("cancel", "web", "--app", "stuck")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        op = self.operation("stuck")
        self.assertEqual((op["status"], op["message"]), ("cancelled", "cancelled by admin"), op)
        st, body, _ = self.api("POST", self.comp_path("stuck") + "/operation/cancel")
        self.assertEqual((st, body["code"]), (409, "failed_precondition"), body)
        r = self.srv.cli("rollback", "web", "v1", "--app", "stuck")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        op = self.operation("stuck")
        self.assertEqual((op["type"], op["status"], op["detail"]),
                         ("rollback", "in_progress", "roll back to v1"), op)
        self.wait_operation("stuck", "succeeded")
        [inst] = self.wait_ready("stuck", 1, "v1")
        self.assertEqual(http_get(inst["port"])[1], "hello from " + inst["name"] + " v1")

    def test_components_without_a_version_change_freely(self):
        self.make_app("default", "free")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/free")
        self.make_component("default", "free", "web", replicas=1)
        for body in ({"replicas": 3}, {"desired_state": "stopped"}, {"env": {"A": "1"}}):
            self.patch("free", body)
        self.assertStatus(self.api("GET", self.comp_path("free") + "/operation"), 404, "not_found")

    def test_rollout_settings_and_grace_period(self):
        self.setup_app("ro", replicas=2)
        self.wait_ready("ro", 2, "v1")
        self.wait_operation("ro", "succeeded")
        c = self.ok(self.api("GET", self.comp_path("ro")))
        self.assertEqual((c["rollout"], c["grace_period_s"]),
                         ({"max_surge": 1, "max_unavailable": 0}, 10))
        st, body, _ = self.api("PATCH", self.comp_path("ro"),
                               {"rollout": {"max_surge": 0, "max_unavailable": "0%"}})
        self.assertEqual((st, body["code"], body["field"]),
                         (400, "invalid_argument", "rollout.max_surge"), body)
        st, body, _ = self.api("PATCH", self.comp_path("ro"), {"rollout": {"max_surge": "150%"}})
        self.assertEqual((st, body["field"]), (400, "rollout.max_surge"), body)
        self.cli_login()
        r = self.srv.cli("component", "set", "web", "--app", "ro", "--max-surge", "100%",
                         "--max-unavailable", "0", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.srv.cli("component", "set", "web", "--app", "ro", "--max-surge", "lots")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        # Rollout settings do not replace instances: no operation.
        self.assertEqual(self.operation("ro")["status"], "succeeded")
        c = self.ok(self.api("GET", self.comp_path("ro")))
        self.assertEqual(c["rollout"], {"max_surge": "100%", "max_unavailable": 0})

        # max_surge 100%: both v2 instances start at once, next to the two v1 ones.
        self.add_version("ro", "v2", start_delay=2.0)
        seen = wait_for(lambda: (lambda items: items if sum(
            1 for i in items if i["version"] == "v2") == 2 and sum(
            1 for i in items if i["version"] == "v1" and i["ready"]) == 2 else None)(
            self.instances("ro")), "two new and two old instances side by side", timeout=20,
            interval=0.05)
        self.assertEqual(len(seen), 4, seen)
        self.wait_ready("ro", 2, "v2")
        self.wait_operation("ro", "succeeded")

        # The grace period is the instance's: a change replaces the instances.
        pids = {i["pid"] for i in self.instances("ro")}
        r = self.srv.cli("component", "set", "web", "--app", "ro", "--grace-period", "3")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.operation("ro")["type"], "update")
        self.wait_operation("ro", "succeeded")
        items = self.wait_ready("ro", 2, "v2")
        self.assertFalse(pids & {i["pid"] for i in items}, "every instance was replaced")
        spec = self.read_spec("ro", items[0]["name"])
        self.assertEqual(spec.get("grace_s"), 3, spec)

    def read_spec(self, app: str, instance: str) -> dict:
        import json
        import os
        path = os.path.join(self.srv.data_dir, "run", "default", app, "web", instance, "spec.json")
        with open(path) as f:
            return json.load(f)


class QuotaTest(RuntimeCase):
    """Team quotas refuse growth with quota_exceeded and an event on the component."""

    def test_quota_refuses_growth_with_an_event(self):
        T = "/api/v1/teams/quota"
        self.make_team("quota")
        self.ok(self.api("PATCH", T, {"quota": {"instances": 3, "memory_mb": 200}}))
        self.make_app("quota", "shop")
        comps = f"{T}/apps/shop/components"
        self.ok(self.api("POST", comps, {"name": "a", "replicas": 2,
                                         "resources": {"memory_mb": 64}}), 201)
        st, body, _ = self.api("POST", comps, {"name": "b", "replicas": 2,
                                               "resources": {"memory_mb": 64}})
        self.assertEqual((st, body["code"], body["field"]), (409, "quota_exceeded", "replicas"),
                         body)
        self.assertIn('team "quota" instances quota exceeded by 1', body["message"])
        self.assertIn("would use 4 of 3", body["message"])
        self.assertStatus(self.api("GET", f"{comps}/b"), 404, "not_found")
        self.ok(self.api("POST", comps, {"name": "b", "replicas": 1,
                                         "resources": {"memory_mb": 64}}), 201)

        # Memory: 2 × 64 + 100 = 228 MiB of 200.
        before = self.ok(self.api("GET", f"{comps}/b"))
        st, body, _ = self.api("PATCH", f"{comps}/b", {"resources": {"memory_mb": 100}})
        self.assertEqual((st, body["code"], body["field"]),
                         (409, "quota_exceeded", "resources.memory_mb"), body)
        self.assertIn("memory quota exceeded by 28 MiB", body["message"])
        self.assertEqual(self.ok(self.api("GET", f"{comps}/b"))["revision"], before["revision"])
        ev = self.list_all(f"{comps}/b/events")
        quota_events = [e for e in ev if e["reason"] == "QuotaExceeded"]
        self.assertEqual(len(quota_events), 1, ev)
        self.assertEqual(quota_events[0]["type"], "warning")
        self.assertIn("memory quota exceeded by 28 MiB", quota_events[0]["message"])

        # Instances through the CLI's scale.
        self.cli_login()
        r = self.srv.cli("scale", "a", "3", "--app", "shop", "--team", "quota")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("quota_exceeded", r.stderr)
        self.assertIn("instances quota exceeded by 1", r.stderr)
        ev = self.list_all(f"{comps}/a/events")
        self.assertIn("instances quota exceeded by 1",
                      " ".join(e["message"] for e in ev if e["reason"] == "QuotaExceeded"))

        # A component without a memory limit cannot run under a memory quota; stopped it may exist.
        st, body, _ = self.api("POST", comps, {"name": "c"})
        self.assertEqual((st, body["code"], body["field"]),
                         (409, "quota_exceeded", "resources.memory_mb"), body)
        self.ok(self.api("POST", comps, {"name": "c", "desired_state": "stopped"}), 201)

        # Shrinking is always allowed, even over a lowered quota; then growth fits again.
        self.ok(self.api("PATCH", T, {"quota": {"instances": 2, "memory_mb": 200}}))
        self.ok(self.api("PATCH", f"{comps}/b", {"env": {"X": "1"}}))  # no growth: accepted
        self.ok(self.api("PATCH", f"{comps}/a", {"replicas": 1}))
        self.ok(self.api("PATCH", f"{comps}/b", {"resources": {"memory_mb": 100}}))
        r = self.srv.cli("component", "set", "c", "--app", "shop", "--team", "quota",
                         "--memory", "10")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        st, body, _ = self.api("PATCH", f"{comps}/c", {"desired_state": "running"})
        self.assertEqual((st, body["code"]), (409, "quota_exceeded"), body)
        self.assertIn("instances quota exceeded by 1", body["message"])


if __name__ == "__main__":
    unittest.main()
