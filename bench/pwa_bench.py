"""Scenario 6: the PWA itself in headless Chromium (Debian's, /usr/bin/chromium).

- the app shell: every file sw.js precaches, as the server sends it with ``Accept-Encoding: gzip``
  (plus sw.js itself);
- opening offline: a phone's browser profile signed in once online (first sync of the whole grid),
  then the browser started again with no network, from navigation start to the first household
  row on screen (median of several cold starts; also with the CPU slowed 4× for a cheap phone);
- applying a pull into IndexedDB: the PWA's own ``applyPage`` (pwa/js/db.js, imported in the page)
  on pages of 500 real records of the grid, 10,000 changes in all, timed inside the page.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import uuid
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from e2e.helpers import login, wait_first_sync, wait_service_worker

from .ourclient import Phone

CHROMIUM = "/usr/bin/chromium"
LAUNCH: dict[str, Any] = dict(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
CTX: dict[str, Any] = dict(viewport={"width": 360, "height": 740}, locale="zh-CN", timezone_id="Asia/Shanghai",
                           service_workers="allow")
FIRST_ROW = """
  window.__firstRow = null;
  new MutationObserver((_, obs) => {
    if (document.querySelector('[data-testid="household-row"]')) {
      window.__firstRow = performance.now();
      obs.disconnect();
    }
  }).observe(document, {subtree: true, childList: true});
"""
APPLY = """
async (pages) => {
  const db = await import("/js/db.js");
  await db.clearReplica();
  const t0 = performance.now();
  for (const p of pages) await db.applyPage(p.changes, p.cursor);
  const ms = performance.now() - t0;
  const n = (await db.counts()).records;
  return {ms, households: n.households, visits: n.visits};
}
"""


def shell_bytes(url: str) -> dict[str, int]:
    with httpx.Client(base_url=url, headers={"Accept-Encoding": "gzip"}) as c:
        sw = c.get("/sw.js")
        block = re.search(r"const SHELL = \[(.*?)\];", sw.text, re.S)
        assert block, "no SHELL list in sw.js"
        files = re.findall(r'"([^"]+)"', block.group(1))
        wire, raw = sw.num_bytes_downloaded, len(sw.content)
        for f in files:
            with c.stream("GET", f) as r:
                r.raise_for_status()
                raw += len(r.read())
                wire += r.num_bytes_downloaded
    return {"files": len(files) + 1, "raw_bytes": raw, "gzip_bytes": wire}


def change_pages(url: str, username: str, n: int) -> list[dict[str, Any]]:
    """``n`` changes in pages of 500: the grid's own records as the server sends them, repeated under
    new ids when the grid holds fewer than ``n``."""
    p = Phone(url)
    p.login(username, device="pwa-apply")
    changes = [c for c in p.pull() if not c.get("removed") and not c.get("deleted")]
    p.close()
    out: list[dict[str, Any]] = []
    i = 0
    while len(out) < n:
        c = changes[i % len(changes)]
        if i >= len(changes):
            rid = str(uuid.uuid4())
            c = {**c, "id": rid, "data": {**c["data"], "id": rid}}
        out.append(c)
        i += 1
    return [{"changes": out[k:k + 500], "cursor": f"bench-{k}"} for k in range(0, n, 500)]


def measure(url: str, username: str, runs: int, n_changes: int) -> dict[str, Any]:
    res: dict[str, Any] = {"shell": shell_bytes(url)}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, **LAUNCH, **CTX)
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        login(page, url, username)
        wait_first_sync(page, timeout=600)
        wait_service_worker(page)
        res["replica"] = page.evaluate("async () => (await (await import('/js/db.js')).counts()).records")
        ctx.close()
        for rate in (1, 4):
            times = []
            for _ in range(runs):
                ctx = pw.chromium.launch_persistent_context(profile, offline=True, **LAUNCH, **CTX)
                ctx.add_init_script(FIRST_ROW)
                page = ctx.new_page()
                if rate > 1:
                    cdp = ctx.new_cdp_session(page)
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
                    cdp.send("Network.enable")
                    cdp.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                  "downloadThroughput": -1, "uploadThroughput": -1})
                page.goto(url + "/")
                page.wait_for_function("() => window.__firstRow !== null", timeout=60_000)
                assert page.evaluate("navigator.onLine") is False
                times.append(float(page.evaluate("window.__firstRow")))
                ctx.close()
            res[f"open_offline_ms_cpu{rate}x"] = {"median": statistics.median(times), "min": min(times),
                                                  "max": max(times), "n": len(times)}
        pages = change_pages(url, username, n_changes)
        browser = pw.chromium.launch(**LAUNCH)
        ctx = browser.new_context(**CTX)
        page = ctx.new_page()
        page.goto(url + "/")
        rates = []
        for _ in range(runs):
            r = page.evaluate(APPLY, pages)
            rates.append(n_changes / (r["ms"] / 1000))
        res["apply"] = {"changes": n_changes, "pages": len(pages), "per_s": {"median": statistics.median(rates),
                                                                             "min": min(rates), "max": max(rates),
                                                                             "n": len(rates)}}
        browser.close()
    return res
