"""Archive uploads (issue #3 §1): streamed to the server, never held whole in memory.

The server runs with a 3 MiB upload limit. An archive larger than the 1 MiB JSON body limit
uploads (PUT .../archive, the raw body) and builds; one over the upload limit gets 413
payload_too_large — announced by Content-Length or discovered in a chunked body — and leaves
nothing behind (no component change, no file in DATA/tmp or DATA/uploads). Unauthenticated and
unsafe uploads are refused the same way. Finally `berth component create --archive FILE`
uploads, builds and deploys in one command.
"""

import http.client
import io
import json
import os
import tarfile
import textwrap
import unittest
import urllib.parse

from harness import BerthTestCase, http_request
from test_runtime import Reaper, http_get, in_team, wait_for

V = "/api/v1/teams/default"
LIMIT = 3 << 20
APP_PY = textwrap.dedent("""\
    import http.server, os
    HERE = os.path.dirname(os.path.abspath(__file__))
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            size = os.path.getsize(os.path.join(HERE, "blob.bin"))
            body = (open(os.path.join(HERE, "greeting.txt")).read().strip() + " " + str(size) + "\\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """)


def make_archive(path: str, blob_bytes: int, greeting: str = "uploaded", extra: dict | None = None) -> None:
    with tarfile.open(path, "w:gz") as t:
        def add(name: str, data: bytes):
            info = tarfile.TarInfo("app/" + name if not name.startswith("/") and not name.startswith("..") else name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
        add("Procfile", b"web: python3 app.py\n")
        add("app.py", APP_PY.encode())
        add("greeting.txt", (greeting + "\n").encode())
        add("blob.bin", os.urandom(blob_bytes))  # random: gzip cannot shrink it
        for name, data in (extra or {}).items():
            add(name, data)


class UploadTest(BerthTestCase):
    server_kwargs = {"env": {"BERTH_UPLOAD_LIMIT": str(LIMIT)}}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)

    def comp(self, app: str, name: str = "web") -> str:
        return f"{V}/apps/{app}/components/{name}"

    def upload(self, app: str, path: str, token: str | None = "admin", chunked: bool = False,
               name: str = "src.tar.gz"):
        """PUTs the file as the raw body; returns (status, parsed body)."""
        u = urllib.parse.urlsplit(self.srv.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers = {"Content-Type": "application/octet-stream"}
        if token:
            headers["Authorization"] = "Bearer " + (self.admin if token == "admin" else token)
        target = self.comp(app) + "/archive?name=" + urllib.parse.quote(name)
        try:
            with open(path, "rb") as f:
                if chunked:
                    def chunks():
                        while True:
                            b = f.read(256 << 10)
                            if not b:
                                return
                            yield b
                    try:
                        conn.request("PUT", target, body=chunks(), headers=headers, encode_chunked=True)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    headers["Content-Length"] = str(os.path.getsize(path))
                    try:
                        conn.request("PUT", target, body=f, headers=headers)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
            r = conn.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw.decode("utf-8", "replace")
        finally:
            conn.close()

    def leftovers(self) -> list[str]:
        tmp = os.path.join(self.srv.data_dir, "tmp")
        return [n for n in os.listdir(tmp) if n.startswith("upload-")] if os.path.isdir(tmp) else []

    def uploads(self, app: str) -> list[str]:
        d = os.path.join(self.srv.data_dir, "uploads", "default", app, "web")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def test_large_upload_builds_and_oversized_ones_leave_nothing(self):
        self.make_app("default", "up")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/up")
        self.make_component("default", "up", "web")
        big = os.path.join(self.srv.tmp, "big.tar.gz")
        make_archive(big, int(1.6 * (1 << 20)))
        self.assertGreater(os.path.getsize(big), 1 << 20)  # over the JSON body limit

        status, comp = self.upload("up", big)
        self.assertEqual(status, 200, comp)
        self.assertEqual(comp["source"]["type"], "archive")
        kept = comp["source"]["archive"]
        self.assertTrue(kept.startswith(os.path.join(os.path.realpath(self.srv.data_dir), "uploads")) or
                        kept.startswith(os.path.join(self.srv.data_dir, "uploads")), kept)
        self.assertTrue(kept.endswith(".tar.gz"), kept)
        self.assertEqual(os.path.getsize(kept), os.path.getsize(big))
        self.assertEqual(self.leftovers(), [])

        v = self.ok(self.api("POST", self.comp("up") + "/builds", {}), 201)
        done = wait_for(lambda: (lambda x: x if x["status"] in ("ready", "failed") else None)(
            self.ok(self.api("GET", f"{self.comp('up')}/versions/{v['name']}"))), "the build", timeout=120)
        self.assertEqual(done["status"], "ready", done.get("message"))
        art = os.path.join(self.srv.data_dir, "teams", "default", "artifacts", done["artifact"][7:], "app")
        self.assertEqual(os.path.getsize(os.path.join(art, "blob.bin")), int(1.6 * (1 << 20)))

        # Over the limit: Content-Length announced, then chunked (discovered while reading).
        huge = os.path.join(self.srv.tmp, "huge.tar.gz")
        make_archive(huge, LIMIT + (256 << 10))
        for chunked in (False, True):
            status, body = self.upload("up", huge, chunked=chunked)
            self.assertEqual(status, 413, body)
            self.assertEqual(body["code"], "payload_too_large")
            self.assertIn(str(LIMIT), body["message"])
            self.assertEqual(self.ok(self.api("GET", self.comp("up")))["source"]["archive"], kept)
            wait_for(lambda: self.leftovers() == [], "the partial upload to be removed", timeout=10)
            self.assertEqual(self.uploads("up"), [os.path.basename(kept)])

        # Not signed in: refused before the body is read. Unsafe or not an archive: 400.
        status, body = self.upload("up", big, token=None)
        self.assertEqual((status, body["code"]), (401, "unauthenticated"))
        evil = os.path.join(self.srv.tmp, "evil.tar.gz")
        make_archive(evil, 10, extra={"../../escape.txt": b"x"})
        status, body = self.upload("up", evil)
        self.assertEqual(status, 400, body)
        self.assertEqual(body["field"], "archive")
        self.assertIn("outside the build directory", body["message"])
        self.assertNotIn("/tmp/upload-", body["message"])
        junk = os.path.join(self.srv.tmp, "junk.tar.gz")
        with open(junk, "wb") as f:
            f.write(b"this is not an archive" * 100)
        self.assertEqual(self.upload("up", junk)[0], 400)
        self.assertEqual(self.ok(self.api("GET", self.comp("up")))["source"]["archive"], kept)
        self.assertEqual(self.leftovers(), [])
        self.assertEqual(self.uploads("up"), [os.path.basename(kept)])
        # An upload to a component that does not exist.
        status, body = self.upload("nope", big)
        self.assertEqual(status, 404, body)
        self.assertEqual(self.leftovers(), [])
        # Deleting the component removes its uploads.
        self.ok(self.api("DELETE", self.comp("up")))
        self.assertFalse(os.path.exists(os.path.dirname(kept)), kept)

    def test_cli_component_create_with_archive_uploads_builds_and_deploys(self):
        self.make_app("default", "upcli")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/upcli")
        arc = os.path.join(self.srv.tmp, "cli.tar.gz")
        make_archive(arc, int(1.2 * (1 << 20)), greeting="from the cli")
        config = os.path.join(self.srv.tmp, "cli-config-upload")
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                         input=self.srv.admin_password + "\n", config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("component", "create", "web", "--app", "upcli", "--archive", arc,
                         "--port", "8080/http", "--timeout", "120", config=config, timeout=180)
        self.reaper.scan()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("uploading cli.tar.gz", r.stderr)
        line = [l for l in r.stdout.splitlines() if " answers at " in l][-1]
        port = int(line.split("127.0.0.1:", 1)[1].split()[0])
        self.assertEqual(http_get(in_team(self.srv, port)), (200, f"from the cli {int(1.2 * (1 << 20))}\n"))
        comp = self.ok(self.api("GET", self.comp("upcli")))
        self.assertEqual(comp["source"]["type"], "archive")
        # Over the limit through the CLI: a clear error, exit 1.
        huge = os.path.join(self.srv.tmp, "cli-huge.tar.gz")
        make_archive(huge, LIMIT + (128 << 10))
        r = self.srv.cli("deploy", "web", "--app", "upcli", "--archive", huge, config=config, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("payload_too_large", r.stderr)


if __name__ == "__main__":
    unittest.main()
