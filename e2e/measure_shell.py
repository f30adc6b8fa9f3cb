"""Two numbers for the issue's closing note (not a test: pytest does not collect this file).

1. The app shell's size: every file sw.js precaches, as the server sends it with
   `Accept-Encoding: gzip`, and gzipped here at level 9 for comparison.
2. The offline start in headless Chromium: from navigation start to the first household row of the
   list, with the network off, after a signed-in first sync (reloads of the same tab and fresh tabs,
   also with the CPU slowed 4× as a stand-in for a cheap phone).

    .venv/bin/python -m e2e.measure_shell            # starts its own server on the demo town
    .venv/bin/python -m e2e.measure_shell --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from .conftest import CHROMIUM, ROOT, Server
from .helpers import login, wait_first_sync, wait_service_worker

FIRST_ROW = """
  window.__firstRow = null;
  new MutationObserver((_, obs) => {
    if (document.querySelector('[data-testid="household-row"]')) {
      window.__firstRow = performance.now();
      obs.disconnect();
    }
  }).observe(document, {subtree: true, childList: true});
"""


def shell_size(url: str) -> None:
    sw = httpx.get(url + "/sw.js").text
    block = re.search(r"const SHELL = \[(.*?)\];", sw, re.S)
    assert block, "no SHELL list in sw.js"
    files = re.findall(r'"([^"]+)"', block.group(1))
    raw = wire = level9 = 0
    rows = []
    with httpx.Client(base_url=url, headers={"Accept-Encoding": "gzip"}) as c:
        for f in files:
            with c.stream("GET", f) as r:
                r.raise_for_status()
                body = r.read()  # decoded
                sent = r.num_bytes_downloaded  # as it came over the wire
            g9 = len(gzip.compress(body, 9))
            raw += len(body)
            wire += sent
            level9 += g9
            rows.append((f, len(body), sent, g9, r.headers.get("content-encoding") or "-"))
    for f, n, s, g, enc in rows:
        print(f"  {f:32} {n:>8} B  sent {s:>7} B ({enc:4})  gzip-9 {g:>7} B")
    sw_g = len(gzip.compress(sw.encode(), 9))
    print(f"app shell: {len(files)} files, {raw} B raw; {wire} B as the server sends them with Accept-Encoding: gzip; "
          f"{level9} B gzipped at level 9 (+ sw.js itself {sw_g} B gzipped)")


def _slow(page: Page, rate: int) -> None:
    """Slow the CPU `rate` times. A CDP session of our own undoes Playwright's offline emulation in
    Chromium (navigator.onLine turns true again), so the same session takes the network away too."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})


def _start_ms(page: Page, fresh_tab: bool, url: str, rate: int) -> float:
    if fresh_tab:
        p = page.context.new_page()
        _slow(p, rate)
        p.goto(url + "/")
    else:
        p = page
        _slow(p, rate)
        p.reload()
    p.wait_for_function("() => window.__firstRow !== null", timeout=30_000)
    assert p.evaluate("navigator.onLine") is False
    ms = float(p.evaluate("window.__firstRow"))  # performance.now() counts from the navigation start
    if fresh_tab:
        p.close()
    return ms


def _report(kind: str, times: list[float]) -> None:
    print(f"offline start, {kind}: median {statistics.median(times):.0f} ms, min {min(times):.0f}, "
          f"max {max(times):.0f} ({len(times)} runs: {', '.join(f'{t:.0f}' for t in times)})")


def offline_start(url: str, runs: int) -> None:
    launch = dict(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
    ctx_args = dict(viewport={"width": 360, "height": 740}, locale="zh-CN", timezone_id="Asia/Shanghai",
                    service_workers="allow")
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        # a phone's browser profile: signed in online once, then closed
        ctx = pw.chromium.launch_persistent_context(profile, **launch, **ctx_args)  # type: ignore[arg-type]
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        login(page, url, "worker1")
        wait_first_sync(page)
        wait_service_worker(page)
        counts = page.evaluate("async () => (await (await import('/js/db.js')).counts()).records")
        print(f"replica: {counts}")
        ctx.close()

        # the browser started again with no network, the app opened: the whole cold start
        for rate in (1, 4):
            times = []
            for _ in range(runs):
                ctx = pw.chromium.launch_persistent_context(profile, offline=True, **launch, **ctx_args)  # type: ignore[arg-type]
                ctx.add_init_script(FIRST_ROW)
                page = ctx.new_page()
                _slow(page, rate)
                page.goto(url + "/")
                page.wait_for_function("() => window.__firstRow !== null", timeout=30_000)
                assert page.evaluate("navigator.onLine") is False
                times.append(float(page.evaluate("window.__firstRow")))
                ctx.close()
            _report("browser restarted" + (f", CPU slowed {rate}x" if rate > 1 else ""), times)

        # the browser still running: a reload of the tab, a new tab
        ctx = pw.chromium.launch_persistent_context(profile, offline=True, **launch, **ctx_args)  # type: ignore[arg-type]
        ctx.add_init_script(FIRST_ROW)
        page = ctx.new_page()
        page.goto(url + "/")
        page.wait_for_function("() => window.__firstRow !== null", timeout=30_000)
        for rate in (1, 4):
            for fresh in (False, True):
                times = [_start_ms(page, fresh, url, rate) for _ in range(runs)]
                _report(("new tab" if fresh else "reload") + (f", CPU slowed {rate}x" if rate > 1 else ""), times)
        ctx.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    server = None
    if not a.url:
        d = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "server", "demo", "--db", str(d / "demo.db")], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        server = Server(d / "demo.db", d / "server.log").start()
        a.url = server.url
    try:
        shell_size(a.url)
        offline_start(a.url, a.runs)
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
