"""Identity holes of issue 13 (docs/security.md "Identity, teams and the gateway"): deleting a
team touches only that team, service-account names are reserved, every token of a user is
revoked on a password change and a delete, expired tokens are collected, streams end when their
caller's access ends, the login limit holds per account, and who may create teams is a platform
setting that no user escapes by creating more teams."""

from __future__ import annotations

import http.client
import json
import threading
import time
import unittest

from harness import BerthServer, BerthTestCase

V = "/api/v1"


def wait_for(fn, what: str, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Follower:
    """Reads an NDJSON stream on its own thread; remembers its lines and when it ended."""

    def __init__(self, srv: BerthServer, path: str, token: str):
        self.lines: list[dict] = []
        self.ended_at: float | None = None
        self.status: int | None = None
        self.conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    pass
        except OSError:
            pass
        self.ended_at = time.time()

    def errors(self) -> list[dict]:
        return [l for l in self.lines if l.get("type") == "error"]

    def close(self):
        self.conn.close()


class IdentityTest(BerthTestCase):
    server_kwargs = {"extra_args": ["--stream-recheck-s", "1", "--token-gc-interval-s", "1",
                                    "--login-attempts", "2"]}

    # -- item 3: deleting a team deletes only that team --------------------------------------

    def test_deleting_a_team_named_like_a_user_keeps_the_users_tokens(self):
        carol = self.make_user("carol")
        extra = self.ok(self.api("POST", f"{V}/tokens", {"name": "ci"}, token=carol), 201)
        self.make_team("carol")  # the platform administrator makes a team of that name
        self.make_app("carol", "shop")
        self.ok(self.api("DELETE", f"{V}/teams/carol"))
        # Only the team went: carol's tokens still work and are still listed.
        me = self.ok(self.api("GET", f"{V}/whoami", token=carol))
        self.assertEqual(me["user"]["name"], "carol")
        self.ok(self.api("GET", f"{V}/whoami", token=extra["token"]))
        self.assertEqual(len(self.list_all(f"{V}/tokens", token=carol)), 2)
        self.assertStatus(self.api("GET", f"{V}/teams/carol"), 404, "not_found")

    def test_service_account_names_are_reserved(self):
        for name in ("berth-gateway", "berth"):
            with self.subTest(name):
                err = self.assertStatus(self.api("POST", f"{V}/teams", {"name": name}), 409,
                                        "name_reserved")
                self.assertEqual(err["field"], "name")
                err = self.assertStatus(
                    self.api("POST", f"{V}/users", {"name": name, "password": "pass-word-123"}),
                    409, "name_reserved")
                self.assertEqual(err["field"], "name")
        self.assertNotIn("berth-gateway", self.names(f"{V}/teams"))
        self.assertNotIn("berth", self.names(f"{V}/users"))

    # -- item 5: tokens ------------------------------------------------------------------------

    def make_tokens(self, token: str, n: int) -> list[str]:
        out = []
        for i in range(n):
            out.append(self.ok(self.api("POST", f"{V}/tokens", {"name": f"t{i}"}, token=token),
                               201)["token"])
        return out

    def test_a_password_change_revokes_every_token(self):
        dave = self.make_user("dave")
        tokens = self.make_tokens(dave, 105)  # more than a page (100)
        self.assertGreater(len(self.list_all(f"{V}/tokens", token=dave)), 100)
        self.ok(self.api("PATCH", f"{V}/users/dave",
                         {"password": "dave-new-pass-1", "current_password": "dave-pass-123"},
                         token=dave))
        for t in [dave, tokens[0], tokens[50], tokens[-1]]:
            self.assertStatus(self.api("GET", f"{V}/whoami", token=t), 401, "unauthenticated")
        fresh = self.srv.login("dave", "dave-new-pass-1")
        self.assertEqual([t["name"] for t in self.list_all(f"{V}/tokens", token=fresh)],
                         ["login"])
        # An administrator's reset ends them too.
        self.make_tokens(fresh, 3)
        self.ok(self.api("PATCH", f"{V}/users/dave", {"password": "dave-reset-pass-2"}))
        self.assertStatus(self.api("GET", f"{V}/whoami", token=fresh), 401, "unauthenticated")
        # Changing something else keeps them.
        again = self.srv.login("dave", "dave-reset-pass-2")
        self.ok(self.api("PATCH", f"{V}/users/dave", {"display_name": "Dave"}, token=again))
        self.ok(self.api("GET", f"{V}/whoami", token=again))

    def test_deleting_a_user_revokes_all_their_tokens(self):
        erin = self.make_user("erin")
        tokens = self.make_tokens(erin, 1005)  # more than the 1000 one listing returns
        self.ok(self.api("DELETE", f"{V}/users/erin"))
        # A new user of the same name inherits none of them.
        self.make_user("erin", password="erin-other-pass")
        for t in [erin, tokens[0], tokens[999], tokens[1000], tokens[-1]]:
            self.assertStatus(self.api("GET", f"{V}/whoami", token=t), 401, "unauthenticated")
        fresh = self.srv.login("erin", "erin-other-pass")
        # Only the new erin's two logins (make_user's and this one).
        self.assertEqual([t["name"] for t in self.list_all(f"{V}/tokens", token=fresh)],
                         ["login", "login"])

    def test_expired_tokens_are_collected(self):
        fay = self.make_user("fay")
        short = self.ok(self.api("POST", f"{V}/tokens", {"name": "short", "ttl_seconds": 1},
                                 token=fay), 201)
        self.assertStatus(self.api("POST", f"{V}/tokens",
                                   {"name": "both", "ttl_seconds": 5, "ttl_hours": 1}, token=fay),
                          400, "invalid_argument")
        names = lambda: [t["name"] for t in self.list_all(f"{V}/tokens", token=fay)]  # noqa: E731
        self.assertIn("short", names())
        wait_for(lambda: "short" not in names(), "the expired token to be deleted", timeout=15)
        self.assertStatus(self.api("GET", f"{V}/whoami", token=short["token"]), 401,
                          "unauthenticated")

    # -- item 5: streams end when access goes ----------------------------------------------------

    def test_streams_end_when_access_goes(self):
        self.make_team("streams")
        self.make_app("streams", "shop")
        self.make_component("streams", "shop", "web")
        gus = self.make_user("gus")
        self.add_member("streams", "gus", "viewer")
        team_watch = f"{V}/teams/streams/watch"
        logs = f"{V}/teams/streams/apps/shop/components/web/logs?follow=1"

        # A revoked token ends its watch (and its log follow) within the recheck period.
        t1 = self.ok(self.api("POST", f"{V}/tokens", {"name": "w"}, token=gus), 201)
        w = Follower(self.srv, team_watch, t1["token"])
        lf = Follower(self.srv, logs, t1["token"])
        self.addCleanup(w.close)
        self.addCleanup(lf.close)
        self.assertEqual((w.status, lf.status), (200, 200))
        time.sleep(0.3)
        self.assertIsNone(w.ended_at)
        revoked = time.time()
        self.ok(self.api("DELETE", f"{V}/tokens/{t1['id']}", token=gus))
        wait_for(lambda: w.ended_at and lf.ended_at, "the streams of a revoked token to end", 10)
        self.assertLess(max(w.ended_at, lf.ended_at) - revoked, 5)
        self.assertEqual(w.errors()[-1]["code"], "unauthenticated")

        # An expired token: nothing is written, the periodic check ends it.
        t2 = self.ok(self.api("POST", f"{V}/tokens", {"name": "x", "ttl_seconds": 2}, token=gus),
                     201)
        w2 = Follower(self.srv, f"{V}/teams/streams/apps/shop/components/web/logs?follow=1",
                      t2["token"])
        self.addCleanup(w2.close)
        wait_for(lambda: w2.ended_at, "the stream of an expired token to end", 10)

        # A removed member's stream ends.
        w3 = Follower(self.srv, logs, gus)
        self.addCleanup(w3.close)
        time.sleep(0.3)
        self.assertIsNone(w3.ended_at)
        self.ok(self.api("DELETE", f"{V}/teams/streams/members/gus"))
        wait_for(lambda: w3.ended_at, "a removed member's log follow to end", 10)
        self.assertEqual(w3.errors()[-1]["code"], "not_found")

        # The platform watch of an administrator who is no longer one ends too.
        boss = self.make_user("boss", admin=True)
        w4 = Follower(self.srv, f"{V}/watch", boss)
        self.addCleanup(w4.close)
        self.assertEqual(w4.status, 200)
        self.ok(self.api("PATCH", f"{V}/users/boss", {"admin": False}))
        wait_for(lambda: w4.ended_at, "a former administrator's watch to end", 10)
        self.assertEqual(w4.errors()[-1]["code"], "permission_denied")

    # -- item 5: the login limit per account -----------------------------------------------------

    def test_login_limit_holds_per_account_across_addresses(self):
        self.make_user("hal")

        def attempt(addr: str, password: str) -> tuple[int, dict]:
            c = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10,
                                           source_address=(addr, 0))
            try:
                c.request("POST", f"{V}/login",
                          body=json.dumps({"user": "hal", "password": password}),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                return r.status, json.loads(r.read() or b"{}")
            finally:
                c.close()

        # --login-attempts 2: each address alone stays under its limit (one failure each),
        # the account does not (4 x 2 = 8 failures a minute).
        for i in range(8):
            st, body = attempt(f"127.0.0.{i + 2}", f"wrong-{i}-xxxx")
            self.assertEqual(st, 401, body)
        st, body = attempt("127.0.0.20", "wrong-last-xxxx")
        self.assertEqual((st, body.get("code")), (429, "rate_limited"), body)
        st, body = attempt("127.0.0.21", "hal-pass-123")
        self.assertEqual(st, 429, "the right password waits too while the account is held")
        # Other accounts are not held.
        self.srv.login("admin")


class TeamCreationTest(BerthTestCase):
    """Item 6: who may create teams is a platform setting; users cannot escape quotas by making
    teams."""

    def test_team_creation_setting_and_limits(self):
        ivy = self.make_user("ivy")
        self.assertFalse(self.ok(self.api("GET", f"{V}/whoami", token=ivy))["can_create_teams"])
        settings = self.ok(self.api("GET", f"{V}/settings", token=ivy))
        self.assertEqual(settings["team_creation"], "admins")
        self.assertStatus(self.api("POST", f"{V}/teams", {"name": "ivy-team"}, token=ivy), 403,
                          "team_creation_restricted")
        self.assertStatus(self.api("PATCH", f"{V}/settings", {"team_creation": "everyone"},
                                   token=ivy), 403, "permission_denied")
        self.assertStatus(self.api("PATCH", f"{V}/settings", {"team_creation": "anyone"}), 400,
                          "invalid_argument")
        self.assertStatus(self.api("PATCH", f"{V}/settings", {"max_teams_per_user": 0}), 400,
                          "invalid_argument")

        # Through the CLI, as the platform administrator.
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin",
                         "--password-stdin", input=self.srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("settings", "set", "--team-creation", "everyone",
                         "--max-teams-per-user", "2", "--default-quota-instances", "3",
                         "--default-quota-memory-mb", "512")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.srv.cli("settings", "show", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = json.loads(r.stdout)
        self.assertEqual((shown["team_creation"], shown["max_teams_per_user"],
                          shown["default_team_quota"]["instances"],
                          shown["default_team_quota"]["memory_mb"]), ("everyone", 2, 3, 512))

        self.assertTrue(self.ok(self.api("GET", f"{V}/whoami", token=ivy))["can_create_teams"])
        # Users cannot set quotas: their teams get the default quota.
        self.assertStatus(self.api("POST", f"{V}/teams",
                                   {"name": "ivy-big", "quota": {"instances": 100}}, token=ivy),
                          403, "permission_denied")
        t1 = self.make_team("ivy-one", token=ivy)
        self.assertEqual(t1["quota"], {"instances": 3, "memory_mb": 512, "cpu_millis": 0, "disk_mb": 0})
        self.assertEqual(t1["created_by"], "ivy")
        self.assertStatus(self.api("PATCH", f"{V}/teams/ivy-one", {"quota": {"instances": 0}},
                                   token=ivy), 403, "permission_denied")
        # created_by is the server's.
        t = self.ok(self.api("PATCH", f"{V}/teams/ivy-one",
                             {"display_name": "One", "created_by": "admin"}, token=ivy))
        self.assertEqual(t["created_by"], "ivy")
        self.make_team("ivy-two", token=ivy)
        err = self.assertStatus(self.api("POST", f"{V}/teams", {"name": "ivy-three"}, token=ivy),
                                409, "team_limit_reached")
        self.assertIn("2", err["message"])
        # Handing a team to someone else does not free a slot; deleting one does.
        jay = self.make_user("jay")
        self.add_member("ivy-two", "jay", "owner", token=ivy)
        self.ok(self.api("DELETE", f"{V}/teams/ivy-two/members/ivy", token=ivy))
        self.assertStatus(self.api("POST", f"{V}/teams", {"name": "ivy-three"}, token=ivy), 409,
                          "team_limit_reached")
        self.ok(self.api("DELETE", f"{V}/teams/ivy-two", token=jay))
        self.make_team("ivy-three", token=ivy)
        # Administrators are not limited and set quotas as they like.
        for i in range(3):
            self.make_team(f"adm-{i}")

        # Back to administrators only.
        self.ok(self.api("PATCH", f"{V}/settings", {"team_creation": "admins"}))
        self.assertStatus(self.api("POST", f"{V}/teams", {"name": "ivy-four"}, token=ivy), 403,
                          "team_creation_restricted")


if __name__ == "__main__":
    unittest.main()
