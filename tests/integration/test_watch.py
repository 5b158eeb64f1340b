"""The change feed as a streaming watch (docs/api.md "Watch")."""

import http.client
import json
import queue
import socket
import threading
import time
import unittest
import urllib.parse

from harness import BerthServer, BerthTestCase

V = "/api/v1"
WAIT_S = 15.0


class Watch:
    """A streaming GET read line by line on a background thread."""

    def __init__(self, base_url: str, path: str, token: str, timeout: float = 30.0):
        u = urllib.parse.urlsplit(base_url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        self.sock = self.conn.sock  # getresponse() may drop conn.sock (Connection: close)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers
        self.lines: queue.Queue = queue.Queue()
        self.body = None
        if self.status != 200:
            raw = self.resp.read()
            try:
                self.body = json.loads(raw)
            except ValueError:
                self.body = raw.decode("utf-8", "replace")
            self.conn.close()
            return
        self.sock.settimeout(None)  # the reader blocks; close() unblocks it
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    self.lines.put(("eof", None))
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    self.lines.put(("event", json.loads(line)))
                except ValueError:
                    self.lines.put(("bad", line))
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.lines.put(("error", e))

    def next(self, timeout: float = WAIT_S):
        """Next line: ("event", obj) | ("eof", None) | ("error", exc) | ("bad", text) |
        ("timeout", None)."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return ("timeout", None)

    def collect(self, want, timeout: float = WAIT_S, keep=lambda e: True):
        """Reads until `want(events)` is true for the kept non-heartbeat events; returns
        (events, everything seen). Fails the caller via AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        events, seen = [], []
        while not want(events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"watch: timed out after {timeout}s; kept {events!r}; "
                                     f"all lines {seen!r}")
            kind, obj = self.next(left)
            if kind == "timeout":
                continue
            if kind != "event":
                raise AssertionError(f"watch: {kind} {obj!r} before the expected events; "
                                     f"kept {events!r}")
            seen.append(obj)
            if obj.get("type") == "heartbeat":
                continue
            if keep(obj):
                events.append(obj)
        return events, seen

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        self.resp.close()


class WatchTest(BerthTestCase):

    def watch(self, path, token=None) -> Watch:
        w = Watch(self.srv.url, path, token or self.admin)
        self.addCleanup(w.close)
        return w

    def list_rev(self, path):
        body = self.ok(self.api("GET", path))
        self.assertIsInstance(body.get("revision"), int, f"list carries revision: {body!r}")
        return body["revision"]

    def test_put_put_delete(self):
        base = f"{V}/teams/default/apps"
        rev = self.list_rev(base)
        w = self.watch(f"{V}/teams/default/watch?from={rev}")
        self.assertEqual(w.status, 200, w.body)
        self.assertIn("application/x-ndjson", w.headers.get("Content-Type", ""))
        a = self.make_app("default", "w-one", description="first")
        b = self.ok(self.api("PATCH", f"{base}/w-one", {"description": "second"}))
        self.ok(self.api("DELETE", f"{base}/w-one"), (200, 204))
        events, _ = w.collect(lambda ev: len(ev) >= 3,
                              keep=lambda e: e.get("kind") == "app" and e.get("name") == "w-one")
        self.assertEqual([e["type"] for e in events], ["put", "put", "delete"], events)
        revs = [e["revision"] for e in events]
        self.assertEqual(revs, sorted(set(revs)), f"strictly increasing revisions: {revs}")
        self.assertGreater(revs[0], rev)
        self.assertEqual(revs[0], a["revision"])
        self.assertEqual(revs[1], b["revision"])
        for e in events:
            self.assertEqual(e["team"], "default", e)
        self.assertEqual(events[0]["object"]["description"], "first")
        self.assertEqual(events[1]["object"]["description"], "second")
        self.assertEqual(events[1]["object"]["revision"], b["revision"])
        self.assertIsNone(events[2].get("object"), "a delete carries no object")

    def test_components_in_feed(self):
        rev = self.list_rev(f"{V}/teams/default/apps")
        self.make_app("default", "w-comp")
        self.make_component("default", "w-comp", "web")
        w = self.watch(f"{V}/teams/default/watch?from={rev}")
        events, _ = w.collect(lambda ev: len(ev) >= 1,
                              keep=lambda e: e.get("kind") == "component")
        e = events[0]
        self.assertEqual((e["type"], e["app"], e["name"], e["team"]),
                         ("put", "w-comp", "web", "default"), e)
        self.assertEqual(e["object"]["name"], "web")

    def test_resume_from_middle(self):
        base = f"{V}/teams/default/apps"
        r1 = self.make_app("default", "w-res-1")["revision"]
        r2 = self.make_app("default", "w-res-2")["revision"]
        r3 = self.ok(self.api("PATCH", f"{base}/w-res-1", {"description": "x"}))["revision"]
        mine = lambda e: e.get("kind") == "app" and e.get("name", "").startswith("w-res-")  # noqa
        w = self.watch(f"{V}/teams/default/watch?from={r1}")
        events, _ = w.collect(lambda ev: len(ev) >= 2, keep=mine)
        self.assertEqual([(e["revision"], e["name"]) for e in events],
                         [(r2, "w-res-2"), (r3, "w-res-1")],
                         "from=REV streams only the changes after REV")
        # ... and nothing else of ours follows.
        self.make_app("default", "w-res-3")
        more, _ = w.collect(lambda ev: len(ev) >= 1, keep=mine)
        self.assertEqual(more[0]["name"], "w-res-3", more)
        # Resuming from the last revision seen gives nothing old.
        w2 = self.watch(f"{V}/teams/default/watch?from={r3}")
        self.make_app("default", "w-res-4")
        ev2, _ = w2.collect(lambda ev: len(ev) >= 1, keep=mine)
        self.assertIn(ev2[0]["name"], ("w-res-3",), f"first event after {r3}: {ev2!r}")

    def test_team_isolation(self):
        self.make_team("wa")
        self.make_team("wb")
        rev = self.list_rev(f"{V}/teams/wa/apps")
        w = self.watch(f"{V}/teams/wa/watch?from={rev}")
        self.make_app("wb", "b-secret")
        self.make_component("wb", "b-secret", "web")
        self.make_app("wa", "a-visible")
        events, seen = w.collect(lambda ev: any(e.get("name") == "a-visible" for e in ev))
        leaked = [e for e in seen if e.get("team") not in (None, "wa")
                  or "b-secret" in json.dumps(e)]
        self.assertEqual(leaked, [], "a team watch shows only that team's changes")
        for e in events:
            self.assertEqual(e.get("team"), "wa", e)

    def test_global_watch_admin_only(self):
        self.make_team("wg1")
        rev = self.list_rev(f"{V}/teams")
        w = self.watch(f"{V}/watch?from={rev}")
        self.assertEqual(w.status, 200, w.body)
        self.make_app("wg1", "g-one")
        self.make_app("default", "g-two")
        events, _ = w.collect(lambda ev: len(ev) >= 2,
                              keep=lambda e: e.get("kind") == "app"
                              and e.get("name") in ("g-one", "g-two"))
        self.assertEqual([(e["team"], e["name"]) for e in events],
                         [("wg1", "g-one"), ("default", "g-two")])
        # Not for others.
        self.ok(self.api("POST", f"{V}/users", {"name": "wuser", "password": "wuser-pass-1"}),
                201)
        tok = self.srv.login("wuser", "wuser-pass-1")
        w2 = self.watch(f"{V}/watch", token=tok)
        self.assertEqual(w2.status, 403, w2.body)
        self.assertEqual(w2.body.get("code"), "permission_denied")
        w3 = self.watch(f"{V}/teams/wg1/watch", token=tok)
        self.assertIn(w3.status, (403, 404), f"non-member team watch: {w3.status} {w3.body!r}")

    def test_bad_from(self):
        st, body, _ = self.api("GET", f"{V}/teams/default/watch?from=abc")
        self.assertEqual(st, 400, body)
        self.assertEqual(body.get("code"), "invalid_argument")

    def test_heartbeat_on_idle_stream(self):
        self.make_team("wq")
        w = self.watch(f"{V}/teams/wq/watch")
        self.assertEqual(w.status, 200, w.body)
        t0 = time.monotonic()
        kind, obj = w.next(timeout=22)
        self.assertEqual(kind, "event", f"an idle stream sends a heartbeat within 15 s: {obj!r}")
        self.assertEqual(obj.get("type"), "heartbeat", obj)
        self.assertIsInstance(obj.get("revision"), int, obj)
        self.assertLess(time.monotonic() - t0, 20)

    def test_stop_with_open_watch(self):
        srv = BerthServer()
        self.addCleanup(srv.close)
        tok = srv.login()
        w = Watch(srv.url, f"{V}/teams/default/watch", tok)
        self.addCleanup(w.close)
        self.assertEqual(w.status, 200, w.body)
        t0 = time.monotonic()
        srv.stop(grace=10)  # exit code 0 within 10 s, with a watch open
        self.assertLess(time.monotonic() - t0, 10)
        kind, obj = w.next(timeout=5)
        while kind == "event" and obj.get("type") == "heartbeat":
            kind, obj = w.next(timeout=5)
        self.assertIn(kind, ("eof", "error"), f"the stream ends when the server stops: {obj!r}")


if __name__ == "__main__":
    unittest.main()
