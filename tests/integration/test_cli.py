"""The CRUD journey through the `berth` CLI (docs/cli.md), checked against the REST API."""

import json
import os
import stat
import unittest

from harness import BerthTestCase

V = "/api/v1"


class CliTest(BerthTestCase):

    def setUp(self):
        self.config = os.path.join(self.srv.tmp, f"cli-{self._testMethodName}.json")

    def berth(self, *args, input=None, env=None, config=None, expect=0):
        r = self.srv.cli(*args, input=input, env=env, config=config or self.config)
        if expect is not None:
            self.assertEqual(r.returncode, expect,
                             f"`berth {' '.join(args)}` exit code {r.returncode}, expected {expect}"
                             f"\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
        for bad in ("AddressSanitizer", "runtime error:", "terminate called", "Segmentation"):
            self.assertNotIn(bad, r.stderr, f"`berth {' '.join(args)}` crashed: {r.stderr}")
        return r

    def json_out(self, *args, **kw):
        r = self.berth(*args, "-o", "json", **kw)
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            self.fail(f"`berth {' '.join(args)} -o json` did not print JSON ({e}): {r.stdout!r}")

    def items(self, out):
        """A list printed with -o json: the API's {"items": [...]} or a bare array."""
        if isinstance(out, dict):
            self.assertIn("items", out, out)
            return out["items"]
        self.assertIsInstance(out, list, out)
        return out

    def login(self, user="admin", password="admin-pass-123"):
        r = self.berth("login", "--server", self.srv.url, "--user", user, "--password-stdin",
                       input=password + "\n")
        return r

    def config_data(self):
        with open(self.config) as f:
            return json.load(f)

    def token(self):
        return self.config_data()["token"]

    # -- session -----------------------------------------------------------------------------

    def test_login_writes_private_config(self):
        self.login()
        self.assertTrue(os.path.exists(self.config), "login writes the config file")
        mode = stat.S_IMODE(os.stat(self.config).st_mode)
        self.assertEqual(mode, 0o600, f"config file mode {oct(mode)}")
        cfg = self.config_data()
        self.assertEqual(cfg.get("server", "").rstrip("/"), self.srv.url)
        self.assertEqual(cfg.get("user"), "admin")
        self.assertTrue(cfg.get("token"))
        self.ok(self.api("GET", f"{V}/whoami", token=cfg["token"]), msg="stored token works")

        r = self.berth("whoami")
        self.assertIn("admin", r.stdout)
        me = self.json_out("whoami")
        api_me = self.ok(self.api("GET", f"{V}/whoami", token=cfg["token"]))
        self.assertEqual(me, api_me)

        # BERTH_SERVER / BERTH_TOKEN override the stored values.
        other = os.path.join(self.srv.tmp, "empty-config.json")
        me2 = self.json_out("whoami", config=other,
                            env={"BERTH_SERVER": self.srv.url, "BERTH_TOKEN": cfg["token"]})
        self.assertEqual(me2["user"]["name"], "admin")

        self.berth("logout")
        self.assertStatus(self.api("GET", f"{V}/whoami", token=cfg["token"]), 401,
                          "unauthenticated", msg="token after `berth logout`:")
        self.assertFalse(self.config_data().get("token") if os.path.exists(self.config) else "",
                         "logout forgets the token")
        r = self.berth("whoami", expect=None)
        self.assertNotEqual(r.returncode, 0, f"whoami after logout succeeded: {r.stdout!r}")

    def test_login_wrong_password(self):
        r = self.berth("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                       input="nope-nope-nope\n", expect=1)
        self.assertIn("unauthenticated", r.stderr)
        self.assertTrue(r.stderr.startswith("error:"), r.stderr)

    # -- teams and members -------------------------------------------------------------------

    def test_teams(self):
        self.login()
        out = self.json_out("team", "create", "cli-team", "--display-name", "CLI Team")
        self.assertEqual((out["name"], out["display_name"]), ("cli-team", "CLI Team"))
        api = self.ok(self.api("GET", f"{V}/teams/cli-team"))
        self.assertEqual(out, api, "-o json prints the API's object")

        r = self.berth("team", "list")
        self.assertIn("cli-team", r.stdout)
        self.assertIn("default", r.stdout)
        lst = self.items(self.json_out("team", "list"))
        self.assertIn("cli-team", [t["name"] for t in lst])
        self.assertEqual(self.json_out("team", "show", "cli-team"), api)

        self.berth("team", "update", "cli-team", "--display-name", "Renamed",
                   "--quota-instances", "3", "--quota-memory-mb", "512")
        api = self.ok(self.api("GET", f"{V}/teams/cli-team"))
        self.assertEqual(api["display_name"], "Renamed")
        self.assertEqual(api["quota"]["instances"], 3)
        self.assertEqual(api["quota"]["memory_mb"], 512)

        # `team use` picks the team for later commands.
        self.berth("team", "use", "cli-team")
        self.assertEqual(self.config_data().get("team"), "cli-team")
        self.berth("app", "create", "in-used-team")
        self.ok(self.api("GET", f"{V}/teams/cli-team/apps/in-used-team"))
        self.assertStatus(self.api("GET", f"{V}/teams/default/apps/in-used-team"), 404)
        # --team overrides it for one command
        self.berth("app", "create", "in-default", "--team", "default")
        self.ok(self.api("GET", f"{V}/teams/default/apps/in-default"))
        self.berth("team", "use", "default")

        r = self.berth("team", "delete", "cli-team", "--yes")
        self.assertIn("deleted team cli-team", r.stdout)
        self.assertStatus(self.api("GET", f"{V}/teams/cli-team"), 404, "not_found")

    def test_members(self):
        self.login()
        self.berth("team", "create", "cli-mem")
        self.berth("user", "create", "cli-bob", "--password-stdin", input="cli-bob-pass-1\n")
        self.berth("team", "member", "add", "cli-bob", "--role", "developer", "--team", "cli-mem")
        self.assertEqual(self.ok(self.api("GET", f"{V}/teams/cli-mem/members/cli-bob"))["role"],
                         "developer")
        r = self.berth("team", "member", "list", "--team", "cli-mem")
        self.assertIn("cli-bob", r.stdout)
        self.assertIn("developer", r.stdout)
        lst = self.items(self.json_out("team", "member", "list", "--team", "cli-mem"))
        self.assertEqual({m["user"]: m["role"] for m in lst},
                         {"admin": "owner", "cli-bob": "developer"})
        self.berth("team", "member", "set", "cli-bob", "--role", "viewer", "--team", "cli-mem")
        self.assertEqual(self.ok(self.api("GET", f"{V}/teams/cli-mem/members/cli-bob"))["role"],
                         "viewer")
        self.berth("team", "member", "remove", "cli-bob", "--team", "cli-mem")
        self.assertStatus(self.api("GET", f"{V}/teams/cli-mem/members/cli-bob"), 404)
        r = self.berth("team", "member", "add", "cli-bob", "--role", "emperor", "--team",
                       "cli-mem", expect=None)
        self.assertNotEqual(r.returncode, 0)

    # -- apps, components, dependencies ------------------------------------------------------

    def test_apps(self):
        self.login()
        out = self.json_out("app", "create", "cli-shop", "--display-name", "Shop",
                            "--description", "sells")
        api = self.ok(self.api("GET", f"{V}/teams/default/apps/cli-shop"))
        self.assertEqual(out, api)
        self.assertEqual((api["display_name"], api["description"]), ("Shop", "sells"))
        self.assertIn("cli-shop", self.berth("app", "list").stdout)
        self.assertIn("cli-shop", [a["name"] for a in self.items(self.json_out("app", "list"))])
        self.assertEqual(self.json_out("app", "show", "cli-shop"), api)
        self.berth("app", "update", "cli-shop", "--display-name", "Shop 2")
        api2 = self.ok(self.api("GET", f"{V}/teams/default/apps/cli-shop"))
        self.assertEqual((api2["display_name"], api2["description"]), ("Shop 2", "sells"),
                         "update changes only the given flags")
        r = self.berth("app", "delete", "cli-shop", "--yes")
        self.assertIn("deleted app cli-shop", r.stdout)
        self.assertStatus(self.api("GET", f"{V}/teams/default/apps/cli-shop"), 404)

    def test_components_and_dependencies(self):
        self.login()
        self.berth("app", "create", "cshop")
        comp = f"{V}/teams/default/apps/cshop/components"
        out = self.json_out("component", "create", "web", "--app", "cshop", "--port", "8080/http",
                            "--env", "A=1", "--replicas", "2")
        api = self.ok(self.api("GET", f"{comp}/web"))
        self.assertEqual(out, api)
        self.assertEqual(api["replicas"], 2)
        self.assertEqual(api["env"], {"A": "1"})
        self.assertEqual(len(api["ports"]), 1)
        p = api["ports"][0]
        self.assertEqual((p["port"], p["protocol"], p["inner"], p["outer"]),
                         (8080, "http", True, True))

        self.berth("component", "create", "db", "--app", "cshop", "--kind", "stateful",
                   "--port", "5432/tcp:inner", "--memory", "256", "--cpu", "500")
        db = self.ok(self.api("GET", f"{comp}/db"))
        self.assertEqual(db["kind"], "stateful")
        self.assertEqual([(x["port"], x["protocol"], x["inner"], x["outer"]) for x in db["ports"]],
                         [(5432, "tcp", True, False)])
        self.assertEqual(db["resources"], {"memory_mb": 256, "cpu_millis": 500})

        self.berth("component", "create", "nightly", "--app", "cshop", "--kind", "cronjob",
                   "--schedule", "0 3 * * *")
        self.assertEqual(self.ok(self.api("GET", f"{comp}/nightly"))["schedule"], "0 3 * * *")

        r = self.berth("component", "list", "--app", "cshop")
        for n in ("web", "db", "nightly"):
            self.assertIn(n, r.stdout)
        # STATE is the real one: nothing was ever built for web (no source yet).
        web_row = [l for l in r.stdout.splitlines() if l.startswith("web ")]
        self.assertTrue(web_row and "never built" in web_row[0], r.stdout)
        self.assertEqual([c["name"] for c in self.items(self.json_out("component", "list",
                                                                      "--app", "cshop"))],
                         ["db", "nightly", "web"])
        self.assertEqual(self.json_out("component", "show", "web", "--app", "cshop"),
                         self.ok(self.api("GET", f"{comp}/web")))

        self.berth("component", "set", "web", "--app", "cshop", "--env", "A=", "--env", "B=2")
        web = self.ok(self.api("GET", f"{comp}/web"))
        self.assertEqual(web["env"], {"B": "2"}, "--env A= removes A, --env B=2 adds B")
        self.assertEqual(web["replicas"], 2, "set changes only what it is given")
        self.assertEqual([x["port"] for x in web["ports"]], [8080])
        self.berth("component", "set", "web", "--app", "cshop", "--port", "9000/grpc",
                   "--replicas", "4")
        web = self.ok(self.api("GET", f"{comp}/web"))
        self.assertEqual([(x["port"], x["protocol"]) for x in web["ports"]], [(9000, "grpc")],
                         "--port replaces the list")
        self.assertEqual(web["replicas"], 4)

        # dependencies
        self.berth("dependency", "add", "--app", "cshop", "--component", "web", "--on", "db")
        deps = f"{comp}/web/dependencies"
        self.assertEqual(self.names(deps), ["db"])
        self.berth("app", "create", "ccache")
        self.berth("component", "create", "redis", "--app", "ccache")
        self.berth("dependency", "add", "--app", "cshop", "--component", "web", "--on", "redis",
                   "--target-app", "ccache")
        self.assertEqual(self.names(deps), ["ccache-redis", "db"])
        r = self.berth("dependency", "list", "--app", "cshop", "--component", "web")
        self.assertIn("ccache-redis", r.stdout)
        self.assertEqual([d["name"] for d in self.items(self.json_out(
            "dependency", "list", "--app", "cshop", "--component", "web"))],
            ["ccache-redis", "db"])
        self.berth("dependency", "remove", "db", "--app", "cshop", "--component", "web")
        self.assertEqual(self.names(deps), ["ccache-redis"])

        r = self.berth("component", "delete", "db", "--app", "cshop", "-y")
        self.assertIn("deleted component db", r.stdout)
        self.assertStatus(self.api("GET", f"{comp}/db"), 404)

    # -- users, tokens, audit ----------------------------------------------------------------

    def test_users(self):
        self.login()
        out = self.json_out("user", "create", "cli-user", "--password-stdin", "--email",
                            "u@example.com", "--display-name", "U", input="cli-user-pass-1\n")
        self.assertEqual((out["name"], out["email"]), ("cli-user", "u@example.com"))
        self.assertNotIn("password", out)
        self.srv.login("cli-user", "cli-user-pass-1")
        self.assertIn("cli-user", self.berth("user", "list").stdout)
        self.assertIn("cli-user", [u["name"] for u in self.items(self.json_out("user", "list"))])
        self.assertEqual(self.json_out("user", "show", "cli-user"),
                         self.ok(self.api("GET", f"{V}/users/cli-user")))
        self.berth("user", "update", "cli-user", "--disabled", "true", "--email", "v@example.com")
        u = self.ok(self.api("GET", f"{V}/users/cli-user"))
        self.assertEqual((u["disabled"], u["email"]), (True, "v@example.com"))
        self.assertStatus(self.anon("POST", f"{V}/login",
                                    {"user": "cli-user", "password": "cli-user-pass-1"}), 401)
        self.berth("user", "update", "cli-user", "--disabled", "false", "--password-stdin",
                   input="cli-user-pass-2\n")
        self.srv.login("cli-user", "cli-user-pass-2")
        self.berth("user", "create", "cli-admin2", "--admin", "--password-stdin",
                   input="cli-admin2-pass\n")
        self.assertIs(self.ok(self.api("GET", f"{V}/users/cli-admin2"))["admin"], True)
        r = self.berth("user", "delete", "cli-user")
        self.assertIn("deleted user cli-user", r.stdout)
        self.assertStatus(self.api("GET", f"{V}/users/cli-user"), 404)

    def test_tokens(self):
        self.login()
        out = self.json_out("token", "create", "cli-ci", "--ttl-hours", "2")
        secret, tid = out.get("token"), out.get("id")
        self.assertTrue(secret and tid, out)
        self.assertEqual(self.ok(self.api("GET", f"{V}/whoami", token=secret))["user"]["name"],
                         "admin")
        r = self.berth("token", "list")
        self.assertIn("cli-ci", r.stdout)
        self.assertNotIn(secret, r.stdout, "token list never shows secrets")
        lst = self.items(self.json_out("token", "list"))
        self.assertIn(tid, [t["id"] for t in lst])
        self.berth("token", "delete", tid)
        self.assertStatus(self.api("GET", f"{V}/whoami", token=secret), 401)

    def test_audit(self):
        self.login()
        self.berth("app", "create", "audited-cli")
        self.berth("app", "delete", "audited-cli", "--yes")
        entries = self.items(self.json_out("audit", "list", "--limit", "50"))
        ours = [e["action"] for e in entries if e.get("resource") == "apps/audited-cli"]
        self.assertEqual(ours, ["delete", "create"], entries)
        r = self.berth("audit", "list")
        self.assertIn("apps/audited-cli", r.stdout)
        self.assertEqual(len(self.items(self.json_out("audit", "list", "--limit", "1"))), 1)

    # -- errors ------------------------------------------------------------------------------

    def test_server_errors_are_printed(self):
        self.login()
        self.berth("app", "create", "twice")
        r = self.berth("app", "create", "twice", expect=1)
        self.assertTrue(r.stderr.startswith("error: "), r.stderr)
        self.assertIn("(already_exists)", r.stderr)
        _, body, _ = self.api("POST", f"{V}/teams/default/apps", {"name": "Bad_Name"})
        r = self.berth("app", "create", "Bad_Name", expect=1)
        self.assertIn(f"error: {body['message']} (invalid_name)", r.stderr,
                      "the server's message is printed as is")
        self.assertStatus(self.api("GET", f"{V}/teams/default/apps/Bad_Name"), 404)
        r = self.berth("app", "show", "no-such-app", expect=1)
        self.assertIn("(not_found)", r.stderr)

    def test_usage_errors(self):
        self.login()
        self.berth("app", "create", expect=2)
        self.berth("app", "frobnicate", "x", expect=2)
        self.berth("component", "create", "web", expect=2)  # --app is required

    def test_unreachable_server(self):
        r = self.berth("whoami", config=os.path.join(self.srv.tmp, "nothing.json"),
                       env={"BERTH_SERVER": "http://127.0.0.1:1", "BERTH_TOKEN": "x"},
                       expect=1)
        self.assertTrue(r.stderr.startswith("error:"), r.stderr)
        self.assertIn("127.0.0.1:1", r.stderr, "the error names the server it could not reach")
        r = self.berth("login", "--server", "http://127.0.0.1:1", "--user", "admin",
                       "--password-stdin", input="x\n", expect=1)
        self.assertIn("127.0.0.1:1", r.stderr)

    def test_not_logged_in(self):
        r = self.berth("app", "list", config=os.path.join(self.srv.tmp, "none.json"),
                       expect=None)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.strip(), "a clear error when not logged in")


if __name__ == "__main__":
    unittest.main()
