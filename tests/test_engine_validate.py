"""The typed validation (``sync.validate``) answers exactly as the schema's hand-written one.

Same stored values in the same order, same error code and message, for every field of every
collection, on create and on update: on values of each type's edges, on hostile values, and on
random JSON (hypothesis).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import validate
from sync.errors import MutationRejected
from sync.schema import COLLECTIONS, SERVER_FIELDS, validate_fields as by_hand

UUID = "0193a1c2-7c1e-7abc-8def-0123456789ab"
SHA = "a" * 64

EDGES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 1.5, 2 ** 53, 2 ** 64, -(2 ** 70), float("nan"), float("inf"), 99, 100, 1880,
    "", " ", "x", " x", "x ", "\u3000王\u3000", "王阿公", "a\nb", "a\rb", "a\tb", "a\x00b", "a\x7fb", "a\x1cb",
    "\ud800", "x" * 17, "x" * 18, "x" * 200, "x" * 201, "y" * 4001,
    UUID, UUID.upper(), UUID.replace("8def", "0def"), UUID + " ", SHA, SHA.upper(), SHA[:-1],
    "2026-11-20", "2026-02-30", "2026-11-20T09:12:00+08:00", "2026-11-20T09:12:00Z", "2026-11-20T09:12:00",
    "13800000000", " 138 0000 0000", "(0574) 1234", "33021219900101123x", "330212199001011234", "123",
    "male", "visit", "normal", "submitted", "status", "photo",
    [], [None], ["x"], [UUID], [SHA], ["x"] * 21, ["x" * 501], [" a "], ["a\x00"], [1],
    {}, {"add": ["x"]}, {"add": ["x"], "remove": ["y"]}, {"add": [""]}, {"other": []}, {"add": "x"},
    {"lat": 30.1, "lng": 121.5}, {"lat": 91}, {"lat": 1, "lng": True}, {"lat": None}, {"alt": 1},
    {"left_phone": True, "took_situation": False}, {"left_phone": 1}, {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}},
]


def outcome(fn: Any, coll: str, fields: Any, create: bool) -> Any:
    try:
        out = fn(COLLECTIONS[coll], fields, create)
    except MutationRejected as e:
        return ("rejected", e.code, e.message)
    return ("ok", list(out.items()))


def same(coll: str, fields: Any, create: bool) -> None:
    want = outcome(by_hand, coll, fields, create)
    got = outcome(validate.validate_fields, coll, fields, create)
    assert got == want, (coll, create, fields)
    if want[0] == "ok":   # floats stay floats, ints ints: the same types, not only equal values
        assert [type(v) for _, v in got[1]] == [type(v) for _, v in want[1]]


def valid_create(coll: str) -> dict[str, Any]:
    """Required fields with a valid value each."""
    sample = {"uuid": UUID, "enum": None, "str": "王阿公", "datetime": "2026-11-20T09:12:00+08:00", "sha256": SHA}
    out = {}
    for f in COLLECTIONS[coll].fields:
        if f.required and not f.computed:
            out[f.name] = f.choices[0] if f.type == "enum" else sample[f.type]
    return out


@pytest.mark.parametrize("coll", sorted(COLLECTIONS))
@pytest.mark.parametrize("create", [True, False])
def test_every_field_on_every_edge_value(coll: str, create: bool) -> None:
    base = valid_create(coll) if create else {}
    for f in COLLECTIONS[coll].fields:
        for value in EDGES:
            same(coll, {**base, f.name: value}, create)
            same(coll, {f.name: value, **{k: v for k, v in base.items() if k != f.name}}, create)


@pytest.mark.parametrize("coll", sorted(COLLECTIONS))
def test_names_server_fields_missing_fields_and_order(coll: str) -> None:
    base = valid_create(coll)
    same(coll, base, True)
    same(coll, dict(reversed(list(base.items()))), True)
    for name in SERVER_FIELDS:
        same(coll, {**base, name: "anything"}, True)
    same(coll, {**base, "no_such_field": 1}, True)
    same(coll, {"no_such_field": 1, **base}, False)
    for name in base:
        same(coll, {k: v for k, v in base.items() if k != name}, True)
        same(coll, {**base, name: None}, True)
    same(coll, [], True)
    same(coll, None, False)


def test_no_field_is_both_required_and_computed() -> None:
    # sync.validate drops computed fields before the required check; the schema would refuse such a
    # field on every create, so none may exist.
    assert not [(c.name, f.name) for c in COLLECTIONS.values() for f in c.fields if f.required and f.computed]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(coll=st.sampled_from(sorted(COLLECTIONS)), create=st.booleans(),
       picks=st.lists(st.tuples(st.integers(0, 30), JSON), max_size=5))
def test_random_json_in_every_field(coll: str, create: bool, picks: list[tuple[int, Any]]) -> None:
    fields = COLLECTIONS[coll].fields
    data = valid_create(coll) if create else {}
    for i, value in picks:
        data[fields[i % len(fields)].name] = value
    same(coll, data, create)


def test_the_common_records_take_the_typed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new visit, resident and matter as phones send them never reach the hand-written validator."""
    def by_hand_called(*args: Any) -> Any:
        raise AssertionError("fell back to schema.validate_fields")

    monkeypatch.setattr(validate, "validate_by_hand", by_hand_called)
    validate.validate_fields(COLLECTIONS["visits"], {
        "household_id": UUID, "visited_at": "2026-11-21T08:30:00+08:00", "narrative": "上午入户走访王阿公家，\n老人身体尚可。",
        "checklist": {"left_phone": True, "took_situation": True}, "needs": [], "gps": {"lat": 29.8, "lng": 121}}, True)
    validate.validate_fields(COLLECTIONS["residents"], {
        "household_id": UUID, "name": "王秀英", "gender": "female", "birth_year": 1952, "relation": "配偶",
        "residence": "resident", "tags": ["高龄"], "notes": "慢性病，需定期配药。"}, True)
    validate.validate_fields(COLLECTIONS["matters"], {
        "household_id": UUID, "title": "屋顶漏雨需要修缮", "description": "雨季屋顶漏雨。", "channel": "visit",
        "urgency": "normal", "handling_mode": "direct"}, True)
    validate.validate_fields(COLLECTIONS["households"], {"notes": "户主有高血压。", "members_count": 3}, False)
