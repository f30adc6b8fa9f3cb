"""The merge rules of protocol §6 as tables of named cases, first as pure functions, then end to end."""

from __future__ import annotations

from typing import Any

import pytest

from sync import merge
from sync.merge import Edit
from sync.schema import COLLECTIONS

from .conftest import Town, new_id

HOUSEHOLDS = COLLECTIONS["households"]
ME, OTHER = "dev-me", "dev-other"


def meta(v: int, origin: str, at: str = "2026-11-20T01:00:00.000000+00:00", user: str = "u-x") -> dict[str, Any]:
    return {"v": v, "at": at, "u": user, "o": origin}


# name, current value, field meta, base, incoming value, incoming at -> (changes, conflict winner or None, status)
FIELD_CASES = [
    ("untouched since base: apply",
     "111", meta(3, OTHER), 5, "222", "2026-11-20T02:00:00.000000+00:00", {"phone": "222"}, None, "applied"),
    ("changed by another device before base: apply",
     "111", meta(5, OTHER), 5, "222", "2026-11-20T02:00:00.000000+00:00", {"phone": "222"}, None, "applied"),
    ("changed since base to the same value: nothing to do, no conflict",
     "222", meta(8, OTHER), 5, "222", "2026-11-20T02:00:00.000000+00:00", {}, None, "applied"),
    ("changed since base by another device, incoming edit later: incoming wins, conflict kept",
     "111", meta(8, OTHER, at="2026-11-20T01:00:00.000000+00:00"), 5, "222",
     "2026-11-20T02:00:00.000000+00:00", {"phone": "222"}, "incoming", "conflict"),
    ("changed since base by another device, incoming edit earlier: current stays, conflict kept",
     "111", meta(8, OTHER, at="2026-11-20T03:00:00.000000+00:00"), 5, "222",
     "2026-11-20T02:00:00.000000+00:00", {}, "current", "conflict"),
    ("a tie of edit times keeps the current value",
     "111", meta(8, OTHER, at="2026-11-20T02:00:00.000000+00:00"), 5, "222",
     "2026-11-20T02:00:00.000000+00:00", {}, "current", "conflict"),
    ("a device never conflicts with itself (two offline edits with the same base)",
     "111", meta(8, ME), 5, "222", "2026-11-20T02:00:00.000000+00:00", {"phone": "222"}, None, "applied"),
    ("no metadata (field never set): apply",
     None, None, 5, "222", "2026-11-20T02:00:00.000000+00:00", {"phone": "222"}, None, "applied"),
]


@pytest.mark.parametrize("name,current,fmeta,base,incoming,at,changes,winner,status", FIELD_CASES,
                         ids=[c[0] for c in FIELD_CASES])
def test_field_rules(name: str, current: Any, fmeta: Any, base: int, incoming: Any, at: str,
                     changes: dict[str, Any], winner: str | None, status: str) -> None:
    data = {"phone": current}
    m = {"phone": fmeta} if fmeta else {}
    d = merge.merge_update(HOUSEHOLDS, data, m, base, {"phone": incoming}, Edit(10, at, "u-me", ME))
    assert d.changes == changes
    assert d.status == status
    if winner is None:
        assert d.conflicts == {}
    else:
        c = d.conflicts["phone"]
        assert (c.winner, c.incoming, c.current) == (winner, incoming, current)
        assert c.current_at == fmeta["at"] and c.incoming_at == at and c.current_by == fmeta["u"]


def test_own_change_after_another_devices_change_still_wins() -> None:
    """Other device at v5, this device at v7 (its earlier batch), now this device again with base 3."""
    d = merge.merge_update(HOUSEHOLDS, {"phone": "a"}, {"phone": meta(7, ME)}, 3, {"phone": "b"},
                           Edit(9, "2026-11-20T00:00:00.000000+00:00", "u-me", ME))
    assert d.changes == {"phone": "b"} and d.status == "applied"


def test_other_field_changed_since_base_is_merged() -> None:
    d = merge.merge_update(HOUSEHOLDS, {"phone": "a", "notes": "x"},
                           {"phone": meta(2, OTHER), "notes": meta(8, OTHER)}, 5, {"phone": "b"},
                           Edit(9, "2026-11-20T00:00:00.000000+00:00", "u-me", ME))
    assert d.status == "merged" and d.changes == {"phone": "b"}


def test_mutation_that_changes_nothing_is_applied() -> None:
    d = merge.merge_update(HOUSEHOLDS, {"phone": "a", "notes": "x"},
                           {"phone": meta(2, OTHER), "notes": meta(8, OTHER)}, 5, {"phone": "a"},
                           Edit(9, "2026-11-20T00:00:00.000000+00:00", "u-me", ME))
    assert d.status == "applied" and d.changes == {}


def tags_meta(elems: dict[str, Any], v: int = 4) -> dict[str, Any]:
    m = meta(v, OTHER)
    m["e"] = elems
    return m


