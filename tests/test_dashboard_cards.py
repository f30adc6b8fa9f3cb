"""Every number of the dashboard is a link to the list of exactly what it counts (issue 14).

For every count on the dashboard (the cards, their numerators and denominators, the ranking's
rows), for the whole area, a town and a village, as a user clicking through the app would: the
number shown equals the row count of the list it opens. Over two data sets: the hand-built town
of tests/test_metrics.py (reopened, merged, not accepted, late and on-time matters, ratings, a
delegation) plus a matter waiting for materials past its deadline and a 信访 matter; and the demo.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from server.app import create_app
from server.demo import seed
from server.settings import Settings
from sync import accounts

from . import backend
from .conftest import PASSWORD, Town, new_id, password_hash
from .test_metrics import END, START, at, fx, walk  # noqa: F401 (fx: the hand-built town's fixture)

CARDS = {"collected", "resolved", "on_time", "with_deadline", "overdue", "supervised", "satisfied", "rated",
         "bu_xiashan_proxy", "bu_xiashan_completed", "coverage_30", "coverage_90", "households",
         "coverage_30独居老人", "coverage_90低保户", "households低保户", "conflicts", "rejected"}
COUNT = re.compile(r'<a class="count[^"]*" data-card="([^"]+)"[^>]*href="([^"]+)">(\d+)</a>')
TOTAL = re.compile(r'<small id="total">(\d+)</small>')


def login(c: TestClient[Any], username: str) -> None:
    c.cookies.clear()
    page = c.get("/staff/login")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert token, page.text[:500]
    r = c.post("/staff/login", data={"username": username, "password": PASSWORD, "csrf": token.group(1)},
               follow_redirects=False)
    assert r.status_code == 303, r.text[:500]


def counts(c: TestClient[Any], area: str, start: str, end: str) -> list[tuple[str, str, int]]:
    """(card, link, number) of every count the dashboard shows for the area and period."""
    page = c.get("/staff/", params={"area": area, "start": start, "end": end})
    assert page.status_code == 200, page.text[:500]
    found = [(name, html.unescape(href), int(n)) for name, href, n in COUNT.findall(page.text)]
    assert CARDS <= {name for name, _, _ in found}, "a card without a link to its list"
    return found


def follow(c: TestClient[Any], href: str) -> int:
    """The number of rows of the list a link opens (its total, over all its pages)."""
    page = c.get(href)
    assert page.status_code == 200, (href, page.text[:500])
    m = TOTAL.search(page.text)
    assert m, href
    return int(m.group(1))


def check(c: TestClient[Any], area: str, start: str, end: str) -> dict[str, int]:
    seen: dict[str, int] = {}
    for name, href, n in counts(c, area, start, end):
        assert follow(c, href) == n, (name, href)
        seen.setdefault(name, n)
    return seen


@pytest.fixture
def built(tmp_path: Any, db: str, town: Town, fx: dict[str, str]) -> Iterator[tuple[TestClient[Any], Town, dict[str, str]]]:
    s, ids = town.store, dict(fx)
    # waiting for materials past its deadline: collected, not overdue (the clock stopped)
    wm = new_id()
    assert town.push1("staff", town.mut("matters", wm, {"household_id": ids["H2"], "title": "待补材料",
                                                        "raised_at": at("11-05"), "deadline": "2026-11-09"},
                                        at=at("11-05"))).status == "applied"
    walk(town, "staff", wm, [("accepted", at("11-05", "11:00")), ("in_progress", at("11-05", "12:00")),
                             ("waiting_materials", at("11-06"))])
    # a 信访 matter in 杖锡村 g1, overdue: only the town's staff and above see it
    xf = new_id()
    assert town.push1("staff", town.mut("matters", xf, {"household_id": ids["H1"], "title": "信访件",
                                                        "raised_at": at("11-06"), "deadline": "2026-11-08",
                                                        "line": "xinfang", "supervised": True},
                                        at=at("11-06"))).status == "applied"
    walk(town, "staff", xf, [("accepted", at("11-06", "11:00"))])
    ids.update(WM=wm, XF=xf)
    # a visit today, so the 30-day coverage has something to count whatever the date the tests run on
    now = datetime.now(timezone.utc).isoformat()
    assert town.push1("staff", town.mut("visits", new_id(), {"household_id": ids["H4"], "visited_at": now})
                      ).status == "applied"
    # a staff member of the village only: outside the 信访 matter's handling chain
    accounts.create_user(s, "vstaff", PASSWORD, "staff", [town.ids["v1"]], password_hash=password_hash())
    app = create_app(Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs"),
                                                          pwa_dir=str(tmp_path / "no-pwa"))))
    with TestClient(app, base_url="http://testserver.local") as c:
        yield c, town, ids


def test_every_card_equals_its_list_in_the_built_town(built: tuple[TestClient[Any], Town, dict[str, str]]) -> None:
    c, town, ids = built
    start, end = START.isoformat(), (END - timedelta(days=1)).isoformat()   # the period's last day
    login(c, "admin")
    whole = check(c, town.ids["county"], start, end)
    assert check(c, town.ids["town"], start, end) == whole
    village = check(c, town.ids["v1"], start, end)
    check(c, town.ids["v2"], start, end)
    # test_metrics' seven, the one waiting for materials and the 信访 matter; the merged one is not collected
    assert whole["collected"] == 9
    assert whole["resolved"] == 4 and whole["on_time"] == 1 and whole["with_deadline"] == 3
    assert (whole["satisfied"], whole["rated"]) == (2, 3)
    assert (whole["bu_xiashan_proxy"], whole["bu_xiashan_completed"]) == (1, 3)
    assert village["collected"] == 7
    assert whole["coverage_30"] >= 1 and whole["households"] == 6 and whole["households低保户"] == 2
    assert (whole["conflicts"], whole["rejected"]) == (1, 1)   # test_metrics' status conflict and rejection

    login(c, "vstaff")
    mine = check(c, town.ids["v1"], start, end)
    assert mine["collected"] == village["collected"] - 1, "the 信访 matter counted outside its handling chain"
    assert mine["overdue"] == village["overdue"] - 1 and mine["supervised"] == village["supervised"] - 1
    listed = c.get("/staff/matters", params={"area": town.ids["v1"], "status": "counted"}).text
    assert ids["XF"] not in listed and ids["M1"] in listed
    # the town is outside vstaff's scope: no filter, their own conflicts only
    outside = c.get("/staff/conflicts", params={"area": town.ids["town"]}).text
    assert TOTAL.findall(outside) == TOTAL.findall(c.get("/staff/conflicts").text)
    # an area outside the user's scope falls back to their own, never shows the town
    page = c.get("/staff/", params={"area": town.ids["town"], "start": start, "end": end})
    assert f'value="{town.ids["town"]}"' not in page.text


def test_the_card_filters_refuse_bad_input(built: tuple[TestClient[Any], Town, dict[str, str]]) -> None:
    c, town, _ = built
    login(c, "staff1")
    for params in ({"start": "2026-13-01"}, {"end": "yesterday"}, {"rstart": "2026-02-30"}, {"feedback": "x"}):
        r = c.get("/staff/matters", params=params)
        assert r.status_code == 400, params
        assert "格式" in r.text or "评价" in r.text
    assert c.get("/staff/conflicts", params={"kind": "other"}).status_code == 400
    for params in ({"visited": "7"}, {"visited": "30", "q": "王"}):
        r = c.get("/staff/households", params=params)
        assert r.status_code == 400 and "走访" in r.text, params


@pytest.fixture(scope="module")
def demo_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient[Any], Any]]:
    tmp = tmp_path_factory.mktemp("demo-cards")
    db = backend.new_db(tmp, "demo.db", keep=True)
    s = backend.open_store(db)
    s.migrate()
    seed(s, blob_dir=backend.beside_db(tmp).get("blob_dir"))
    app = create_app(Settings(db=db, **backend.beside_db(tmp, blob_dir=str(tmp / "blobs"),
                                                          pwa_dir=str(tmp / "no-pwa"))))
    with TestClient(app, base_url="http://testserver.local") as c:
        yield c, s
    s.close()


def test_every_card_equals_its_list_in_the_demo(demo_client: tuple[TestClient[Any], Any]) -> None:
    c, s = demo_client
    names = {v: k for k, v in s.live_area_names().items()}
    login(c, "admin")
    county = [a for a, parent, *_ in s.all_areas() if parent is None]
    assert county
    for area in (county[0], names["章水镇"], names["杖锡村"]):
        got = check(c, area, "2026-01-01", "2026-11-20")
        assert got["collected"] > 0
    login(c, "staff1")
    check(c, names["章水镇"], "2026-09-01", "2026-10-31")
