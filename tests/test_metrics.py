"""The dashboard figures (server/metrics.py) against values computed by hand on a small town.

The conftest town: 章水镇 > 杖锡村 v1 (mountain: grids g1, g2) and 李家坑村 v2 (not mountain: g3).
``today`` is 2026-11-20; the period is [2026-11-02, 2026-11-16), ISO weeks 45 and 46. Every time
is local (+08:00) and given explicitly, so the figures do not depend on the clock.

Households and visits (coverage window: 30 days = local dates 10-22 … 11-20, 90 days = 08-23 … 11-20):

    H1 g1 独居老人        visited 11-10              -> 30 and 90
    H2 g1 低保户          visited 09-15              -> 90 only
    H3 g2 独居老人 低保户  visited 10-22 09:00        -> 30 and 90 (first day of the 30-day window)
    H4 g2                 visited 10-21 23:30        -> 90 only (the day before the window)
    H5 g3 独居老人        visited 06-01 and 11-21    -> neither (too old / after today)
    H6 g3                 visited 11-20 20:00        -> 30 and 90 (today, evening: 12:00 UTC)

Matters (raised local date; * = in the period):

    M1* H1 11-02 deadline 11-10 proxy, delegated to agent1: resolved 11-09, closed 11-12  done, on time
    M2* H2 11-03 deadline 11-05 direct, supervised: resolved 11-06                    done, late
    M3* H3 11-10 deadline 11-12 supervised, in_progress                                open, overdue
    M4* H4 11-11 no deadline, proxy but no delegation (staff did it): resolved 11-13   done
    M5* H5 11-12 deadline 11-14 proxy: resolved 11-15 07:00 (11-14 23:00 UTC)          done, late
    M6* H6 11-13 deadline 11-01 not_accepted                                           collected only
    M7  H6 11-14 deadline 11-01 merged_duplicate                                       not collected
    M8  H1 11-16 00:30 (11-15 UTC) deadline 11-18 submitted                            outside; overdue
    M9  H2 10-30 deadline 11-30 supervised, accepted                                   outside; supervised
    M10* H3 11-04 deadline 11-19: resolved 11-05, reopened 11-06                       open, overdue

Town: collected 7 (M1 M2 M3 M4 M5 M6 M10), resolved 4 (M1 M2 M4 M5): 化解率 4/7;
on time 1 of 3 with a deadline (M1; M2 and M5 late); overdue now 3 (M3 M8 M10);
supervised open 2 (M3 M9); 不下山: mountain (v1) done M1 M2 M4, through proxy handling (a
delegation) M1 only: 1/3.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from server.metrics import FINISHED, dashboard, fmt_rate, rate
from sync import workflow
from sync.engine import area_tree
from sync.scope import user_keys
from sync.storage import MatterFilter
from tests.conftest import Town, new_id

TODAY = date(2026, 11, 20)
START, END = date(2026, 11, 2), date(2026, 11, 16)


def at(day: str, hm: str = "10:00") -> str:
    return f"2026-{day}T{hm}:00+08:00"


def move(town: Town, who: str, matter: str, frm: str, to: str, when: str) -> str:
    r = town.push1(who, town.mut("matter_events", new_id(),
                                 {"matter_id": matter, "kind": "status", "from": frm, "to": to}, at=when))
    return r.status


def walk(town: Town, who: str, matter: str, steps: list[tuple[str, str]], start: str = "submitted") -> None:
    cur = start
    for to, when in steps:
        assert move(town, who, matter, cur, to, when) == "applied", (cur, to)
        cur = to


def feedback(town: Town, matter: str, when: str, **data: object) -> None:
    r = town.push1("staff", town.mut("matter_events", new_id(),
                                     {"matter_id": matter, "kind": "feedback", "data": data}, at=when))
    assert r.status == "applied", r


@pytest.fixture
def fx(town: Town) -> dict[str, str]:
    ids: dict[str, str] = {}
    homes = [("H1", "g1", ["独居老人"]), ("H2", "g1", ["低保户"]), ("H3", "g2", ["独居老人", "低保户"]),
             ("H4", "g2", []), ("H5", "g3", ["独居老人"]), ("H6", "g3", [])]
    for key, grid, tags in homes:
        ids[key] = new_id()
        r = town.push1("staff", town.mut("households", ids[key], {
            "grid_id": town.ids[grid], "address": f"{key}号", "head_name": key, "tags": tags},
            at=at("10-01")))
        assert r.status == "applied", r
    for key, when in (("H1", at("11-10")), ("H2", at("09-15")), ("H3", at("10-22", "09:00")),
                      ("H4", at("10-21", "23:30")), ("H5", at("06-01")), ("H5", at("11-21")),
                      ("H6", at("11-20", "20:00"))):
        r = town.push1("staff", town.mut("visits", new_id(), {"household_id": ids[key], "visited_at": when},
                                         at=when))
        assert r.status == "applied", r

    def matter(key: str, home: str, raised: str, **fields: object) -> str:
        ids[key] = new_id()
        data = {"household_id": ids[home], "title": f"事项{key}", "raised_at": raised, **fields}
        r = town.push1("staff", town.mut("matters", ids[key], data, at=raised))
        assert r.status == "applied", r
        return ids[key]

    agent = town.actors["agent"].user_id
    m1 = matter("M1", "H1", at("11-02", "09:00"), deadline="2026-11-10", handling_mode="proxy", assignee_id=agent)
    walk(town, "staff", m1, [("accepted", at("11-02")), ("assigned", at("11-02", "11:00"))])
    elder = new_id()
    assert town.push1("staff", town.mut("residents", elder, {"household_id": ids["H1"], "name": "H1老人"},
                                        at=at("11-02", "09:00"))).status == "applied"
    sig = "ab" * 32
    r = town.push1("agent", town.mut("matter_events", new_id(), {
        "matter_id": m1, "kind": "delegation", "for_resident_id": elder, "for_user_id": agent,
        "data": {"until": "2026-12-31", "signature": sig}, "attachments": [sig]}, at=at("11-03", "09:00")))
    assert r.status == "applied", r
    walk(town, "agent", m1, [("in_progress", at("11-03")), ("resolved", at("11-09"))], start="assigned")
    assert move(town, "staff", m1, "resolved", "closed", at("11-12")) == "applied"
    m2 = matter("M2", "H2", at("11-03"), deadline="2026-11-05", handling_mode="direct", supervised=True)
    walk(town, "staff", m2, [("accepted", at("11-03", "11:00")), ("in_progress", at("11-04")),
                             ("resolved", at("11-06"))])
    m3 = matter("M3", "H3", at("11-10"), deadline="2026-11-12", supervised=True)
    walk(town, "staff", m3, [("accepted", at("11-10", "11:00")), ("in_progress", at("11-11"))])
    m4 = matter("M4", "H4", at("11-11"), handling_mode="proxy")
    walk(town, "staff", m4, [("accepted", at("11-11", "11:00")), ("in_progress", at("11-12")),
                             ("resolved", at("11-13"))])
    m5 = matter("M5", "H5", at("11-12"), deadline="2026-11-14", handling_mode="proxy")
    walk(town, "staff", m5, [("accepted", at("11-12", "11:00")), ("in_progress", at("11-13"))])
    # an unhappy rating of a resolved matter would reopen it (不满意 -> reopened): given while in progress
    feedback(town, m5, at("11-14", "16:00"), rating=2)
    walk(town, "staff", m5, [("resolved", at("11-15", "07:00"))], start="in_progress")
    m6 = matter("M6", "H6", at("11-13"), deadline="2026-11-01")
    walk(town, "staff", m6, [("not_accepted", at("11-13", "11:00"))])
    m7 = matter("M7", "H6", at("11-14"), deadline="2026-11-01", duplicate_of=m6)
    walk(town, "staff", m7, [("merged_duplicate", at("11-14", "11:00"))])
    m8 = matter("M8", "H1", at("11-16", "00:30"), deadline="2026-11-18")
    m9 = matter("M9", "H2", at("10-30"), deadline="2026-11-30", supervised=True)
    walk(town, "staff", m9, [("accepted", at("10-30", "11:00"))])
    m10 = matter("M10", "H3", at("11-04"), deadline="2026-11-19")
    walk(town, "staff", m10, [("accepted", at("11-04", "11:00")), ("in_progress", at("11-04", "12:00")),
                              ("resolved", at("11-05")), ("reopened", at("11-06"))])

    # Ratings: the latest per matter counts; M3 is not resolved, so its rating does not.
    feedback(town, m1, at("11-12", "15:00"), rating=5, satisfied=True)
    feedback(town, m2, at("11-07"), rating=3)
    feedback(town, m2, at("11-08"), rating=4)
    feedback(town, m3, at("11-12"), rating=5)

    # Sync health: a rejected mutation (a worker may not accept) in g1, a status conflict in g2.
    assert move(town, "w1", m8, "submitted", "accepted", at("11-17")) == "rejected"
    assert move(town, "staff", m3, "submitted", "accepted", at("11-12", "12:00")) == "conflict"
    seen: dict[str, str | None] = {
        "w1": "2026-11-19T02:00:00+00:00",
        "w2": "2026-11-12T16:00:00+00:00",      # 11-13 00:00 local: exactly 7 days, not silent
        "w3": "2026-11-12T15:59:00+00:00",      # 11-12 23:59 local: silent
        "agent": "2026-11-20T01:00:00+00:00",
        "staff": None,                          # never seen: silent
    }
    for who, last in seen.items():
        town.store.conn.execute("UPDATE devices SET last_seen_at = ? WHERE id = ?",
                                (last, town.actors[who].device_id))
    return ids


def test_town_figures(town: Town, fx: dict[str, str]) -> None:
    d = dashboard(town.store, town.ids["town"], START, END, TODAY)
    assert d["collected"] == 7
    assert d["resolved"] == 4
    assert d["resolution_rate"] == pytest.approx(4 / 7)
    assert fmt_rate(d["resolution_rate"]) == "57.1%"
    assert d["on_time"] == {"on_time": 1, "with_deadline": 3}
    assert d["on_time_rate"] == pytest.approx(1 / 3)
    assert d["overdue_now"] == 3
    assert d["supervised_open"] == 2
    assert d["bu_xiashan"] == {"proxy": 1, "completed": 3}
    assert d["bu_xiashan_share"] == pytest.approx(1 / 3)
    s = d["satisfaction"]
    assert (s["rated"], s["satisfied"]) == (3, 2)
    assert s["rate"] == pytest.approx(2 / 3)
    assert s["mean_rating"] == pytest.approx((5 + 4 + 2) / 3)
    assert s["rating_coverage"] == pytest.approx(3 / 4)

    def frac(x: dict[str, Any]) -> tuple[Any, ...]:
        return x["visited"], x["total"], x["rate"]

    c30, c90 = d["coverage_30"], d["coverage_90"]
    assert frac(c30["all"]) == (3, 6, 0.5)
    assert frac(c30["独居老人"]) == (2, 3, pytest.approx(2 / 3))
    assert frac(c30["低保户"]) == (1, 2, 0.5)
    assert frac(c90["all"]) == (5, 6, pytest.approx(5 / 6))
    assert frac(c90["独居老人"]) == (2, 3, pytest.approx(2 / 3))
    assert frac(c90["低保户"]) == (2, 2, 1.0)

    ranking = [(r["area_id"], r["collected"], r["resolved"], r["rate"], frac(r["coverage_30"]))
               for r in d["ranking"]]
    assert ranking == [(town.ids["v1"], 5, 3, 0.6, (2, 4, 0.5)), (town.ids["v2"], 2, 1, 0.5, (1, 2, 0.5))]

    assert [(w["week"], w["monday"], w["collected"], w["resolved"]) for w in d["trend"]] == [
        ("2026-W45", "2026-11-02", 3, 1), ("2026-W46", "2026-11-09", 4, 3)]

    sync = d["sync"]
    silent = {dev["username"]: dev["silent"] for dev in sync["devices"]}
    assert silent == {"worker1": False, "worker2": False, "worker3": True, "agent1": False, "staff1": True}
    assert sync["silent"] == 2
    assert (sync["open_conflicts"], sync["rejected"]) == (1, 1)


def test_village_and_grid(town: Town, fx: dict[str, str]) -> None:
    v1 = dashboard(town.store, town.ids["v1"], START, END, TODAY)
    assert (v1["collected"], v1["resolved"]) == (5, 3)
    assert v1["on_time_rate"] == pytest.approx(1 / 2)             # M1 on time, M2 late
    assert v1["overdue_now"] == 3                                  # M3 M8 M10 are all in v1
    assert v1["bu_xiashan_share"] == pytest.approx(1 / 3)
    assert [(r["area_id"], r["collected"], r["resolved"], r["rate"]) for r in v1["ranking"]] == [
        (town.ids["g1"], 2, 2, 1.0), (town.ids["g2"], 3, 1, pytest.approx(1 / 3))]
    assert {dev["username"] for dev in v1["sync"]["devices"]} == {"worker1", "worker2", "agent1"}
    assert (v1["sync"]["open_conflicts"], v1["sync"]["rejected"]) == (1, 1)

    v2 = dashboard(town.store, town.ids["v2"], START, END, TODAY)
    assert (v2["collected"], v2["resolved"], v2["on_time_rate"]) == (2, 1, 0.0)   # M5 resolved late
    assert v2["bu_xiashan"] == {"proxy": 0, "completed": 0}          # not a mountain village
    assert v2["bu_xiashan_share"] is None
    assert v2["overdue_now"] == 0 and v2["supervised_open"] == 0
    assert (v2["sync"]["open_conflicts"], v2["sync"]["rejected"]) == (0, 0)

    g3 = dashboard(town.store, town.ids["g3"], START, END, TODAY)
    assert g3["ranking"] == []
    assert g3["coverage_30"]["独居老人"] == {"visited": 0, "total": 1, "rate": 0.0}
    assert [dev["username"] for dev in g3["sync"]["devices"]] == ["worker3"]


def test_empty_area_has_no_rates(town: Town, fx: dict[str, str]) -> None:
    g4 = new_id()
    r = town.push1("admin", town.mut("areas", g4, {"level": "grid", "name": "空网格", "parent_id": town.ids["v2"]}))
    assert r.status == "applied", r
    d = dashboard(town.store, g4, START, END, TODAY)
    assert (d["collected"], d["resolved"], d["overdue_now"], d["supervised_open"]) == (0, 0, 0, 0)
    for key in ("resolution_rate", "on_time_rate", "bu_xiashan_share"):
        assert d[key] is None
        assert fmt_rate(d[key]) == "—"
    assert d["satisfaction"]["rate"] is None and d["satisfaction"]["mean_rating"] is None
    assert d["satisfaction"]["rating_coverage"] is None
    for n in ("coverage_30", "coverage_90"):
        for group in ("all", "独居老人", "低保户"):
            assert d[n][group] == {"visited": 0, "total": 0, "rate": None}
    assert d["ranking"] == []
    assert [(w["collected"], w["resolved"]) for w in d["trend"]] == [(0, 0), (0, 0)]
    assert d["sync"] == {"devices": [], "silent": 0, "open_conflicts": 0, "rejected": 0}
    # An empty period too: no weeks, no rates.
    e = dashboard(town.store, town.ids["town"], END, END, TODAY)
    assert e["collected"] == 0 and e["resolution_rate"] is None and e["trend"] == []
    # The town's ranking now still lists v1 and v2 only (g4 is below v2).
    assert len(dashboard(town.store, town.ids["town"], START, END, TODAY)["ranking"]) == 2


def test_the_overdue_card_counts_the_rows_of_the_list_it_opens(town: Town, fx: dict[str, str]) -> None:
    """"当前超期" opens /staff/matters?overdue=1, whose rows carry an overdue badge and whose overdue rows
    make the report's sheet: one rule (``workflow.is_overdue``). A matter waiting for materials past its
    deadline is in none of them (the list once showed it while the card did not count it)."""
    assert move(town, "staff", fx["M10"], "reopened", "in_progress", at("11-19")) == "applied"
    assert move(town, "staff", fx["M10"], "in_progress", "waiting_materials", at("11-20", "09:00")) == "applied"
    card = dashboard(town.store, town.ids["town"], START, END, TODAY)["overdue_now"]
    tree = area_tree(town.store)
    rows, total = town.store.matters_page(tree.subtree(town.ids["town"]), user_keys(town.actors["staff"], tree),
                                          MatterFilter(overdue_on=TODAY.isoformat(), ended=FINISHED), "raised", None)
    assert card == total == 2                                   # M3 and M8; M10 waits for materials
    assert {r.id for r in rows} == {fx["M3"], fx["M8"]}
    everything, _ = town.store.matters_page(tree.subtree(town.ids["town"]), user_keys(town.actors["staff"], tree),
                                            MatterFilter(), "raised", None)
    badged = {r.id for r in everything if workflow.is_overdue(r.data, TODAY.isoformat(), FINISHED)}
    assert badged == {r.id for r in rows}


def test_fmt_rate_and_rate() -> None:
    assert fmt_rate(0.874) == "87.4%"
    assert fmt_rate(1169 / 1337) == "87.4%"
    assert fmt_rate(0.0) == "0.0%"
    assert fmt_rate(1.0) == "100.0%"
    assert fmt_rate(None) == "—"
    assert rate(0, 0) is None and rate(1, 4) == 0.25