# name, current, element metadata, base, delta -> result
SET_CASES = [
    ("add to an empty set", [], {}, 0, {"add": ["独居老人"]}, ["独居老人"]),
    ("concurrent additions by two devices both survive",
     ["低保户"], {"低保户": [8, OTHER]}, 5, {"add": ["独居老人"]}, ["低保户", "独居老人"]),
    ("remove an element added before base",
     ["低保户", "独居老人"], {"低保户": [2, OTHER], "独居老人": [3, OTHER]}, 5, {"remove": ["低保户"]}, ["独居老人"]),
    ("a remove loses against a concurrent add of the same element (add wins)",
     ["低保户"], {"低保户": [8, OTHER]}, 5, {"remove": ["低保户"]}, ["低保户"]),
    ("a device may remove what it added itself after base",
     ["低保户"], {"低保户": [8, ME]}, 5, {"remove": ["低保户"]}, []),
    ("removing an absent element is a no-op", ["低保户"], {"低保户": [2, OTHER]}, 5, {"remove": ["残疾人"]}, ["低保户"]),
    ("another device's re-add of a present element survives a remove that did not see it",
     ["低保户"], {"低保户": {ME: 6, OTHER: 8}}, 7, {"remove": ["低保户"]}, ["低保户"]),
    ("a remove that saw every add takes the element away",
     ["低保户"], {"低保户": {ME: 6, OTHER: 7}}, 7, {"remove": ["低保户"]}, []),
    ("add and remove in one delta", ["a"], {"a": [1, OTHER]}, 5, {"add": ["b"], "remove": ["a"]}, ["b"]),
]


@pytest.mark.parametrize("name,current,elems,base,delta,expected", SET_CASES, ids=[c[0] for c in SET_CASES])
def test_set_valued_rules(name: str, current: list[str], elems: dict[str, Any], base: int,
                          delta: dict[str, list[str]], expected: list[str]) -> None:
    d = merge.merge_update(HOUSEHOLDS, {"tags": current}, {"tags": tags_meta(elems)} if elems else {}, base,
                           {"tags": {"add": [], "remove": [], **delta}}, Edit(10, "2026-11-20T00:00:00+00:00", "u", ME))
    assert d.conflicts == {}, "set-valued fields never conflict"
    assert d.changes.get("tags", current) == expected


# -- the same rules end to end through push ----------------------------------------------------------------

def test_concurrent_edit_of_the_same_field_records_both_values(town: Town) -> None:
    hid = town.household(phone="13800000000")
    base = town.version("households", hid)
    r1 = town.push1("w1", town.mut("households", hid, {"phone": "13911111111"}, base=base, at="2026-11-20T09:00:00+08:00"))
    r2 = town.push1("w2", town.mut("households", hid, {"phone": "13922222222"}, base=base, at="2026-11-20T10:00:00+08:00"))
    assert (r1.status, r2.status) == ("applied", "conflict")
    c = town.store.get("conflicts", r2.conflict_id)
    assert c is not None and c.data["kind"] == "field"
    f = c.data["fields"]["phone"]
    assert (f["incoming"], f["current"], f["winner"]) == ("13922222222", "13911111111", "incoming")
    assert town.store.get("households", hid).data["phone"] == "13922222222"
    # both devices see the conflict in their pull; a third worker of another grid does not
    assert ("conflicts", c.id) in town.pull_all("w1") and ("conflicts", c.id) in town.pull_all("w2")
    assert ("conflicts", c.id) not in town.pull_all("w3")


def test_earlier_edit_loses_but_is_kept(town: Town) -> None:
    hid = town.household(notes="旧")
    base = town.version("households", hid)
    town.push1("w1", town.mut("households", hid, {"notes": "w1 的记录"}, base=base, at="2026-11-20T10:00:00+08:00"))
    r = town.push1("w2", town.mut("households", hid, {"notes": "w2 的记录"}, base=base, at="2026-11-20T09:00:00+08:00"))
    assert r.status == "conflict"
    assert town.store.get("households", hid).data["notes"] == "w1 的记录"
    assert town.store.get("conflicts", r.conflict_id).data["fields"]["notes"]["incoming"] == "w2 的记录"


def test_update_against_concurrent_delete_never_resurrects(town: Town) -> None:
    hid = town.household()
    base = town.version("households", hid)
    assert town.push1("staff", town.mut("households", hid, op="delete", base=base)).status == "applied"
    r = town.push1("w1", town.mut("households", hid, {"phone": "13800000001"}, base=base))
    assert r.status == "conflict"
    rec = town.store.get("households", hid)
    assert rec.deleted and rec.data.get("phone") is None
    c = town.store.get("conflicts", r.conflict_id)
    assert c.data["kind"] == "update_deleted" and c.data["fields"]["phone"]["incoming"] == "13800000001"


def test_stale_delete_against_concurrent_update_keeps_the_record(town: Town) -> None:
    hid = town.household()
    base = town.version("households", hid)
    town.push1("w1", town.mut("households", hid, {"phone": "13800000001"}, base=base))
    r = town.push1("staff", town.mut("households", hid, op="delete", base=base))
    assert r.status == "conflict"
    rec = town.store.get("households", hid)
    assert not rec.deleted and rec.data["phone"] == "13800000001"
    assert town.store.get("conflicts", r.conflict_id).data["kind"] == "delete"


