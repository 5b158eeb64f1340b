"""The CRUD journey over raw HTTP (docs/api.md): teams, members, apps, components,
dependencies, versions, events, instances, pagination, revisions, cascades, openapi, audit."""

import re
import threading
import unittest
from urllib.parse import quote

from harness import BerthTestCase

V = "/api/v1"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)$")


class ApiCrudTest(BerthTestCase):

    def assertCommon(self, obj: dict, msg: str = "") -> None:
        self.assertIsInstance(obj.get("revision"), int, f"{msg} revision: {obj!r}")
        self.assertGreater(obj["revision"], 0, msg)
        for f in ("created_at", "updated_at"):
            self.assertRegex(str(obj.get(f)), RFC3339, f"{msg} {f} is not RFC 3339 UTC: {obj!r}")

    def assertDeleted(self, resp, msg=""):
        self.assertIn(resp[0], (200, 204), f"{msg} delete: {resp[0]} {resp[1]!r}")

    # -- session -----------------------------------------------------------------------------

    def test_login_and_whoami(self):
        st, body, _ = self.anon("POST", f"{V}/login", {"user": "admin", "password": "admin-pass-123"})
        self.assertEqual(st, 200, body)
        self.assertTrue(body.get("token"), body)
        self.assertIn("expires_at", body)
        self.assertRegex(str(body["expires_at"]), RFC3339)
        user = body.get("user")
        name = user.get("name") if isinstance(user, dict) else user
        self.assertEqual(name, "admin", body)
        me = self.ok(self.api("GET", f"{V}/whoami", token=body["token"]))
        self.assertEqual(me["user"]["name"], "admin", me)
        self.assertIs(me["user"].get("admin"), True, me)
        self.assertNotIn("password", me["user"])
        self.assertIn({"team": "default", "role": "owner"},
                      [{"team": t.get("team"), "role": t.get("role")} for t in me["teams"]], me)

    # -- teams -------------------------------------------------------------------------------

    def test_teams(self):
        d = self.ok(self.api("GET", f"{V}/teams/default"))
        self.assertEqual(d["name"], "default")
        self.assertIn("default", self.names(f"{V}/teams"))

        t = self.ok(self.api("POST", f"{V}/teams", {"name": "crud-team", "display_name": "Crud"}),
                    201)
        self.assertEqual(t["name"], "crud-team")
        self.assertEqual(t["display_name"], "Crud")
        self.assertEqual(t["quota"], {"instances": 0, "memory_mb": 0, "cpu_millis": 0, "disk_mb": 0}, t)
        self.assertCommon(t, "team")
        self.assertStatus(self.api("POST", f"{V}/teams", {"name": "crud-team"}), 409,
                          "already_exists")
        got = self.ok(self.api("GET", f"{V}/teams/crud-team"))
        self.assertEqual(got, t)

        p = self.ok(self.api("PATCH", f"{V}/teams/crud-team", {"display_name": "Crud Two"}))
        self.assertEqual(p["display_name"], "Crud Two")
        self.assertGreater(p["revision"], t["revision"])
        self.assertEqual(p["created_at"], t["created_at"])
        self.assertEqual(self.ok(self.api("GET", f"{V}/teams/crud-team"))["display_name"],
                         "Crud Two")
        q = self.ok(self.api("PATCH", f"{V}/teams/crud-team", {"quota": {"instances": 4}}))
        self.assertEqual(q["quota"], {"instances": 4, "memory_mb": 0, "cpu_millis": 0, "disk_mb": 0})
        self.assertEqual(q["display_name"], "Crud Two")

        lst = self.ok(self.api("GET", f"{V}/teams"))
        self.assertIsInstance(lst.get("revision"), int, lst)
        self.assertIn("next", lst)
        mine = [x for x in lst["items"] if x["name"] == "crud-team"]
        self.assertEqual(len(mine), 1, lst)
        self.assertEqual(mine[0]["display_name"], "Crud Two")
        names = [x["name"] for x in lst["items"]]
        self.assertEqual(names, sorted(names), "lists are sorted by name")

    def test_delete_team(self):
        self.make_team("doomed")
        self.make_app("doomed", "inside")
        self.make_component("doomed", "inside", "web")
        self.assertDeleted(self.api("DELETE", f"{V}/teams/doomed"))
        self.assertStatus(self.api("GET", f"{V}/teams/doomed"), 404, "not_found")
        self.assertStatus(self.api("GET", f"{V}/teams/doomed/apps/inside"), 404, "not_found")
        self.assertStatus(self.api("GET", f"{V}/teams/doomed/apps/inside/components/web"), 404,
                          "not_found")
        self.assertNotIn("doomed", self.names(f"{V}/teams"))
        # The name can be used again, and the new team starts empty.
        self.make_team("doomed")
        self.assertEqual(self.names(f"{V}/teams/doomed/apps"), [])

    # -- users and members -------------------------------------------------------------------

    def test_members(self):
        self.make_team("mteam")
        u = self.ok(self.api("POST", f"{V}/users", {"name": "bob", "password": "bob-pass-123",
                                                   "email": "bob@example.com",
                                                   "display_name": "Bob"}), 201)
        self.assertEqual(u["name"], "bob")
        self.assertEqual(u["email"], "bob@example.com")
        self.assertIs(u["admin"], False)
        self.assertIs(u["disabled"], False)
        self.assertNotIn("password", u, "passwords are write-only")
        self.assertNotIn("password", self.ok(self.api("GET", f"{V}/users/bob")))
        self.assertIn("bob", self.names(f"{V}/users"))

        m = self.ok(self.api("POST", f"{V}/teams/mteam/members",
                             {"user": "bob", "role": "developer"}), 201)
        self.assertEqual((m["user"], m["role"]), ("bob", "developer"))
        self.assertStatus(self.api("POST", f"{V}/teams/mteam/members",
                                   {"user": "bob", "role": "viewer"}), 409, "already_exists")
        items = self.list_all(f"{V}/teams/mteam/members")
        roles = {i["user"]: i["role"] for i in items}
        self.assertEqual(roles, {"admin": "owner", "bob": "developer"}, items)
        self.assertEqual(self.ok(self.api("GET", f"{V}/teams/mteam/members/bob"))["role"],
                         "developer")

        p = self.ok(self.api("PATCH", f"{V}/teams/mteam/members/bob", {"role": "viewer"}))
        self.assertEqual(p["role"], "viewer")
        p = self.ok(self.api("PUT", f"{V}/teams/mteam/members/bob", {"role": "admin"}))
        self.assertEqual(p["role"], "admin")
        self.assertEqual(self.ok(self.api("GET", f"{V}/teams/mteam/members/bob"))["role"],
                         "admin")
        # bob sees the team now
        bob = self.srv.login("bob", "bob-pass-123")
        me = self.ok(self.api("GET", f"{V}/whoami", token=bob))
        self.assertIn({"team": "mteam", "role": "admin"},
                      [{"team": t["team"], "role": t["role"]} for t in me["teams"]])

        self.assertDeleted(self.api("DELETE", f"{V}/teams/mteam/members/bob"))
        self.assertStatus(self.api("GET", f"{V}/teams/mteam/members/bob"), 404, "not_found")
        self.assertEqual([i["user"] for i in self.list_all(f"{V}/teams/mteam/members")],
                         ["admin"])
        # A member that is not a user: 404, or 400 blaming the `user` field.
        st, body, _ = self.api("POST", f"{V}/teams/mteam/members",
                               {"user": "nobody-here", "role": "viewer"})
        self.assertIn((st, body.get("code")), ((404, "not_found"), (400, "invalid_argument")),
                      body)
        self.assertStatus(self.api("POST", f"{V}/teams/mteam/members",
                                   {"user": "bob", "role": "king"}), 400, "invalid_argument")

    def test_users_update(self):
        self.ok(self.api("POST", f"{V}/users", {"name": "uupd", "password": "uupd-pass-123"}), 201)
        p = self.ok(self.api("PATCH", f"{V}/users/uupd", {"email": "u@example.com"}))
        self.assertEqual(p["email"], "u@example.com")
        p = self.ok(self.api("PATCH", f"{V}/users/uupd", {"password": "new-pass-456"}))
        self.assertNotIn("password", p)
        self.srv.login("uupd", "new-pass-456")
        self.assertStatus(self.anon("POST", f"{V}/login",
                                    {"user": "uupd", "password": "uupd-pass-123"}), 401,
                          "unauthenticated")
        self.assertDeleted(self.api("DELETE", f"{V}/users/uupd"))
        self.assertStatus(self.api("GET", f"{V}/users/uupd"), 404, "not_found")

    # -- apps --------------------------------------------------------------------------------

    def test_apps(self):
        base = f"{V}/teams/default/apps"
        a = self.ok(self.api("POST", base, {"name": "shop", "display_name": "Shop",
                                            "description": "the shop"}), 201)
        self.assertEqual((a["name"], a["team"], a["display_name"], a["description"]),
                         ("shop", "default", "Shop", "the shop"))
        self.assertCommon(a, "app")
        self.assertStatus(self.api("POST", base, {"name": "shop"}), 409, "already_exists")
        self.assertEqual(self.ok(self.api("GET", f"{base}/shop")), a)
        self.assertIn("shop", self.names(base))

        # PUT replaces the writable fields: what is left out goes back to its default.
        put = self.ok(self.api("PUT", f"{base}/shop", {"display_name": "Shop 2"}))
        self.assertEqual(put["display_name"], "Shop 2")
        self.assertEqual(put["description"], "")
        self.assertGreater(put["revision"], a["revision"])
        self.assertEqual(put["created_at"], a["created_at"])
        # GET -> edit -> PUT works with the read-only fields sent back.
        edited = dict(put, description="again")
        put2 = self.ok(self.api("PUT", f"{base}/shop", edited))
        self.assertEqual((put2["display_name"], put2["description"]), ("Shop 2", "again"))
        # PATCH merges; null resets to the default.
        pat = self.ok(self.api("PATCH", f"{base}/shop", {"description": "merged"}))
        self.assertEqual((pat["display_name"], pat["description"]), ("Shop 2", "merged"))
        pat = self.ok(self.api("PATCH", f"{base}/shop", {"display_name": None}))
        self.assertEqual((pat["display_name"], pat["description"]), ("", "merged"))
        self.assertEqual(self.ok(self.api("GET", f"{base}/shop")), pat)

        self.assertDeleted(self.api("DELETE", f"{base}/shop"))
        self.assertStatus(self.api("GET", f"{base}/shop"), 404, "not_found")
        self.assertNotIn("shop", self.names(base))
        self.assertStatus(self.api("DELETE", f"{base}/shop"), 404, "not_found")
        self.assertStatus(self.api("PATCH", f"{base}/shop", {"description": "x"}), 404,
                          "not_found")
        self.assertStatus(self.api("GET", f"{V}/teams/no-such-team/apps"), 404, "not_found")

    def test_revision_conflict(self):
        base = f"{V}/teams/default/apps"
        a = self.make_app("default", "rev-app", description="one")
        r1 = a["revision"]
        b = self.ok(self.api("PATCH", f"{base}/rev-app", {"description": "two", "revision": r1}))
        r2 = b["revision"]
        self.assertGreater(r2, r1)
        for method in ("PUT", "PATCH"):
            self.assertStatus(self.api(method, f"{base}/rev-app",
                                       {"description": "stale", "revision": r1}), 409,
                              "revision_conflict", msg=f"{method} with stale revision")
        self.assertStatus(self.api("DELETE", f"{base}/rev-app?revision={r1}"), 409,
                          "revision_conflict")
        now = self.ok(self.api("GET", f"{base}/rev-app"))
        self.assertEqual(now, b, "a rejected write changes nothing")
        c = self.ok(self.api("PUT", f"{base}/rev-app", {"description": "three", "revision": r2}))
        self.assertEqual(c["description"], "three")
        self.assertGreater(c["revision"], r2)
        self.assertDeleted(self.api("DELETE", f"{base}/rev-app?revision={c['revision']}"))
        self.assertStatus(self.api("GET", f"{base}/rev-app"), 404, "not_found")

    def test_concurrent_compare_and_set(self):
        """N clients PATCH with the same revision at once: exactly one wins."""
        base = f"{V}/teams/default/apps"
        a = self.make_app("default", "cas-app")
        n = 8
        barrier = threading.Barrier(n)
        results = [None] * n

        def patch(i):
            barrier.wait(timeout=10)
            results[i] = self.api("PATCH", f"{base}/cas-app",
                                  {"description": f"writer-{i}", "revision": a["revision"]})

        threads = [threading.Thread(target=patch, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        statuses = sorted(r[0] for r in results)
        self.assertEqual(statuses, [200] + [409] * (n - 1), [r[:2] for r in results])
        for r in results:
            if r[0] == 409:
                self.assertEqual(r[1].get("code"), "revision_conflict", r[1])
        winner = next(r[1] for r in results if r[0] == 200)
        self.assertEqual(self.ok(self.api("GET", f"{base}/cas-app")), winner)

    def test_concurrent_create_same_name(self):
        base = f"{V}/teams/default/apps"
        n = 8
        barrier = threading.Barrier(n)
        results = [None] * n

        def create(i):
            barrier.wait(timeout=10)
            results[i] = self.api("POST", base, {"name": "race-app", "description": f"c{i}"})

        threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        statuses = sorted(r[0] for r in results)
        self.assertEqual(statuses, [201] + [409] * (n - 1), [r[:2] for r in results])
        winner = next(r[1] for r in results if r[0] == 201)
        self.assertEqual(self.ok(self.api("GET", f"{base}/race-app")), winner)

    def test_unicode_round_trip(self):
        a = self.make_app("default", "uni-app", display_name="Shöp ☕ 店",
                          description="line1\nline2 \"quoted\" \\ tab\t")
        got = self.ok(self.api("GET", f"{V}/teams/default/apps/uni-app"))
        self.assertEqual(got["display_name"], "Shöp ☕ 店")
        self.assertEqual(got["description"], "line1\nline2 \"quoted\" \\ tab\t")
        self.assertEqual(got, a)

    def test_pagination(self):
        self.make_team("pages")
        base = f"{V}/teams/pages/apps"
        want = [f"pg-{c}" for c in "gcaefdb"]
        for n in want:
            self.make_app("pages", n)
        want.sort()
        seen, after, pages = [], "", 0
        while True:
            q = f"{base}?limit=3" + (f"&after={quote(after, safe='')}" if after else "")
            page = self.ok(self.api("GET", q))
            pages += 1
            self.assertLessEqual(len(page["items"]), 3, page)
            seen += [i["name"] for i in page["items"]]
            after = page["next"]
            if not after:
                break
            self.assertLess(pages, 10, "pagination does not end")
        self.assertEqual(seen, want)
        self.assertEqual(pages, 3, "7 items at 3 per page are 3 pages")
        full = self.ok(self.api("GET", base))
        self.assertEqual([i["name"] for i in full["items"]], want)
        self.assertEqual(full["next"], "")
        one = self.ok(self.api("GET", f"{base}?limit=1"))
        self.assertEqual([i["name"] for i in one["items"]], want[:1])
        self.assertTrue(one["next"])

    # -- components --------------------------------------------------------------------------

    def test_components(self):
        self.make_app("default", "cshop")
        base = f"{V}/teams/default/apps/cshop/components"
        body = {
            "name": "web",
            "kind": "service",
            "source": {"type": "dir", "path": "/srv/shop"},
            "build": {"command": "make", "start_command": "./server"},
            "ports": [{"port": 8080, "protocol": "http", "inner": True, "outer": True,
                       "name": "web"},
                      {"port": 9090, "protocol": "tcp", "inner": True, "outer": False,
                       "name": ""}],
            "env": {"A": "1", "B": "2", "_X9": "x"},
            "config_files": [{"path": "config/app.ini", "content": "[main]\nx=1\n"}],
            "volumes": [{"name": "data", "path": "data", "shared": False}],
            "health": {"readiness": {"type": "http", "port": 8080, "path": "/healthz"}},
            "resources": {"memory_mb": 256, "cpu_millis": 500},
            "replicas": 2,
        }
        c = self.ok(self.api("POST", base, body), 201)
        self.assertEqual((c["name"], c["team"], c["app"]), ("web", "default", "cshop"))
        for k in ("kind", "ports", "env", "config_files", "volumes", "resources", "replicas"):
            self.assertEqual(c[k], body[k], f"component field {k}")
        self.assertEqual(c["source"]["type"], "dir")
        self.assertEqual(c["source"]["path"], "/srv/shop")
        self.assertEqual(c["build"]["command"], "make")
        self.assertEqual(c["build"]["start_command"], "./server")
        self.assertEqual(c["schedule"], "")
        self.assertEqual(c["desired_state"], "running")
        r = c["health"]["readiness"]
        self.assertEqual((r["type"], r["port"], r["path"]), ("http", 8080, "/healthz"))
        self.assertEqual((r["interval_s"], r["timeout_s"], r["failure_threshold"]), (5, 2, 3),
                         f"health defaults filled in: {r!r}")
        # docs/api.md shows 200; the model documents 0 as "any 2xx or 3xx". Either is fine.
        self.assertIn(r["expect_status"], (0, 200), r)
        self.assertIsNone(c["health"].get("startup"))
        self.assertIsNone(c["health"].get("liveness"))
        self.assertCommon(c, "component")
        self.assertEqual(self.ok(self.api("GET", f"{base}/web")), c)
        self.assertStatus(self.api("POST", base, {"name": "web"}), 409, "already_exists")

        # Defaults of a minimal component.
        m = self.ok(self.api("POST", base, {"name": "worker"}), 201)
        self.assertEqual(m["kind"], "service")
        self.assertEqual(m["replicas"], 1)
        self.assertEqual(m["desired_state"], "running")
        self.assertEqual(m["env"], {})
        self.assertEqual(m["ports"], [])
        self.assertEqual(m["config_files"], [])
        self.assertEqual(m["volumes"], [])
        self.assertEqual(m["resources"], {"memory_mb": 0, "cpu_millis": 0})
        self.assertEqual(m["schedule"], "")
        self.assertEqual(self.names(base), ["web", "worker"])

        # Merge patch of env: null removes a key, others are merged.
        p = self.ok(self.api("PATCH", f"{base}/web", {"env": {"A": None, "C": "3"}}))
        self.assertEqual(p["env"], {"B": "2", "C": "3", "_X9": "x"})
        self.assertEqual(p["replicas"], 2, "PATCH keeps what it does not mention")
        self.assertEqual(p["ports"], body["ports"])
        self.assertGreater(p["revision"], c["revision"])
        p = self.ok(self.api("PATCH", f"{base}/web", {"replicas": 3, "desired_state": "stopped"}))
        self.assertEqual((p["replicas"], p["desired_state"]), (3, "stopped"))
        self.assertEqual(self.ok(self.api("GET", f"{base}/web")), p)
        # Arrays are replaced whole by a merge patch.
        p = self.ok(self.api("PATCH", f"{base}/web",
                             {"ports": [{"port": 80, "protocol": "http", "inner": True,
                                         "outer": True, "name": ""}]}))
        self.assertEqual([x["port"] for x in p["ports"]], [80])
        # PUT replaces: fields left out go back to defaults.
        put = self.ok(self.api("PUT", f"{base}/web", {"replicas": 5}))
        self.assertEqual(put["replicas"], 5)
        self.assertEqual(put["env"], {})
        self.assertEqual(put["ports"], [])

        # cronjob with a schedule
        cj = self.ok(self.api("POST", base, {"name": "nightly", "kind": "cronjob",
                                             "schedule": "0 3 * * *"}), 201)
        self.assertEqual((cj["kind"], cj["schedule"]), ("cronjob", "0 3 * * *"))

        self.assertDeleted(self.api("DELETE", f"{base}/worker"))
        self.assertStatus(self.api("GET", f"{base}/worker"), 404, "not_found")
        self.assertStatus(self.api("GET", f"{V}/teams/default/apps/no-app/components"), 404,
                          "not_found")

    def test_dependencies(self):
        self.make_app("default", "dshop")
        self.make_app("default", "dcache")
        for n in ("web", "db"):
            self.make_component("default", "dshop", n)
        self.make_component("default", "dcache", "redis")
        deps = f"{V}/teams/default/apps/dshop/components/web/dependencies"

        d = self.ok(self.api("POST", deps, {"target_component": "db"}), 201)
        self.assertEqual((d["name"], d["target_app"], d["target_component"]),
                         ("db", "dshop", "db"), d)
        x = self.ok(self.api("POST", deps, {"target_component": "redis", "target_app": "dcache"}),
                    201)
        self.assertEqual((x["name"], x["target_app"], x["target_component"]),
                         ("dcache-redis", "dcache", "redis"), x)
        self.assertStatus(self.api("POST", deps, {"target_component": "db"}), 409,
                          "already_exists")
        self.assertEqual(self.names(deps), ["db", "dcache-redis"])
        self.assertEqual(self.ok(self.api("GET", f"{deps}/db"))["target_component"], "db")

        # A component cannot depend on itself; the target must exist.
        st, body, _ = self.api("POST", deps, {"target_component": "web"})
        self.assertIn(st, (400, 409), f"self-dependency: {st} {body!r}")
        self.assertIn(body.get("code"), ("invalid_argument", "failed_precondition"), body)
        for bad in ({"target_component": "ghost"},
                    {"target_component": "redis", "target_app": "ghost-app"}):
            st, body, _ = self.api("POST", deps, bad)
            self.assertIn(st, (400, 404), f"missing target {bad}: {st} {body!r}")
            self.assertIn(body.get("code"), ("invalid_argument", "not_found"), body)
        self.assertEqual(self.names(deps), ["db", "dcache-redis"], "rejected adds change nothing")

        self.assertDeleted(self.api("DELETE", f"{deps}/db"))
        self.assertStatus(self.api("GET", f"{deps}/db"), 404, "not_found")
        self.assertEqual(self.names(deps), ["dcache-redis"])

    def test_versions_events_instances(self):
        self.make_app("default", "vshop")
        self.make_component("default", "vshop", "web")
        comp = f"{V}/teams/default/apps/vshop/components/web"
        # Version names and numbers are assigned by the server (v1, v2, ... per component, as
        # Heroku numbers releases); the builder posts the rest.
        v = self.ok(self.api("POST", f"{comp}/versions",
                             {"status": "ready", "artifact": "sha256:" + "a" * 64,
                              "start_command": "./run", "commit": "abc123",
                              "size_bytes": 1234}), 201)
        self.assertEqual((v["name"], v["number"], v["status"]), ("v1", 1, "ready"), v)
        # Where its log lives is the server's to say (docs/security.md "Input and paths").
        self.assertEqual(v["build_log"], "logs/builds/default/vshop/web/v1.log")
        self.assertEqual(v["artifact"], "sha256:" + "a" * 64)
        v2 = self.ok(self.api("POST", f"{comp}/versions", {"status": "building"}), 201)
        self.assertEqual((v2["name"], v2["number"]), ("v2", 2), v2)
        self.assertEqual(self.names(f"{comp}/versions"), ["v1", "v2"])
        self.assertEqual(self.ok(self.api("GET", f"{comp}/versions/v1"))["commit"], "abc123")
        self.assertDeleted(self.api("DELETE", f"{comp}/versions/v1"))
        self.assertStatus(self.api("GET", f"{comp}/versions/v1"), 404, "not_found")
        self.assertEqual(self.names(f"{comp}/versions"), ["v2"])

        for path in (f"{V}/teams/default/events", f"{comp}/events", f"{comp}/instances"):
            body = self.ok(self.api("GET", path), msg=path)
            self.assertIsInstance(body.get("items"), list, f"{path}: {body!r}")
            self.assertIn("next", body, path)
        self.assertEqual(self.ok(self.api("GET", f"{comp}/instances"))["items"], [])
        self.assertStatus(self.api("GET", f"{comp}/instances/nope-0"), 404, "not_found")

    def test_cascade_delete_app(self):
        self.make_app("default", "casc")
        base = f"{V}/teams/default/apps/casc/components"
        self.make_component("default", "casc", "web")
        self.make_component("default", "casc", "db")
        self.ok(self.api("POST", f"{base}/web/dependencies", {"target_component": "db"}), 201)
        self.ok(self.api("POST", f"{base}/web/versions", {"status": "ready"}), 201)
        self.assertDeleted(self.api("DELETE", f"{V}/teams/default/apps/casc"))
        for p in (f"{base}/web", f"{base}/db", f"{base}/web/dependencies/db",
                  f"{base}/web/versions/v1"):
            self.assertStatus(self.api("GET", p), 404, "not_found", msg=p)
        # Re-creating the app does not bring anything back.
        self.make_app("default", "casc")
        self.assertEqual(self.names(base), [])
        self.make_component("default", "casc", "web")
        self.assertEqual(self.names(f"{base}/web/dependencies"), [])
        self.assertEqual(self.names(f"{base}/web/versions"), [])

    # -- openapi and audit -------------------------------------------------------------------

    def test_openapi_lists_routes(self):
        st, doc, hdrs = self.anon("GET", f"{V}/openapi.json")
        self.assertEqual(st, 200, doc)
        self.assertIsInstance(doc, dict, "openapi.json is JSON")
        self.assertTrue(str(doc.get("openapi", "")).startswith("3"), doc.get("openapi"))
        paths = doc.get("paths") or {}

        def norm(p: str) -> str:
            if p.startswith("/api/v1"):
                p = p[len("/api/v1"):]
            return re.sub(r"\{[^}]*\}", "{}", p)

        have = {}
        for p, item in paths.items():
            have.setdefault(norm(p), set()).update(k.lower() for k in item)
        T, A, C = "/teams/{}", "/teams/{}/apps/{}", "/teams/{}/apps/{}/components/{}"
        want = {
            "/login": {"post"}, "/logout": {"post"}, "/whoami": {"get"},
            "/users": {"get", "post"}, "/users/{}": {"get", "put", "patch", "delete"},
            "/tokens": {"get", "post"}, "/tokens/{}": {"delete"},
            "/teams": {"get", "post"}, T: {"get", "put", "patch", "delete"},
            f"{T}/members": {"get", "post"}, f"{T}/members/{{}}": {"get", "put", "patch", "delete"},
            f"{T}/apps": {"get", "post"}, A: {"get", "put", "patch", "delete"},
            f"{A}/components": {"get", "post"}, C: {"get", "put", "patch", "delete"},
            f"{C}/dependencies": {"get", "post"}, f"{C}/dependencies/{{}}": {"get", "delete"},
            f"{C}/versions": {"get", "post"}, f"{C}/versions/{{}}": {"get", "delete"},
            f"{C}/instances": {"get"}, f"{C}/instances/{{}}": {"get"},
            f"{C}/events": {"get"}, f"{T}/events": {"get"}, f"{T}/audit": {"get"},
            f"{T}/watch": {"get"}, "/watch": {"get"}, "/openapi.json": {"get"},
        }
        missing = []
        for p, methods in want.items():
            if p not in have:
                missing.append(f"{p} (route missing)")
            elif not methods <= have[p]:
                missing.append(f"{p} lacks {sorted(methods - have[p])}")
        self.assertEqual(missing, [], f"openapi.json paths: {sorted(paths)}")

    def test_audit_log(self):
        self.make_team("aud")
        base = f"{V}/teams/aud/apps"
        self.make_app("aud", "audited")
        self.ok(self.api("PATCH", f"{base}/audited", {"description": "changed"}))
        self.assertDeleted(self.api("DELETE", f"{base}/audited"))
        entries = self.list_all(f"{V}/teams/aud/audit")
        ours = [e for e in entries if e.get("resource") == "apps/audited"]
        self.assertEqual([e["action"] for e in ours], ["delete", "update", "create"],
                         f"audit entries for apps/audited, newest first: {entries!r}")
        for e in ours:
            self.assertEqual(e["actor"], "admin", e)
            self.assertEqual(e["team"], "aud", e)
            self.assertRegex(str(e["time"]), RFC3339)
            self.assertIn("id", e)
            self.assertIn("summary", e)
        upd = ours[1]["summary"]
        self.assertIn("changed", str(upd.get("after")), f"update summary: {upd!r}")
        times = [e["time"] for e in entries]
        self.assertEqual(times, sorted(times, reverse=True), "audit is newest first")
        # paging through the audit log
        page = self.ok(self.api("GET", f"{V}/teams/aud/audit?limit=1"))
        self.assertEqual(len(page["items"]), 1)
        self.assertEqual(page["items"][0]["id"], entries[0]["id"])
        self.assertTrue(page["next"])
        nxt = self.ok(self.api("GET", f"{V}/teams/aud/audit?limit=1&after={quote(page['next'], safe='')}"))
        self.assertEqual(nxt["items"][0]["id"], entries[1]["id"])


if __name__ == "__main__":
    unittest.main()
