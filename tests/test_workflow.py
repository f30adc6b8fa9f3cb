"""The matter state machine: every transition, who may make it, and the §6 status rules through push."""

from __future__ import annotations

import itertools

import pytest

from sync import workflow

from .conftest import Town, new_id

ROLES = ("grid_worker", "proxy_agent", "staff", "admin")


def test_table_is_closed_over_known_statuses() -> None:
    for frm, to in workflow.TRANSITIONS:
        assert frm in workflow.STATUSES and to in workflow.STATUSES
    assert workflow.INITIAL == "submitted"
    # every status is reachable from submitted
    reach, todo = {"submitted"}, ["submitted"]
    while todo:
        s = todo.pop()
        for (f, t) in workflow.TRANSITIONS:
            if f == s and t not in reach:
                reach.add(t)
                todo.append(t)
    assert reach == set(workflow.STATUSES)


# Every pair of statuses × role × assignee-or-not: the table decides, nothing else.
CASES = [(f, t, role, assignee) for f, t in itertools.product(workflow.STATUSES, repeat=2)
         for role in ROLES for assignee in (False, True)]


@pytest.mark.parametrize("frm,to,role,assignee", CASES,
                         ids=[f"{f}->{t}:{r}{'(assignee)' if a else ''}" for f, t, r, a in CASES])
def test_may_transition(frm: str, to: str, role: str, assignee: bool) -> None:
    who = workflow.TRANSITIONS.get((frm, to))
    expected = who is not None and (role in who or (assignee and workflow.ASSIGNEE in who))
    assert workflow.may_transition(frm, to, role, assignee) is expected
    assert workflow.is_transition(frm, to) is (who is not None)


NAMED = [
    ("staff accept a submitted matter (受理)", "submitted", "accepted", "staff", False, True),
    ("a grid worker may not accept", "submitted", "accepted", "grid_worker", False, False),
    ("staff dispatch (派单)", "accepted", "assigned", "staff", False, True),
    ("the assignee takes it (接单)", "assigned", "in_progress", "proxy_agent", True, True),
    ("someone else's agent may not take it", "assigned", "in_progress", "proxy_agent", False, False),
    ("waiting for materials pauses", "in_progress", "waiting_materials", "proxy_agent", True, True),
    ("materials complete resumes", "waiting_materials", "in_progress", "proxy_agent", True, True),
    ("the assignee escalates (上报)", "in_progress", "escalated", "grid_worker", True, True),
    ("the assignee resolves (办结)", "in_progress", "resolved", "proxy_agent", True, True),
    ("only staff close (销号)", "resolved", "closed", "proxy_agent", True, False),
    ("staff close (销号)", "resolved", "closed", "staff", False, True),
    ("staff reopen a resolved matter", "resolved", "reopened", "staff", False, True),
    ("nobody skips from submitted to closed", "submitted", "closed", "admin", False, False),
    ("a closed matter cannot be resolved again", "closed", "resolved", "staff", False, False),
]


@pytest.mark.parametrize("name,frm,to,role,assignee,ok", NAMED, ids=[n[0] for n in NAMED])
def test_named_transitions(name: str, frm: str, to: str, role: str, assignee: bool, ok: bool) -> None:
    assert workflow.may_transition(frm, to, role, assignee) is ok


def test_full_life_of_a_proxy_matter(town: Town) -> None:
    m = town.matter("w1", handling_mode="proxy", assignee_id=town.actors["agent"].user_id)
    town.delegate(m)
    steps = [("staff", "submitted", "accepted"), ("staff", "accepted", "assigned"), ("agent", "assigned", "in_progress"),
             ("agent", "in_progress", "waiting_materials"), ("agent", "waiting_materials", "in_progress"),
             ("agent", "in_progress", "resolved"), ("staff", "resolved", "closed")]
    for who, frm, to in steps:
        r = town.move(who, m, frm, to)
        assert r.status == "applied", (who, frm, to, r)
        assert town.store.get("matters", m).data["status"] == to
    rec = town.store.get("matters", m).data
    assert rec["resolved_at"] and rec["closed_at"]


def test_status_is_read_only_to_upsert(town: Town) -> None:
    m = town.matter()
    r = town.push1("staff", town.mut("matters", m, {"status": "closed"}, base=town.version("matters", m)))
    assert r.status == "applied"
    assert town.store.get("matters", m).data["status"] == "submitted"


def test_concurrent_moves_become_a_conflict_with_the_event_kept(town: Town) -> None:
    m = town.matter()
    town.move("staff", m, "submitted", "accepted")
    town.move("staff", m, "accepted", "assigned")
    # staff, offline on a stale view, also tried to refuse it: valid from what they saw, not from now
    r = town.move("staff", m, "submitted", "not_accepted", note="重复反映")
    assert r.status == "conflict"
    ev = town.store.get("matter_events", r.id)
    assert ev is not None and ev.data["applied"] is False and ev.data["note"] == "重复反映"
    c = town.store.get("conflicts", r.conflict_id)
    assert c.data["kind"] == "transition"
    assert town.store.get("matters", m).data["status"] == "assigned"


def test_invalid_from_both_is_rejected_and_not_stored(town: Town) -> None:
    m = town.matter()
    eid = new_id()
    r = town.push1("staff", town.mut("matter_events", eid, {"matter_id": m, "kind": "status", "from": "submitted",
                                                            "to": "closed"}))
    assert (r.status, r.error.code) == ("rejected", "invalid_transition")
    assert town.store.get("matter_events", eid) is None


def test_role_that_may_not_move_is_forbidden(town: Town) -> None:
    m = town.matter()
    r = town.move("w1", m, "submitted", "accepted")
    assert (r.status, r.error.code) == ("rejected", "forbidden")


def test_the_same_move_twice_is_not_a_conflict(town: Town) -> None:
    m = town.matter()
    assert town.move("staff", m, "submitted", "accepted").status == "applied"
    r = town.move("admin", m, "submitted", "accepted")
    assert r.status == "merged"
    assert town.store.get("matter_events", r.id).data["applied"] is False


def test_transition_conflict_is_decided_by_staff(town: Town) -> None:
    agent = town.actors["agent"].user_id
    m = town.matter("w1", handling_mode="proxy", assignee_id=agent)
    town.delegate(m)
    town.move("staff", m, "submitted", "accepted")
    town.move("staff", m, "accepted", "assigned")
    town.move("agent", m, "assigned", "in_progress")
    town.move("staff", m, "in_progress", "escalated")
    r = town.move("agent", m, "in_progress", "resolved", note="已办结")
    assert r.status == "conflict"
    cid = r.conflict_id
    c = town.store.get("conflicts", cid)
    # the author may not force it through; staff may
    r2 = town.push1("agent", town.mut("conflicts", cid, {"resolution": "incoming"}, base=c.version))
    assert (r2.status, r2.error.code) == ("rejected", "forbidden")
    r3 = town.push1("staff", town.mut("conflicts", cid, {"resolution": "incoming"}, base=c.version))
    assert r3.status == "applied"
    assert town.store.get("matters", m).data["status"] == "resolved"
    assert town.store.get("matter_events", r.id).data["applied"] is True
    r4 = town.push1("staff", town.mut("conflicts", cid, {"resolution": "current"}, base=r3.version))
    assert (r4.status, r4.error.code) == ("rejected", "already_resolved")
