"""Helpers shared by the end-to-end tests: the app's own modules seen from the page, the server's
side of the story (what a fresh device of the same user pulls, blob bytes, the mutation log), and
test photos made by the browser itself.

The app's modules are imported by URL inside the page (`import("/js/sync.js")`): the browser keeps one
instance per URL, so the page's `sync` object is the very one the app runs.
"""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from playwright.sync_api import Page

from .conftest import Server

# The app's modules, in the page. `m.db`, `m.model`, `m.api`, `m.sync` (the app's Sync instance).
_MODULES = """
  const m = {
    db: await import("/js/db.js"),
    model: await import("/js/model.js"),
    api: await import("/js/api.js"),
    sync: (await import("/js/sync.js")).sync,
  };
"""


def app_eval(page: Page, body: str, arg: Any = None) -> Any:
    """Run `body` (an async function body using `m` and `arg`) in the page and return its result."""
    return page.evaluate("async (arg) => {" + _MODULES + body + "\n}", arg)


def sync_status(page: Page) -> dict[str, Any]:
    return app_eval(page, "return m.sync.status();")  # type: ignore[no-any-return]


def outbox(page: Page) -> list[dict[str, Any]]:
    return app_eval(page, "return await m.db.outbox();")  # type: ignore[no-any-return]


def counts(page: Page) -> dict[str, Any]:
    return app_eval(page, "return await m.db.counts();")  # type: ignore[no-any-return]


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2, what: str = "condition",
               page: Page | None = None) -> Any:
    """Poll `pred` until it returns something truthy; fail with `what` after `timeout` seconds.

    With `page`, the pauses are the page's own (`wait_for_timeout`): Playwright's sync API runs route
    handlers and event listeners only while the test is inside a Playwright call, never in time.sleep."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def wait_synced(page: Page, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the app's sync loop is idle with an empty outbox, no error and no photo left."""

    def done() -> dict[str, Any] | None:
        st = app_eval(page, """
            const s = m.sync.status();
            const c = await m.db.counts();
            return {...s, outbox: c.outbox, blobsPending: c.blobsPending,
                    session: !!(await m.db.getMeta("session")), cursor: !!(await m.db.getMeta("cursor"))};
        """)
        ok = (st["session"] and st["cursor"] and not st["running"] and st["outbox"] == 0
              and st["blobsPending"] == 0 and st["lastSyncAt"] and not st["lastError"])
        return st if ok else None

    return wait_until(done, timeout, what="the app to finish syncing", page=page)  # type: ignore[no-any-return]


def wait_first_sync(page: Page, timeout: float = 60.0) -> None:
    """After sign-in: the replica holds the households of the grid and the cursor is stored."""
    wait_until(lambda: app_eval(page, """
        const c = await m.db.counts();
        return !!(await m.db.getMeta("cursor")) && c.records.households > 0 && !m.sync.status().running;
    """), timeout, what="the first sync", page=page)


def wait_service_worker(page: Page, timeout: float = 20.0) -> None:
    """The service worker is active, controls this page and has finished precaching the shell."""
    page.wait_for_function("async () => { await navigator.serviceWorker.ready; return !!navigator.serviceWorker.controller; }",
                           timeout=timeout * 1000)


# --- the server's side --------------------------------------------------------------------------

