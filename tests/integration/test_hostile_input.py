"""Hostile bytes (issue 13 "Deep or huge JSON", issue 24 item 4).

Deeply nested JSON is refused before it is parsed (400 json_too_deep) on every route that reads
JSON, and the server keeps serving; every body limit holds on every route of the OpenAPI
document; a URL path or query that is not valid UTF-8 or carries control characters is a clean
400 `invalid_path` (never a 500 "handler threw"), and no request can write a line of its own
into the server's log.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import urllib.parse

from harness import BerthTestCase

V = "/api/v1"
UPLOAD_LIMIT = 2 << 20


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


class HostileInputTest(BerthTestCase):
    server_kwargs = {"extra_args": ["--upload-limit", str(UPLOAD_LIMIT)], "log_level": "info"}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        for path, body in ((f"{V}/teams/default/apps", {"name": "shop"}),
                           (f"{V}/teams/default/apps/shop/components", {"name": "web"})):
            st, b, _ = cls.srv.api("POST", path, body, token=cls.admin)
            assert st == 201, b
        st, b, _ = cls.srv.api("PUT", f"{V}/teams/default/apps/shop/components/web/webhook",
                               {"provider": "github", "branch": "main"}, token=cls.admin)
        assert st in (200, 201), b
        cls.hook = b["id"]

    def alive(self):
        self.ok(self.api("GET", "/healthz"))
        self.ok(self.api("GET", f"{V}/teams"))

    # -- deep JSON -------------------------------------------------------------------------------

    def test_deep_json_is_refused_before_parsing_everywhere(self):
        comp = f"{V}/teams/default/apps/shop/components/web"
        bomb = deep(200000)  # 400 kB, under the 1 MiB body limit
        cases = [
            ("POST", f"{V}/teams", '{"name": ' + bomb + '}', self.admin),
            ("POST", comp + "/versions", '{"status": "ready", "detect": ' + bomb + '}', self.admin),
            ("PATCH", comp, '{"env": ' + bomb + '}', self.admin),
            ("POST", f"{V}/teams/default/detect", '{"source": ' + bomb + '}', self.admin),
            ("POST", f"{V}/login", '{"user": ' + bomb + '}', None),
            ("POST", f"{V}/teams/default/apps/shop/http-rules", '{"backends": ' + bomb + '}',
             self.admin),
            # 65 levels: one more than the limit.
            ("POST", f"{V}/teams", '{"name": "x", "quota": ' + deep(64) + '}', self.admin),
        ]
        for method, path, raw, token in cases:
            with self.subTest(route=f"{method} {path}", size=len(raw)):
                st, body, _ = self.srv.api(method, path, raw_body=raw, token=token)
                self.assertEqual((st, body.get("code") if isinstance(body, dict) else body),
                                 (400, "json_too_deep"), str(body)[:300])
                self.alive()
        # 64 levels are JSON like any other (refused for what they say, not how deep they are).
        st, body, _ = self.api("POST", f"{V}/teams",
                               raw_body='{"name": "x", "quota": ' + deep(63) + '}')
        self.assertEqual((st, body["code"]), (400, "invalid_argument"), body)
        # A webhook delivery's payload is JSON from anyone on the network.
        st, body, _ = self.srv.api("POST", f"{V}/hooks/{self.hook}",
                                   raw_body='{"ref": ' + bomb + '}',
                                   headers={"X-GitHub-Event": "push",
                                            "X-Hub-Signature-256": "sha256=" + "0" * 64})
        self.assertIn(st, (400, 401), body)
        self.alive()

    def test_body_limits_hold_for_every_route(self):
        doc = self.ok(self.api("GET", f"{V}/openapi.json"))
        big = b'{"x": "' + b"a" * (1 << 20) + b'"}'
        checked = 0
        for pattern, ops in doc["paths"].items():
            path = re.sub(r"\{team\}", "default", pattern)
            path = re.sub(r"\{app\}", "shop", path)
            path = re.sub(r"\{component\}", "web", path)
            path = re.sub(r"\{[a-z_]+\}", "x", path)
            for method in ops:
                if method.upper() not in ("POST", "PUT", "PATCH"):
                    continue
                with self.subTest(route=f"{method.upper()} {pattern}"):
                    if path.endswith(("/archive", "/git/git-receive-pack", "/git/git-upload-pack")):
                        body = b"\0" * (UPLOAD_LIMIT + 1)
                    else:
                        body = big
                    st, b, _ = self.api(method.upper(), path, raw_body=body)
                    self.assertEqual(st, 413, f"{method} {pattern}: {str(b)[:200]}")
                    self.assertEqual(b["code"], "payload_too_large")
                    checked += 1
        self.assertGreater(checked, 30)
        # Without a Content-Length (chunked) the limit holds as the body arrives.
        u = urllib.parse.urlsplit(self.srv.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            chunks = (b"a" * 65536 for _ in range(40))
            try:
                conn.request("POST", f"{V}/teams", body=chunks, encode_chunked=True,
                             headers={"Authorization": "Bearer " + self.admin,
                                      "Content-Type": "application/json"})
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = conn.getresponse()
            self.assertEqual(r.status, 413)
        finally:
            conn.close()
        self.alive()

    def test_the_openapi_document_lists_every_documented_error_code(self):
        doc = self.ok(self.api("GET", f"{V}/openapi.json"))
        listed = set(doc["components"]["schemas"]["Error"]["properties"]["code"]["x-berth-codes"])
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api.md")) as f:
            text = f.read()
        table = text[text.index("## Errors"):text.index("A rejected request changes nothing")]
        documented = set(re.findall(r"^\| \d{3} \| `([a-z_]+)`", table, flags=re.M))
        self.assertIn("json_too_deep", documented)
        self.assertEqual(listed, documented)
        detect = doc["paths"]["/api/v1/teams/{team}/detect"]["post"]["responses"]
        self.assertIn("429", detect)
        self.assertIn("504", detect)

    # -- bad bytes in the target -------------------------------------------------------------------

    def raw_request(self, target: bytes, method: bytes = b"GET") -> tuple[int, dict]:
        """Sends the request line exactly as given (http.client would re-encode it)."""
        u = urllib.parse.urlsplit(self.srv.url)
        with socket.create_connection((u.hostname, u.port), timeout=10) as s:
            s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {"raw": body.decode("latin-1")}

    def test_bad_bytes_in_a_path_or_query_are_a_clean_400(self):
        forged = b"2030-01-01T00:00:00.000Z E api msg=\"forged by a request\""
        forged_q = urllib.parse.quote(forged.decode()).encode()
        targets = [
            (b"POST", b"/api/v1/hooks/%FF%0A" + forged_q),
            (b"POST", b"/api/v1/hooks/abc%0A" + forged_q),
            (b"GET", b"/api/v1/teams/%FF"),
            (b"GET", b"/api/v1/teams/%C0%AF"),            # overlong '/'
            (b"GET", b"/api/v1/teams/%ED%A0%80"),         # a surrogate
            (b"GET", b"/api/v1/teams/a%00b"),
            (b"GET", b"/api/v1/teams/a%1Bb/apps"),
            (b"GET", b"/api/v1/teams?after=%FF"),
            (b"GET", b"/api/v1/teams?%0Aforged=1"),
            (b"GET", b"/%FF/index.html"),
        ]
        for method, target in targets:
            with self.subTest(target=target):
                st, body = self.raw_request(target, method)
                self.assertEqual((st, body.get("code")), (400, "invalid_path"), body)
        self.alive()
        err = self.srv.stderr_text()
        self.assertNotIn("handler threw", err)
        for line in err.splitlines():
            self.assertFalse(line.startswith("2030-01-01"), f"a forged log line: {line!r}")
        # Valid UTF-8 in names is not a bad path: it is a name that does not exist.
        st, body = self.raw_request("/api/v1/teams/caf%C3%A9".encode())
        self.assertIn(st, (401, 404), body)


if __name__ == "__main__":
    import unittest
    unittest.main()
