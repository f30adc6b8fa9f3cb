"""A mutation's fields validated through msgspec Structs, one per collection and kind of write.

``sync.schema`` is the data model and its hand-written validator (``schema.validate_fields``), whose
error codes and messages the protocol and the tests pin, field by field. This module makes the
common case cheap without changing a single answer:

* for each collection, a create Struct and an update Struct are built from the schema once
  (``msgspec.defstruct``): each plain field typed with its constraints (length, pattern, range,
  choices, nullability; a create's required fields without a default), the server-owned and
  computed fields accepted as anything (they are dropped, protocol §1), any other name refused;
* ``validate_fields`` converts the mutation's fields with ``msgspec.convert``: one call in C checks
  them all. The Struct accepts a value only where the hand-written check accepts it *and* stores it
  unchanged, or changed the same way (an int sent for a float becomes a float in both);
* what the Struct refuses goes to ``schema.validate_fields``, which finds the first bad field in
  the mutation's order and raises its usual error, so every message stays as it was. A value the
  Struct is stricter about than the schema (a single-line string with spaces around it, which the
  schema strips; an upper-case UUID, which it lowers) takes that path too and comes out normalised;
* fields whose check does more than a type can say (dates, times, phone and ID numbers, nested
  objects, free JSON, set deltas) are typed ``Any`` in the Struct and checked by the schema's own
  per-field function, in the mutation's order.

The result is the same dict as ``schema.validate_fields`` returns, in the same order
(``tests/test_engine_validate.py`` compares the two on every field type and on hostile values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import msgspec

from .errors import MutationRejected
from .schema import (COLLECTIONS, SERVER_FIELDS, SHA256_RE, Collection, Field, check_set_delta, check_value,
                     validate_fields as validate_by_hand)

# Characters a single-line string may not hold (schema.CONTROL_RE, plus line breaks), and lone
# surrogates (schema.SURROGATE_RE); a multi-line text may hold tabs and line breaks.
_LINE_BAD = "\\x00-\\x08\\x0a-\\x1f\\x7f\\ud800-\\udfff"
_TEXT_BAD = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ud800-\\udfff"
# A single-line string the schema would store as sent: no space of any kind at either end (the
# schema strips them; \s and str.strip agree on what a space is).
_LINE = f"\\A(?!\\s)[^{_LINE_BAD}]*(?<!\\s)\\Z"
_TEXT = f"\\A[^{_TEXT_BAD}]*\\Z"
# A UUID as the schema stores it: lower case (it lowers any other).
_UUID = "\\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\\Z"

_FAST, _OBJECT, _SLOW, _SET = 1, 2, 3, 4


def _typed(f: Field) -> Any:
    """The msgspec type of a plain field whose check a type says whole, or None."""
    if f.type == "str" and f.name not in ("phone", "id_number"):
        return Annotated[str, msgspec.Meta(max_length=f.max_len, pattern=_LINE,
                                           min_length=1 if f.required else 0)]
    if f.type == "text":
        return Annotated[str, msgspec.Meta(max_length=f.max_len, pattern=_TEXT)]
    if f.type == "int":
        return Annotated[int, msgspec.Meta(ge=f.min, le=f.max)] if f.min is not None and f.max is not None else int
    if f.type == "float" and f.min is not None and f.max is not None:   # bounds refuse NaN and infinities
        return Annotated[float, msgspec.Meta(ge=f.min, le=f.max)]
    if f.type == "bool":
        return bool
    if f.type == "enum":
        return Literal[f.choices]
    if f.type == "uuid":
        return Annotated[str, msgspec.Meta(pattern=_UUID)]
    if f.type == "sha256":
        return Annotated[str, msgspec.Meta(pattern=SHA256_RE.pattern)]
    if f.type in ("strlist", "sha256list"):
        item = Annotated[str, msgspec.Meta(pattern=SHA256_RE.pattern)] if f.type == "sha256list" else \
            Annotated[str, msgspec.Meta(max_length=f.max_len, pattern=_TEXT)]
        return Annotated[list[item], msgspec.Meta(max_length=f.max_items)]  # type: ignore[valid-type]
    return None


def _object(f: Field) -> type[msgspec.Struct] | None:
    """A Struct for an object field whose subfields are all typed (a GPS fix, the visit checklist), or None."""
    spec: list[tuple[str, Any, Any]] = []
    for s in f.subfields:
        typed = _typed(s)
        if typed is None:
            return None
        spec.append((f"f_{s.name}", Union[typed, None] if s.nullable else typed, msgspec.UNSET))
    return msgspec.defstruct(f"{f.name}_object", spec, rename={f"f_{s.name}": s.name for s in f.subfields},
                             forbid_unknown_fields=True)


@dataclass(frozen=True)
class _Rules:
    """How to validate the fields of one collection for one kind of write."""

    struct: type[msgspec.Struct]
    how: dict[str, tuple[int, str, Field]]   # field name -> (kind, attribute, field); absent: dropped
    required_slow: tuple[Field, ...]          # required fields checked by hand: present and not null after


def _rules(coll: Collection, create: bool) -> _Rules:
    spec: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    rename: dict[str, str] = {}
    how: dict[str, tuple[int, str, Field]] = {}
    required_slow: list[Field] = []
    for name in SERVER_FIELDS:                     # dropped, whatever they hold (protocol §1)
        spec.append((f"s_{name}", Any, msgspec.UNSET))
        rename[f"s_{name}"] = name
    for f in coll.fields:
        if f.name in SERVER_FIELDS:
            continue
        attr = f"f_{f.name}"
        rename[attr] = f.name
        if f.computed:                             # dropped too
            spec.append((attr, Any, msgspec.UNSET))
            continue
        required = create and f.required
        typed = None if f.set_valued else _typed(f)
        kind = _FAST
        if typed is None and f.type == "object":
            typed, kind = _object(f), _OBJECT
        if typed is None:
            how[f.name] = (_SET if f.set_valued else _SLOW, attr, f)
            if required:
                required_slow.append(f)
            spec.append((attr, Any, msgspec.UNSET))
            continue
        how[f.name] = (kind, attr, f)
        if required:
            spec.append((attr, typed))             # present, not null
        else:
            spec.append((attr, Union[typed, None] if f.nullable else typed, msgspec.UNSET))
    struct = msgspec.defstruct(f"{coll.name}_{'create' if create else 'update'}", spec, rename=rename,
                               kw_only=True,
                               forbid_unknown_fields=True)
    return _Rules(struct, how, tuple(required_slow))


RULES: dict[tuple[str, bool], _Rules] = {(c.name, create): _rules(c, create)
                                         for c in COLLECTIONS.values() for create in (True, False)}


def validate_fields(coll: Collection, fields: Any, create: bool) -> dict[str, Any]:
    """``schema.validate_fields``, typed: the same result and the same errors, one msgspec call for most."""
    rules = RULES[(coll.name, create)]
    if not isinstance(fields, dict):
        return validate_by_hand(coll, fields, create)
    try:
        typed = msgspec.convert(fields, rules.struct)
    except Exception:   # a ValidationError, or anything else msgspec cannot take: the schema decides
        return validate_by_hand(coll, fields, create)     # finds the first bad field and says why
    out: dict[str, Any] = {}
    how = rules.how
    for name, value in fields.items():
        rule = how.get(name)
        if rule is None:
            continue                                      # server-owned or computed: dropped
        kind, attr, f = rule
        if kind == _FAST:
            out[name] = getattr(typed, attr)
        elif kind == _OBJECT:
            sub = getattr(typed, attr)
            out[name] = None if sub is None else {k: getattr(sub, f"f_{k}") for k in value}
        elif kind == _SLOW:
            out[name] = check_value(f"fields.{name}", f, value)
        else:
            out[name] = check_set_delta(f"fields.{name}", f, value, create)
    for f in rules.required_slow:
        if out.get(f.name) is None:
            raise MutationRejected("invalid_request", f"fields.{f.name}: is required")
    return out
