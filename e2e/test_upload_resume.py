"""The network is cut in the middle of a photo upload; after reconnect the upload resumes from the
server's offset and completes (issue 4, end-to-end test 3). Chunks are 64 KiB (pwa/js/sync.js)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, Route, expect

from .conftest import Server
from .helpers import (app_eval, blob_bytes, blob_head, make_photo, msgs, pending_count_ui, pull_all, record_visit,
                      records, login, sha256, tab, wait_first_sync, wait_synced, wait_until, watch_errors)

CHUNK = 64 * 1024
LET_THROUGH = 2  # chunks that reach the server before the cut


def test_photo_upload_resumes_from_the_server_offset(context: BrowserContext, page: Page, server: Server,
                                                     tmp_path: Path) -> None:
    errors = watch_errors(page)
    login(page, server.url, "worker1")
    wait_first_sync(page)
    zh = msgs(page)

    # a 1–2 MB camera photo; the app resizes and recompresses it before storing it
    original = make_photo(page, tmp_path / "wall.jpg", noise=90)
    assert 1_000_000 <= len(original) <= 2_500_000, len(original)

    # PATCH bodies as they leave the browser: the first chunks pass, then the link drops. Watched from
    # before the visit is saved: the app syncs by itself 3 s after an edit, and on a fast server the
    # whole photo could otherwise be up before the watch began.
    phase = {"now": "before"}
    patches: list[dict[str, Any]] = []

    def on_blob(route: Route) -> None:
        req = route.request
        if req.method != "PATCH":
            route.continue_()
            return
        sent = {"phase": phase["now"], "offset": int(req.headers["upload-offset"]),
                "bytes": len(req.post_data_buffer or b"")}
        patches.append(sent)
        if phase["now"] == "before" and sum(p["phase"] == "before" for p in patches) > LET_THROUGH:
            phase["now"] = sent["phase"] = "cut"
        if phase["now"] == "cut":
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/api/v1/blobs/*", on_blob)

    tag = uuid.uuid4().hex[:8]
    page.get_by_test_id("household-row").first.click()
    visit_id = record_visit(page, f"断点续传测试 {tag}：房屋裂缝拍照", photo=tmp_path / "wall.jpg")
    stored = app_eval(page, """
        const v = await m.model.view("visits", arg);
        const b = await m.db.getBlob(v.photos[0]);
        return {sha: v.photos[0], size: b.blob.size, bytes: Array.from(new Uint8Array(await b.blob.arrayBuffer()))};
    """, visit_id)
    sha, size = stored["sha"], stored["size"]
    assert sha256(bytes(stored["bytes"])) == sha, "the phone names the photo by the SHA-256 of its bytes"
    assert size > (LET_THROUGH + 1) * CHUNK, f"the stored photo ({size} B) is too small to cut after {LET_THROUGH} chunks"

    tab(page, "sync")
    page.get_by_role("button", name=zh["syncp.sync_now"]).click()

    # the cut: a chunk is lost, and the phone loses its signal
    wait_until(lambda: phase["now"] == "cut", timeout=30, what="the third chunk", page=page)
    context.set_offline(True)
    held = wait_until(lambda: _offset(server, sha), timeout=10, what="the server to hold the first chunks")
    assert held == LET_THROUGH * CHUNK
    wait_until(lambda: not app_eval(page, "return m.sync.status().running"), timeout=20,
               what="the sync to give up for now", page=page)
    st = app_eval(page, "return m.sync.status()")
    assert st["lastError"] and st["lastError"]["code"] == "network", st
    assert app_eval(page, "return (await m.db.counts()).blobsPending") == 1

    # back in signal: the app syncs by itself (online event) and resumes where the server is
    phase["now"] = "after"
    context.set_offline(False)
    wait_synced(page, timeout=60)

    before = [p for p in patches if p["phase"] == "before"]
    after = [p for p in patches if p["phase"] == "after"]
    assert [p["offset"] for p in before] == [i * CHUNK for i in range(LET_THROUGH)]
    assert after, "nothing was sent after the reconnect"
    assert after[0]["offset"] == held, f"the upload restarted at {after[0]['offset']}, not at the server's offset {held}"
    resent = sum(p["bytes"] for p in after)
    assert resent == size - held, (resent, size, held)
    assert resent < size, f"{resent} B re-sent of a {size} B photo: the upload restarted from zero"
    print(f"photo {size} B; held by the server at the cut {held} B; re-sent after the cut {resent} B "
          f"({resent / size:.0%})")

    # the blob is complete on the server and its bytes are the phone's
    status, headers = blob_head(server, "worker1", sha)
    assert status == 200 and int(headers["upload-offset"]) == int(headers["upload-length"]) == size
    assert sha256(blob_bytes(server, "worker1", sha)) == sha
    visits = records(pull_all(server, "worker1"), "visits", lambda r: r["id"] == visit_id)
    assert len(visits) == 1 and visits[0]["photos"] == [sha]

    expect(page.get_by_test_id("pending-count")).to_be_visible()
    assert pending_count_ui(page) == 0
    page.unroute_all(behavior="ignoreErrors")
    assert errors == []


def _offset(server: Server, sha: str) -> int | None:
    status, headers = blob_head(server, "worker1", sha)
    return int(headers["upload-offset"]) if status == 200 else None
