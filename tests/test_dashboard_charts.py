"""The dashboard's charts and map (issue 14, 一屏观全域), through the app.

Charts: every bar (and every number of the table beside each chart) is a link to a list whose row
count is the bar's number, for the county and a village, for a town staff member and for a village
one (who must not count the 信访 matter). Map: only points in the user's scope, each a link to the
dossier or the matter; a 信访 matter's dot only for its handling chain and audited as a read; above
the threshold, one circle per grid whose number is the row count of the list it opens.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from litestar.testing import TestClient

from server.staff import dashboard
from sync.store import SQLiteStore

from .conftest import Town, new_id
from .test_dashboard_cards import built, follow, login  # noqa: F401 (built: the fixture)
from .test_metrics import END, START, fx  # noqa: F401 (fx: the fixture built on)

BAR = re.compile(r'<a class="bar" data-chart="([\w-]+)" href="([^"]+)" data-n="(\d+)"')
TABLE = re.compile(r'<a class="count" data-card="(chart-[\w-]+)" href="([^"]+)">(\d+)</a>')
DOT = re.compile(r'<a href="([^"]+)" class="dot" data-layer="(\w+)"(?: data-n="(\d+)")?')
PERIOD = {"start": START.isoformat(), "end": (END - timedelta(days=1)).isoformat()}
Built = tuple[TestClient[Any], Town, dict[str, str]]


def dash(c: TestClient[Any], area: str) -> str:
    page = c.get("/staff/", params={"area": area, **PERIOD})
    assert page.status_code == 200, page.text[:500]
    return page.text


def located(town: Town, ids: dict[str, str]) -> dict[str, str]:
    """Locations for the built town's households (g1 and g2 of 杖锡村 to the west, g3 of 李家坑村 to
    the east), one more household without one, and visits of today with and without GPS."""
    spots = {"H1": (29.80, 121.30), "H2": (29.81, 121.31), "H3": (29.82, 121.30), "H4": (29.80, 121.32),
             "H5": (29.85, 121.40), "H6": (29.86, 121.41)}
    for key, (lat, lng) in spots.items():
        rec = town.store.get("households", ids[key])
        assert rec is not None
        r = town.push1("staff", town.mut("households", ids[key], {"location": {"lat": lat, "lng": lng}},
                                         base=rec.version))
        assert r.status == "applied", r
    ids["H7"] = town.household("staff", grid="g3", address="无坐标")
    now = datetime.now(timezone.utc).isoformat()
    for key, gps in (("H5", {"lat": 29.8501, "lng": 121.4001}), ("H2", None)):
        vid = new_id()
        fields: dict[str, Any] = {"household_id": ids[key], "visited_at": now}
        if gps:
            fields["gps"] = gps
        assert town.push1("staff", town.mut("visits", vid, fields)).status == "applied"
        ids["V" + key] = vid
    return ids


def categorise(town: Town, ids: dict[str, str]) -> None:
    """Categories (of the catalogue the app installed) for some of the built town's matters."""
    for key, code, line in (("M2", "proxy.social_insurance_registration", "shebao"),
                            ("M3", "proxy.family_planning", "jisheng"), ("M10", "proxy.family_planning", "jisheng"),
                            ("M4", "proxy.social_insurance_registration", "shebao"), ("M5", "", "minzheng")):
        rec = town.store.get("matters", ids[key])
        assert rec is not None
        fields = {"category": code, "line": line} if code else {"line": line}
        r = town.push1("staff", town.mut("matters", ids[key], fields, base=rec.version))
        assert r.status == "applied", r


def test_every_bar_is_a_link_to_as_many_rows(built: Built) -> None:  # noqa: F811
    c, town, ids = built
    categorise(town, ids)
    for who, area in (("admin", town.ids["county"]), ("admin", town.ids["v1"]), ("vstaff", town.ids["v1"])):
        login(c, who)
        text = dash(c, area)
        bars = [(chart, html.unescape(href), int(n)) for chart, href, n in BAR.findall(text)]
        assert {"chart-category", "chart-line", "chart-village", "chart-month"} <= {b[0] for b in bars}
        table = [(chart, html.unescape(href), int(n)) for chart, href, n in TABLE.findall(text)]
        assert sorted(table) == sorted(bars), "the table beside a chart holds its bars' numbers and links"
        for chart, href, n in bars:
            assert follow(c, href) == n, (who, chart, href)
        village = {href: n for chart, href, n in bars if chart == "chart-village" and "status=counted" in href}
        month = sum(n for chart, href, n in bars if chart == "chart-month" and "status=counted" in href)
        collected = int(re.search(r'id="collected" href="[^"]+">(\d+)<', text).group(1))  # type: ignore[union-attr]
        assert sum(village.values()) == collected
        assert month >= collected    # the 12 months up to the period's end hold the period
        if who == "admin" and area == town.ids["county"]:
            assert len(village) == 2
            xinfang = [n for chart, href, n in bars if chart == "chart-line" and "line=xinfang" in href]
            assert xinfang and xinfang[0] >= 1
        if who == "vstaff":
            assert not [h for _, h, _ in bars if "line=xinfang" in h], "the 信访 matter counted outside its chain"