class Gate:
    """A TCP forwarder in front of a server: the browser talks to `gate.url`; `gate.close()` makes
    the server unreachable (connections refused, open ones cut) while the server itself runs on
    for the next test. 127.0.0.1 only."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._threads = [threading.Thread(target=self._accept, name=f"gate-{self.port}", daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._open |= {client, upstream}
                pipes = [threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                         for a, b in ((client, upstream), (upstream, client))]
                self._threads += pipes
            for t in pipes:
                t.start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._open.discard(s)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        """No more connections, and the open ones are cut."""
        with self._lock:
            self._closed = True
            socks = list(self._open)
            threads = list(self._threads)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self._listener.close()
        self._drop(*socks)
        for t in threads:
            t.join(timeout=5)


@contextmanager
def api(server: Server, username: str) -> Iterator[httpx.Client]:
    """An API client of `username` (a device of its own), closed afterwards."""
    c = server.api(username)
    try:
        yield c
    finally:
        c.close()


def pull_all(server: Server, username: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Everything a fresh device of `username` pulls: {(collection, id): data} of live records."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with api(server, username) as c:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            r = c.get("/sync/pull", params=params)
            r.raise_for_status()
            page = r.json()
            for ch in page["changes"]:
                key = (ch["collection"], ch["id"])
                if ch.get("removed") or ch.get("deleted"):
                    out.pop(key, None)
                else:
                    out[key] = ch["data"]
            cursor = page["cursor"]
            if not page["more"]:
                return out


def records(snapshot: dict[tuple[str, str], dict[str, Any]], collection: str,
            where: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[dict[str, Any]]:
    return [d for (c, _), d in snapshot.items() if c == collection and where(d)]


def blob_head(server: Server, username: str, sha: str) -> tuple[int, dict[str, str]]:
    with api(server, username) as c:
        r = c.head(f"/blobs/{sha}")
        return r.status_code, dict(r.headers)


def blob_bytes(server: Server, username: str, sha: str) -> bytes:
    with api(server, username) as c:
        r = c.get(f"/blobs/{sha}")
        assert r.status_code == 200, f"GET /blobs/{sha}: {r.status_code} {r.text[:200]}"
        return r.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def db_ro(server: Server) -> sqlite3.Connection:
    """The server's database, read-only (for counting what the server stored)."""
    return sqlite3.connect(f"file:{server.db}?mode=ro", uri=True, timeout=10)


def mutation_log_count(server: Server, username: str) -> int:
    """How many mutations the server recorded for a user (one row per mid, ever)."""
    con = db_ro(server)
    try:
        (uid,) = con.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
        return int(con.execute("SELECT count(*) FROM mutation_log WHERE user_id = ?", (uid,)).fetchone()[0])
    finally:
        con.close()


# --- test photos ----------------------------------------------------------------------------------

def make_photo(page: Page, path: Path, width: int = 1400, height: int = 1050, quality: float = 0.95,
               noise: int = 60) -> bytes:
    """A real JPEG made by the browser: a gradient scene with coloured noise (so it compresses like a
    photo of a wall, not like a flat colour). Written to `path`; returns its bytes."""
    data = page.evaluate("""async ([w, h, q, noise]) => {
        const c = document.createElement("canvas");
        c.width = w; c.height = h;
        const g = c.getContext("2d");
        const img = g.createImageData(w, h);
        let seed = 12345;
        const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
            const i = (y * w + x) * 4;
            img.data[i] = (x * 255 / w + rnd() * noise) & 255;
            img.data[i + 1] = (y * 255 / h + rnd() * noise) & 255;
            img.data[i + 2] = ((x + y) * 128 / (w + h) + rnd() * noise) & 255;
            img.data[i + 3] = 255;
        }
        g.putImageData(img, 0, 0);
        const blob = await new Promise((r) => c.toBlob(r, "image/jpeg", q));
        return Array.from(new Uint8Array(await blob.arrayBuffer()));
    }""", [width, height, quality, noise])
    raw = bytes(data)
    path.write_bytes(raw)
    return raw


# --- the UI ---------------------------------------------------------------------------------------
# Selectors: roles and visible (Chinese) text first. The visible strings are read from the app's own
# message table (`msgs(page)["visit.save"]` is the Chinese label of the visit form's save button), so
# a test fails when a screen lacks the string, not when a translator rewords it.

def msgs(page: Page, lang: str = "zh-CN") -> dict[str, str]:
    return page.evaluate("async (l) => (await import(`/js/messages/${l}.js`)).default", lang)  # type: ignore[no-any-return]


def fmt(s: str, **params: Any) -> str:
    for k, v in params.items():
        s = s.replace("{" + k + "}", str(v))
    return s


def login(page: Page, base_url: str, username: str, password: str = "demo") -> None:
    """Sign in through the login screen (online) and wait for the households list."""
    page.goto(base_url + "/")
    zh = msgs(page)
    page.get_by_label(zh["login.username"]).fill(username)
    page.get_by_label(zh["login.password"]).fill(password)
    page.get_by_role("button", name=zh["login.submit"]).click()
    page.get_by_test_id("household-row").first.wait_for(state="visible", timeout=60_000)


def tab(page: Page, name: str) -> None:
    """The bottom navigation: households, matters, sync, conflicts."""
    page.locator(f"nav a[data-tab='{name}']").click()