def test_delete_based_on_current_version_applies_and_pulls_as_tombstone(town: Town) -> None:
    hid = town.household()
    seen = town.pull_all("w1")
    assert ("households", hid) in seen
    r = town.push1("staff", town.mut("households", hid, op="delete", base=town.version("households", hid)))
    assert r.status == "applied"
    change = town.pull_all("w1").get(("households", hid))
    # a snapshot leaves out tombstones; an incremental pull carries them
    assert change is None
    from sync import engine
    page = engine.pull(town.store, town.actors["w2"], None)
    while page.more:
        page = engine.pull(town.store, town.actors["w2"], page.cursor)
    cursor = page.cursor
    hid2 = town.household()
    town.push1("staff", town.mut("households", hid2, op="delete", base=town.version("households", hid2)))
    page = engine.pull(town.store, town.actors["w2"], cursor)
    tomb = [c for c in page.changes if c.id == hid2]
    assert len(tomb) == 1 and tomb[0].deleted is True and tomb[0].data == {"id": hid2, "version": tomb[0].version,
                                                                          "deleted": True}


APPEND_ONLY_CASES = [
    ("same id, same content, same author: idempotent create", "w1", "same", "applied", None),
    ("same id, different content: id_collision", "w1", "different", "rejected", "id_collision"),
    ("same id from another user: id_collision", "w2", "same", "rejected", "id_collision"),
]


@pytest.mark.parametrize("name,who,content,status,code", APPEND_ONLY_CASES, ids=[c[0] for c in APPEND_ONLY_CASES])
def test_append_only_collections(town: Town, name: str, who: str, content: str, status: str, code: str | None) -> None:
    hid = town.household()
    vid = new_id()
    fields = {"household_id": hid, "visited_at": "2026-11-20T09:00:00+08:00", "narrative": "老人身体还好"}
    assert town.push1("w1", town.mut("visits", vid, fields)).status == "applied"
    again = dict(fields, narrative="老人身体还好" if content == "same" else "别的内容")
    r = town.push1(who, town.mut("visits", vid, again))
    assert r.status == status and (r.error.code if r.error else None) == code
    assert town.store.get("visits", vid).data["narrative"] == "老人身体还好"


def test_append_only_records_cannot_be_updated_or_deleted(town: Town) -> None:
    hid = town.household()
    vid = new_id()
    town.push1("w1", town.mut("visits", vid, {"household_id": hid, "visited_at": "2026-11-20T09:00:00+08:00"}))
    v = town.version("visits", vid)
    r1 = town.push1("w1", town.mut("visits", vid, {"narrative": "改"}, base=v))
    r2 = town.push1("w1", town.mut("visits", vid, op="delete", base=v))
    assert (r1.status, r1.error.code) == ("rejected", "invalid_request")
    assert (r2.status, r2.error.code) == ("rejected", "invalid_request")


def test_set_valued_field_end_to_end(town: Town) -> None:
    hid = town.household(tags=["独居老人"])
    base = town.version("households", hid)
    town.push1("w1", town.mut("households", hid, {"tags": {"add": ["低保户"]}}, base=base))
    r = town.push1("w2", town.mut("households", hid, {"tags": {"add": ["残疾人"], "remove": ["独居老人"]}}, base=base))
    assert r.status == "merged"
    assert town.store.get("households", hid).data["tags"] == ["低保户", "残疾人"]
    # the whole list is never accepted for an update
    r = town.push1("w1", town.mut("households", hid, {"tags": ["x"]}, base=town.version("households", hid)))
    assert (r.status, r.error.code) == ("rejected", "invalid_request")


def test_server_owned_fields_are_ignored(town: Town) -> None:
    hid = new_id()
    r = town.push1("w1", town.mut("households", hid, {"grid_id": town.ids["g1"], "address": "x", "head_name": "y",
                                                      "version": 999, "created_by": "someone", "deleted": True}))
    rec = town.store.get("households", hid)
    assert r.status == "applied" and rec.version == r.version and not rec.deleted and rec.created_by != "someone"


def test_a_re_add_is_a_new_version_so_later_removes_see_it(town: Town) -> None:
    """A re-add of a present tag leaves the value alone but is a new version: a remove based on an
    older version did not see it and loses (add wins); a remove based on the new version removes."""
    hid = town.household()
    v0 = town.version("households", hid)
    r1 = town.push1("w1", town.mut("households", hid, {"tags": {"add": ["低保户"]}}, base=v0))
    r2 = town.push1("w2", town.mut("households", hid, {"tags": {"add": ["低保户"]}}, base=v0))
    assert r2.version > r1.version
    stale = town.push1("w1", town.mut("households", hid, {"tags": {"remove": ["低保户"]}}, base=r1.version))
    assert stale.status == "applied" and town.store.get("households", hid).data["tags"] == ["低保户"]
    fresh = town.push1("w1", town.mut("households", hid, {"tags": {"remove": ["低保户"]}},
                                      base=town.version("households", hid)))
    assert fresh.status == "applied" and town.store.get("households", hid).data["tags"] == []
