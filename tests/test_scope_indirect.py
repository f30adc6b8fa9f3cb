"""Scope on the indirect paths (issue 12): moves, sensitive creation, conflict resolutions, oracles.

Each test reproduces one finding of the December 2026 penetration test against the engine and pins
its fix. The direct paths (plain pulls and pushes) are in test_scope.py; the whole class is swept
by the property test in test_scope_property.py and the matrix in test_authz_matrix.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from sync import engine
from sync.catalogue import install_catalogue

from .conftest import Town, new_id


@pytest.fixture
def t(town: Town) -> Town:
    install_catalogue(town.store)
    return town


def seen(t: Town, who: str) -> set[tuple[str, str]]:
    return set(t.pull_all(who))


def delegated_household(t: Town) -> tuple[str, str, str]:
    """worker1's household in g1 with a proxy matter delegated to agent1: (household, resident, matter)."""
    h = t.household("w1", "g1")
    res = new_id()
    assert t.push1("w1", t.mut("residents", res, {"household_id": h, "name": "王阿婆"})).status == "applied"
    m = t.matter("w1", h, resident_id=res, handling_mode="proxy", category="proxy.citizen_card",
                 assignee_id=t.actors["agent"].user_id)
    t.delegate(m)
    return h, res, m


# -- finding 1: a record held through a delegation is never re-homed -------------------------------------------

