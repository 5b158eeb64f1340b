"""Domains belong to teams (issue 13; docs/gateway.md "Control plane", docs/security.md): the
team whose rule claims a domain first holds it with every path, wildcards hold both ways, a
platform administrator assigns and releases domains (API and CLI), a team's certificate is
served only for names it may route, and no wildcard covers the default domains."""

from __future__ import annotations

import os
import tempfile

from harness import BerthTestCase
from test_gateway_api import openssl_cert, read

V = "/api/v1"


class DomainOwnershipTest(BerthTestCase):
    server_kwargs = {"extra_args": ["--domain-suffix", "apps.example.test"]}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv, a = cls.srv, cls.admin

        def ok(method, path, body=None, token=a):
            st, b, _ = srv.api(method, path, body, token=token)
            assert st in (200, 201), (method, path, st, b)
            return b
        cls.tok = {}
        for team, user in (("alpha", "ann"), ("beta", "bob")):
            ok("POST", f"{V}/users", {"name": user, "password": f"{user}-pass-123"})
            cls.tok[team] = srv.login(user, f"{user}-pass-123")
            ok("POST", f"{V}/teams", {"name": team})
            ok("POST", f"{V}/teams/{team}/members", {"user": user, "role": "owner"})
            ok("POST", f"{V}/teams/{team}/apps", {"name": "site"}, token=cls.tok[team])
            ok("POST", f"{V}/teams/{team}/apps/site/components",
               {"name": "web", "ports": [{"port": 8080, "protocol": "http", "outer": True}]},
               token=cls.tok[team])

    def rule(self, team, domain, path="/", name=None, status=201, code=None, cert=None):
        body = {"domain": domain, "path_prefix": path, "backends": [{"component": "web"}]}
        if name:
            body["name"] = name
        if cert:
            body["certificate"] = cert
        return self.assertStatus(self.api("POST", f"{V}/teams/{team}/apps/site/http-rules", body,
                                          token=self.tok[team]), status, code,
                                 msg=f"{team} routes {domain}{path}:")

    def delete_rule(self, team, name):
        self.ok(self.api("DELETE", f"{V}/teams/{team}/apps/site/http-rules/{name}",
                         token=self.tok[team]))

    def owners(self) -> dict:
        return {d["domain"]: d for d in self.ok(self.api("GET", f"{V}/gateway/domains"))["items"]}

    def test_the_first_team_holds_a_domain_with_every_path(self):
        self.rule("alpha", "shop.example.com", name="shop")
        err = self.rule("beta", "shop.example.com", "/api", status=409, code="domain_taken")
        self.assertEqual(err["field"], "domain")
        self.assertNotIn("alpha", err["message"], "the holder team is not named to others")
        self.rule("beta", "shop.example.com", "/", status=409, code="domain_taken")
        self.rule("alpha", "shop.example.com", "/api", name="shop-api")  # its own team: fine
        o = self.owners()["shop.example.com"]
        self.assertEqual((o["team"], o["assigned"], o["by"]), ("alpha", False, "ann"))
        # Moving a rule to another domain of the team's own is fine; the old one stays while
        # another rule routes it.
        self.ok(self.api("PATCH", f"{V}/teams/alpha/apps/site/http-rules/shop-api",
                         {"domain": "shop2.example.com"}, token=self.tok["alpha"]))
        self.assertEqual(self.owners()["shop2.example.com"]["team"], "alpha")
        # With its last rule the claim goes: beta may take it then.
        self.delete_rule("alpha", "shop")
        self.assertNotIn("shop.example.com", self.owners())
        self.rule("beta", "shop.example.com", "/api", name="taken-over")
        self.delete_rule("beta", "taken-over")
        self.delete_rule("alpha", "shop-api")

    def test_wildcards_hold_both_ways(self):
        self.rule("alpha", "*.wild.test", name="wild")
        for d in ("x.wild.test", "a.b.wild.test", "*.sub.wild.test"):
            self.rule("beta", d, status=409, code="domain_taken")
        self.rule("alpha", "x.near.test", name="near")
        self.rule("beta", "*.near.test", status=409, code="domain_taken")
        self.rule("beta", "near.test", name="apex")  # the apex is not below the wildcard
        for team, name in (("alpha", "wild"), ("alpha", "near"), ("beta", "apex")):
            self.delete_rule(team, name)

    def test_default_domains_and_wildcards_over_them(self):
        for d in ("web.site.apps.example.test", "*.apps.example.test", "*.example.test"):
            err = self.rule("beta", d, status=400, code="invalid_argument")
            self.assertEqual(err["field"], "domain")

    def test_administrators_assign_and_release(self):
        self.assertStatus(self.api("GET", f"{V}/gateway/domains", token=self.tok["alpha"]), 403,
                          "permission_denied")
        self.assertStatus(self.api("PUT", f"{V}/gateway/domains/kept.test", {"team": "alpha"},
                                   token=self.tok["alpha"]), 403, "permission_denied")
        # Through the CLI.
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin",
                         "--password-stdin", input=self.srv.admin_password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("domain", "assign", "kept.test", "beta")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("kept.test now belongs to team beta", r.stdout)
        self.assertIn("kept.test", self.srv.cli("domain", "owners").stdout)
        self.rule("alpha", "kept.test", status=409, code="domain_taken")
        self.rule("alpha", "x.kept.test", name="below")  # an exact name holds no subdomain
        self.rule("beta", "kept.test", name="kept")
        # Assigning what another team holds is refused, naming it (administrators see all).
        err = self.assertStatus(self.api("PUT", f"{V}/gateway/domains/kept.test",
                                         {"team": "alpha"}), 409, "domain_taken")
        self.assertIn("beta", err["message"])
        self.assertStatus(self.api("PUT", f"{V}/gateway/domains/kept.test", {"team": "nope"}),
                          400, "invalid_argument")
        # Releasing while the team's rules route it is refused; an assignment outlives them.
        self.assertStatus(self.api("DELETE", f"{V}/gateway/domains/kept.test"), 409,
                          "domain_in_use")
        self.delete_rule("beta", "kept")
        self.assertTrue(self.owners()["kept.test"]["assigned"])
        self.rule("alpha", "kept.test", status=409, code="domain_taken")
        r = self.srv.cli("domain", "release", "kept.test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.rule("alpha", "kept.test", name="kept")
        self.delete_rule("alpha", "kept")
        self.delete_rule("alpha", "below")
        # A team's delete takes its domains with it.
        self.make_team("gamma")
        self.ok(self.api("PUT", f"{V}/gateway/domains/gone.test", {"team": "gamma"}))
        self.ok(self.api("DELETE", f"{V}/teams/gamma"))
        self.assertNotIn("gone.test", self.owners())

    def test_a_certificate_is_served_only_for_its_teams_names(self):
        certs = tempfile.mkdtemp(prefix="certs-", dir=self.srv.tmp)
        crt, key = openssl_cert(certs, "both", "b.example.org",
                                ["b.example.org", "a.example.org"])
        self.rule("alpha", "a.example.org", name="a")
        self.ok(self.api("POST", f"{V}/teams/beta/certificates",
                         {"name": "both", "cert_pem": read(crt), "key_pem": read(key)},
                         token=self.tok["beta"]), 201)
        # beta cannot route alpha's name with it...
        self.rule("beta", "a.example.org", cert="both", status=409, code="domain_taken")
        # ... and serving it for its own name does not present it for alpha's.
        self.rule("beta", "b.example.org", name="b", cert="both")
        snap = self.ok(self.api("GET", f"{V}/gateway/snapshot"))
        served = {c["name"]: c["domains"] for c in snap["certificates"]}
        self.assertEqual(served["beta/both"], ["b.example.org"])
        self.delete_rule("beta", "b")
        self.delete_rule("alpha", "a")
