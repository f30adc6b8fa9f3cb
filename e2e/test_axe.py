"""Accessibility: axe-core on every console page, in Chinese and in English (issue 14).

axe-core comes from npm (e2e/package.json, pinned by its lock file; ``make test`` runs ``npm ci`` in
e2e/), and is injected from that file, never a CDN; the context bypasses the console's CSP, which
(rightly) refuses inline and foreign scripts. The target: no serious or critical violation.

``PAGES`` is the one list of the console's pages: a page added to the console is added here.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT, Server

AXE = ROOT / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

# (name, path): ``{matter}``, ``{household}``, ``{conflict}`` are filled from the demo town.
PAGES: list[tuple[str, str]] = [
    ("dashboard", "/staff/"),
    ("intake", "/staff/intake"),
    ("matters", "/staff/matters?status=open"),
    ("matter", "/staff/matters/{matter}"),
    ("matter print view", "/staff/matters/{matter}/print"),
    ("households", "/staff/households"),
    ("households visited (the coverage card's list)", "/staff/households?visited=30"),
    ("household", "/staff/households/{household}"),
    ("conflicts", "/staff/conflicts"),
    ("conflict", "/staff/conflicts/{conflict}"),
    ("reports", "/staff/reports"),
    ("三张清单", "/staff/reports/lists"),
    ("月报告", "/staff/reports/monthly"),
    ("audit", "/staff/audit"),
    ("users", "/staff/admin/users"),
    ("devices", "/staff/admin/devices"),
    ("areas", "/staff/admin/areas"),
    ("catalogue", "/staff/admin/catalogue"),
    ("household roster import", "/staff/admin/households-import"),
]


def demo_ids(db: Path) -> dict[str, str]:
    """A matter with a long history, a household with matters, an open conflict of the demo town."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        matter = conn.execute("SELECT matter_id FROM matter_events GROUP BY matter_id "
                              "ORDER BY count(*) DESC, matter_id LIMIT 1").fetchone()[0]
        household = conn.execute("SELECT household_id FROM matters WHERE id = ?", (matter,)).fetchone()[0]
        conflict = conn.execute("SELECT id FROM conflicts WHERE json_extract(data, '$.kind') = 'field' "
                                "ORDER BY id LIMIT 1").fetchone()[0]
    finally:
        conn.close()
    return {"matter": matter, "household": household, "conflict": conflict}


def violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def describe(where: str, found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} nodes) {v['helpUrl']}")
        for n in v["nodes"][:5]:
            lines.append(f"    {' '.join(n['target'])}: {n.get('failureSummary', '').splitlines()[-1:]}")
    return "\n".join(lines)


def revoked_device_row(page: Any, server: Server) -> None:
    """A revoked device of worker3's, so that the devices and users pages show a revoked row (its
    grey once failed contrast): a sign-in of its own, revoked on the devices page."""
    page.goto(server.url + "/staff/admin/devices")
    row = page.locator('tr[data-testid="device-row"]', has_text="axe-revoked")
    if row.count() == 0:
        r = httpx.post(server.url + "/api/v1/auth/login", timeout=30,
                       json={"username": "worker3", "password": "demo", "device_name": "axe-revoked"})
        r.raise_for_status()
        page.goto(server.url + "/staff/admin/devices")
    if row.locator("form").count():
        row.locator("input[name=confirm]").check()
        row.locator("button[type=submit]").click()
        page.wait_for_url("**msg=revoked**")
    assert page.locator('tr.disabled[data-testid="device-row"]').count() >= 1


@pytest.fixture
def axe_context(browser: Any, server: Server) -> Any:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` in e2e/ (make test does)")
    ctx = browser.new_context(bypass_csp=True, locale="zh-CN", timezone_id="Asia/Shanghai",
                              viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.mark.time_limit(600)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_serious_or_critical_violation_on_any_console_page(axe_context: Any, server: Server, lang: str) -> None:
    ids = demo_ids(server.db)
    axe_context.add_cookies([{"name": "gb_lang", "value": lang, "url": server.url + "/staff/"}])
    page = axe_context.new_page()
    problems: list[str] = []
    page.goto(server.url + "/staff/login")
    found = violations(page)
    if found:
        problems.append(describe(f"{lang} login", found))
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")
    page.wait_for_url("**/staff/")
    revoked_device_row(page, server)
    for name, path in PAGES:
        response = page.goto(server.url + path.format(**ids))
        assert response is not None and response.status == 200, (name, path, response and response.status)
        found = violations(page)
        if found:
            problems.append(describe(f"{lang} {name} {path.format(**ids)}", found))
    assert not problems, "\n".join(problems)
