"""Authentication and authorization (docs/api.md "Health and session", "Users", "API tokens",
"Members and roles"; docs/server.md login_attempts)."""

import unittest

from harness import BerthTestCase

V = "/api/v1"


class AuthTest(BerthTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A team with an app and a component that the role tests read and try to change.
        def ok(resp, status):
            assert resp[0] == status, resp
            return resp[1]
        a = cls.admin
        ok(cls.srv.api("POST", f"{V}/teams", {"name": "rbac"}, token=a), 201)
        ok(cls.srv.api("POST", f"{V}/teams/rbac/apps", {"name": "base", "description": "d"},
                       token=a), 201)
        ok(cls.srv.api("POST", f"{V}/teams/rbac/apps/base/components", {"name": "web"},
                       token=a), 201)
        # Users create their own teams here (olga, carol); by default only administrators may
        # (test_identity.TeamCreationTest).
        ok(cls.srv.api("PATCH", f"{V}/settings", {"team_creation": "everyone"}, token=a), 200)

    def assertDenied(self, resp, msg=""):
        self.assertStatus(resp, 403, "permission_denied", msg=msg)

    def assertHidden(self, resp, msg=""):
        st, body, _ = resp
        self.assertIn(st, (403, 404), f"{msg}: expected 404 (or 403), got {st} {body!r}")
        self.assertIn(body.get("code") if isinstance(body, dict) else None,
                      ("not_found", "permission_denied"), f"{msg}: {body!r}")

    def snapshot(self, team="rbac"):
        apps = self.list_all(f"{V}/teams/{team}/apps")
        comps = self.list_all(f"{V}/teams/{team}/apps/base/components")
        members = self.list_all(f"{V}/teams/{team}/members")
        t = self.ok(self.api("GET", f"{V}/teams/{team}"))
        return apps, comps, members, t

    # -- authentication ----------------------------------------------------------------------

    PROTECTED = [
        ("GET", f"{V}/whoami"), ("POST", f"{V}/logout"),
        ("GET", f"{V}/users"), ("POST", f"{V}/users"), ("GET", f"{V}/users/admin"),
        ("PATCH", f"{V}/users/admin"), ("DELETE", f"{V}/users/admin"),
        ("GET", f"{V}/tokens"), ("POST", f"{V}/tokens"), ("DELETE", f"{V}/tokens/abc"),
        ("GET", f"{V}/teams"), ("POST", f"{V}/teams"), ("GET", f"{V}/teams/rbac"),
        ("PUT", f"{V}/teams/rbac"), ("PATCH", f"{V}/teams/rbac"), ("DELETE", f"{V}/teams/rbac"),
        ("GET", f"{V}/teams/rbac/members"), ("POST", f"{V}/teams/rbac/members"),
        ("GET", f"{V}/teams/rbac/members/admin"), ("DELETE", f"{V}/teams/rbac/members/admin"),
        ("GET", f"{V}/teams/rbac/apps"), ("POST", f"{V}/teams/rbac/apps"),
        ("GET", f"{V}/teams/rbac/apps/base"), ("PUT", f"{V}/teams/rbac/apps/base"),
        ("PATCH", f"{V}/teams/rbac/apps/base"), ("DELETE", f"{V}/teams/rbac/apps/base"),
        ("GET", f"{V}/teams/rbac/apps/base/components"),
        ("POST", f"{V}/teams/rbac/apps/base/components"),
        ("GET", f"{V}/teams/rbac/apps/base/components/web"),
        ("PATCH", f"{V}/teams/rbac/apps/base/components/web"),
        ("DELETE", f"{V}/teams/rbac/apps/base/components/web"),
        ("GET", f"{V}/teams/rbac/apps/base/components/web/dependencies"),
        ("GET", f"{V}/teams/rbac/apps/base/components/web/versions"),
        ("GET", f"{V}/teams/rbac/apps/base/components/web/instances"),
        ("GET", f"{V}/teams/rbac/apps/base/components/web/events"),
        ("GET", f"{V}/teams/rbac/events"), ("GET", f"{V}/teams/rbac/audit"),
        ("GET", f"{V}/teams/rbac/watch"), ("GET", f"{V}/watch"),
    ]

    def test_no_token_is_401_everywhere(self):
        before = self.snapshot()
        for method, path in self.PROTECTED:
            body = {"name": "x"} if method in ("POST", "PUT", "PATCH") else None
            with self.subTest(f"{method} {path}"):
                resp = self.anon(method, path, body, timeout=10)
                self.assertStatus(resp, 401, "unauthenticated",
                                  msg=f"{method} {path} without token:")
        self.assertEqual(self.snapshot(), before, "unauthenticated requests change nothing")

    def test_bad_token_is_401(self):
        for hdr in ("Bearer not-a-real-token", "Bearer ", "Basic YWRtaW46YWRtaW4=",
                    self.admin, f"Bearer {self.admin}x"):
            for method, path in (("GET", f"{V}/whoami"), ("GET", f"{V}/teams/rbac/apps"),
                                 ("POST", f"{V}/teams/rbac/apps")):
                body = {"name": "sneaky"} if method == "POST" else None
                with self.subTest(f"{method} {path} Authorization {hdr[:20]!r}"):
                    resp = self.srv.api(method, path, body, headers={"Authorization": hdr},
                                        timeout=10)
                    self.assertStatus(resp, 401, "unauthenticated",
                                      msg=f"{method} {path} with Authorization {hdr[:20]!r}:")
        self.assertNotIn("sneaky", self.names(f"{V}/teams/rbac/apps"))

    def test_wrong_password_and_unknown_user(self):
        self.make_user("pwuser")
        self.assertStatus(self.anon("POST", f"{V}/login",
                                    {"user": "pwuser", "password": "wrong-password"}),
                          401, "unauthenticated")
        self.assertStatus(self.anon("POST", f"{V}/login",
                                    {"user": "no-such-user", "password": "whatever-123"}),
                          401, "unauthenticated")
        self.srv.login("pwuser", "pwuser-pass-123")

    def test_login_rate_limit(self):
        self.make_user("rluser")
        for i in range(5):
            self.assertStatus(self.anon("POST", f"{V}/login",
                                        {"user": "rluser", "password": f"wrong-{i}-xxxx"}),
                              401, "unauthenticated", msg=f"failed login #{i + 1}:")
        st, body, hdrs = self.anon("POST", f"{V}/login",
                                   {"user": "rluser", "password": "wrong-6-xxxx"})
        self.assertStatus((st, body, hdrs), 429, "rate_limited", msg="6th failed login in a minute:")
        ra = hdrs.get("Retry-After")
        self.assertIsNotNone(ra, "429 carries Retry-After")
        self.assertTrue(ra.strip().isdigit() and 0 < int(ra) <= 60, f"Retry-After: {ra!r}")
        # The right password is refused too while limited (no brute force through it).
        self.assertStatus(self.anon("POST", f"{V}/login",
                                    {"user": "rluser", "password": "rluser-pass-123"}),
                          429, "rate_limited", msg="correct password while rate-limited:")
        # Other users are not affected.
        self.srv.login("admin", "admin-pass-123")

    # -- visibility and roles ----------------------------------------------------------------

    def test_non_member_cannot_see_team(self):
        eve = self.make_user("eve")
        self.assertNotIn("rbac", self.names(f"{V}/teams", token=eve))
        self.assertNotIn("default", self.names(f"{V}/teams", token=eve))
        me = self.ok(self.api("GET", f"{V}/whoami", token=eve))
        self.assertEqual(me["teams"], [])
        before = self.snapshot()
        for method, path in (("GET", f"{V}/teams/rbac"), ("GET", f"{V}/teams/rbac/apps"),
                             ("GET", f"{V}/teams/rbac/apps/base"),
                             ("GET", f"{V}/teams/rbac/apps/base/components/web"),
                             ("GET", f"{V}/teams/rbac/members"),
                             ("GET", f"{V}/teams/rbac/events"),
                             ("POST", f"{V}/teams/rbac/apps"),
                             ("PATCH", f"{V}/teams/rbac/apps/base"),
                             ("DELETE", f"{V}/teams/rbac/apps/base"),
                             ("POST", f"{V}/teams/rbac/members")):
            body = None
            if method == "POST":
                body = {"name": "eve-app"} if path.endswith("apps") else {"user": "eve",
                                                                           "role": "owner"}
            elif method == "PATCH":
                body = {"description": "eve was here"}
            with self.subTest(f"eve {method} {path}"):
                self.assertHidden(self.api(method, path, body, token=eve), f"eve {method} {path}")
        self.assertEqual(self.snapshot(), before, "a non-member changed nothing")

    def test_viewer_reads_but_cannot_write(self):
        vic = self.make_user("vic")
        self.add_member("rbac", "vic", "viewer")
        self.assertIn("rbac", self.names(f"{V}/teams", token=vic))
        for path in (f"{V}/teams/rbac", f"{V}/teams/rbac/apps", f"{V}/teams/rbac/apps/base",
                     f"{V}/teams/rbac/apps/base/components",
                     f"{V}/teams/rbac/apps/base/components/web",
                     f"{V}/teams/rbac/apps/base/components/web/dependencies",
                     f"{V}/teams/rbac/apps/base/components/web/versions",
                     f"{V}/teams/rbac/apps/base/components/web/instances",
                     f"{V}/teams/rbac/members", f"{V}/teams/rbac/events"):
            self.ok(self.api("GET", path, token=vic), msg=f"viewer GET {path}")
        before = self.snapshot()
        app = f"{V}/teams/rbac/apps/base"
        comp = f"{app}/components/web"
        writes = [
            ("POST", f"{V}/teams/rbac/apps", {"name": "vic-app"}),
            ("PUT", app, {"description": "vic"}), ("PATCH", app, {"description": "vic"}),
            ("DELETE", app, None),
            ("POST", f"{app}/components", {"name": "vic-comp"}),
            ("PUT", comp, {"replicas": 3}), ("PATCH", comp, {"replicas": 3}),
            ("DELETE", comp, None),
            ("POST", f"{comp}/dependencies", {"target_component": "web"}),
            ("POST", f"{comp}/versions", {"status": "ready"}),
            ("POST", f"{V}/teams/rbac/members", {"user": "eve2", "role": "viewer"}),
            ("PATCH", f"{V}/teams/rbac/members/vic", {"role": "owner"}),
            ("PATCH", f"{V}/teams/rbac/members/admin", {"role": "viewer"}),
            ("DELETE", f"{V}/teams/rbac/members/admin", None),
            ("PATCH", f"{V}/teams/rbac", {"display_name": "vic"}),
            ("DELETE", f"{V}/teams/rbac", None),
            ("GET", f"{V}/teams/rbac/audit", None),
        ]
        for method, path, body in writes:
            with self.subTest(f"viewer {method} {path}"):
                self.assertDenied(self.api(method, path, body, token=vic),
                                  f"viewer {method} {path}:")
        self.assertEqual(self.snapshot(), before, "viewer's refused writes changed nothing")

    def test_developer_role(self):
        dev = self.make_user("dev")
        self.add_member("rbac", "dev", "developer")
        self.ok(self.api("POST", f"{V}/teams/rbac/apps", {"name": "dev-app"}, token=dev), 201)
        self.ok(self.api("PATCH", f"{V}/teams/rbac/apps/dev-app", {"description": "x"},
                         token=dev))
        self.ok(self.api("POST", f"{V}/teams/rbac/apps/dev-app/components", {"name": "w"},
                         token=dev), 201)
        self.make_user("dev-friend")
        before = self.snapshot()
        self.assertDenied(self.api("POST", f"{V}/teams/rbac/members",
                                   {"user": "dev-friend", "role": "viewer"}, token=dev),
                          "developer adds a member:")
        self.assertDenied(self.api("PATCH", f"{V}/teams/rbac/members/dev", {"role": "admin"},
                                   token=dev), "developer promotes self:")
        self.assertDenied(self.api("GET", f"{V}/teams/rbac/audit", token=dev),
                          "developer reads the audit log:")
        self.assertDenied(self.api("PATCH", f"{V}/teams/rbac", {"display_name": "dev"},
                                   token=dev), "developer updates the team:")
        self.assertEqual(self.snapshot(), before)
        self.ok(self.api("DELETE", f"{V}/teams/rbac/apps/dev-app", token=dev), (200, 204))

    def test_team_admin_role(self):
        adm = self.make_user("tadmin")
        self.add_member("rbac", "tadmin", "admin")
        self.make_user("tadmin-friend")
        m = self.ok(self.api("POST", f"{V}/teams/rbac/members",
                             {"user": "tadmin-friend", "role": "viewer"}, token=adm), 201)
        self.assertEqual(m["role"], "viewer")
        self.ok(self.api("PATCH", f"{V}/teams/rbac/members/tadmin-friend", {"role": "developer"},
                         token=adm))
        self.ok(self.api("GET", f"{V}/teams/rbac/audit", token=adm))
        before = self.snapshot()
        self.assertDenied(self.api("PATCH", f"{V}/teams/rbac/members/tadmin-friend",
                                   {"role": "owner"}, token=adm), "team admin makes an owner:")
        self.assertDenied(self.api("PATCH", f"{V}/teams/rbac/members/tadmin", {"role": "owner"},
                                   token=adm), "team admin makes self owner:")
        self.assertDenied(self.api("DELETE", f"{V}/teams/rbac/members/admin", token=adm),
                          "team admin removes an owner:")
        self.assertDenied(self.api("DELETE", f"{V}/teams/rbac", token=adm),
                          "team admin deletes the team:")
        self.assertEqual(self.snapshot(), before)
        self.make_user("tadmin-boss")
        self.assertDenied(self.api("POST", f"{V}/teams/rbac/members",
                                   {"user": "tadmin-boss", "role": "owner"}, token=adm),
                          "team admin adds an owner:")
        self.assertEqual(self.snapshot(), before)
        self.ok(self.api("DELETE", f"{V}/teams/rbac/members/tadmin-friend", token=adm),
                (200, 204))
        p = self.ok(self.api("PATCH", f"{V}/teams/rbac", {"display_name": "RBAC"}, token=adm))
        self.assertEqual(p["display_name"], "RBAC")

    def test_last_owner_cannot_be_removed(self):
        olga = self.make_user("olga")
        t = self.make_team("olga-team", token=olga)
        self.assertEqual(t["name"], "olga-team")
        members = self.list_all(f"{V}/teams/olga-team/members", token=olga)
        self.assertEqual([(m["user"], m["role"]) for m in members], [("olga", "owner")],
                         "the creator of a team is its owner")
        self.assertStatus(self.api("DELETE", f"{V}/teams/olga-team/members/olga", token=olga),
                          409, "failed_precondition", msg="removing the last owner:")
        self.assertStatus(self.api("PATCH", f"{V}/teams/olga-team/members/olga",
                                   {"role": "admin"}, token=olga),
                          409, "failed_precondition", msg="demoting the last owner:")
        # The platform admin acts as owner, but the team still keeps one.
        self.assertStatus(self.api("DELETE", f"{V}/teams/olga-team/members/olga"),
                          409, "failed_precondition", msg="platform admin removes last owner:")
        self.assertEqual(self.list_all(f"{V}/teams/olga-team/members", token=olga), members)
        # With a second owner, the first may leave.
        self.make_user("olga2")
        self.add_member("olga-team", "olga2", "owner", token=olga)
        self.ok(self.api("DELETE", f"{V}/teams/olga-team/members/olga", token=olga), (200, 204))
        self.assertHidden(self.api("GET", f"{V}/teams/olga-team", token=olga), "olga left")

    # -- tokens and sessions -----------------------------------------------------------------

    def test_api_tokens(self):
        tina = self.make_user("tina")
        t = self.ok(self.api("POST", f"{V}/tokens", {"name": "ci"}, token=tina), 201)
        secret = t.get("token")
        self.assertTrue(secret, f"the secret is shown once on create: {t!r}")
        self.assertEqual((t["name"], t["user"]), ("ci", "tina"))
        tid = t["id"]
        me = self.ok(self.api("GET", f"{V}/whoami", token=secret))
        self.assertEqual(me["user"]["name"], "tina")
        items = self.list_all(f"{V}/tokens", token=tina)
        mine = [i for i in items if i.get("id") == tid]
        self.assertEqual(len(mine), 1, items)
        self.assertEqual(mine[0]["name"], "ci")
        for i in items:
            self.assertNotIn("token", i, "the list never shows secrets")
            self.assertNotIn(secret, str(i))
            self.assertEqual(i["user"], "tina", "each user sees only their own tokens")
        # Another user cannot delete tina's token.
        other = self.make_user("tina-other")
        self.assertHidden(self.api("DELETE", f"{V}/tokens/{tid}", token=other),
                          "someone else's token")
        self.ok(self.api("GET", f"{V}/whoami", token=secret))
        self.ok(self.api("DELETE", f"{V}/tokens/{tid}", token=tina), (200, 204))
        self.assertStatus(self.api("GET", f"{V}/whoami", token=secret), 401, "unauthenticated",
                          msg="deleted token:")
        self.assertNotIn(tid, [i.get("id") for i in self.list_all(f"{V}/tokens", token=tina)])

    def test_token_ttl(self):
        tom = self.make_user("tom")
        t = self.ok(self.api("POST", f"{V}/tokens", {"name": "short", "ttl_hours": 1},
                             token=tom), 201)
        self.assertIsNotNone(t.get("expires_at"))
        self.assertStatus(self.api("POST", f"{V}/tokens", {"name": "neg", "ttl_hours": -1},
                                   token=tom), 400, "invalid_argument")

    def test_logout_revokes_token(self):
        tok = self.srv.login("admin", "admin-pass-123")
        self.ok(self.api("GET", f"{V}/whoami", token=tok))
        self.ok(self.api("POST", f"{V}/logout", token=tok), (200, 204))
        self.assertStatus(self.api("GET", f"{V}/whoami", token=tok), 401, "unauthenticated",
                          msg="after logout:")
        self.ok(self.api("GET", f"{V}/whoami"), msg="other sessions stay valid")

    # -- platform admins and users -----------------------------------------------------------

    def test_platform_admin_sees_every_team(self):
        carol = self.make_user("carol")
        self.make_team("carol-team", token=carol)
        self.assertEqual(self.names(f"{V}/teams", token=carol), ["carol-team"])
        self.assertIn("carol-team", self.names(f"{V}/teams"))
        self.ok(self.api("GET", f"{V}/teams/carol-team"))
        self.make_app("carol-team", "by-admin")
        self.assertIn("by-admin", self.names(f"{V}/teams/carol-team/apps", token=carol))
        self.ok(self.api("GET", f"{V}/teams/carol-team/audit"))

    def test_non_admin_cannot_manage_users(self):
        ned = self.make_user("ned")
        self.assertDenied(self.api("POST", f"{V}/users",
                                   {"name": "ned-made", "password": "ned-made-pass"}, token=ned),
                          "non-admin creates a user:")
        self.assertHidden(self.api("GET", f"{V}/users/ned-made"), "user was not created")
        self.assertDenied(self.api("PATCH", f"{V}/users/ned", {"admin": True}, token=ned),
                          "non-admin makes self admin:")
        self.assertDenied(self.api("DELETE", f"{V}/users/admin", token=ned),
                          "non-admin deletes admin:")
        self.assertFalse(self.ok(self.api("GET", f"{V}/users/ned"))["admin"])
        # Everyone may read and update themselves.
        self.assertEqual(self.ok(self.api("GET", f"{V}/users/ned", token=ned))["name"], "ned")
        p = self.ok(self.api("PATCH", f"{V}/users/ned", {"display_name": "Ned"}, token=ned))
        self.assertEqual(p["display_name"], "Ned")
        # Changing one's own password needs the current one.
        self.assertStatus(self.api("PATCH", f"{V}/users/ned", {"password": "ned-new-pass-1"},
                                   token=ned), (400, 401, 403))
        self.ok(self.api("PATCH", f"{V}/users/ned", {"password": "ned-new-pass-1",
                                                     "current_password": "ned-pass-123"},
                         token=ned))
        self.srv.login("ned", "ned-new-pass-1")

    def test_disabled_user_cannot_log_in(self):
        dan = self.make_user("dan")
        p = self.ok(self.api("PATCH", f"{V}/users/dan", {"disabled": True}))
        self.assertIs(p["disabled"], True)
        self.assertStatus(self.anon("POST", f"{V}/login",
                                    {"user": "dan", "password": "dan-pass-123"}),
                          401, "unauthenticated", msg="disabled user logs in:")
        self.assertStatus(self.api("GET", f"{V}/whoami", token=dan), 401, "unauthenticated",
                          msg="disabled user's existing token:")
        self.ok(self.api("PATCH", f"{V}/users/dan", {"disabled": False}))
        self.srv.login("dan", "dan-pass-123")

    def test_deleted_user_loses_access(self):
        gus = self.make_user("gus")
        self.add_member("rbac", "gus", "developer")
        self.ok(self.api("GET", f"{V}/teams/rbac/apps", token=gus))
        self.ok(self.api("DELETE", f"{V}/users/gus"), (200, 204))
        self.assertStatus(self.api("GET", f"{V}/whoami", token=gus), 401, "unauthenticated",
                          msg="token of a deleted user:")
        self.assertStatus(self.anon("POST", f"{V}/login",
                                    {"user": "gus", "password": "gus-pass-123"}),
                          401, "unauthenticated")
        self.assertNotIn("gus", [m["user"] for m in self.list_all(f"{V}/teams/rbac/members")],
                         "a deleted user is no longer a member")


if __name__ == "__main__":
    unittest.main()