def test_an_agent_cannot_move_a_delegated_household_to_another_village(t: Town) -> None:
    h, res, m = delegated_household(t)
    assert ("households", h) in seen(t, "agent")
    r = t.push1("agent", t.mut("households", h, {"grid_id": t.ids["g3"]}, base=t.version("households", h)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    assert t.store.get("households", h).data["grid_id"] == t.ids["g1"]
    assert ("households", h) not in seen(t, "w3") and ("residents", res) not in seen(t, "w3")
    assert ("households", h) in seen(t, "w1")


def test_an_agent_cannot_move_a_resident_into_another_household(t: Town) -> None:
    h, res, m = delegated_household(t)
    other = t.household("w3", "g3")
    r = t.push1("agent", t.mut("residents", res, {"household_id": other}, base=t.version("residents", res)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    # not even between two households of the same grid: the agent holds neither place
    h2 = t.household("w1", "g1")
    r = t.push1("agent", t.mut("residents", res, {"household_id": h2}, base=t.version("residents", res)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    assert t.store.get("residents", res).data["household_id"] == h


def test_a_worker_dispatched_a_matter_elsewhere_cannot_recategorise_or_move_it(t: Town) -> None:
    h = t.household("w3", "g3")
    m = t.matter("w3", h)
    # staff dispatch worker1 (of another village) to the matter: worker1 holds it by delegation only
    r = t.push1("staff", t.mut("matters", m, {"assignee_id": t.actors["w1"].user_id}, base=t.version("matters", m)))
    assert r.status == "applied", r
    assert ("matters", m) in seen(t, "w1")
    r = t.push1("w1", t.mut("matters", m, {"category": "proxy.petition"}, base=t.version("matters", m)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    r = t.push1("w1", t.mut("households", h, {"grid_id": t.ids["g1"]}, base=t.version("households", h)))
    assert r.status == "rejected"


def test_a_worker_moves_within_their_own_grids_and_staff_across_their_town(t: Town) -> None:
    h = t.household("w1", "g1")
    r = t.push1("w1", t.mut("households", h, {"grid_id": t.ids["g2"]}, base=t.version("households", h)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")          # g2 is not worker1's grid
    r = t.push1("staff", t.mut("households", h, {"grid_id": t.ids["g3"]}, base=t.version("households", h)))
    assert r.status == "applied", r
    assert ("households", h) in seen(t, "w3") and ("households", h) not in seen(t, "w1")


# -- finding 2: the parent's scope first, whatever the new record's keys ---------------------------------------

def test_a_sensitive_matter_on_another_villages_household_is_refused(t: Town) -> None:
    foreign = t.household("w3", "g3")
    m = new_id()
    r = t.push1("w1", t.mut("matters", m, {"household_id": foreign, "title": "反映问题", "category": "proxy.petition"}))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    assert t.store.get("matters", m) is None
    # the same on worker1's own household is fine, and events and attachments on it follow
    own = t.household("w1", "g1")
    m2 = t.matter("w1", own, category="proxy.petition")
    ev = t.push1("w1", t.mut("matter_events", new_id(), {"matter_id": m2, "kind": "note", "note": "补充"}))
    assert ev.status == "applied"


# -- finding 3: a resolution is a write ------------------------------------------------------------------------

def _resident_conflict(t: Town) -> tuple[str, str]:
    """worker1's two phones edit a resident's household differently: (resident, conflict id)."""
    h1, h2, h3 = (t.household("w1", "g1") for _ in range(3))
    res = new_id()
    t.push1("w1", t.mut("residents", res, {"household_id": h1, "name": "李大妈"}))
    base = t.version("residents", res)
    assert t.push1("w2", t.mut("residents", res, {"household_id": h2}, base=base)).status == "applied"
    r = t.push1("w1", t.mut("residents", res, {"household_id": h3}, base=base))
    assert r.status == "conflict", r
    return res, r.conflict_id


def test_resolving_with_a_value_outside_scope_is_refused(t: Town) -> None:
    res, cid = _resident_conflict(t)
    foreign = t.household("w3", "g3")
    r = t.push1("w1", t.mut("conflicts", cid, {"resolution": "value", "value": foreign}, base=t.version("conflicts", cid)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    assert ("residents", res) not in seen(t, "w3")
    assert t.store.get("conflicts", cid).data["status"] == "open"


def test_resolving_with_a_household_that_does_not_exist_is_refused(t: Town) -> None:
    res, cid = _resident_conflict(t)
    r = t.push1("w1", t.mut("conflicts", cid, {"resolution": "value", "value": new_id()}, base=t.version("conflicts", cid)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    assert t.store.get("residents", res).data["household_id"] != ""


def test_an_author_who_lost_scope_can_dismiss_but_not_write(t: Town) -> None:
    h = t.household("w1", "g1")
    base = t.version("households", h)
    t.push1("w2", t.mut("households", h, {"phone": "13900000001"}, base=base))
    r = t.push1("w1", t.mut("households", h, {"phone": "13900000002"}, base=base))
    assert r.status == "conflict"
    cid = r.conflict_id
    # staff move the household to the other village: worker1 no longer holds it
    assert t.push1("staff", t.mut("households", h, {"grid_id": t.ids["g3"]},
                                  base=t.version("households", h))).status == "applied"
    r = t.push1("w1", t.mut("conflicts", cid, {"resolution": "incoming"}, base=t.version("conflicts", cid)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    phone = t.store.get("households", h).data["phone"]
    r = t.push1("w1", t.mut("conflicts", cid, {"resolution": "current"}, base=t.version("conflicts", cid)))
    assert r.status == "applied"
    assert t.store.get("households", h).data["phone"] == phone            # dismissed, nothing written


def test_resolution_keeps_blob_references_in_step(t: Town) -> None:
    m = t.matter("w1")
    a, b = "a" * 64, "b" * 64
    base = t.version("matters", m)
    assert t.push1("w2", t.mut("matters", m, {"photos": [a]}, base=base)).status == "applied"
    r = t.push1("w1", t.mut("matters", m, {"photos": [b]}, base=base))
    assert r.status == "conflict"
    assert t.store.get("matters", m).data["photos"] == [b]                # the later edit won
    r = t.push1("w1", t.mut("conflicts", r.conflict_id, {"resolution": "current"},
                            base=t.version("conflicts", r.conflict_id)))
    assert r.status == "applied"
    # the photo shown is the one staff can open, and the losing one is no longer cited by the matter
    assert t.store.get("matters", m).data["photos"] == [a]
    assert t.store.blob_refs_of("matters", m) == [a]


# -- finding 4: one predicate for sensitive -------------------------------------------------------------------

def test_a_matter_moved_to_the_petition_line_leaves_the_grids_phones(t: Town) -> None:
    m = t.matter("w1")
    assert ("matters", m) in seen(t, "w2")
    r = t.push1("staff", t.mut("matters", m, {"line": "xinfang"}, base=t.version("matters", m)))
    assert r.status == "applied", r
    assert t.store.get("matters", m).data["sensitive"] is True
    assert ("matters", m) not in seen(t, "w2")
    assert ("matters", m) in seen(t, "staff")


def test_a_category_flagged_sensitive_takes_its_matters_off_the_grid(t: Town) -> None:
    m = t.matter("w1", category="proxy.utilities")
    assert ("matters", m) in seen(t, "w2")
    cat = t.store.ids_where("categories", "code", "proxy.utilities")[0]
    r = t.push1("admin", t.mut("categories", cat, {"sensitive": True}, base=t.version("categories", cat)))
    assert r.status == "applied", r
    assert t.store.get("matters", m).data["sensitive"] is True
    assert ("matters", m) not in seen(t, "w2")


def test_only_town_staff_make_a_petition_an_ordinary_matter(t: Town) -> None:
    m = t.matter("w1", category="proxy.petition")
    r = t.push1("w1", t.mut("matters", m, {"category": "proxy.utilities"}, base=t.version("matters", m)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    r = t.push1("staff", t.mut("matters", m, {"category": "proxy.utilities"}, base=t.version("matters", m)))
    assert r.status == "applied", r
    assert t.store.get("matters", m).data["sensitive"] is False


# -- finding 8: no oracles ------------------------------------------------------------------------------------

def _answer(r: Any) -> tuple[str, str | None, str | None]:
    return r.status, r.error.code if r.error else None, r.error.message.replace(r.id or "", "<id>") if r.error else None


def test_an_id_outside_scope_answers_as_an_unknown_id(t: Town) -> None:
    foreign = t.household("w3", "g3")
    for _ in range(5):   # give it a high version
        t.push1("w3", t.mut("households", foreign, {"phone": f"1390000000{_}"}, base=t.version("households", foreign)))
    unknown = new_id()
    for base in (1, 10 ** 9):
        a = t.push1("w1", t.mut("households", foreign, {"phone": "1"}, base=base))
        b = t.push1("w1", t.mut("households", unknown, {"phone": "1"}, base=base))
        assert _answer(a) == _answer(b)
        told = a.error.message.replace(foreign, "<id>")     # (the id's digits may hold the version's)
        assert "version" not in told and str(t.version("households", foreign)) not in told
    a = t.push1("w1", t.mut("households", foreign, op="delete", base=1))
    b = t.push1("w1", t.mut("households", unknown, op="delete", base=1))
    assert _answer(a) == _answer(b)
    # references: an out-of-scope household reads as a missing one
    a = t.push1("w1", t.mut("residents", new_id(), {"household_id": foreign, "name": "x"}))
    b = t.push1("w1", t.mut("residents", new_id(), {"household_id": unknown, "name": "x"}))
    assert (a.status, a.error.code) == (b.status, b.error.code) == ("rejected", "forbidden")
    assert a.error.message.replace(foreign, "") == b.error.message.replace(unknown, "")


def test_whether_a_resident_lives_elsewhere_is_not_told(t: Town) -> None:
    own = t.household("w1", "g1")
    foreign = t.household("w3", "g3")
    res = new_id()
    t.push1("w3", t.mut("residents", res, {"household_id": foreign, "name": "赵"}))
    ghost = new_id()
    a = t.push1("w1", t.mut("matters", new_id(), {"household_id": own, "title": "x", "resident_id": res}))
    b = t.push1("w1", t.mut("matters", new_id(), {"household_id": own, "title": "x", "resident_id": ghost}))
    assert (a.error.code, a.error.message.replace(res, "")) == (b.error.code, b.error.message.replace(ghost, ""))


def test_a_rejection_on_a_foreign_record_does_not_carry_its_place(t: Town) -> None:
    foreign = t.household("w3", "g3")
    r = t.push1("w1", t.mut("households", foreign, {"phone": "1"}, base=1))
    assert r.status == "rejected"
    c = t.store.get("conflicts", r.conflict_id)
    assert c.data["area_id"] != t.ids["g3"]
    assert not any(k.endswith(t.ids["g3"]) for k in c.keys)


def test_a_pull_never_delivers_a_foreign_record_after_any_of_these(t: Town) -> None:
    """After every refused attempt above, worker3's village is exactly what worker3 and staff made."""
    h, res, m = delegated_household(t)
    t.push1("agent", t.mut("households", h, {"grid_id": t.ids["g3"]}, base=t.version("households", h)))
    w3 = seen(t, "w3")
    assert not any(rid in (h, res, m) for _, rid in w3)
    page = engine.pull(t.store, t.actors["w3"], None, 1000)
    assert all(c.id not in (h, res, m) for c in page.changes)


# -- issue 14 (found while building the area import): an area admin's area pushes ---------------------------------

def test_an_area_admin_writes_areas_only_inside_their_own(t: Town) -> None:
    from .conftest import PASSWORD, _actor, password_hash
    from sync import accounts

    accounts.create_user(t.store, "vadmin", PASSWORD, "admin", [t.ids["v1"]], password_hash=password_hash())
    t.actors["vadmin"] = _actor(t.store, "vadmin", t)
    # inside v1: a new grid under it, and v1 itself renamed
    grid = new_id()
    assert t.push1("vadmin", t.mut("areas", grid, {"level": "grid", "name": "杖锡村第三网格",
                                                  "parent_id": t.ids["v1"]})).status == "applied"
    assert t.push1("vadmin", t.mut("areas", t.ids["v1"], {"name": "杖锡"},
                                   base=t.version("areas", t.ids["v1"]))).status == "applied"
    # outside: a village under the town, a grid under another village, a rename of another village, a new root
    for m in (t.mut("areas", new_id(), {"level": "village", "name": "外村", "parent_id": t.ids["town"]}),
              t.mut("areas", new_id(), {"level": "grid", "name": "外网格", "parent_id": t.ids["v2"]}),
              t.mut("areas", t.ids["v2"], {"name": "改名"}, base=t.version("areas", t.ids["v2"])),
              t.mut("areas", new_id(), {"level": "county", "name": "另一个县"})):
        r = t.push1("vadmin", m)
        assert (r.status, r.error.code if r.error else None) == ("rejected", "forbidden"), m
    assert t.store.get("areas", t.ids["v2"]).data["name"] == "李家坑村"
    # an admin without areas still administers the whole tree, roots included
    assert t.push1("admin", t.mut("areas", new_id(), {"level": "county", "name": "另一个县"})).status == "applied"
