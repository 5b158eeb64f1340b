"""Where sources may come from (issue 13 "Sources", docs/security.md "Input and paths").

Git URLs are http(s), ssh (also scp-like user@host:path) or a local repository under an
admin-configured source root; `<transport>::` URLs and URLs or refs starting with '-' are
refused. `dir` and `package` sources (and local archives and git repositories) read the server's
own disk: only under the roots of `--source-roots`, or by a platform admin when there are none,
and never inside the data directory. Symlinks in a fetched source must stay inside it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time

from harness import BerthTestCase

V = "/api/v1"
TEAM = "src"
APP = "a"
FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "apps"))
WAIT_S = 120.0


def git_repo(path: str, files: dict[str, str], links: dict[str, str] | None = None) -> str:
    os.makedirs(path)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}

    def git(*args):
        subprocess.run(["git", "-C", path, *args], check=True, capture_output=True, env=env)
    git("init", "-q", "-b", "main")
    for name, text in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    for name, target in (links or {}).items():
        os.symlink(target, os.path.join(path, name))
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    return path


class SourceSetup(BerthTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        for method, path, body in (
                ("POST", f"{V}/teams", {"name": TEAM}),
                ("POST", f"{V}/users", {"name": "dev", "password": "dev-pass-123"}),
                ("POST", f"{V}/teams/{TEAM}/members", {"user": "dev", "role": "developer"}),
                ("POST", f"{V}/teams/{TEAM}/apps", {"name": APP})):
            st, b, _ = cls.srv.api(method, path, body, token=cls.admin)
            assert st == 201, (path, b)
        cls.dev = cls.srv.login("dev", "dev-pass-123")
        cls.data = os.path.realpath(cls.srv.data_dir)

    def comps(self) -> str:
        return f"{V}/teams/{TEAM}/apps/{APP}/components"

    def create(self, name: str, source: dict, token: str):
        return self.srv.api("POST", self.comps(), {"name": name, "source": source}, token=token)

    def detect(self, source: dict, token: str):
        return self.srv.api("POST", f"{V}/teams/{TEAM}/detect", {"source": source}, token=token)

    def refused(self, resp, status: int, code: str, field: str, msg: str = ""):
        st, body, _ = resp
        self.assertEqual((st, body.get("code") if isinstance(body, dict) else body,
                          body.get("field") if isinstance(body, dict) else None),
                         (status, code, field), f"{msg}: {body}")


class SourcesWithoutRootsTest(SourceSetup):

    def test_git_urls_and_refs_are_limited(self):
        bad_urls = ["ext::sh -c touch% /tmp/berth-pwned", "fd::3", "-uhelp",
                    "--upload-pack=touch /tmp/berth-pwned", "git://127.0.0.1/x.git",
                    "ftp://example.com/x.git", "ssh://-oProxyCommand=touch/x", "-oProxyCommand=x:y",
                    "transport::https://example.com/x", "https://exa mple.com/x",
                    "https://example.com/x\nnext", "relative/path", ""]
        for i, url in enumerate(bad_urls):
            with self.subTest(url=url):
                src = {"type": "git", "url": url}
                resp = self.create(f"g{i}", src, self.dev)
                if url == "":
                    self.assertEqual(resp[0], 400, resp[1])
                    continue
                self.refused(resp, 400, "invalid_source", "source.url", url)
                self.refused(self.detect(src, self.dev), 400, "invalid_source", "source.url", url)
                # Platform admins are held to the same rules.
                self.refused(self.create(f"g{i}", src, self.admin), 400, "invalid_source",
                             "source.url", url)
        for i, ref in enumerate(["-x", "--upload-pack=touch /tmp/x", "a..b", "a b", "x\ny",
                                 "refs/heads/../../x", "HEAD@{1}:x"]):
            with self.subTest(ref=ref):
                src = {"type": "git", "url": "https://example.com/x.git", "ref": ref}
                self.refused(self.create(f"r{i}", src, self.dev), 400, "invalid_source",
                             "source.ref", ref)
        for i, url in enumerate(["https://example.com/org/x.git", "http://127.0.0.1:9/x",
                                 "ssh://git@example.com/org/x.git", "git@example.com:org/x.git",
                                 "example.com:org/x.git"]):
            with self.subTest(url=url):
                self.ok(self.create(f"ok{i}", {"type": "git", "url": url, "ref": "v1.2"},
                                    self.dev), 201)
        self.assertFalse(os.path.exists("/tmp/berth-pwned"))

    def test_server_paths_need_a_platform_admin_when_no_roots_are_set(self):
        fixture = os.path.join(FIXTURES, "static-site")
        for i, src in enumerate([{"type": "dir", "path": "/"},
                                 {"type": "dir", "path": fixture},
                                 {"type": "package", "path": "/etc/passwd"},
                                 {"type": "git", "url": "file://" + fixture},
                                 {"type": "git", "url": "/srv/repo.git"},
                                 {"type": "archive", "archive": "/etc/passwd"}]):
            with self.subTest(source=src):
                field = "source.url" if src["type"] == "git" else (
                    "source.archive" if src["type"] == "archive" else "source.path")
                self.refused(self.create(f"d{i}", src, self.dev), 403, "source_not_allowed",
                             field)
                self.refused(self.detect(src, self.dev), 403, "source_not_allowed", field)
        # An update that sets such a source is refused the same way.
        self.make_component(TEAM, APP, "later", token=self.dev)
        st, body, _ = self.srv.api("PATCH", self.comps() + "/later",
                                   {"source": {"type": "dir", "path": self.data}}, token=self.dev)
        self.assertEqual((st, body.get("code")), (403, "source_not_allowed"), body)
        # A platform admin may, except for the data directory itself.
        self.ok(self.create("admindir", {"type": "dir", "path": fixture}, self.admin), 201)
        self.ok(self.detect({"type": "dir", "path": fixture}, self.admin))
        for i, p in enumerate([self.data, os.path.join(self.data, "uploads"),
                               self.srv.data_dir + "/../" + os.path.basename(self.data)]):
            with self.subTest(path=p):
                self.refused(self.create(f"data{i}", {"type": "dir", "path": p}, self.admin), 403,
                             "source_not_allowed", "source.path")
        # A developer may keep the source an admin set while changing something else.
        self.ok(self.srv.api("PATCH", self.comps() + "/admindir", {"replicas": 2},
                             token=self.dev))
        self.ok(self.srv.api("PUT", self.comps() + "/admindir",
                             {"name": "admindir", "source": {"type": "dir", "path": fixture}},
                             token=self.dev))

    def test_an_archive_source_is_an_upload_of_the_same_component(self):
        # Another team's upload: a developer of this team must not build it.
        st, b, _ = self.srv.api("POST", f"{V}/teams", {"name": "other"}, token=self.admin)
        self.assertEqual(st, 201, b)
        self.ok(self.srv.api("POST", f"{V}/teams/other/apps", {"name": "x"}, token=self.admin), 201)
        self.ok(self.srv.api("POST", f"{V}/teams/other/apps/x/components", {"name": "web"},
                             token=self.admin), 201)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            data = b"web: echo secret of the other team\n"
            info = tarfile.TarInfo("Procfile")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        st, comp, _ = self.srv.api("PUT", f"{V}/teams/other/apps/x/components/web/archive",
                                   raw_body=buf.getvalue(), token=self.admin,
                                   headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(st, 200, comp)
        theirs = comp["source"]["archive"]
        for who in (self.dev, self.admin):
            self.refused(self.create("stolen", {"type": "archive", "archive": theirs}, who), 403,
                         "source_not_allowed", "source.archive")
        self.refused(self.detect({"type": "archive", "archive": theirs}, self.dev), 403,
                     "source_not_allowed", "source.archive")
        # Its own uploads stay usable (what the upload route writes, and sending it back).
        self.make_component(TEAM, APP, "up", token=self.dev)
        st, mine, _ = self.srv.api("PUT", self.comps() + "/up/archive", raw_body=buf.getvalue(),
                                   token=self.dev,
                                   headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(st, 200, mine)
        self.ok(self.srv.api("PUT", self.comps() + "/up",
                             {"name": "up", "source": mine["source"], "replicas": 0},
                             token=self.dev))
        # The console's wizard uploads, then detects the upload through the team's detect.
        found = self.ok(self.detect({"type": "archive", "archive": mine["source"]["archive"]}, self.dev))
        self.assertEqual(found["processes"], {"web": "echo secret of the other team"})
        # ... which still reads no other team's upload, also not through "..".
        around = mine["source"]["archive"].replace(f"/uploads/{TEAM}/", f"/uploads/{TEAM}/../other/", 1)
        self.refused(self.detect({"type": "archive", "archive": around}, self.dev), 403,
                     "source_not_allowed", "source.archive")


class SourcesUnderRootsTest(SourceSetup):
    root: str

    @classmethod
    def setUpClass(cls) -> None:
        import tempfile
        cls.root_base = tempfile.mkdtemp(prefix="berth-roots-")
        cls.root = os.path.join(cls.root_base, "sources")
        os.makedirs(cls.root)
        cls.server_kwargs = {"extra_args": ["--source-roots", cls.root]}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        import shutil
        shutil.rmtree(cls.root_base, ignore_errors=True)

    def test_roots_admit_developers_and_hold_admins_too(self):
        import shutil
        inside = os.path.join(self.root, "site")
        shutil.copytree(os.path.join(FIXTURES, "static-site"), inside)
        os.symlink("/", os.path.join(self.root, "escape"))
        self.ok(self.create("in", {"type": "dir", "path": inside}, self.dev), 201)
        self.ok(self.detect({"type": "dir", "path": inside}, self.dev))
        repo = git_repo(os.path.join(self.root, "repo"), {"Procfile": "web: sleep 1\n"})
        self.ok(self.create("gitin", {"type": "git", "url": "file://" + repo}, self.dev), 201)
        self.ok(self.create("gitin2", {"type": "git", "url": repo}, self.dev), 201)
        for who in (self.dev, self.admin):
            for i, src in enumerate([{"type": "dir", "path": os.path.join(FIXTURES, "static-site")},
                                     {"type": "dir", "path": os.path.join(self.root, "escape")},
                                     {"type": "dir", "path": os.path.join(self.root, "escape", "etc")},
                                     {"type": "dir", "path": self.root + "/site/../../"},
                                     {"type": "dir", "path": self.root + "-sibling"},
                                     {"type": "git", "url": "file://" + os.path.join(FIXTURES, "x")}]):
                with self.subTest(source=src, admin=who == self.admin):
                    field = "source.url" if src["type"] == "git" else "source.path"
                    self.refused(self.create(f"out{i}", src, who), 403, "source_not_allowed", field)

    def wait_version(self, comp: str, name: str) -> dict:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            v = self.ok(self.srv.api("GET", f"{self.comps()}/{comp}/versions/{name}",
                                     token=self.dev))
            if v["status"] in ("ready", "failed", "cancelled"):
                return v
            time.sleep(0.1)
        self.fail(f"{comp}/{name} did not finish")

    def test_symlinks_in_a_checkout_never_lead_out_of_it(self):
        outside = os.path.join(self.root_base, "outside")
        os.makedirs(outside)
        with open(os.path.join(outside, "secret"), "w") as f:
            f.write("web: echo LEAKED-SECRET-42\n")
        cases = {
            "abs": {"Procfile": os.path.join(outside, "secret")},
            "up": {"Procfile": "../../outside/secret"},
            "data": {"key": os.path.join(self.data, "secret.key")},
        }
        for label, links in cases.items():
            with self.subTest(case=label):
                repo = git_repo(os.path.join(self.root, "links-" + label),
                                {"index.html": "hi\n"}, links)
                src = {"type": "git", "url": "file://" + repo}
                st, body, _ = self.detect(src, self.dev)
                self.assertEqual((st, body.get("code")), (400, "unsafe_path"), body)
                self.assertNotIn("LEAKED-SECRET", json.dumps(body))
                self.assertIn("outside the source", body["message"])
                self.ok(self.create("links-" + label, src, self.dev), 201)
                v = self.ok(self.srv.api("POST", f"{self.comps()}/links-{label}/builds", {},
                                         token=self.dev), 201)
                done = self.wait_version("links-" + label, v["name"])
                self.assertEqual(done["status"], "failed", done)
                self.assertIn("outside the source", done["message"])
        # A link that is resolved physically: "here" is the tree's top, so "here/.." leaves it.
        repo = git_repo(os.path.join(self.root, "chained"), {"index.html": "hi\n"},
                        {"here": ".", "up": "here/.."})
        st, body, _ = self.detect({"type": "git", "url": "file://" + repo}, self.dev)
        self.assertEqual((st, body.get("code")), (400, "unsafe_path"), body)
        # Links that stay inside are fine.
        repo = git_repo(os.path.join(self.root, "fine"), {"index.html": "hi\n"},
                        {"home.html": "index.html", "self": "."})
        st, body, _ = self.detect({"type": "git", "url": "file://" + repo}, self.dev)
        self.assertEqual((st, body.get("language")), (200, "static"), body)


if __name__ == "__main__":
    import unittest
    unittest.main()
