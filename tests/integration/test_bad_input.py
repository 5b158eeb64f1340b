"""Bad input is refused with a clear, stable error and changes nothing (docs/api.md "Errors",
"Names", "Components")."""

import contextlib
import json
import unittest

from harness import BerthTestCase

V = "/api/v1"
APPS = f"{V}/teams/default/apps"
COMPS = f"{APPS}/keep/components"


class BadInputTest(BerthTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for path, body in ((APPS, {"name": "keep", "description": "kept"}),
                           (COMPS, {"name": "web", "env": {"A": "1"}})):
            st, b, _ = cls.srv.api("POST", path, body, token=cls.admin)
            assert st == 201, (path, st, b)
        cls.initial = None

    def state(self):
        return {
            "apps": self.list_all(APPS),
            "components": self.list_all(COMPS),
            "teams": self.list_all(f"{V}/teams"),
            "users": self.list_all(f"{V}/users"),
            "members": self.list_all(f"{V}/teams/default/members"),
            "audit entries": self.list_all(f"{V}/teams/default/audit"),
        }

    @contextlib.contextmanager
    def unchanged(self):
        before = self.state()
        yield
        after = self.state()
        for k in before:
            self.assertEqual(after[k], before[k], f"rejected requests changed the {k}")

    def bad(self, method, path, body=None, status=400, code="invalid_argument", field=None,
            raw_body=None, headers=None, field_contains=None):
        """Expects a refusal; each call is its own subTest so every bad case gets reported."""
        shown = raw_body if raw_body is not None else json.dumps(body)
        desc = f"{method} {path} {str(shown)[:120]}"
        b = {}
        with self.subTest(desc):
            resp = self.api(method, path, body, raw_body=raw_body, headers=headers)
            b = self.assertStatus(resp, status, code, msg=desc + ":")
            if field is not None:
                self.assertEqual(b.get("field"), field, f"{desc}: field to blame; body {b!r}")
            if field_contains is not None:
                self.assertIn(field_contains, str(b.get("field")), f"{desc}: field; body {b!r}")
        return b if isinstance(b, dict) else {}

    # -- JSON --------------------------------------------------------------------------------

    def test_malformed_json(self):
        with self.unchanged():
            for raw in ('{"name": "mal",', "{name: 'mal'}", "not json", '{"name": "mal"} x',
                        "\xff\xfe", "   "):
                self.bad("POST", APPS, raw_body=raw.encode("latin-1"), code="invalid_json")
            self.bad("PATCH", f"{APPS}/keep", raw_body=b'{"description": ', code="invalid_json")
            self.bad("PUT", f"{COMPS}/web", raw_body=b'{"replicas": 2', code="invalid_json")
        self.assertNotIn("mal", self.names(APPS))

    def test_empty_body(self):
        # An empty body is not JSON (docs/api.md: invalid_json "the body is not JSON").
        with self.unchanged():
            self.bad("POST", APPS, raw_body=b"", code="invalid_json")
            self.bad("POST", COMPS, raw_body=b"", code="invalid_json")
            self.bad("PATCH", f"{APPS}/keep", raw_body=b"", code="invalid_json")

    def test_json_not_an_object(self):
        with self.unchanged():
            for raw in ('[{"name": "arr"}]', '"arr"', "42", "null", "true"):
                self.bad("POST", APPS, raw_body=raw, code="invalid_json")
            self.bad("PATCH", f"{APPS}/keep", raw_body="[]", code="invalid_json")

    def test_unknown_field(self):
        with self.unchanged():
            self.bad("POST", APPS, {"name": "unk", "colour": "red"}, code="unknown_field",
                     field="colour")
            self.bad("PATCH", f"{APPS}/keep", {"descripton": "typo"}, code="unknown_field",
                     field="descripton")
            self.bad("POST", COMPS, {"name": "unk", "replica": 2}, code="unknown_field",
                     field="replica")
            self.bad("POST", COMPS, {"name": "unk", "ports": [{"port": 80, "protocol": "http",
                                                               "bogus": 1}]},
                     code="unknown_field", field_contains="bogus")
            self.bad("POST", f"{V}/teams", {"name": "unk", "owner": "me"}, code="unknown_field",
                     field="owner")

    def test_wrong_type(self):
        with self.unchanged():
            self.bad("POST", APPS, {"name": "wt", "display_name": 5}, field="display_name")
            self.bad("POST", APPS, {"name": "wt", "description": ["a"]}, field="description")
            self.bad("PATCH", f"{APPS}/keep", {"description": {"a": 1}}, field="description")
            self.bad("POST", COMPS, {"name": "wt", "replicas": "two"}, field="replicas")
            self.bad("POST", COMPS, {"name": "wt", "env": ["A=1"]}, field_contains="env")
            self.bad("POST", COMPS, {"name": "wt", "env": {"A": 1}}, field_contains="env")
            self.bad("POST", COMPS, {"name": "wt", "ports": {"port": 80}}, field_contains="ports")
            self.bad("PATCH", f"{COMPS}/web", {"replicas": 1.5}, field="replicas")
            self.bad("PATCH", f"{COMPS}/web", {"revision": "abc"}, field="revision")
            self.bad("POST", f"{V}/teams", {"name": "wt", "quota": {"instances": "many"}},
                     field_contains="instances")

    # -- names -------------------------------------------------------------------------------

    BAD_NAMES = ["Shop", "1shop", "a" * 64, "", "../x", "shop-", "-shop", "sh_op", "sh op",
                 "sh.op", "ш"]

    def test_invalid_names(self):
        with self.unchanged():
            for name in self.BAD_NAMES:
                for path in (APPS, COMPS, f"{V}/teams"):
                    b = self.bad("POST", path, {"name": name}, code="invalid_name", field="name")
                    if b.get("message"):
                        self.assertIn("name", b["message"])
            for name in ("Bob", "1bob", "bob.", "bob_", "b" * 64, "", "../x"):
                self.bad("POST", f"{V}/users", {"name": name, "password": "long-enough-1"},
                         code="invalid_name", field="name")
            self.bad("POST", f"{COMPS}/web/dependencies", {"target_component": "Bad_Name"},
                     code="invalid_name", field="target_component")

    def test_boundary_names_accepted(self):
        name63 = "a" + "b" * 61 + "c"
        self.assertEqual(len(name63), 63)
        for name in (name63, "a", "a-1", "x0"):
            self.make_app("default", name)
            self.ok(self.api("DELETE", f"{APPS}/{name}"), (200, 204))
        self.ok(self.api("POST", f"{V}/users", {"name": "j.doe_2-x", "password": "long-enough-1"}),
                201)
        self.ok(self.api("DELETE", f"{V}/users/j.doe_2-x"), (200, 204))

    def test_short_password(self):
        with self.unchanged():
            self.bad("POST", f"{V}/users", {"name": "shorty", "password": "1234567"},
                     field="password")

    # -- size --------------------------------------------------------------------------------

    def test_oversize_body(self):
        with self.unchanged():
            big = json.dumps({"name": "big", "description": "x" * ((1 << 20) + 100)})
            self.bad("POST", APPS, raw_body=big, status=413, code="payload_too_large")
            big = json.dumps({"description": "x" * (2 << 20)})
            self.bad("PATCH", f"{APPS}/keep", raw_body=big, status=413, code="payload_too_large")
        self.ok(self.api("GET", "/healthz"))

    def test_wrong_content_type(self):
        with self.unchanged():
            self.bad("POST", APPS, raw_body='{"name": "ctype"}', status=415,
                     code="unsupported_media_type", headers={"Content-Type": "text/plain"})

    # -- component fields --------------------------------------------------------------------

    def test_config_file_paths(self):
        with self.unchanged():
            # Paths that leave the instance's directory have their own code (docs/api.md).
            for p in ("../etc", "../etc/passwd", "a/../../b", "/etc/passwd", "", "a/.."):
                self.bad("POST", COMPS, {"name": "cf", "config_files": [{"path": p,
                                                                          "content": "x"}]},
                         code="invalid_argument" if p == "" else "unsafe_path",
                         field_contains="config_files")
            self.bad("PATCH", f"{COMPS}/web", {"config_files": [{"path": "../x", "content": ""}]},
                     code="unsafe_path", field_contains="config_files")
            self.bad("POST", COMPS, {"name": "vol", "volumes": [{"name": "d", "path": "../d"}]},
                     code="unsafe_path", field_contains="volumes")

    def test_env_keys(self):
        with self.unchanged():
            for k in ("1BAD", "BAD-KEY", "", "A B", "A=B", "A.B"):
                self.bad("POST", COMPS, {"name": "envc", "env": {k: "v"}}, field_contains="env")
            self.bad("PATCH", f"{COMPS}/web", {"env": {"9X": "v"}}, field_contains="env")

    def test_ports(self):
        with self.unchanged():
            for port in ({"port": 0, "protocol": "http"}, {"port": 70000, "protocol": "http"},
                         {"port": -1, "protocol": "tcp"}, {"port": 65536, "protocol": "tcp"},
                         {"port": 80, "protocol": "smtp"}, {"port": 80, "protocol": "HTTP"}):
                self.bad("POST", COMPS, {"name": "pc", "ports": [port]}, field_contains="ports")

    def test_component_enums(self):
        with self.unchanged():
            self.bad("POST", COMPS, {"name": "cj", "kind": "cronjob"}, field="schedule")
            self.bad("POST", COMPS, {"name": "cj", "kind": "cronjob", "schedule": ""},
                     field="schedule")
            self.bad("POST", COMPS, {"name": "k", "kind": "daemon"}, field="kind")
            self.bad("POST", COMPS, {"name": "k", "replicas": -1}, field="replicas")
            self.bad("POST", COMPS, {"name": "k", "desired_state": "paused"},
                     field="desired_state")
            self.bad("POST", COMPS, {"name": "k", "source": {"type": "ftp"}},
                     field_contains="source")
            self.bad("POST", COMPS, {"name": "k", "health": {"readiness": {"type": "ping"}}},
                     field_contains="health")
            self.bad("POST", COMPS, {"name": "k", "resources": {"memory_mb": -5}},
                     field_contains="resources")
            self.bad("PATCH", f"{COMPS}/web", {"kind": "cronjob"}, field="schedule")

    # -- routes and queries ------------------------------------------------------------------

    def test_unknown_route(self):
        with self.unchanged():
            for path in (f"{V}/nope", "/api/v2/teams", f"{V}/teams/default/apps/keep/nope",
                         f"{V}/teams/default/widgets"):
                self.bad("GET", path, status=404, code="route_not_found")
            self.bad("POST", f"{V}/nope", {"name": "x"}, status=404, code="route_not_found")

    def test_wrong_method(self):
        with self.unchanged():
            for method, path in (("DELETE", f"{V}/teams"), ("PATCH", APPS), ("PUT", APPS),
                                 ("POST", f"{APPS}/keep"), ("DELETE", f"{V}/login"),
                                 ("GET", f"{V}/login"), ("POST", "/healthz"),
                                 ("PUT", f"{COMPS}/web/dependencies"),
                                 ("POST", f"{COMPS}/web/instances")):
                body = {"name": "x"} if method in ("POST", "PUT", "PATCH") else None
                self.bad(method, path, body, status=405, code="method_not_allowed")

    def test_bad_pagination(self):
        with self.unchanged():
            for q in ("limit=0", "limit=501", "limit=-1", "limit=abc"):
                self.bad("GET", f"{APPS}?{q}", field="limit")
            st, body, _ = self.api("GET", f"{APPS}?after=%00garbage%ff")
            self.assertIn(st, (200, 400), f"garbage `after`: {st} {body!r}")

    def test_bad_revision_query(self):
        with self.unchanged():
            self.bad("DELETE", f"{APPS}/keep?revision=abc", field="revision")


if __name__ == "__main__":
    unittest.main()
