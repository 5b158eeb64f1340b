"""The gateway control plane over raw HTTP and through the CLI (docs/api.md "Gateway",
docs/gateway.md): HTTP and TCP rules, certificates (validated with OpenSSL, keys sealed at
rest), default domains, component addresses and the routing snapshot."""

import json
import os
import stat
import subprocess
import tempfile

from harness import BerthServer, BerthTestCase, _free_port
import test_runtime as rt  # the module, not its classes: unittest must not collect them here

V = "/api/v1"
HTTP_PORT = _free_port()


def openssl_cert(directory: str, name: str, cn: str, sans: list[str]) -> tuple[str, str]:
    """A self-signed EC certificate made with the openssl CLI; returns (cert path, key path)."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    san = ",".join(f"DNS:{d}" for d in sans)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", f"/CN={cn}", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


class GatewayServer(BerthServer):
    """A server whose gateway HTTP port is known, so component addresses can be checked (the
    control plane only names the port; nothing listens on it in these tests)."""

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--http") + 1] = f"127.0.0.1:{HTTP_PORT}"
        return cmd


class GatewayApiTest(BerthTestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = GatewayServer()
        cls.addClassCleanup(cls.srv.close)
        cls.admin = cls.srv.login()
        cls.certs = tempfile.mkdtemp(prefix="certs-", dir=cls.srv.tmp)
        cls.shop_crt, cls.shop_key = openssl_cert(cls.certs, "shop", "shop.example.com",
                                                  ["shop.example.com", "*.shop.example.com"])
        cls.other_crt, cls.other_key = openssl_cert(cls.certs, "other", "other.example.com",
                                                    ["other.example.com"])
        cls.garbage = os.path.join(cls.certs, "garbage.pem")
        with open(cls.garbage, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")

        def ok(resp):
            st, body, _ = resp
            assert st in (200, 201), (st, body)
            return body
        api = lambda *a: cls.srv.api(*a, token=cls.admin)  # noqa: E731
        ok(api("POST", f"{V}/teams/default/apps", {"name": "shop"}))
        ok(api("POST", f"{V}/teams/default/apps/shop/components",
               {"name": "web", "ports": [{"port": 8080, "protocol": "http", "outer": True},
                                         {"port": 9090, "protocol": "http", "outer": True}]}))
        ok(api("POST", f"{V}/teams/default/apps/shop/components",
               {"name": "next", "ports": [{"port": 8000, "protocol": "http", "outer": False}]}))
        ok(api("POST", f"{V}/teams/default/apps/shop/components",
               {"name": "db", "ports": [{"port": 5432, "protocol": "tcp", "outer": False}]}))
        ok(api("POST", f"{V}/users", {"name": "vera", "password": "vera-pass-123"}))
        ok(api("POST", f"{V}/teams/default/members", {"user": "vera", "role": "viewer"}))
        cls.viewer = cls.srv.login("vera", "vera-pass-123")

    def ok(self, resp, status=(200, 201)):
        return self.assertStatus(resp, status)

    def rules(self, app="shop"):
        return f"{V}/teams/default/apps/{app}/http-rules"

    def upload(self, name, crt, key):
        return self.api("POST", f"{V}/teams/default/certificates",
                        {"name": name, "cert_pem": read(crt), "key_pem": read(key)})

    def cli(self, *args, expect=0):
        r = self.srv.cli(*args)
        self.assertEqual(r.returncode, expect, f"`berth {' '.join(args)}`: {r.stdout}\n{r.stderr}")
        for bad in ("AddressSanitizer", "runtime error:", "terminate called"):
            self.assertNotIn(bad, r.stderr)
        return r

    def cli_login(self):
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                         input="admin-pass-123\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    # -- HTTP rules --------------------------------------------------------------------------

    def test_http_rule_crud_and_audit(self):
        r = self.ok(self.api("POST", self.rules(), {
            "domain": "Crud.Example.com", "path_prefix": "/api/",
            "backends": [{"component": "web"}]}), 201)
        self.assertEqual(r["name"], "crud-example-com-api")
        self.assertEqual(r["domain"], "crud.example.com")
        self.assertEqual(r["path_prefix"], "/api")
        self.assertEqual(r["backends"], [{"component": "web", "port": 8080, "version": "",
                                          "weight": 100}])
        self.assertEqual((r["team"], r["app"]), ("default", "shop"))
        self.assertEqual(r["balance"], "round_robin")
        one = self.ok(self.api("GET", self.rules() + "/crud-example-com-api"))
        self.assertEqual(one["revision"], r["revision"])
        names = [x["name"] for x in self.ok(self.api("GET", self.rules()))["items"]]
        self.assertIn("crud-example-com-api", names)
        team = self.ok(self.api("GET", f"{V}/teams/default/http-rules"))["items"]
        self.assertIn("crud-example-com-api", [x["name"] for x in team])
        p = self.ok(self.api("PATCH", self.rules() + "/crud-example-com-api",
                             {"balance": "least_conn", "backends": [{"component": "web", "port": 9090}]}))
        self.assertEqual(p["balance"], "least_conn")
        self.assertEqual(p["backends"][0]["port"], 9090)
        # GET → PUT round trip with the read-only fields sent back.
        p["timeouts"]["connect_ms"] = 250
        put = self.ok(self.api("PUT", self.rules() + "/crud-example-com-api", p))
        self.assertEqual(put["timeouts"]["connect_ms"], 250)
        self.ok(self.api("DELETE", self.rules() + "/crud-example-com-api"))
        self.assertStatus(self.api("GET", self.rules() + "/crud-example-com-api"), 404, "not_found")
        # The domain is free again.
        self.ok(self.api("POST", self.rules(), {"domain": "crud.example.com", "path_prefix": "/api",
                                                "backends": [{"component": "web"}]}), 201)
        self.ok(self.api("DELETE", self.rules() + "/crud-example-com-api"))
        audit = self.ok(self.api("GET", f"{V}/teams/default/audit?limit=50"))["items"]
        actions = [(e["action"], e["resource"]) for e in audit
                   if e["resource"] == "apps/shop/http-rules/crud-example-com-api"]
        self.assertEqual(actions[:5], [("delete", "apps/shop/http-rules/crud-example-com-api"),
                                       ("create", "apps/shop/http-rules/crud-example-com-api"),
                                       ("delete", "apps/shop/http-rules/crud-example-com-api"),
                                       ("update", "apps/shop/http-rules/crud-example-com-api"),
                                       ("update", "apps/shop/http-rules/crud-example-com-api")])

    def test_http_rule_bad_input(self):
        cases = [
            ({"domain": "bad_domain.com", "backends": [{"component": "web"}]}, "invalid_argument", "domain"),
            ({"domain": "a.*.example.com", "backends": [{"component": "web"}]}, "invalid_argument", "domain"),
            ({"domain": "x.example.com", "backends": [{"component": "web"}], "colour": 1}, "unknown_field", "colour"),
            ({"domain": "x.example.com", "backends": [{"component": "nope"}]}, "invalid_argument", "backends[0].component"),
            ({"domain": "x.example.com", "backends": [{"component": "web", "port": 1234}]}, "invalid_argument", "backends[0].port"),
            ({"domain": "x.example.com", "backends": [{"component": "db"}]}, "invalid_argument", "backends[0].component"),
            ({"domain": "x.example.com", "backends": [{"component": "db", "port": 5432}]}, "invalid_argument", "backends[0].port"),
            ({"domain": "x.example.com", "backends": [{"component": "web", "version": "v9"}]}, "invalid_argument", "backends[0].version"),
            ({"domain": "x.example.com", "backends": [{"component": "web"}], "certificate": "missing"}, "invalid_argument", "certificate"),
            ({"domain": "web.shop.localhost", "backends": [{"component": "web"}]}, "invalid_argument", "domain"),
            ({"domain": "x.example.com", "backends": []}, "invalid_argument", "backends"),
            ({"domain": "x.example.com", "path_prefix": "nope", "backends": [{"component": "web"}]}, "invalid_argument", "path_prefix"),
        ]
        for body, code, field in cases:
            err = self.assertStatus(self.api("POST", self.rules(), body), 400, code, msg=str(body))
            self.assertEqual(err.get("field"), field, f"{body}: {err}")
        err = self.assertStatus(self.api("POST", self.rules(), raw_body="{not json",
                                         headers={"Content-Type": "application/json"}), 400, "invalid_json")
        self.assertStatus(self.api("POST", f"{V}/teams/default/apps/nope/http-rules",
                                   {"domain": "x.example.com", "backends": [{"component": "web"}]}),
                          404, "not_found")
        names = [x["name"] for x in self.ok(self.api("GET", self.rules()))["items"]]
        self.assertNotIn("x-example-com", names, "a rejected request changes nothing")

    def test_duplicate_domain_is_409_across_apps_and_teams(self):
        self.ok(self.api("POST", self.rules(), {"domain": "dup.example.com",
                                                "backends": [{"component": "web"}]}), 201)
        self.ok(self.api("POST", f"{V}/teams/default/apps", {"name": "other"}))
        self.ok(self.api("POST", f"{V}/teams/default/apps/other/components",
                         {"name": "site", "ports": [{"port": 80, "protocol": "http"}]}))
        err = self.assertStatus(self.api("POST", self.rules("other"), {
            "domain": "DUP.example.com", "path_prefix": "/", "backends": [{"component": "site"}]}),
            409, "domain_taken")
        self.assertIn("dup-example-com", err["message"])
        # Another team cannot take it either, and learns nothing about who holds it.
        self.ok(self.api("POST", f"{V}/teams", {"name": "acme"}))
        self.ok(self.api("POST", f"{V}/teams/acme/apps", {"name": "crm"}))
        self.ok(self.api("POST", f"{V}/teams/acme/apps/crm/components",
                         {"name": "api", "ports": [{"port": 3000, "protocol": "http"}]}))
        err = self.assertStatus(self.api("POST", f"{V}/teams/acme/apps/crm/http-rules", {
            "domain": "dup.example.com", "backends": [{"component": "api"}]}), 409, "domain_taken")
        self.assertIn("another team", err["message"])
        # A different path, or header matches, route different requests.
        self.ok(self.api("POST", self.rules("other"), {"domain": "dup.example.com", "path_prefix": "/blog",
                                                       "backends": [{"component": "site"}]}), 201)
        self.ok(self.api("POST", self.rules("other"), {
            "domain": "dup.example.com", "headers": [{"name": "X-Beta", "value": "1"}],
            "backends": [{"component": "site"}]}), 201)
        # Deleting the app frees its claims (in the same commit); the domain stays team
        # default's while another of its rules routes it, so acme gets no path under it.
        self.ok(self.api("DELETE", f"{V}/teams/default/apps/other"))
        self.assertStatus(self.api("POST", f"{V}/teams/acme/apps/crm/http-rules", {
            "domain": "dup.example.com", "path_prefix": "/blog", "backends": [{"component": "api"}]}),
            409, "domain_taken")
        self.ok(self.api("POST", self.rules(), {"domain": "dup.example.com", "path_prefix": "/blog",
                                                "backends": [{"component": "web"}]}), 201)
        # Changing other fields keeps the rule's own claim.
        self.ok(self.api("PATCH", self.rules() + "/dup-example-com", {"balance": "hash_ip"}))

    def claims(self, token=None) -> dict:
        items = self.ok(self.api("GET", f"{V}/gateway/claims", token=token))["items"]
        return {c["key"]: c for c in items}

    def test_deleting_an_app_releases_its_claims(self):
        # An app of team default with a domain and a TCP port.
        self.ok(self.api("POST", f"{V}/teams/default/apps", {"name": "leaving"}))
        comps = f"{V}/teams/default/apps/leaving/components"
        self.ok(self.api("POST", comps, {"name": "site", "ports": [{"port": 80, "protocol": "http"}]}))
        self.ok(self.api("POST", comps, {"name": "db", "ports": [{"port": 5432, "protocol": "tcp"}]}))
        self.ok(self.api("POST", self.rules("leaving"), {"domain": "leaving.example.com",
                                                         "backends": [{"component": "site"}]}), 201)
        self.ok(self.api("POST", f"{V}/teams/default/apps/leaving/tcp-rules",
                         {"listen_port": 17432, "component": "db"}), 201)
        claims = self.claims()
        self.assertEqual(
            {k: (c["kind"], c["team"], c["app"], c["stale"]) for k, c in claims.items()
             if k in ("http leaving.example.com /", "tcp 17432")},
            {"http leaving.example.com /": ("http_rule", "default", "leaving", False),
             "tcp 17432": ("tcp_rule", "default", "leaving", False)})
        # Claims span teams: administrators only.
        self.assertStatus(self.api("GET", f"{V}/gateway/claims", token=self.viewer), 403,
                          "permission_denied")
        snap = self.ok(self.api("GET", f"{V}/gateway/snapshot"))
        self.assertIn("leaving.example.com", [d for r in snap["http_routes"] for d in r["domains"]])
        self.assertIn(17432, [r["listen_port"] for r in snap["tcp_routes"]])

        self.ok(self.api("DELETE", f"{V}/teams/default/apps/leaving"))
        claims = self.claims()
        self.assertNotIn("http leaving.example.com /", claims)
        self.assertNotIn("tcp 17432", claims)
        self.assertEqual([c for c in claims.values() if c["stale"]], [])
        snap = self.ok(self.api("GET", f"{V}/gateway/snapshot"))
        self.assertNotIn("leaving.example.com", [d for r in snap["http_routes"] for d in r["domains"]])
        self.assertNotIn(17432, [r["listen_port"] for r in snap["tcp_routes"]])
        self.assertEqual([r for r in snap["http_routes"] + snap["tcp_routes"]
                          if r.get("app") == "leaving"], [])

        # Another team's app takes the same domain and port.
        self.ok(self.api("POST", f"{V}/teams", {"name": "heirs"}))
        self.ok(self.api("POST", f"{V}/teams/heirs/apps", {"name": "app"}))
        hc = f"{V}/teams/heirs/apps/app/components"
        self.ok(self.api("POST", hc, {"name": "www", "ports": [{"port": 8000, "protocol": "http"}]}))
        self.ok(self.api("POST", hc, {"name": "pg", "ports": [{"port": 5432, "protocol": "tcp"}]}))
        self.ok(self.api("POST", f"{V}/teams/heirs/apps/app/http-rules",
                         {"domain": "leaving.example.com", "backends": [{"component": "www"}]}), 201)
        self.ok(self.api("POST", f"{V}/teams/heirs/apps/app/tcp-rules",
                         {"listen_port": 17432, "component": "pg"}), 201)
        claims = self.claims()
        self.assertEqual((claims["tcp 17432"]["team"], claims["http leaving.example.com /"]["team"]),
                         ("heirs", "heirs"))
        # Deleting the team releases them too.
        self.ok(self.api("DELETE", f"{V}/teams/heirs"))
        claims = self.claims()
        self.assertNotIn("http leaving.example.com /", claims)
        self.assertNotIn("tcp 17432", claims)

    def test_deleting_a_component_releases_the_rules_routing_only_to_it(self):
        self.ok(self.api("POST", f"{V}/teams/default/apps", {"name": "parts"}))
        comps = f"{V}/teams/default/apps/parts/components"
        for name in ("main", "canary"):
            self.ok(self.api("POST", comps, {"name": name, "ports": [{"port": 80, "protocol": "http"}]}))
        self.ok(self.api("POST", comps, {"name": "pg", "ports": [{"port": 5432, "protocol": "tcp"}]}))
        self.ok(self.api("POST", self.rules("parts"), {
            "name": "split", "domain": "parts.example.com",
            "backends": [{"component": "main", "weight": 90}, {"component": "canary", "weight": 10}]}), 201)
        self.ok(self.api("POST", self.rules("parts"), {
            "name": "beta", "domain": "beta.parts.example.com", "backends": [{"component": "canary"}]}), 201)
        tcp = f"{V}/teams/default/apps/parts/tcp-rules"
        self.ok(self.api("POST", tcp, {"listen_port": 17433, "component": "pg"}), 201)

        r = self.ok(self.api("DELETE", comps + "/canary"))
        self.assertEqual(sorted(r["gateway_rules"]), ["http_rule/beta", "http_rule/split"])
        split = self.ok(self.api("GET", self.rules("parts") + "/split"))
        self.assertEqual([b["component"] for b in split["backends"]], ["main"])
        self.assertStatus(self.api("GET", self.rules("parts") + "/beta"), 404, "not_found")
        claims = self.claims()
        self.assertIn("http parts.example.com /", claims)
        self.assertNotIn("http beta.parts.example.com /", claims)
        r = self.ok(self.api("DELETE", comps + "/pg"))
        self.assertEqual(r["gateway_rules"], ["tcp_rule/tcp-17433"])
        self.assertNotIn("tcp 17433", self.claims())
        self.assertEqual(self.ok(self.api("GET", tcp))["items"], [])
        self.ok(self.api("DELETE", f"{V}/teams/default/apps/parts"))
        self.assertNotIn("http parts.example.com /", self.claims())

    def test_racing_creates_of_one_domain_leave_one_rule(self):
        import threading
        results = []
        barrier = threading.Barrier(6)

        def create(i):
            barrier.wait()
            st, body, _ = self.api("POST", self.rules(), {
                "name": f"race-{i}", "domain": "race.example.com",
                "backends": [{"component": "web"}]})
            results.append((st, body.get("code") if isinstance(body, dict) else None))
        threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(st for st, _ in results), [201, 409, 409, 409, 409, 409], results)
        self.assertEqual({c for st, c in results if st == 409}, {"domain_taken"})
        rules = [r for r in self.ok(self.api("GET", self.rules()))["items"]
                 if r["domain"] == "race.example.com"]
        self.assertEqual(len(rules), 1)
        self.ok(self.api("DELETE", self.rules() + "/" + rules[0]["name"]))

    def test_viewer_reads_but_cannot_write(self):
        self.ok(self.api("GET", self.rules(), token=self.viewer))
        self.ok(self.api("GET", f"{V}/teams/default/certificates", token=self.viewer))
        for method, path, body in [
            ("POST", self.rules(), {"domain": "v.example.com", "backends": [{"component": "web"}]}),
            ("POST", f"{V}/teams/default/apps/shop/tcp-rules", {"listen_port": 25432, "component": "db"}),
            ("POST", f"{V}/teams/default/certificates", {"name": "v", "cert_pem": "x", "key_pem": "y"}),
        ]:
            self.assertStatus(self.api(method, path, body, token=self.viewer), 403, "permission_denied")
        self.assertStatus(self.api("GET", f"{V}/gateway/snapshot", token=self.viewer), 403,
                          "permission_denied")

    # -- TCP rules ---------------------------------------------------------------------------

    def test_tcp_rules(self):
        tcp = f"{V}/teams/default/apps/shop/tcp-rules"
        r = self.ok(self.api("POST", tcp, {"listen_port": 15432, "component": "db"}), 201)
        self.assertEqual((r["name"], r["port"], r["balance"]), ("tcp-15432", 5432, "round_robin"))
        err = self.assertStatus(self.api("POST", tcp, {"listen_port": 15432, "component": "web",
                                                       "name": "again"}), 409, "port_taken")
        self.assertEqual(err["field"], "listen_port")
        self.assertStatus(self.api("POST", tcp, {"listen_port": HTTP_PORT, "component": "db"}),
                          409, "port_reserved")  # the gateway's own port
        self.assertStatus(self.api("POST", tcp, {"listen_port": 15433, "component": "db", "port": 1}),
                          400, "invalid_argument")
        self.assertStatus(self.api("POST", tcp, {"listen_port": 0, "component": "db"}), 400,
                          "invalid_argument")
        self.assertStatus(self.api("POST", tcp, {"listen_port": 15433, "component": "db", "x": 1}),
                          400, "unknown_field")
        self.ok(self.api("DELETE", tcp + "/tcp-15432"))
        self.ok(self.api("POST", tcp, {"listen_port": 15432, "component": "db"}), 201)
        self.ok(self.api("DELETE", tcp + "/tcp-15432"))

    # -- certificates ------------------------------------------------------------------------

    def test_certificates(self):
        c = self.ok(self.upload("shop", self.shop_crt, self.shop_key), 201)
        self.assertEqual(c["domains"], ["shop.example.com", "*.shop.example.com"])
        self.assertFalse(c["expired"])
        self.assertRegex(c["not_after"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(len(c["fingerprint_sha256"]), 64)
        for secret in ("key_pem", "key_sealed"):
            self.assertNotIn(secret, c)
        listed = self.ok(self.api("GET", f"{V}/teams/default/certificates"))["items"]
        self.assertIn("shop", [x["name"] for x in listed])
        self.assertFalse(any("key_sealed" in x or "key_pem" in x for x in listed))

        self.assertStatus(self.upload("shop", self.shop_crt, self.shop_key), 409, "already_exists")
        err = self.assertStatus(self.upload("mismatch", self.shop_crt, self.other_key), 400, "invalid_argument")
        self.assertEqual(err["field"], "key_pem")
        err = self.assertStatus(self.upload("garbage", self.garbage, self.shop_key), 400, "invalid_argument")
        self.assertEqual(err["field"], "cert_pem")
        err = self.assertStatus(self.api("POST", f"{V}/teams/default/certificates",
                                         {"name": "g2", "cert_pem": "hello", "key_pem": "world"}),
                                400, "invalid_argument")
        self.assertEqual(err["field"], "cert_pem")
        self.assertStatus(self.api("POST", f"{V}/teams/default/certificates",
                                   {"name": "g3", "cert_pem": read(self.shop_crt),
                                    "key_pem": read(self.shop_key), "password": "x"}), 400, "unknown_field")

        # A rule serves HTTPS with it; a certificate for another domain is refused.
        self.ok(self.api("POST", self.rules(), {"domain": "www.shop.example.com", "certificate": "shop",
                                                "redirect_https": True,
                                                "backends": [{"component": "web"}]}), 201)
        self.ok(self.upload("other", self.other_crt, self.other_key), 201)
        err = self.assertStatus(self.api("POST", self.rules(), {
            "domain": "a.b.shop.example.com", "certificate": "shop",
            "backends": [{"component": "web"}]}), 400, "invalid_argument")
        self.assertEqual(err["field"], "certificate")
        self.assertStatus(self.api("DELETE", f"{V}/teams/default/certificates/shop"), 409,
                          "failed_precondition")
        # Renewal keeps the name; a certificate that no longer covers the rule is refused.
        self.ok(self.api("PUT", f"{V}/teams/default/certificates/shop",
                         {"cert_pem": read(self.shop_crt), "key_pem": read(self.shop_key)}))
        self.assertStatus(self.api("PUT", f"{V}/teams/default/certificates/shop",
                                   {"cert_pem": read(self.other_crt), "key_pem": read(self.other_key)}),
                          400, "invalid_argument")

        # Keys are sealed at rest: neither the database nor its WAL holds the key PEM.
        key_body = "".join(l for l in read(self.shop_key).splitlines() if "-----" not in l)
        self.assertGreater(len(key_body), 40)
        for suffix in ("", "-wal"):
            path = os.path.join(self.srv.data_dir, "berth.db" + suffix)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read()
                self.assertNotIn(key_body.encode(), data, path)
                self.assertNotIn(b"PRIVATE KEY", data, path)
        key_file = os.path.join(self.srv.data_dir, "secret.key")
        st = os.stat(key_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_size, 32)

        # The snapshot carries the decrypted key for the gateway.
        snap = self.ok(self.api("GET", f"{V}/gateway/snapshot"))
        certs = {c["name"]: c for c in snap["certificates"]}
        self.assertIn("default/shop", certs)
        self.assertEqual(certs["default/shop"]["key_pem"], read(self.shop_key))
        self.assertNotIn("default/other", certs, "only certificates that rules use")
        route = [r for r in snap["http_routes"] if r["id"] == "default/shop/www-shop-example-com"][0]
        self.assertEqual(route["certificate"], "default/shop")
        self.assertTrue(route["redirect_https"])

        self.ok(self.api("DELETE", self.rules() + "/www-shop-example-com"))
        self.ok(self.api("DELETE", f"{V}/teams/default/certificates/shop"))
        self.ok(self.api("DELETE", f"{V}/teams/default/certificates/other"))

    # -- snapshot and addresses --------------------------------------------------------------

    def test_snapshot_and_addresses(self):
        self.ok(self.api("POST", self.rules(), {
            "domain": "canary.example.com",
            "backends": [{"component": "web", "weight": 90}, {"component": "next", "weight": 10}]}), 201)
        snap = self.ok(self.api("GET", f"{V}/gateway/snapshot"))
        self.assertIsInstance(snap["revision"], int)
        self.assertLessEqual(snap["revision"], self.ok(self.anon("GET", "/readyz"))["revision"])
        routes = {r["id"]: r for r in snap["http_routes"]}
        d = routes["default/shop/web/default-8080"]
        self.assertEqual(d["domains"], ["web.shop.localhost", "8080.web.shop.localhost"])
        self.assertEqual(d["backends"], [{"pool": "default/shop/web:8080", "weight": 100}])
        self.assertEqual(routes["default/shop/web/default-9090"]["domains"], ["9090.web.shop.localhost"])
        self.assertNotIn("default/shop/next/default-8000", routes, "inner ports get no default domain")
        c = routes["default/shop/canary-example-com"]
        self.assertEqual(c["backends"], [{"pool": "default/shop/web:8080", "weight": 90},
                                         {"pool": "default/shop/next:8000", "weight": 10}])
        pool = snap["pools"]["default/shop/web:8080"]
        self.assertEqual(pool["endpoints"], [])
        self.assertEqual(pool["reason"], "no version built yet")
        for key in c, pool:
            self.assertNotIn("key_sealed", json.dumps(key))
        self.assertEqual(set(snap), {"revision", "http_routes", "tcp_routes", "pools", "certificates"})

        comp = self.ok(self.api("GET", f"{V}/teams/default/apps/shop/components/web"))
        self.assertEqual(comp["addresses"][:3], [f"http://web.shop.localhost:{HTTP_PORT}",
                                                 f"http://8080.web.shop.localhost:{HTTP_PORT}",
                                                 f"http://9090.web.shop.localhost:{HTTP_PORT}"])
        self.assertIn(f"http://canary.example.com:{HTTP_PORT}", comp["addresses"])
        listed = self.ok(self.api("GET", f"{V}/teams/default/apps/shop/components"))["items"]
        self.assertEqual({x["name"]: x["addresses"] for x in listed}["db"], [])
        # GET → PUT of a component still works with the read-only addresses sent back.
        self.ok(self.api("PUT", f"{V}/teams/default/apps/shop/components/web", comp))
        self.ok(self.api("DELETE", self.rules() + "/canary-example-com"))

    def test_openapi_describes_the_gateway_routes(self):
        doc = self.ok(self.anon("GET", f"{V}/openapi.json"))
        paths = doc["paths"]
        a = "/api/v1/teams/{team}/apps/{app}"
        for path, methods in {
            f"{a}/http-rules": {"get", "post"},
            f"{a}/http-rules/{{rule}}": {"get", "put", "patch", "delete"},
            f"{a}/tcp-rules": {"get", "post"},
            f"{a}/tcp-rules/{{rule}}": {"get", "put", "patch", "delete"},
            "/api/v1/teams/{team}/http-rules": {"get"},
            "/api/v1/teams/{team}/tcp-rules": {"get"},
            "/api/v1/teams/{team}/certificates": {"get", "post"},
            "/api/v1/teams/{team}/certificates/{certificate}": {"get", "put", "delete"},
            "/api/v1/gateway/snapshot": {"get"},
            "/api/v1/gateway/claims": {"get"},
        }.items():
            self.assertIn(path, paths)
            self.assertEqual(set(paths[path]), methods, path)
        schemas = doc["components"]["schemas"]
        refs = set()

        def walk(x):
            if isinstance(x, dict):
                if "$ref" in x:
                    refs.add(x["$ref"].rsplit("/", 1)[-1])
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(doc)
        self.assertEqual(refs - set(schemas), set(), "every $ref names a schema")
        self.assertNotIn("key_pem", schemas["Certificate"]["properties"])

    # -- CLI ---------------------------------------------------------------------------------

    def test_cli(self):
        self.cli_login()
        out = self.cli("domain", "add", "cli.example.com", "--app", "shop", "--component", "web",
                       "--path", "/app", "--header", "X-Canary=1", "--canary", "next=20",
                       "--rate-limit", "50:100", "--balance", "hash_ip").stdout
        self.assertIn("routing http://cli.example.com/app to web:8080=80%,next:8000=20%", out)
        rules = json.loads(self.cli("domain", "list", "--app", "shop", "-o", "json").stdout)["items"]
        rule = [r for r in rules if r["domain"] == "cli.example.com"][0]
        self.assertEqual(rule["backends"], [{"component": "web", "port": 8080, "version": "", "weight": 80},
                                            {"component": "next", "port": 8000, "version": "", "weight": 20}])
        self.assertEqual(rule["headers"], [{"name": "x-canary", "value": "1"}])
        self.assertEqual(rule["rate_limit"], {"requests_per_second": 50.0, "burst": 100})
        table = self.cli("domain", "list").stdout
        self.assertIn("http://cli.example.com/app", table)
        self.assertIn("header:x-canary=1", table)
        r = self.cli("domain", "add", "bad_domain", "--app", "shop", "--component", "web", expect=1)
        self.assertIn("(invalid_argument)", r.stderr)
        self.assertIn("field: domain", r.stderr)
        self.cli("domain", "add", "x.example.com", "--app", "shop", "--component", "web",
                 "--canary", "next", expect=2)
        self.cli("domain", "remove", "cli.example.com", "--app", "shop")
        self.assertNotIn("cli.example.com", self.cli("domain", "list", "--app", "shop").stdout)

        out = self.cli("tcp", "add", "25432", "--app", "shop", "--component", "db").stdout
        self.assertIn("forwarding TCP port 25432 to db:5432 (rule tcp-25432)", out)
        self.assertIn("tcp-25432", self.cli("tcp", "list").stdout)
        r = self.cli("tcp", "add", "25432", "--app", "shop", "--component", "db", "--name", "x", expect=1)
        self.assertIn("(port_taken)", r.stderr)
        self.cli("tcp", "remove", "25432", "--app", "shop")

        out = self.cli("cert", "add", "cli", "--cert", self.shop_crt, "--key", self.shop_key).stdout
        self.assertIn("added certificate cli for shop.example.com, *.shop.example.com", out)
        table = self.cli("cert", "list").stdout
        self.assertRegex(table, r"cli\s+shop.example.com,\*.shop.example.com\s+\d{4}-")
        shown = self.cli("cert", "show", "cli").stdout
        self.assertIn("not_after", shown)
        self.assertNotIn("PRIVATE", shown)
        r = self.cli("cert", "add", "bad", "--cert", self.shop_crt, "--key", self.other_key, expect=1)
        self.assertIn("field: key_pem", r.stderr)
        self.cli("domain", "add", "cli.shop.example.com", "--app", "shop", "--component", "web",
                 "--cert", "cli", "--https-redirect")
        self.assertIn("https://cli.shop.example.com", self.cli("component", "show", "web", "--app", "shop").stdout)
        self.assertIn(f"http://web.shop.localhost:{HTTP_PORT}",
                      self.cli("component", "show", "web", "--app", "shop").stdout)
        self.cli("domain", "remove", "cli-shop-example-com", "--app", "shop")
        self.cli("cert", "remove", "cli")
        self.assertNotIn("cli", self.cli("cert", "list").stdout.split())


class GatewayPoolsTest(rt.RuntimeCase):
    """Pools come from the instances the real runtime writes: only ready ones, on their ports."""

    def snapshot(self):
        return self.ok(self.api("GET", f"{V}/gateway/snapshot"))

    def test_pools_follow_the_runtime(self):
        self.setup_app("gw", replicas=2, ports=[{"port": 8080, "outer": True}])
        insts = self.wait_ready("gw", 2)
        snap = self.snapshot()
        pool = snap["pools"]["default/gw/web:8080"]
        self.assertEqual(pool["reason"], "")
        self.assertEqual(sorted((e["instance"], e["port"]) for e in pool["endpoints"]),
                         sorted((i["name"], i["port"]) for i in insts))
        for e in pool["endpoints"]:
            self.assertEqual(e["host"], "127.0.0.1")
            status, body = rt.http_get(e)
            self.assertEqual(status, 200)
            self.assertIn(f"hello from {e['instance']}", body)
        route = [r for r in snap["http_routes"] if r["id"] == "default/gw/web/default-8080"][0]
        self.assertEqual(route["domains"], ["web.gw.localhost", "8080.web.gw.localhost"])

        self.patch("gw", {"desired_state": "stopped"})
        rt.wait_for(lambda: not self.instances("gw"), "instances to stop")
        pool = self.snapshot()["pools"]["default/gw/web:8080"]
        self.assertEqual((pool["endpoints"], pool["reason"]), ([], "component stopped"))


if __name__ == "__main__":
    import unittest
    unittest.main()
