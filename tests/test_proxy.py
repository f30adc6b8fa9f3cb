"""Proxy handling (代办, docs/proxy.md): delegation, custody, the agent's steps, the paused deadline
clock, feedback, the sensitive-read audit, and the three conflict cases of issue 5.

The conftest town: 杖锡村 (v1, a mountain village: grids g1, g2) has agent1 ("agent"); a second
agent of v1, agent2, is added where a matter is reassigned. Times are local (+08:00) and explicit.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from server.app import create_app
from server.metrics import dashboard
from server.settings import Settings
from sync import accounts, proxy
from sync.blobs import BlobStore
from sync.catalogue import install_catalogue

from . import backend
from .conftest import PASSWORD, Town, build_town, new_id, password_hash

SIG = hashlib.sha256(b"the resident's signature").hexdigest()
PHOTO = hashlib.sha256(b"a photo of the resident pressing a thumbprint").hexdigest()
DELIVERY_SIG = hashlib.sha256(b"signature on delivery").hexdigest()


def at(day: str, hm: str = "10:00") -> str:
    return f"2026-{day}T{hm}:00+08:00"


def same_time(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


@pytest.fixture
def pt(town: Town) -> Town:
    """The town with the shipped catalogue (materials checklists, deadlines, 信访 sensitive)."""
    install_catalogue(town.store)
    accounts.create_user(town.store, "agent2", PASSWORD, "proxy_agent", [town.ids["v1"]], password_hash=password_hash())
    login = accounts.login(town.store, "agent2", PASSWORD, "agent2's phone")
    town.actors["agent2"] = accounts.authenticate(town.store, login.token)
    town.tokens["agent2"] = login.token
    return town


def resident(t: Town, household: str, name: str = "王阿婆") -> str:
    rid = new_id()
    r = t.push1("w1", t.mut("residents", rid, {"household_id": household, "name": name, "birth_year": 1938}))
    assert r.status == "applied", r
    return rid


def proxy_matter(t: Town, category: str = "proxy.social_insurance_registration", agent: str = "agent",
                 when: str = at("11-02", "09:00")) -> tuple[str, str, str]:
    """worker1 records a proxy matter during a visit and delegates it to the agent: (matter, household, resident)."""
    h = t.household("w1")
    res = resident(t, h)
    mid = new_id()
    r = t.push1("w1", t.mut("matters", mid, {
        "household_id": h, "resident_id": res, "title": "代办养老保险参保登记", "category": category,
        "channel": "visit", "handling_mode": "proxy", "assignee_id": t.actors[agent].user_id}, at=when))
    assert r.status == "applied", r
    return mid, h, res


def event(t: Town, who: str, matter: str, kind: str, when: str, **fields: Any) -> Any:
    eid = new_id()
    r = t.push1(who, t.mut("matter_events", eid, {"matter_id": matter, "kind": kind, **fields}, at=when))
    return r


def delegation(t: Town, who: str, matter: str, res: str, agent: str = "agent", when: str = at("11-02", "10:00"),
               **data: Any) -> Any:
    data = data or {"until": "2026-12-31", "signature": SIG}
    shas = [v for k, v in data.items() if k in ("signature", "photo")]
    return event(t, who, matter, "delegation", when, for_resident_id=res, for_user_id=t.actors[agent].user_id,
                 data=data, attachments=shas)


def status(t: Town, matter: str) -> str:
    return t.store.get("matters", matter).data["status"]


# -- working days ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start,n,expected", [
    ("2026-11-02", 0, "2026-11-02"),   # Monday, nothing added
    ("2026-11-02", 4, "2026-11-06"),   # Mon + 4 working days = Fri
    ("2026-11-06", 1, "2026-11-09"),   # Fri + 1 = next Mon
    ("2026-11-07", 1, "2026-11-09"),   # Sat + 1 = Mon
    ("2026-11-02", 10, "2026-11-16"),
])
def test_add_workdays(start: str, n: int, expected: str) -> None:
    assert proxy.add_workdays(date.fromisoformat(start), n).isoformat() == expected


@pytest.mark.parametrize("start,end,n", [
    ("2026-11-02", "2026-11-02", 0),   # entered and left the same day: no day paused
    ("2026-11-02", "2026-11-04", 2),   # Mon, Tue paused; back on Wed
    ("2026-11-06", "2026-11-09", 1),   # Fri paused; the weekend is no working day
    ("2026-11-07", "2026-11-09", 0),   # Sat to Mon: nothing
])
def test_workdays_between(start: str, end: str, n: int) -> None:
    assert proxy.workdays_between(date.fromisoformat(start), date.fromisoformat(end)) == n


# -- delegation ----------------------------------------------------------------------------------------

BAD_DELEGATIONS = [
    ("no signature or witness", {"until": "2026-12-31"}, [], "fields.data.signature"),
    ("witness without photo", {"until": "2026-12-31", "witness": {"name": "王小明"}}, [], "fields.data.photo"),
    ("witness without name", {"until": "2026-12-31", "witness": {"relation": "儿子"}, "photo": PHOTO}, [PHOTO],
     "fields.data.witness.name"),
    ("signature not attached", {"until": "2026-12-31", "signature": SIG}, [], "fields.data.signature"),
    ("no end date", {"signature": SIG}, [SIG], "fields.data.until"),
    ("not a date", {"until": "2026-02-30", "signature": SIG}, [SIG], "fields.data.until"),
    ("already over", {"until": "2026-11-01", "signature": SIG}, [SIG], "fields.data.until"),
    ("unknown key", {"until": "2026-12-31", "signature": SIG, "x": 1}, [SIG], "fields.data.x"),
]


@pytest.mark.parametrize("name,data,shas,path", BAD_DELEGATIONS, ids=[b[0] for b in BAD_DELEGATIONS])
def test_a_bad_delegation_is_rejected_with_the_path(pt: Town, name: str, data: dict[str, Any], shas: list[str],
                                                     path: str) -> None:
    m, _, res = proxy_matter(pt)
    eid = new_id()
    r = pt.push1("agent", pt.mut("matter_events", eid, {
        "matter_id": m, "kind": "delegation", "for_resident_id": res, "for_user_id": pt.actors["agent"].user_id,
        "data": data, "attachments": shas}, at=at("11-02", "10:00")))
    assert (r.status, r.error.code) == ("rejected", "invalid_request")
    assert r.error.message.startswith(path), r.error.message
    assert pt.store.get("matter_events", eid) is None
    c = pt.store.get("conflicts", r.conflict_id)        # visible to its author like every rejection
    assert c.data["kind"] == "rejected" and c.data["author_id"] == pt.actors["agent"].user_id


def test_a_delegation_names_a_resident_of_the_household_and_a_proxy_agent(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    other = resident(pt, pt.household("w1"), "李四")
    r = delegation(pt, "agent", m, other)
    assert (r.status, r.error.code) == ("rejected", "invalid_request") and "for_resident_id" in r.error.message
    r = event(pt, "agent", m, "delegation", at("11-02", "10:00"), for_resident_id=res,
              for_user_id=pt.actors["w2"].user_id, data={"until": "2026-12-31", "signature": SIG}, attachments=[SIG])
    assert (r.status, r.error.code) == ("rejected", "invalid_request") and "for_user_id" in r.error.message


def test_a_witnessed_delegation_with_a_photo_is_accepted(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    r = delegation(pt, "w1", m, res, until="2026-12-31", witness={"name": "王小明", "relation": "儿子"}, photo=PHOTO)
    assert r.status == "applied", r
    ev = pt.store.get("matter_events", r.id).data
    assert ev["actor_id"] == pt.actors["w1"].user_id                        # by whom
    assert ev["for_resident_id"] == res                                     # for whom
    assert ev["for_user_id"] == pt.actors["agent"].user_id                  # whom the resident authorises
    assert pt.store.blob_refs_of("matter_events", r.id) == [PHOTO]


def test_the_agent_cannot_act_without_a_delegation(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    attempts = [
        ("step", dict(step="accepted", **{"from": "submitted", "to": "in_progress"})),
        ("status", {"from": "submitted", "to": "in_progress"}),
        ("custody", dict(for_resident_id=res, data={"action": "received",
                                                    "items": [{"code": "id_card", "form": "original"}]})),
    ]
    for kind, fields in attempts:
        r = event(pt, "agent", m, kind, at("11-02", "11:00"), **fields)
        assert (r.status, r.error.code) == ("rejected", "no_delegation"), (kind, r)
    assert event(pt, "agent", m, "note", at("11-02", "11:00"), note="约好明天上门").status == "applied"
    assert status(pt, m) == "submitted"
    assert delegation(pt, "agent", m, res).status == "applied"
    r = event(pt, "agent", m, "step", at("11-02", "11:00"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    assert r.status == "applied", r


def test_an_expired_delegation_does_not_count(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    assert delegation(pt, "agent", m, res, until="2026-11-05", signature=SIG).status == "applied"
    r = event(pt, "agent", m, "step", at("11-06"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    assert (r.status, r.error.code) == ("rejected", "no_delegation") and "expired" in r.error.message
    assert event(pt, "agent", m, "step", at("11-05", "17:00"), step="accepted",
                 **{"from": "submitted", "to": "in_progress"}).status == "applied"


def test_a_grid_worker_may_record_custody_for_the_agent(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    r = event(pt, "w1", m, "custody", at("11-02"), for_resident_id=res,
              data={"action": "received", "items": [{"code": "household_register", "form": "original"}]})
    assert r.status == "applied", r


# -- the whole chain -----------------------------------------------------------------------------------

def test_the_whole_proxy_chain(pt: Town) -> None:
    """Visit (worker1) → delegation → accepted → materials → waiting (clock stops) → complete →
    window → result → originals back → delivered with a signature → feedback → 销号 (staff1)."""
    m, h, res = proxy_matter(pt)
    agent = pt.actors["agent"].user_id
    assert delegation(pt, "agent", m, res, when=at("11-02", "15:00")).status == "applied"
    # Mon 11-02: agent1 takes it on: the catalogue gives 10 working days and the town level
    r = event(pt, "agent", m, "step", at("11-02", "15:10"), step="accepted", note="已接件",
              **{"from": "submitted", "to": "in_progress"})
    assert r.status == "applied", r
    mt = pt.store.get("matters", m).data
    assert (mt["status"], mt["deadline"], mt["level"]) == ("in_progress", "2026-11-16", "town")
    assert mt["effective_deadline"] == "2026-11-16" and mt["paused_workdays"] == 0
    items = [{"code": "id_card", "form": "original"}, {"code": "household_register", "form": "original"},
             {"code": "photo_1inch", "form": "copy"}]
    assert event(pt, "agent", m, "custody", at("11-02", "15:20"), for_resident_id=res,
                 data={"action": "received", "items": items}, attachments=[PHOTO]).status == "applied"
    # Tue 11-03 to Thu 11-05 waiting for the bank card copy: two working days paused (Tue, Wed)
    r = event(pt, "agent", m, "step", at("11-03", "09:00"), step="waiting_materials",
              data={"missing": ["bank_card_copy"]}, **{"from": "in_progress", "to": "waiting_materials"})
    assert r.status == "applied", r
    mt = pt.store.get("matters", m).data
    assert mt["status"] == "waiting_materials" and same_time(mt["paused_since"], at("11-03", "09:00"))
    r = event(pt, "agent", m, "step", at("11-05", "08:30"), step="materials_complete",
              **{"from": "waiting_materials", "to": "in_progress"})
    assert r.status == "applied", r
    mt = pt.store.get("matters", m).data
    assert (mt["paused_workdays"], mt["paused_since"], mt["effective_deadline"]) == (2, None, "2026-11-18")
    # to town
    assert event(pt, "agent", m, "custody", at("11-06", "09:00"), for_resident_id=res,
                 data={"action": "handed_to_window", "items": items}).status == "applied"
    assert event(pt, "agent", m, "step", at("11-06", "09:05"), step="submitted_to_window",
                 data={"window": "章水镇便民服务中心", "receipt_no": "SB-1106-031"}).status == "applied"
    r = event(pt, "agent", m, "step", at("11-09", "14:00"), step="result_obtained")
    assert (r.status, r.error.code) == ("rejected", "invalid_request") and "note" in r.error.message
    assert event(pt, "agent", m, "step", at("11-09", "14:00"), step="result_obtained", note="参保登记已办好，领回社保卡",
                 attachments=[PHOTO]).status == "applied"
    originals = items[:2]
    assert event(pt, "agent", m, "custody", at("11-09", "14:05"), for_resident_id=res,
                 data={"action": "back_from_window", "items": originals}).status == "applied"
    # delivery before the originals are returned is refused: an ID card is never unaccounted for
    r = event(pt, "agent", m, "step", at("11-10", "10:00"), step="delivered", for_resident_id=res,
              data={"signature": DELIVERY_SIG}, attachments=[DELIVERY_SIG], **{"from": "in_progress", "to": "resolved"})
    assert (r.status, r.error.code) == ("rejected", "invalid_request")
    assert "household_register" in r.error.message and "id_card" in r.error.message
    assert event(pt, "agent", m, "custody", at("11-10", "09:55"), for_resident_id=res,
                 data={"action": "returned", "items": originals}).status == "applied"
    r = event(pt, "agent", m, "step", at("11-10", "10:00"), step="delivered", for_resident_id=res,
              data={"signature": DELIVERY_SIG}, attachments=[DELIVERY_SIG], **{"from": "in_progress", "to": "resolved"})
    assert r.status == "applied", r
    assert status(pt, m) == "resolved"
    assert same_time(pt.store.get("matters", m).data["resolved_at"], at("11-10"))
    # a later visit: worker1 records the resident's rating, offline
    assert event(pt, "w1", m, "feedback", at("11-12"), for_resident_id=res,
                 data={"satisfaction": "satisfied", "comment": "不用下山就办好了"}).status == "applied"
    assert pt.move("staff", m, "resolved", "closed", note="销号").status == "applied"

    summary = proxy.matter_summary(pt.store, m, today=date(2026, 11, 12))
    assert summary is not None and summary["status"] == "closed"
    assert [s["step"] for s in summary["steps"]] == ["accepted", "waiting_materials", "materials_complete",
                                                      "submitted_to_window", "result_obtained", "delivered"]
    assert all(s["by"] == agent for s in summary["steps"])
    assert summary["steps"][-1]["for_resident_id"] == res
    assert summary["steps"][-1]["signature"] == {"sha256": DELIVERY_SIG, "state": "uploading"}
    trail = {(c["code"], c["form"]): c for c in summary["custody"]}
    assert [s["action"] for s in trail[("id_card", "original")]["trail"]] == \
        ["received", "handed_to_window", "back_from_window", "returned"]
    assert trail[("id_card", "original")]["place"] == "resident"
    assert trail[("photo_1inch", "copy")]["place"] == "window"
    assert all(s["by"] == agent and s["for"] == res for c in summary["custody"] for s in c["trail"])
    assert summary["unaccounted_originals"] == []
    assert summary["feedback"][0]["satisfaction"] == "satisfied"
    assert summary["delegations"][0]["authoriser_id"] == res and summary["delegations"][0]["agent_id"] == agent
    fb = [e for e in pt.store.get_many("matter_events", pt.store.ids_where("matter_events", "matter_id", m)).values()
          if e.data["kind"] == "feedback"][0].data["data"]
    assert fb == {"satisfaction": "satisfied", "comment": "不用下山就办好了", "rating": 5, "satisfied": True}
    # the dashboard: on time against the moved deadline, and a 不下山 matter of a mountain household
    d = dashboard(pt.store, pt.ids["town"], date(2026, 11, 1), date(2026, 11, 30), date(2026, 11, 20))
    assert d["on_time"] == {"on_time": 1, "with_deadline": 1}
    assert d["bu_xiashan"] == {"proxy": 1, "completed": 1}


STEP_SHAPES = [
    ("unknown step", {"step": "flew_to_town"}, "fields.step"),
    ("accepted without to", {"step": "accepted"}, "fields.to"),
    ("window step with a to", {"step": "submitted_to_window", "from": "in_progress", "to": "resolved"}, "fields.to"),
    ("delivered without signature", {"step": "delivered", "from": "in_progress", "to": "resolved"},
     "fields.for_resident_id"),
    ("escalated to the village", {"step": "escalated", "from": "in_progress", "to": "escalated",
                                  "data": {"level": "village"}}, "fields.data.level"),
    ("a step name on a note", {"kind": "note", "step": "accepted"}, "fields.step"),
    ("a to on a custody event", {"kind": "custody", "to": "resolved"}, "fields.to"),
]


@pytest.mark.parametrize("name,fields,path", STEP_SHAPES, ids=[s[0] for s in STEP_SHAPES])
def test_step_shapes(pt: Town, name: str, fields: dict[str, Any], path: str) -> None:
    m, _, res = proxy_matter(pt)
    delegation(pt, "agent", m, res)
    kind = fields.pop("kind", "step")
    r = event(pt, "agent", m, kind, at("11-03"), **fields)
    assert (r.status, r.error.code) == ("rejected", "invalid_request"), r
    assert r.error.message.startswith(path), r.error.message


CUSTODY_SHAPES = [
    ("no resident", {"data": {"action": "received", "items": [{"code": "id_card", "form": "original"}]}},
     "fields.for_resident_id"),
    ("bad action", {"data": {"action": "lost", "items": [{"code": "id_card", "form": "original"}]}},
     "fields.data.action"),
    ("no items", {"data": {"action": "received", "items": []}}, "fields.data.items"),
    ("bad form", {"data": {"action": "received", "items": [{"code": "id_card", "form": "scan"}]}},
     "fields.data.items[0].form"),
    ("not on the checklist", {"data": {"action": "received", "items": [{"code": "passport", "form": "original"}]}},
     "fields.data.items[0].code"),
]


@pytest.mark.parametrize("name,fields,path", CUSTODY_SHAPES, ids=[s[0] for s in CUSTODY_SHAPES])
def test_custody_shapes(pt: Town, name: str, fields: dict[str, Any], path: str) -> None:
    m, _, res = proxy_matter(pt)
    delegation(pt, "agent", m, res)
    fields.setdefault("for_resident_id", res) if name != "no resident" else None
    r = event(pt, "agent", m, "custody", at("11-03"), **fields)
    assert (r.status, r.error.code) == ("rejected", "invalid_request"), r
    assert r.error.message.startswith(path), r.error.message


def test_material_off_the_checklist_needs_a_name(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    delegation(pt, "agent", m, res)
    r = event(pt, "agent", m, "custody", at("11-03"), for_resident_id=res,
              data={"action": "received", "items": [{"code": "disability_card", "form": "original", "name": "残疾证"}]})
    assert r.status == "applied", r


def test_escalation_by_the_agent_raises_the_level(pt: Town) -> None:
    m, _, res = proxy_matter(pt, category="proxy.utilities")     # lowest level: village
    delegation(pt, "agent", m, res)
    event(pt, "agent", m, "step", at("11-03"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    assert pt.store.get("matters", m).data["level"] == "village"
    r = event(pt, "agent", m, "step", at("11-04"), step="escalated", note="村里办不了", data={"level": "town"},
              **{"from": "in_progress", "to": "escalated"})
    assert r.status == "applied", r
    mt = pt.store.get("matters", m).data
    assert (mt["status"], mt["level"]) == ("escalated", "town")


# -- feedback --------------------------------------------------------------------------------------------

def test_dissatisfied_reopens_the_matter_for_staff(pt: Town) -> None:
    m, _, res = proxy_matter(pt, category="proxy.medical_prescription")   # no originals to return
    delegation(pt, "agent", m, res)
    event(pt, "agent", m, "step", at("11-03"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    event(pt, "agent", m, "step", at("11-04"), step="delivered", for_resident_id=res,
          data={"witness": {"name": "王小明", "relation": "儿子"}, "photo": PHOTO}, attachments=[PHOTO],
          **{"from": "in_progress", "to": "resolved"})
    assert status(pt, m) == "resolved"
    r = event(pt, "w1", m, "feedback", at("11-06"), data={"satisfaction": "bogus"})
    assert (r.status, r.error.code) == ("rejected", "invalid_request")
    r = event(pt, "w1", m, "feedback", at("11-06"), for_resident_id=res,
              data={"satisfaction": "dissatisfied", "comment": "药不对"})
    assert r.status == "applied", r
    assert status(pt, m) == "reopened"
    fb = pt.store.get("matter_events", r.id).data["data"]
    assert fb == {"satisfaction": "dissatisfied", "comment": "药不对", "rating": 1, "satisfied": False}


# -- the deadline pause on the dashboard -------------------------------------------------------------------

def test_waiting_for_materials_is_never_overdue_and_moves_the_deadline(pt: Town) -> None:
    m, _, res = proxy_matter(pt, category="proxy.utilities")       # 5 working days
    delegation(pt, "agent", m, res)
    event(pt, "agent", m, "step", at("11-02", "11:00"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    assert pt.store.get("matters", m).data["deadline"] == "2026-11-09"
    event(pt, "agent", m, "step", at("11-03"), step="waiting_materials", **{"from": "in_progress", "to": "waiting_materials"})
    d = dashboard(pt.store, pt.ids["town"], date(2026, 11, 1), date(2026, 11, 30), date(2026, 11, 20))
    assert d["overdue_now"] == 0                       # the clock stands still while waiting
    # back on Wed 11-18: Tue 11-03 .. Tue 11-17 = 11 working days paused; 11-09 + 11 = 11-24
    event(pt, "agent", m, "step", at("11-18"), step="materials_complete", **{"from": "waiting_materials", "to": "in_progress"})
    mt = pt.store.get("matters", m).data
    assert (mt["paused_workdays"], mt["effective_deadline"]) == (11, "2026-11-24")
    d = dashboard(pt.store, pt.ids["town"], date(2026, 11, 1), date(2026, 11, 30), date(2026, 11, 20))
    assert d["overdue_now"] == 0                       # 11-24 is still ahead
    d = dashboard(pt.store, pt.ids["town"], date(2026, 11, 1), date(2026, 11, 30), date(2026, 11, 25))
    assert d["overdue_now"] == 1


# -- the three conflict cases of issue 5 ---------------------------------------------------------------------

def test_reassigned_while_the_agent_submits_at_the_window_offline(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    a1, a2 = pt.actors["agent"].user_id, pt.actors["agent2"].user_id
    delegation(pt, "agent", m, res)
    event(pt, "agent", m, "step", at("11-02", "11:00"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    seen1 = pt.pull_all("agent")
    assert ("matters", m) in seen1
    # staff1 hands the matter to agent2; agent1, offline in town, marks it submitted at the window
    r = pt.push1("staff", pt.mut("matters", m, {"assignee_id": a2}, base=pt.version("matters", m), at=at("11-03", "09:00")))
    assert r.status == "applied", r
    r = event(pt, "agent", m, "step", at("11-03", "10:00"), step="submitted_to_window", note="已交窗口")
    assert r.status == "conflict", r
    ev = pt.store.get("matter_events", r.id).data
    assert ev["applied"] is False and ev["actor_id"] == a1 and ev["note"] == "已交窗口"      # kept, not applied
    c = pt.store.get("conflicts", r.conflict_id).data
    assert c["kind"] == "delegation" and c["status"] == "open"
    assert c["fields"]["assignee_id"]["incoming"] == a1 and c["fields"]["assignee_id"]["current"] == a2
    assert c["fields"]["assignee_id"]["current_by"] == pt.actors["staff"].user_id
    assert {a1, a2, pt.actors["staff"].user_id} <= set(c["involved"])
    # both agents see what happened after sync; agent1 no longer holds the matter
    after1, after2 = pt.pull_all("agent"), pt.pull_all("agent2")
    assert ("conflicts", r.conflict_id) in after1 and ("conflicts", r.conflict_id) in after2
    assert ("matters", m) not in after1 and ("matters", m) in after2
    assert after2[("matter_events", r.id)].data["applied"] is False
    assert ("conflicts", r.conflict_id) in pt.pull_all("staff")
    # only staff decide: agent1 may not push it through; staff accept it as done
    cv = pt.version("conflicts", r.conflict_id)
    r2 = pt.push1("agent", pt.mut("conflicts", r.conflict_id, {"resolution": "incoming"}, base=cv))
    assert (r2.status, r2.error.code) == ("rejected", "forbidden")
    assert pt.push1("staff", pt.mut("conflicts", r.conflict_id, {"resolution": "incoming"}, base=cv)).status == "applied"
    assert pt.store.get("matter_events", r.id).data["applied"] is True


def test_an_agent_who_was_never_delegated_is_simply_forbidden(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    r = event(pt, "agent2", m, "step", at("11-03"), step="submitted_to_window")
    assert (r.status, r.error.code) == ("rejected", "forbidden")


def test_a_status_move_after_reassignment_is_kept_for_staff_too(pt: Town) -> None:
    m, _, res = proxy_matter(pt)
    delegation(pt, "agent", m, res)
    event(pt, "agent", m, "step", at("11-02", "11:00"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    pt.push1("staff", pt.mut("matters", m, {"assignee_id": pt.actors["agent2"].user_id},
                             base=pt.version("matters", m), at=at("11-03", "09:00")))
    r = event(pt, "agent", m, "step", at("11-03", "10:00"), step="waiting_materials",
              **{"from": "in_progress", "to": "waiting_materials"})
    assert r.status == "conflict"
    assert status(pt, m) == "in_progress"                     # not applied
    cv = pt.version("conflicts", r.conflict_id)
    assert pt.push1("staff", pt.mut("conflicts", r.conflict_id, {"resolution": "incoming"}, base=cv)).status == "applied"
    assert status(pt, m) == "waiting_materials"


def test_signature_blob_after_the_delivery_event_is_uploading_never_missing(pt: Town, tmp_path: Any) -> None:
    m, _, res = proxy_matter(pt, category="proxy.medical_prescription")
    delegation(pt, "agent", m, res)
    event(pt, "agent", m, "step", at("11-03"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    body = b"\x89PNG signature strokes"
    sha = hashlib.sha256(body).hexdigest()
    r = event(pt, "agent", m, "step", at("11-04"), step="delivered", for_resident_id=res, data={"signature": sha},
              attachments=[sha], **{"from": "in_progress", "to": "resolved"})
    assert r.status == "applied" and status(pt, m) == "resolved"          # the record does not wait for the blob
    sig = proxy.matter_summary(pt.store, m)["steps"][-1]["signature"]
    assert sig == {"sha256": sha, "state": "uploading"}
    blobs = BlobStore(str(tmp_path / "blobs"))
    blobs.patch(pt.store, pt.actors["agent"], sha, 0, len(body), body[:5])
    assert proxy.matter_summary(pt.store, m)["steps"][-1]["signature"]["state"] == "uploading"   # half there
    blobs.patch(pt.store, pt.actors["agent"], sha, 5, len(body), body[5:])
    assert proxy.matter_summary(pt.store, m)["steps"][-1]["signature"]["state"] == "received"
    assert blobs.may_read(pt.store, pt.actors["staff"], sha)              # the event refers to it


def test_delegation_ends_on_closing_and_unsynced_work_is_pushed_first(pt: Town) -> None:
    m, _, res = proxy_matter(pt, category="proxy.medical_prescription")
    delegation(pt, "agent", m, res)
    event(pt, "agent", m, "step", at("11-03"), step="accepted", **{"from": "submitted", "to": "in_progress"})
    page = None
    from sync import engine
    page = engine.pull(pt.store, pt.actors["agent"], None, 500)
    while page.more:
        page = engine.pull(pt.store, pt.actors["agent"], page.cursor, 500)
    cursor = page.cursor
    # staff resolve and close it in town while the agent, offline, notes a custody return
    pt.move("staff", m, "in_progress", "resolved")
    pt.move("staff", m, "resolved", "closed")
    r = event(pt, "agent", m, "custody", at("11-05"), for_resident_id=res,
              data={"action": "returned", "items": [{"code": "medical_record_book", "form": "original"}]})
    assert r.status == "conflict"                                         # pushed first, kept, shown
    assert pt.store.get("conflicts", r.conflict_id).data["kind"] == "delegation"
    page = engine.pull(pt.store, pt.actors["agent"], cursor, 500)
    removed = {(c.collection, c.id) for c in page.changes if c.removed}
    assert ("matters", m) in removed
    assert ("conflicts", r.conflict_id) in {(c.collection, c.id) for c in page.changes if not c.removed}


# -- sensitive matters (信访) ----------------------------------------------------------------------------------

@pytest.fixture
def api(tmp_path: Any) -> Any:
    db = backend.new_db(tmp_path)
    store = backend.open_store(db)
    store.migrate()
    t = build_town(store)
    install_catalogue(store)
    store.close()
    app = create_app(Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs"),
                                                          pwa_dir=str(tmp_path / "no-pwa"))))
    with TestClient(app) as client:
        yield client, t


def _push(client: Any, t: Town, who: str, *muts: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post("/api/v1/sync/push", json={"protocol": 1, "mutations": list(muts)},
                    headers={"Authorization": f"Bearer {t.tokens[who]}"})
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


def _pull_ids(client: Any, t: Town, who: str) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    cursor = None
    while True:
        r = client.get("/api/v1/sync/pull", params={"cursor": cursor} if cursor else {},
                       headers={"Authorization": f"Bearer {t.tokens[who]}"})
        assert r.status_code == 200, r.text
        body = r.json()
        out |= {(c["collection"], c["id"]) for c in body["changes"] if not c.get("removed")}
        cursor = body["cursor"]
        if not body["more"]:
            return out


def test_a_petition_is_seen_by_its_chain_only_and_every_read_is_audited(api: Any) -> None:
    client, t = api
    h, res, m = new_id(), new_id(), new_id()
    agent = t.actors["agent"].user_id
    results = _push(client, t, "w1",
                    t.mut("households", h, {"grid_id": t.ids["g1"], "address": "上岙1号", "head_name": "陈大伯"}),
                    t.mut("residents", res, {"household_id": h, "name": "陈大伯"}),
                    t.mut("matters", m, {"household_id": h, "resident_id": res, "title": "反映征地补偿",
                                          "category": "proxy.petition", "handling_mode": "proxy",
                                          "assignee_id": agent}))
    assert [r["status"] for r in results] == ["applied"] * 3
    assert ("matters", m) in _pull_ids(client, t, "w1")          # who raised it
    assert ("matters", m) in _pull_ids(client, t, "agent")       # its agent
    assert ("matters", m) in _pull_ids(client, t, "staff")       # the town
    assert ("matters", m) not in _pull_ids(client, t, "w2")      # the same grid's other worker does not
    assert ("households", h) in _pull_ids(client, t, "w2")       # (the household card is not sensitive)
    hdr = {"Authorization": f"Bearer {t.tokens['staff']}"}
    r = client.get("/api/v1/audit/sensitive-reads", params={"matter_id": m}, headers=hdr)
    assert r.status_code == 200, r.text
    reads = r.json()["reads"]
    assert {x["username"] for x in reads} == {"worker1", "agent1", "staff1"}
    assert all(x["via"] == "pull" and x["matter_id"] == m and x["device_id"] for x in reads)
    # the summary API is a read too
    s = client.get(f"/api/v1/matters/{m}/proxy", headers=hdr)
    assert s.status_code == 200 and s.json()["sensitive"] is True
    reads = client.get("/api/v1/audit/sensitive-reads", params={"matter_id": m}, headers=hdr).json()["reads"]
    assert reads[0]["via"] == "api" and reads[0]["username"] == "staff1"
    # a worker may not read the audit, nor the matter through the API
    w2 = {"Authorization": f"Bearer {t.tokens['w2']}"}
    r = client.get("/api/v1/audit/sensitive-reads", headers=w2)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.get(f"/api/v1/matters/{m}/proxy", headers=w2)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # an ordinary matter's reads are not audited
    m2 = new_id()
    _push(client, t, "w1", t.mut("matters", m2, {"household_id": h, "title": "路灯坏了"}))
    _pull_ids(client, t, "staff")
    assert all(x["matter_id"] == m for x in client.get("/api/v1/audit/sensitive-reads", headers=hdr).json()["reads"])