def test_the_map_shows_only_what_the_user_may_see(built: Built) -> None:  # noqa: F811
    c, town, ids = built
    ids = located(town, ids)
    login(c, "staff1")
    dots = DOT.findall(dash(c, town.ids["town"]))
    homes = {h.rsplit("/", 1)[1] for h, layer, _ in dots if layer == "households"}
    assert homes == {ids[k] for k in ("H1", "H2", "H3", "H4", "H5", "H6")}   # H7 has no location
    matters = {h.rsplit("/", 1)[1] for h, layer, _ in dots if layer == "matters"}
    assert ids["XF"] in matters and ids["M3"] in matters and ids["M1"] not in matters   # M1 is closed
    assert ids["WM"] in matters     # waiting for materials is open
    visits = [h for h, layer, _ in dots if layer == "visits"]
    assert visits == [f"/staff/households/{ids['H5']}"]   # H2's visit has no GPS
    for href, _, _ in dots[:3] + [d for d in dots if ids["XF"] in d[0]]:
        assert c.get(href).status_code == 200
    store: SQLiteStore = town.store
    reads = [json.loads(e.details or "{}") for e in store.audit_entries(action="sensitive.read", record_id=ids["XF"])]
    assert any(r.get("via") == "staff:map" for r in reads), "a 信访 matter's dot is a read, and audited"

    login(c, "vstaff")
    text = dash(c, town.ids["v1"])
    dots = DOT.findall(text)
    homes = {h.rsplit("/", 1)[1] for h, layer, _ in dots if layer == "households"}
    assert homes == {ids[k] for k in ("H1", "H2", "H3", "H4")}   # 杖锡村 only
    assert not any(ids["XF"] in h for h, _, _ in dots)
    assert "杖锡村第一网格" in text and "杖锡村第二网格" in text   # a village's map outlines its grids
    # a town outside vstaff's scope falls back to their own area
    assert {h.rsplit("/", 1)[1] for h, layer, _ in DOT.findall(dash(c, town.ids["town"]))
            if layer == "households"} == homes


def test_the_map_aggregates_by_grid_above_the_threshold(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    c, town, ids = built
    ids = located(town, ids)
    monkeypatch.setattr(dashboard, "MAP_DOTS", 3)
    login(c, "staff1")
    text = dash(c, town.ids["town"])
    assert 'class="map cells"' in text
    dots = [(html.unescape(h), layer, int(n)) for h, layer, n in DOT.findall(text)]
    assert not [h for h, _, _ in dots if h.startswith("/staff/households/") or h.startswith("/staff/matters/")]
    by_layer: dict[str, list[tuple[str, int]]] = {}
    for href, layer, n in dots:
        by_layer.setdefault(layer, []).append((href, n))
    # one circle per grid, counting all its households (H7 has no location: counted, as in the grid's list)
    assert sum(n for _, n in by_layer["households"]) == 7 and len(by_layer["households"]) == 3
    assert by_layer["matters"] and by_layer["visits"]
    for href, layer, n in dots:
        assert follow(c, href) == n, (layer, href)
    # more grids than MAP_CELLS (a county's 1,409): one circle per village
    monkeypatch.setattr(dashboard, "MAP_CELLS", 2)
    dots = [(html.unescape(h), layer, int(n)) for h, layer, n in DOT.findall(dash(c, town.ids["town"]))]
    homes = {h: n for h, layer, n in dots if layer == "households"}
    assert homes == {f"/staff/households?area={town.ids['v1']}": 4, f"/staff/households?area={town.ids['v2']}": 3}
    for href, layer, n in dots:
        assert follow(c, href) == n, (layer, href)
    login(c, "vstaff")
    dots = DOT.findall(dash(c, town.ids["v1"]))
    assert sum(int(n) for _, layer, n in dots if layer == "households") == 4
    for href, layer, n in dots:
        assert follow(c, html.unescape(href)) == int(n), (layer, href)