def pending_count_ui(page: Page) -> int:
    """The pending count the sync panel shows (opens the panel)."""
    import re
    tab(page, "sync")
    el = page.get_by_test_id("pending-count")
    el.wait_for(state="visible")
    m = re.search(r"\d+", el.inner_text())
    assert m, f"no number in the pending count: {el.inner_text()!r}"
    return int(m.group(0))


def household_ids(page: Page) -> list[str]:
    """The households of the list, in the order shown."""
    hrefs = page.get_by_test_id("household-row").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    return [h.rsplit("/", 1)[1] for h in hrefs]


def open_household(page: Page, query: str) -> None:
    """Search the households list and open the first match."""
    zh_or_en_label = page.locator("input[type=search]")
    tab(page, "households")
    zh_or_en_label.fill(query)
    page.get_by_test_id("household-row").first.click()
    page.get_by_test_id("action-visit").wait_for(state="visible")


def current_id(page: Page, route: str) -> str:
    """The record id in the current hash route `#/<route>/<id>`."""
    import re
    m = re.search(rf"#/{route}/([0-9a-f-]{{36}})", page.url)
    assert m, f"not on a {route} page: {page.url}"
    return m.group(1)


def record_visit(page: Page, narrative: str, photo: Path | None = None, needs: list[str] | None = None) -> str:
    """From a household dossier: the visit form, filled and saved. Returns the visit's id."""
    zh = msgs(page)
    page.get_by_test_id("action-visit").click()
    page.get_by_label(zh["field.visits.narrative"]).fill(narrative)
    page.get_by_test_id("check-left_phone").click()
    page.get_by_test_id("check-took_situation").click()
    for need in needs or []:
        page.get_by_role("button", name=zh["visit.add_need"]).click()
        page.locator(".need-row input").last.fill(need)
    if photo is not None:
        page.get_by_test_id("photo-input").set_input_files(str(photo))
        # processed (resized, hashed) and shown as a thumbnail
        page.locator(".photo-strip .photo img").first.wait_for(state="visible", timeout=30_000)
    page.get_by_role("button", name=zh["visit.save"]).click()
    page.get_by_test_id("saved-banner").wait_for(state="visible")
    return current_id(page, "visit")


def record_matter(page: Page, title: str, description: str) -> str:
    """From a household dossier or a visit just saved: the new matter form, filled and saved."""
    zh = msgs(page)
    page.get_by_role("link", name=zh["household.action_matter"]).first.click()
    page.get_by_label(zh["field.matters.title"]).fill(title)
    page.get_by_label(zh["field.matters.description"]).fill(description)
    page.get_by_role("button", name=zh["urgency.urgent"]).click()
    page.get_by_role("button", name=zh["matter.save"]).click()
    page.wait_for_url("**/#/matter/**")
    return current_id(page, "matter")


def watch_errors(page: Page) -> list[str]:
    """Uncaught exceptions in the page (a test ends with `assert errors == []`)."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def sync_now(page: Page, timeout: float = 60.0) -> dict[str, Any]:
    """The sync panel's "立即同步" button; waits for a sync that started after the tap to finish."""
    before = app_eval(page, "return m.sync.status().lastSyncAt")
    tab(page, "sync")
    page.get_by_role("button", name=msgs(page)["syncp.sync_now"]).click()
    wait_until(lambda: app_eval(page, "const s = m.sync.status(); return !s.running && s.lastSyncAt !== arg;", before),
               timeout, what="a new sync to finish", page=page)
    return wait_synced(page, timeout)


def edit_household_phone(page: Page, phone: str) -> None:
    """From a household dossier: edit the card, change the phone, save."""
    zh = msgs(page)
    page.get_by_role("link", name=zh["household.action_edit"]).click()
    page.get_by_label(zh["field.households.phone"]).fill(phone)
    page.get_by_role("button", name=zh["form.save"], exact=True).click()
    page.get_by_test_id("action-visit").wait_for(state="visible")


def local_record(page: Page, collection: str, rid: str) -> dict[str, Any] | None:
    """The replica's copy of a record on this device (what the server last sent it)."""
    return app_eval(page, "return (await m.db.get(arg[0], arg[1])) || null;", [collection, rid])  # type: ignore[no-any-return]
