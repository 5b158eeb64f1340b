"""Stored paths never come from a request (issue 13, docs/security.md "Input and paths").

Paths under DATA/ (a version's build log and artifact, config files and volumes in an
instance's working directory) are derived by the server from names; a request cannot name
one, and a symlink a user planted in a tree the server writes to is never followed. Each test
here reproduces a way in that worked before: reading DATA/secret.key through the build-log
route, deleting any file through version retention, writing and deleting outside an instance's
working directory through an artifact's symlinks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time

from harness import BerthTestCase

V = "/api/v1"
TEAM = "paths"
APP = "shop"
FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "apps"))
WAIT_S = 120.0


def wait_for(fn, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class StoredPathsTest(BerthTestCase):
    # One ready version kept: the retention test needs the old ones removed by a build.
    server_kwargs = {"extra_args": ["--build-versions-kept", "1"]}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        st, body, _ = cls.srv.api("POST", f"{V}/teams", {"name": TEAM}, token=cls.admin)
        assert st == 201, body
        st, body, _ = cls.srv.api("POST", f"{V}/users",
                                  {"name": "dev", "password": "dev-pass-123"}, token=cls.admin)
        assert st == 201, body
        st, body, _ = cls.srv.api("POST", f"{V}/teams/{TEAM}/members",
                                  {"user": "dev", "role": "developer"}, token=cls.admin)
        assert st == 201, body
        cls.dev = cls.srv.login("dev", "dev-pass-123")
        st, body, _ = cls.srv.api("POST", f"{V}/teams/{TEAM}/apps", {"name": APP}, token=cls.dev)
        assert st == 201, body
        cls.data = os.path.realpath(cls.srv.data_dir)
        with open(os.path.join(cls.data, "secret.key"), "rb") as f:
            cls.secret = f.read()
        assert cls.secret

    def comp(self, name: str) -> str:
        return f"{V}/teams/{TEAM}/apps/{APP}/components/{name}"

    def outside(self, name: str) -> str:
        d = os.path.join(self.srv.tmp, "outside-" + name)
        os.makedirs(d, exist_ok=True)
        return d

    # -- build logs and artifacts of versions ------------------------------------------------

    def test_a_version_cannot_name_its_build_log_or_artifact_path(self):
        self.make_component(TEAM, APP, "logs", token=self.dev, replicas=0)
        victim = os.path.join(self.outside("log"), "victim")
        with open(victim, "w") as f:
            f.write("keep me")
        for build_log in ("secret.key", "gateway/token", "../" * 8 + "etc/passwd", victim,
                          "logs/builds/other/app/web/v1.log"):
            with self.subTest(build_log=build_log):
                st, body, _ = self.api("POST", self.comp("logs") + "/versions",
                                       {"status": "ready", "build_log": build_log},
                                       token=self.dev)
                self.assertEqual(st, 400, f"build_log {build_log!r} was accepted: {body}")
                self.assertEqual(body["code"], "server_assigned", body)
                self.assertEqual(body["field"], "build_log", body)
        for artifact in ("../../secret.key", "/etc", "sha256:../../x", "sha256:" + "A" * 64,
                         "sha256:" + "a" * 63, "gateway"):
            with self.subTest(artifact=artifact):
                st, body, _ = self.api("POST", self.comp("logs") + "/versions",
                                       {"status": "ready", "artifact": artifact}, token=self.dev)
                self.assertEqual(st, 400, f"artifact {artifact!r} was accepted: {body}")
                self.assertEqual(body["code"], "unsafe_path", body)
                self.assertEqual(body["field"], "artifact", body)
        # A queued version with its own build request would build whatever it names.
        st, body, _ = self.api("POST", self.comp("logs") + "/versions",
                               {"status": "queued",
                                "build_request": {"source": {"type": "dir", "path": "/"}}},
                               token=self.dev)
        self.assertEqual((st, body.get("code"), body.get("field")),
                         (400, "server_assigned", "build_request"), body)
        self.assertEqual(self.list_all(self.comp("logs") + "/versions"), [])
        with open(victim) as f:
            self.assertEqual(f.read(), "keep me")

    def patch_versions(self, scope: str, changes: dict[str, dict]) -> None:
        """Writes fields into stored version bodies (as an older server or a direct store edit
        could have left them): the server must not trust them either."""
        self.srv.stop()
        db = sqlite3.connect(os.path.join(self.srv.data_dir, "berth.db"))
        try:
            for name, fields in changes.items():
                (body,) = db.execute("SELECT body FROM objects WHERE kind='version' AND scope=? "
                                     "AND name=?", (scope, name)).fetchone()
                j = json.loads(body)
                j.update(fields)
                db.execute("UPDATE objects SET body=? WHERE kind='version' AND scope=? AND name=?",
                           (json.dumps(j), scope, name))
            db.commit()
        finally:
            db.close()
        self.srv.start()
        self.__class__.admin = self.srv.login()
        self.__class__.dev = self.srv.login("dev", "dev-pass-123")

    def test_stored_build_logs_are_never_read_or_deleted_by_their_stored_path(self):
        # A dir source is a platform admin's to set (test_sources.py); the developer builds it.
        self.make_component(TEAM, APP, "web", replicas=0,
                            source={"type": "dir", "path": os.path.join(FIXTURES, "static-site")})
        # Two ready versions, then their stored build_log pointed at files of the server.
        for _ in range(2):
            self.ok(self.api("POST", self.comp("web") + "/versions", {"status": "ready"},
                             token=self.dev), 201)
        victim_abs = os.path.join(self.outside("retention"), "precious")
        with open(victim_abs, "w") as f:
            f.write("precious")
        victim_rel = os.path.join(self.data, "victim-in-data")
        with open(victim_rel, "w") as f:
            f.write("precious too")
        scope = f"{TEAM}/{APP}/web"
        self.patch_versions(scope, {"v1": {"build_log": victim_abs},
                                    "v2": {"build_log": "secret.key"}})
        # Reading: the route serves the version's own log or nothing, never the named file.
        st, body, _ = self.api("GET", self.comp("web") + "/versions/v2/log", token=self.dev)
        self.assertNotIn(self.secret.decode("latin-1")[:16], json.dumps(body))
        self.assertEqual(st, 404, body)
        # The logs where the server keeps them (these are what retention may delete).
        logs = os.path.join(self.data, "logs", "builds", TEAM, APP, "web")
        os.makedirs(logs, exist_ok=True)
        for v in ("v1", "v2"):
            with open(os.path.join(logs, v + ".log"), "w") as f:
                f.write(f"log of {v}\n")
        st, body, _ = self.api("GET", self.comp("web") + "/versions/v2/log", token=self.dev)
        self.assertEqual((st, body.get("log")), (200, "log of v2\n"), body)
        self.srv.stop()
        with sqlite3.connect(os.path.join(self.srv.data_dir, "berth.db")) as db:
            db.execute("UPDATE objects SET body=json_set(body, '$.build_log', ?) WHERE "
                       "kind='version' AND scope=? AND name='v2'", (victim_rel, scope))
        self.srv.start()
        self.__class__.admin = self.srv.login()
        self.__class__.dev = self.srv.login("dev", "dev-pass-123")
        # Retention after a successful build deletes v1 and v2 (one ready version is kept) and
        # their logs — the ones it derives, not the stored paths.
        v3 = self.ok(self.api("POST", self.comp("web") + "/builds", {}, token=self.dev), 201)
        self.assertEqual(v3["name"], "v3")
        wait_for(lambda: self.names(self.comp("web") + "/versions") == ["v3"],
                 "retention of v1 and v2")
        done = self.ok(self.api("GET", self.comp("web") + "/versions/v3"))
        self.assertEqual(done["status"], "ready", done)
        self.assertEqual(done["build_log"], f"logs/builds/{TEAM}/{APP}/web/v3.log")
        with open(victim_abs) as f:
            self.assertEqual(f.read(), "precious")
        with open(victim_rel) as f:
            self.assertEqual(f.read(), "precious too")
        self.assertTrue(os.path.exists(os.path.join(self.data, "secret.key")))
        self.assertFalse(os.path.exists(os.path.join(logs, "v1.log")))
        self.assertFalse(os.path.exists(os.path.join(logs, "v2.log")))
        self.assertTrue(os.path.exists(os.path.join(logs, "v3.log")))

    def test_a_build_log_that_became_a_symlink_is_not_read(self):
        self.make_component(TEAM, APP, "linked", token=self.dev, replicas=0)
        self.ok(self.api("POST", self.comp("linked") + "/versions", {"status": "ready"},
                         token=self.dev), 201)
        logs = os.path.join(self.data, "logs", "builds", TEAM, APP, "linked")
        os.makedirs(logs, exist_ok=True)
        os.symlink(os.path.join(self.data, "secret.key"), os.path.join(logs, "v1.log"))
        st, body, _ = self.api("GET", self.comp("linked") + "/versions/v1/log", token=self.dev)
        self.assertNotEqual(st, 200, body)
        self.assertNotIn(self.secret.decode("latin-1")[:16], json.dumps(body))

    # -- an instance's working directory -------------------------------------------------------

    def artifact_with_links(self, label: str, links: dict[str, str]) -> str:
        """An artifact (as a build would leave it) whose tree holds symlinks out of it."""
        digest = hashlib.sha256((self.id() + label).encode()).hexdigest()
        art = os.path.join(self.data, "artifacts", digest)
        os.makedirs(art)
        for name, target in links.items():
            os.symlink(target, os.path.join(art, name))
        return "sha256:" + digest

    def events(self, comp: str) -> list:
        return self.list_all(f"{V}/teams/{TEAM}/events")

    def start_failed(self, comp: str):
        return [e for e in self.events(comp)
                if e.get("component") == comp and e["reason"] == "StartFailed"]

    def run_version(self, comp: str, artifact: str) -> None:
        self.addCleanup(lambda: self.api("PATCH", self.comp(comp), {"desired_state": "stopped"}))
        self.ok(self.api("POST", self.comp(comp) + "/versions",
                         {"status": "ready", "artifact": artifact,
                          "start_command": "exec sleep 30"}, token=self.dev), 201)

    def test_config_files_are_never_written_through_an_artifacts_symlink(self):
        out = self.outside("config")
        art = self.artifact_with_links("config", {"conf": out})
        self.make_component(TEAM, APP, "cfg", token=self.dev,
                            config_files=[{"path": "conf/evil.ini", "content": "written"}])
        self.run_version("cfg", art)
        failed = wait_for(lambda: self.start_failed("cfg"), "a StartFailed event")
        self.assertIn("symlink", failed[0]["message"])
        self.assertFalse(os.path.exists(os.path.join(out, "evil.ini")),
                         "a config file was written outside the instance's directory")

    def test_volumes_never_remove_or_mount_through_an_artifacts_symlink(self):
        out = self.outside("volume")
        os.makedirs(os.path.join(out, "keep"))
        with open(os.path.join(out, "keep", "precious"), "w") as f:
            f.write("precious")
        art = self.artifact_with_links("volume", {"vol": out})
        self.make_component(TEAM, APP, "vols", token=self.dev,
                            volumes=[{"name": "data", "path": "vol/keep"}])
        self.run_version("vols", art)
        failed = wait_for(lambda: self.start_failed("vols"), "a StartFailed event")
        self.assertIn("symlink", failed[0]["message"])
        with open(os.path.join(out, "keep", "precious")) as f:
            self.assertEqual(f.read(), "precious", "the volume's mount removed a file outside")
        self.assertFalse(os.path.islink(os.path.join(out, "keep")))

    def test_relative_paths_of_components_are_refused_with_a_stable_code(self):
        for field, body in (("config_files[0].path",
                             {"config_files": [{"path": "../../x", "content": ""}]}),
                            ("config_files[0].path",
                             {"config_files": [{"path": "/etc/cron.d/x", "content": ""}]}),
                            ("volumes[0].path", {"volumes": [{"name": "d", "path": "a/../../b"}]}),
                            ("build.subdir", {"build": {"subdir": "../.."}})):
            with self.subTest(body=body):
                st, b, _ = self.api("POST", f"{V}/teams/{TEAM}/apps/{APP}/components",
                                    {"name": "rel", **body}, token=self.dev)
                self.assertEqual((st, b.get("code"), b.get("field")), (400, "unsafe_path", field),
                                 b)


if __name__ == "__main__":
    import unittest
    unittest.main()
