"""`git push` deploys (issue #21 §7): git's own smart HTTP (git http-backend) behind berth's auth.

A developer pushes a commit to the component's push URL (`berth git-url`) with a token as the
HTTP basic password: the push streams the build and the rollout back as `remote:` lines and the
new version answers through the gateway. A commit whose build fails exits non-zero with the
build's error in the push output, the branch is not moved and the old version keeps serving.
A push to another branch is stored and builds nothing. A viewer's push is refused (403), a
member of another team gets 404, no credential gets 401 with a Basic challenge, and the hook's
callback refuses anything but a running push's credential.
"""

import http.client
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
import unittest
import urllib.parse

from harness import BerthTestCase, http_request
from test_runtime import Reaper, wait_for

V = "/api/v1/teams/default"
PUSH_TIMEOUT_S = 180
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


class GitPushTest(BerthTestCase):
    server_kwargs = {"gateway": True}

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.reaper = Reaper(cls.srv.data_dir)
        cls.addClassCleanup(cls.reaper.kill_all)
        cls.tmp = tempfile.mkdtemp(prefix="berth-push-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        # The component's git source (never fetched by a push: the push is the source).
        cls.origin = os.path.join(cls.tmp, "origin.git")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", cls.origin], check=True, timeout=30)
        cls.srv.api("POST", f"{V}/apps", {"name": "pushy"}, token=cls.admin)
        st, body, _ = cls.srv.api("POST", f"{V}/apps/pushy/components", {
            "name": "web", "source": {"type": "git", "url": "file://" + cls.origin, "ref": "main"},
            "build": {"command": "sh build.sh"}, "ports": [{"port": 8080, "protocol": "http", "outer": True}]},
            token=cls.admin)
        assert st == 201, body
        # `berth git-url` as the CLI prints it.
        r = cls.srv.cli("login", "--server", cls.srv.url, "--user", "admin", "--password-stdin",
                        input=cls.srv.admin_password + "\n")
        assert r.returncode == 0, r.stderr
        r = cls.srv.cli("git-url", "web", "--app", "pushy")
        assert r.returncode == 0, r.stderr
        cls.push_url = r.stdout.strip()

    def setUp(self) -> None:
        self.addCleanup(self.reaper.kill_all)

    # -- helpers --------------------------------------------------------------------------------

    def work(self) -> str:
        d = tempfile.mkdtemp(prefix="work-", dir=self.tmp)
        self.git(d, "init", "-q", "-b", "main")
        self.git(d, "config", "user.email", "t@example.invalid")
        self.git(d, "config", "user.name", "t")
        return d

    def git(self, repo: str, *args: str) -> str:
        return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()

    def commit(self, repo: str, greeting: str, build: str = "echo building the app\n") -> str:
        files = {"Procfile": "web: python3 app.py\n", "app.py": APP_PY,
                 "greeting.txt": greeting + "\n", "build.sh": build}
        for name, text in files.items():
            with open(os.path.join(repo, name), "w") as f:
                f.write(text)
        self.git(repo, "add", ".")
        self.git(repo, "commit", "-q", "-m", greeting)
        return self.git(repo, "rev-parse", "HEAD")

    def with_token(self, token: str, url: str | None = None) -> str:
        u = urllib.parse.urlsplit(url or self.push_url)
        return urllib.parse.urlunsplit((u.scheme, f"anyone:{token}@{u.netloc}", u.path, "", ""))

    def push(self, repo: str, token: str, refspec: str = "main", url: str | None = None):
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/false",
                   GIT_CONFIG_NOSYSTEM="1", HOME=self.tmp)
        t0 = time.monotonic()
        r = subprocess.run(["git", "-C", repo, "push", self.with_token(token, url), refspec],
                           capture_output=True, text=True, timeout=PUSH_TIMEOUT_S, env=env)
        self.reaper.scan()
        return r, time.monotonic() - t0

    def versions(self) -> list[str]:
        return sorted(v["name"] for v in self.ok(self.api("GET", f"{V}/apps/pushy/components/web/versions"))["items"])

    def through_gateway(self) -> str:
        comp = self.ok(self.api("GET", f"{V}/apps/pushy/components/web"))
        urls = [a if isinstance(a, str) else a.get("url", "") for a in comp.get("addresses", [])]
        urls = [u for u in urls if u.startswith("http://")]
        self.assertTrue(urls, comp)
        host = urllib.parse.urlsplit(urls[0]).hostname
        gw = self.srv.gateway_info()["http"]
        gw_host, gw_port = gw.rsplit(":", 1)
        c = http.client.HTTPConnection(gw_host, int(gw_port), timeout=5)
        try:
            c.request("GET", "/", headers={"Host": host})
            r = c.getresponse()
            return f"{r.status} {r.read().decode().strip()}"
        finally:
            c.close()

    # -- tests ----------------------------------------------------------------------------------

    def test_1_push_deploys_and_a_broken_commit_is_rejected(self):
        self.assertTrue(self.push_url.startswith(self.srv.url + "/api/v1/teams/default/apps/pushy/components/web/git"),
                        self.push_url)
        repo = self.work()
        first = self.commit(repo, "hello one")
        r, took = self.push(repo, self.admin)
        out = r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("remote: -----> building main at " + first[:12], out)
        self.assertIn("remote: building the app", out)   # the build's own output
        m = re.search(r"remote: -----> web runs (v\d+)", out)
        self.assertTrue(m, out)
        v1_name = m.group(1)
        self.assertNotIn(self.admin, out)
        print(f"\n  first push deployed in {took:.1f} s")
        self.assertEqual(wait_for(lambda: self.through_gateway() if self.through_gateway() == "200 hello one" else None,
                                  "hello one through the gateway", timeout=20), "200 hello one")
        events = self.ok(self.api("GET", f"{V}/apps/pushy/components/web/events"))["items"]
        self.assertIn("GitPush", {e["reason"] for e in events})
        v1 = self.ok(self.api("GET", f"{V}/apps/pushy/components/web/versions/{v1_name}"))
        self.assertEqual(v1["build_request"]["trigger"], {"git_push": "admin", "branch": "main", "commit": first})

        # A broken commit: the build fails, the push exits non-zero with the build's error, the
        # branch stays at the deployed commit, and v1 keeps answering.
        self.commit(repo, "hello broken", build="echo 'SyntaxError: the app is broken' >&2; exit 3\n")
        r, took = self.push(repo, self.admin)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIn("remote: SyntaxError: the app is broken", r.stderr)
        self.assertIn("push rejected", r.stderr)
        self.assertIn("pre-receive hook declined", r.stderr)
        print(f"  broken push rejected in {took:.1f} s")
        remote = subprocess.run(["git", "ls-remote", self.with_token(self.admin), "refs/heads/main"],
                                capture_output=True, text=True, timeout=30,
                                env=dict(os.environ, GIT_TERMINAL_PROMPT="0", HOME=self.tmp))
        self.assertEqual(remote.stdout.split()[:1], [first], remote.stderr)
        self.assertEqual(self.through_gateway(), "200 hello one")

        # A fixed commit on top deploys v3 and answers.
        self.commit(repo, "hello two")
        r, _ = self.push(repo, self.admin)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"remote: -----> web runs v\d+")
        self.assertEqual(wait_for(lambda: self.through_gateway() if self.through_gateway() == "200 hello two" else None,
                                  "hello two through the gateway", timeout=20), "200 hello two")

        # Another branch is stored, nothing is built.
        before = self.versions()
        self.git(repo, "checkout", "-q", "-b", "feature")
        self.commit(repo, "hello feature")
        r, _ = self.push(repo, self.admin, "feature")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("refs/heads/feature stored; berth deploys pushes to main", r.stderr)
        self.assertEqual(self.versions(), before)

    def test_2_viewer_refused_outsider_sees_nothing(self):
        viewer = self.make_user("pviewer")
        self.add_member("default", "pviewer", "viewer")
        outsider = self.make_user("poutsider")
        self.make_team("elsewhere")
        self.add_member("elsewhere", "poutsider", "owner")
        repo = self.work()
        self.commit(repo, "not theirs")
        before = self.versions()

        r, _ = self.push(repo, viewer)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("403", r.stderr)
        r, _ = self.push(repo, outsider)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue("404" in r.stderr or "not found" in r.stderr, r.stderr)
        r, _ = self.push(repo, "bth_not-a-token")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.versions(), before)

        path = urllib.parse.urlsplit(self.push_url).path
        refs = path + "/info/refs?service=git-receive-pack"
        # No credential: 401 with the Basic challenge git answers with the token.
        st, body, headers = http_request(self.srv.url, "GET", refs)
        self.assertEqual(st, 401, body)
        self.assertIn("Basic", headers.get("WWW-Authenticate", ""))
        import base64
        basic = lambda tok: {"Authorization": "Basic " + base64.b64encode(f"x:{tok}".encode()).decode()}
        self.assertStatus(http_request(self.srv.url, "GET", refs, headers=basic(outsider)), 404, "not_found")
        self.assertStatus(http_request(self.srv.url, "GET", refs, headers=basic(viewer)), 403)
        st, _, headers = http_request(self.srv.url, "GET", refs, headers=basic(self.admin))
        self.assertEqual(st, 200)
        self.assertEqual(headers.get("Content-Type"), "application/x-git-receive-pack-advertisement")
        # The git-url route: a member reads it, an outsider gets 404.
        self.assertStatus(self.api("GET", f"{V}/apps/pushy/components/web/git-url", token=outsider), 404)
        self.ok(self.api("GET", f"{V}/apps/pushy/components/web/git-url", token=viewer))
        # The hook's callback takes only a running push's credential (never a user token).
        hook = f"{V}/apps/pushy/components/web/git/hook"
        for tok in (None, self.admin, "bpush_" + "0" * 64):
            self.assertStatus(self.api("POST", hook, {"ref": "refs/heads/main", "new": "a" * 40}, token=tok or ""),
                              401, "unauthenticated")
        self.assertEqual(self.versions(), before)

    def test_3_a_recreated_component_does_not_inherit_the_old_repository(self):
        # A component deleted and made again under the same name (or a team deleted and made
        # again by someone else) starts from an empty repository: the old pushes are not
        # served to whoever owns the name now.
        self.make_app("default", "again")
        comp = {"source": {"type": "git", "url": "file://" + self.origin, "ref": "main"}}
        self.make_component("default", "again", "api", **comp)
        url = self.push_url.replace("/apps/pushy/components/web/", "/apps/again/components/api/")
        repo = self.work()
        old = self.commit(repo, "old code")
        self.git(repo, "checkout", "-q", "-b", "stash")
        r, _ = self.push(repo, self.admin, "stash", url=url)   # not a deploy branch: no build
        self.assertEqual(r.returncode, 0, r.stderr)
        refs = urllib.parse.urlsplit(url).path + "/info/refs?service=git-upload-pack"
        st, body, _ = self.api("GET", refs)
        self.assertEqual(st, 200)
        self.assertIn(old, str(body))
        self.ok(self.api("DELETE", f"{V}/apps/again/components/api"))
        self.make_component("default", "again", "api", **comp)
        st, body, _ = self.api("GET", refs)
        self.assertEqual(st, 200)
        self.assertNotIn(old, str(body))


if __name__ == "__main__":
    unittest.main()
