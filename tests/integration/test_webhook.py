"""Webhooks (issue #3 §7): a signed push deploys the pushed commit; anything else triggers nothing.

A real git repository (git CLI, file:// URL) is the component's source. After a new commit, a
GitHub-style push delivery signed with the webhook's secret (X-Hub-Signature-256) builds that
commit and the deploy controller runs it: the instance answers with the new content. Wrong or
missing signatures get 401 invalid_signature, malformed payloads 400 invalid_payload, pushes
to other branches 202 with a reason — and none of them queues a version.
"""

import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import shutil
import textwrap
import time
import unittest

from harness import BerthTestCase, http_request
from test_runtime import Reaper, http_get, wait_for

V = "/api/v1/teams/default"
APP_PY = textwrap.dedent("""\
    import http.server, os
    GREETING = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "greeting.txt")).read().strip()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (GREETING + "\\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """)


class WebhookTest(BerthTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)
        self.repo = tempfile.mkdtemp(prefix="berth-hook-git-")
        self.addCleanup(shutil.rmtree, self.repo, True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "t@example.invalid")
        self.git("config", "user.name", "t")
        with open(os.path.join(self.repo, "Procfile"), "w") as f:
            f.write("web: python3 app.py\n")
        with open(os.path.join(self.repo, "app.py"), "w") as f:
            f.write(APP_PY)
        self.commit("hello one")

    def git(self, *args) -> str:
        r = subprocess.run(["git", "-C", self.repo, *args], check=True, capture_output=True,
                           text=True, timeout=30)
        return r.stdout.strip()

    def commit(self, greeting: str) -> str:
        with open(os.path.join(self.repo, "greeting.txt"), "w") as f:
            f.write(greeting + "\n")
        self.git("add", ".")
        self.git("commit", "-q", "-m", greeting)
        return self.git("rev-parse", "HEAD")

    def comp(self, app: str) -> str:
        return f"{V}/apps/{app}/components/web"

    def versions(self, app: str) -> list[str]:
        return sorted(v["name"] for v in self.ok(self.api("GET", self.comp(app) + "/versions"))["items"])

    def deliver(self, path: str, payload, headers: dict, raw: bytes | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        return http_request(self.srv.url, "POST", path, raw_body=body, headers=headers)

    def wait_version(self, app: str, name: str) -> dict:
        def done():
            v = self.ok(self.api("GET", f"{self.comp(app)}/versions/{name}"))
            return v if v["status"] in ("ready", "failed", "cancelled") else None
        v = wait_for(done, f"build {name}", timeout=120)
        if v["status"] != "ready":
            log = self.api("GET", f"{self.comp(app)}/versions/{name}/log").body
            self.fail(f"{name} {v['status']}: {v.get('message')}\n{log}")
        return v

    def answers(self, app: str, version: str) -> str:
        def ready():
            items = self.ok(self.api("GET", self.comp(app) + "/instances"))["items"]
            self.reaper.scan()
            good = [i for i in items if i.get("ready") and i.get("version") == version]
            if len(good) != 1 or len(items) != 1:
                return None
            status, body = http_get(good[0])
            return body.strip() if status == 200 else None
        return wait_for(ready, f"one ready instance at {version}", timeout=60)

    def test_signed_github_push_builds_and_deploys_the_new_commit(self):
        self.make_app("default", "hooks")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/hooks")
        self.make_component("default", "hooks", "web",
                            source={"type": "git", "url": "file://" + self.repo, "ref": "main"},
                            ports=[{"port": 8080, "protocol": "http"}])
        hook = self.ok(self.api("PUT", self.comp("hooks") + "/webhook", {"provider": "github"}), 201)
        self.assertEqual(hook["provider"], "github")
        self.assertTrue(hook["path"].startswith("/api/v1/hooks/"), hook)
        self.assertGreaterEqual(len(hook["secret"]), 32)
        secret = hook["secret"].encode()
        # The secret never shows outside GET/PUT of the webhook (e.g. in the audit log).
        audit = json.dumps(self.ok(self.api("GET", f"{V}/audit")))
        self.assertNotIn(hook["secret"], audit)

        v1 = self.ok(self.api("POST", self.comp("hooks") + "/builds", {}), 201)
        self.wait_version("hooks", v1["name"])
        self.assertEqual(self.answers("hooks", "v1"), "hello one")

        new = self.commit("hello two")
        push = {"ref": "refs/heads/main", "after": new, "before": "0" * 40,
                "repository": {"default_branch": "main", "clone_url": "file://" + self.repo}}
        body = json.dumps(push).encode()
        good_sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        bad_sig = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
        gh = {"X-GitHub-Event": "push"}

        # Wrong signature, no signature, a signature of another body, a token where GitHub
        # signs: 401, nothing queued.
        for headers, raw in (({**gh, "X-Hub-Signature-256": bad_sig}, body),
                             (gh, body),
                             ({**gh, "X-Hub-Signature-256": good_sig}, body + b" "),
                             ({**gh, "X-Hub-Signature-256": good_sig[7:]}, body),
                             ({"X-Gitlab-Token": hook["secret"], "X-Gitlab-Event": "Push Hook"}, body)):
            r = self.deliver(hook["path"], None, headers, raw=raw)
            self.assertStatus(r, 401, "invalid_signature")
        # Unknown hook id.
        r = self.deliver("/api/v1/hooks/" + "0" * 32, None, {**gh, "X-Hub-Signature-256": good_sig}, raw=body)
        self.assertStatus(r, 404, "not_found")
        # Signed but malformed, or a push elsewhere: 400 / 202 with a reason.
        junk = b"{not json"
        r = self.deliver(hook["path"], None, {**gh, "X-Hub-Signature-256": "sha256=" + hmac.new(secret, junk, hashlib.sha256).hexdigest()}, raw=junk)
        self.assertStatus(r, 400, "invalid_payload")
        other = json.dumps({**push, "ref": "refs/heads/feature"}).encode()
        r = self.deliver(hook["path"], None, {**gh, "X-Hub-Signature-256": "sha256=" + hmac.new(secret, other, hashlib.sha256).hexdigest()}, raw=other)
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(r.body["status"], "ignored")
        self.assertIn("feature", r.body["reason"])
        ping = b'{"zen": "hi"}'
        r = self.deliver(hook["path"], None, {"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + hmac.new(secret, ping, hashlib.sha256).hexdigest()}, raw=ping)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.versions("hooks"), ["v1"])

        # The real push: v2 is the pushed commit and replaces v1.
        r = self.deliver(hook["path"], None, {**gh, "X-Hub-Signature-256": good_sig}, raw=body)
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual((r.body["status"], r.body["version"], r.body["commit"], r.body["deploys"]),
                         ("queued", "v2", new, True))
        v2 = self.wait_version("hooks", "v2")
        self.assertEqual(v2["detect"].get("commit"), new, v2)
        self.assertEqual(self.answers("hooks", "v2"), "hello two")
        events = self.ok(self.api("GET", self.comp("hooks") + "/events"))["items"]
        self.assertIn("WebhookBuild", {e["reason"] for e in events})

        # Disabled: the URL is gone.
        self.ok(self.api("DELETE", self.comp("hooks") + "/webhook"))
        r = self.deliver(hook["path"], None, {**gh, "X-Hub-Signature-256": good_sig}, raw=body)
        self.assertStatus(r, 404, "not_found")
        self.assertEqual(self.versions("hooks"), ["v1", "v2"])

    def test_gitea_gitlab_and_generic_proofs(self):
        """The other providers' proofs, checked without building (pushes to another branch)."""
        self.make_app("default", "hooks2")
        self.addCleanup(self.api, "DELETE", f"{V}/apps/hooks2")
        self.make_component("default", "hooks2", "web",
                            source={"type": "git", "url": "file://" + self.repo, "ref": "main"})
        push = json.dumps({"ref": "refs/heads/dev", "after": "a" * 40}).encode()

        hook = self.ok(self.api("PUT", self.comp("hooks2") + "/webhook", {"provider": "gitea"}), 201)
        key = hook["secret"].encode()
        sig = hmac.new(key, push, hashlib.sha256).hexdigest()
        ev = {"X-Gitea-Event": "push"}
        self.assertStatus(self.deliver(hook["path"], None, {**ev, "X-Gitea-Signature": "0" * 64}, raw=push), 401, "invalid_signature")
        r = self.deliver(hook["path"], None, {**ev, "X-Gitea-Signature": sig}, raw=push)
        self.assertEqual((r.status, r.body["status"]), (202, "ignored"), r.body)

        # Switching provider keeps the id and secret; rotating changes the secret.
        gl = self.ok(self.api("PUT", self.comp("hooks2") + "/webhook", {"provider": "gitlab", "branch": "main"}))
        self.assertEqual((gl["id"], gl["secret"]), (hook["id"], hook["secret"]))
        ev = {"X-Gitlab-Event": "Push Hook"}
        self.assertStatus(self.deliver(gl["path"], None, {**ev, "X-Gitlab-Token": "nope"}, raw=push), 401, "invalid_signature")
        self.assertStatus(self.deliver(gl["path"], None, {**ev, "X-Gitea-Signature": sig}, raw=push), 401, "invalid_signature")
        r = self.deliver(gl["path"], None, {**ev, "X-Gitlab-Token": gl["secret"]}, raw=push)
        self.assertEqual((r.status, r.body["status"]), (202, "ignored"), r.body)
        r = self.deliver(gl["path"], None, {"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": gl["secret"]}, raw=push)
        self.assertEqual((r.status, r.body["status"]), (202, "ignored"), r.body)

        gen = self.ok(self.api("PUT", self.comp("hooks2") + "/webhook", {"provider": "generic", "rotate_secret": True}))
        self.assertNotEqual(gen["secret"], hook["secret"])
        self.assertStatus(self.deliver(gen["path"] + "?token=" + hook["secret"], {"ref": "dev"}, {}), 401, "invalid_signature")
        r = self.deliver(gen["path"] + "?token=" + gen["secret"], {"ref": "dev"}, {})
        self.assertEqual((r.status, r.body["status"]), (202, "ignored"), r.body)
        r = self.deliver(gen["path"], {"ref": "refs/heads/dev"}, {"X-Berth-Token": gen["secret"]})
        self.assertEqual((r.status, r.body["status"]), (202, "ignored"), r.body)
        self.assertEqual(self.versions("hooks2"), [])

        # Bad settings are refused and change nothing; viewers cannot read the secret.
        self.assertStatus(self.api("PUT", self.comp("hooks2") + "/webhook", {"provider": "svn"}), 400, "invalid_argument")
        self.assertStatus(self.api("PUT", self.comp("hooks2") + "/webhook", {"provider": "github", "colour": 1}), 400, "unknown_field")
        self.assertEqual(self.ok(self.api("GET", self.comp("hooks2") + "/webhook"))["provider"], "generic")
        viewer = self.make_user("hookviewer")
        self.add_member("default", "hookviewer", "viewer")
        self.assertStatus(self.api("GET", self.comp("hooks2") + "/webhook", token=viewer), 403)

        # The CLI: enable prints the URL and secret to give the git host; show; disable.
        config = os.path.join(self.srv.tmp, "cli-config-webhook")
        r = self.srv.cli("login", "--server", self.srv.url, "--user", "admin", "--password-stdin",
                         input=self.srv.admin_password + "\n", config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("webhook", "enable", "web", "--app", "hooks2", "--provider", "gitea",
                         "--branch", "main", config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        current = self.ok(self.api("GET", self.comp("hooks2") + "/webhook"))
        self.assertEqual((current["provider"], current["branch"]), ("gitea", "main"))
        self.assertIn("secret:   " + current["secret"], r.stdout)
        self.assertIn("url:      http://127.0.0.1:", r.stdout)
        self.assertIn(current["path"], r.stdout)
        r = self.srv.cli("webhook", "show", "web", "--app", "hooks2", "-o", "json", config=config)
        self.assertEqual(json.loads(r.stdout)["secret"], current["secret"])
        r = self.srv.cli("webhook", "disable", "web", "--app", "hooks2", config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertStatus(self.api("GET", self.comp("hooks2") + "/webhook"), 404, "not_found")
        r = self.srv.cli("webhook", "enable", "web", "--app", "hooks2", "--provider", "svn", config=config)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
