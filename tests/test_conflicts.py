"""Conflicts are a synced collection, resolvable offline by their author or by staff of the area (§6)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Town


def make_conflict(town: Town) -> tuple[str, str]:
    hid = town.household(phone="13800000000", notes="原备注")
    base = town.version("households", hid)
    town.push1("w1", town.mut("households", hid, {"phone": "13911111111", "notes": "w1"}, base=base,
                              at="2026-11-20T09:00:00+08:00"))
    r = town.push1("w2", town.mut("households", hid, {"phone": "13922222222", "notes": "w2"}, base=base,
                                  at="2026-11-20T08:00:00+08:00"))
    assert r.status == "conflict"
    return hid, r.conflict_id


RESOLUTIONS = [
    ("keep current (the value that was on the server)", "w2", {"resolution": "current"},
     {"phone": "13911111111", "notes": "w1"}),
    ("take incoming (the author's own edit)", "w2", {"resolution": "incoming"},
     {"phone": "13922222222", "notes": "w2"}),
    ("an edited value for every conflicting field", "w2",
     {"resolution": "value", "value": {"phone": "13933333333", "notes": "商量后"}},
     {"phone": "13933333333", "notes": "商量后"}),
    ("staff of the area may resolve too", "staff", {"resolution": "incoming"},
     {"phone": "13922222222", "notes": "w2"}),
]


@pytest.mark.parametrize("name,who,fields,expected", RESOLUTIONS, ids=[r[0] for r in RESOLUTIONS])
def test_resolve_field_conflict(town: Town, name: str, who: str, fields: dict[str, Any],
                                expected: dict[str, str]) -> None:
    hid, cid = make_conflict(town)
    before = town.version("households", hid)
    r = town.push1(who, town.mut("conflicts", cid, fields, base=town.version("conflicts", cid)))
    assert r.status == "applied", r
    rec = town.store.get("households", hid)
    assert {k: rec.data[k] for k in expected} == expected
    c = town.store.get("conflicts", cid).data
    assert c["status"] == "resolved" and c["resolution"] == fields["resolution"]
    assert c["resolved_by"] == town.actors[who].user_id and c["resolved_at"]
    if fields["resolution"] != "current":
        assert rec.version > before
    # the resolution reaches the other device through pull
    change = town.pull_all("w1")[("conflicts", cid)]
    assert change.data["status"] == "resolved"


def test_only_the_author_or_staff_may_resolve(town: Town) -> None:
    _, cid = make_conflict(town)
    v = town.version("conflicts", cid)
    r = town.push1("w1", town.mut("conflicts", cid, {"resolution": "current"}, base=v))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    r = town.push1("w3", town.mut("conflicts", cid, {"resolution": "current"}, base=v))
    assert (r.status, r.error.code) == ("rejected", "not_found")


def test_first_resolution_wins(town: Town) -> None:
    hid, cid = make_conflict(town)
    v = town.version("conflicts", cid)
    assert town.push1("w2", town.mut("conflicts", cid, {"resolution": "incoming"}, base=v)).status == "applied"
    r = town.push1("staff", town.mut("conflicts", cid, {"resolution": "current"}, base=v))
    assert (r.status, r.error.code) == ("rejected", "already_resolved")
    assert town.store.get("households", hid).data["phone"] == "13922222222"


def test_value_must_name_the_conflicting_fields(town: Town) -> None:
    _, cid = make_conflict(town)
    r = town.push1("w2", town.mut("conflicts", cid, {"resolution": "value", "value": {"address": "别处"}},
                                  base=town.version("conflicts", cid)))
    assert (r.status, r.error.code) == ("rejected", "invalid_request")
    assert town.store.get("conflicts", cid).data["status"] == "open"


def test_rejections_are_visible_to_their_author_and_can_be_dismissed(town: Town) -> None:
    hid = town.household("w1")
    r = town.push1("w3", town.mut("households", hid, {"phone": "13800000009"}, base=town.version("households", hid)))
    assert (r.status, r.error.code) == ("rejected", "forbidden")
    seen = town.pull_all("w3")
    c = seen[("conflicts", r.conflict_id)].data
    assert c["kind"] == "rejected" and c["error"]["code"] == "forbidden" and c["mutation"]["fields"]["phone"]
    # and the household itself did not leak to w3
    assert ("households", hid) not in seen
    r2 = town.push1("w3", town.mut("conflicts", r.conflict_id, {"resolution": "incoming"}, base=c["version"]))
    assert r2.error.code == "invalid_request"
    r3 = town.push1("w3", town.mut("conflicts", r.conflict_id, {"resolution": "current"}, base=c["version"]))
    assert r3.status == "applied"


def test_update_of_a_deleted_record_can_be_restored_by_incoming(town: Town) -> None:
    hid = town.household()
    base = town.version("households", hid)
    town.push1("staff", town.mut("households", hid, op="delete", base=base))
    r = town.push1("w1", town.mut("households", hid, {"phone": "13800000001"}, base=base))
    assert r.status == "conflict"
    r2 = town.push1("w1", town.mut("conflicts", r.conflict_id, {"resolution": "incoming"},
                                   base=town.version("conflicts", r.conflict_id)))
    assert r2.status == "applied"
    rec = town.store.get("households", hid)
    assert not rec.deleted and rec.data["phone"] == "13800000001"


def test_stale_delete_conflict_incoming_deletes(town: Town) -> None:
    hid = town.household()
    base = town.version("households", hid)
    town.push1("w1", town.mut("households", hid, {"phone": "13800000001"}, base=base))
    r = town.push1("staff", town.mut("households", hid, op="delete", base=base))
    assert r.status == "conflict"
    town.push1("staff", town.mut("conflicts", r.conflict_id, {"resolution": "incoming"},
                                 base=town.version("conflicts", r.conflict_id)))
    assert town.store.get("households", hid).deleted
