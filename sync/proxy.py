"""Proxy handling (代办, DOMAIN.md W9): the shapes of the proxy events' ``data``, the working-day
clock, the custody trail, and the audit of sensitive reads.

The engine calls ``check_event_data`` for every matter event it is about to store, so a bad
delegation, custody record, step or rating is ``rejected`` with ``invalid_request`` and a path,
before anything is written. Everything here is pure except the two audit helpers at the end.

Event kinds and their ``data`` (docs/proxy.md has the full story):

* ``delegation`` (委托): ``for_resident_id`` authorises ``for_user_id`` (a proxy agent) to act on
  this matter until ``data.until``; ``data.signature`` (the resident's signature drawn on the
  screen) or ``data.witness`` + ``data.photo`` where the resident cannot sign. Hashes are listed in
  ``attachments`` too, so the blob is the record's and the server knows who may read it.
* ``custody``: ``data.action`` on ``data.items`` (each ``{code, form}``) for ``for_resident_id``.
* ``step``: ``step`` names the agent's step; some steps also move the status (``from``/``to``).
* ``feedback`` (回访/对象评价): ``data.satisfaction`` and ``data.comment``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from .errors import MutationRejected
from .schema import SHA256_RE, is_uuid, parse_at
from .storage import Store

LOCAL_TZ = timezone(timedelta(hours=8))  # the town's working days are China Standard Time days

# The agent's steps, in the order they normally happen, and the status each one moves the matter
# to (None: a step that records progress without a status change).
STEPS: dict[str, tuple[str | None, ...]] = {
    "accepted": ("in_progress",),              # 代办员接件
    "waiting_materials": ("waiting_materials",),  # 待补材料: pauses the deadline clock
    "materials_complete": ("in_progress", None),  # 材料齐全 (from waiting_materials it resumes the clock)
    "submitted_to_window": (None,),            # 已递交窗口
    "result_obtained": (None,),                # 已取得办理结果 (note + documents)
    "delivered": ("resolved",),                # 已送达群众 (the resident signs): resolves the matter
    "escalated": ("escalated",),               # 上报镇/县
}
CUSTODY_ACTIONS = ("received", "handed_to_window", "back_from_window", "kept_by_window", "returned")
# Where a piece of material is after each action.
CUSTODY_PLACE = {"received": "agent", "handed_to_window": "window", "back_from_window": "agent",
                 "kept_by_window": "kept", "returned": "resident"}
FORMS = ("original", "copy")
SATISFACTION = ("satisfied", "basically_satisfied", "dissatisfied")
# The dashboard's older numeric reading of a rating (server/metrics.py reads rating and satisfied).
SATISFACTION_RATING = {"satisfied": 5, "basically_satisfied": 3, "dissatisfied": 1}
# Kinds an agent may only record on a proxy matter while holding the resident's delegation.
ACTING_KINDS = frozenset({"status", "step", "custody"})
MAX_ITEMS = 30


def _bad(path: str, why: str) -> MutationRejected:
    return MutationRejected("invalid_request", f"{path}: {why}")


def local_date(at: str) -> date:
    """The town's calendar date of a stored time."""
    return parse_at(at).astimezone(LOCAL_TZ).date()


def add_workdays(d: date, n: int) -> date:
    """``n`` working days (Monday to Friday) after ``d``; no public-holiday calendar."""
    while n > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            n -= 1
    return d


def workdays_between(start: date, end: date) -> int:
    """Working days in ``[start, end)``: the days whose clock a pause from ``start`` to ``end`` stopped."""
    n, d = 0, start
    while d < end:
        if d.weekday() < 5:
            n += 1
        d += timedelta(days=1)
    return n


def effective_deadline(deadline: str | None, paused_workdays: int) -> str | None:
    """The deadline moved on by the working days the matter spent waiting for materials."""
    if not deadline:
        return None
    return add_workdays(date.fromisoformat(deadline), paused_workdays or 0).isoformat()


def _sha(path: str, value: Any, attachments: list[str]) -> str:
    if not isinstance(value, str) or not SHA256_RE.match(value):
        raise _bad(path, "must be a SHA-256 in lowercase hex")
    if value not in attachments:
        raise _bad(path, "must also be listed in attachments (the blob belongs to the event)")
    return value


def _text(path: str, value: Any, max_len: int, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(path, "must be a non-empty string")
    if len(value) > max_len:
        raise _bad(path, f"is longer than {max_len} characters")
    return value


def _only(path: str, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise _bad(f"{path}.{extra[0]}", "is not a known key")


def _signed(path: str, data: Mapping[str, Any], attachments: list[str], what: str) -> None:
    """A signature, or (the resident cannot sign) a witness and a photo."""
    if data.get("signature") is not None:
        _sha(f"{path}.signature", data["signature"], attachments)
        return
    witness, photo = data.get("witness"), data.get("photo")
    if witness is None and photo is None:
        raise _bad(f"{path}.signature", f"{what} needs the resident's signature, or a witness and a photo")
    if not isinstance(witness, dict):
        raise _bad(f"{path}.witness", "must be an object {name, relation?, phone?}")
    _only(f"{path}.witness", witness, ("name", "relation", "phone"))
    _text(f"{path}.witness.name", witness.get("name"), 50, required=True)
    _text(f"{path}.witness.relation", witness.get("relation"), 30)
    _text(f"{path}.witness.phone", witness.get("phone"), 30)
    if photo is None:
        raise _bad(f"{path}.photo", "a witnessed authorisation needs a photo")
    _sha(f"{path}.photo", photo, attachments)


def check_event_data(fields: dict[str, Any], materials: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Validate the kind-specific parts of a matter event; return ``data`` as it will be stored.

    ``materials`` is the checklist of the matter's category (None when it has none).
    """
    kind = fields["kind"]
    data = fields.get("data")
    attachments: list[str] = fields.get("attachments") or []
    step, to = fields.get("step"), fields.get("to")
    if kind not in ("status", "step") and (to is not None or fields.get("from") is not None):
        raise _bad("fields.to", f"only status and step events move a matter; this is a {kind} event")
    if kind != "step" and step is not None:
        raise _bad("fields.step", "only step events name a step")
    if kind in ("delegation", "custody", "feedback", "step") and data is not None and not isinstance(data, dict):
        raise _bad("fields.data", "must be an object")
    d: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
    if kind == "delegation":
        if not fields.get("for_resident_id"):
            raise _bad("fields.for_resident_id", "a delegation names the resident who authorises (委托人)")
        if not fields.get("for_user_id"):
            raise _bad("fields.for_user_id", "a delegation names the proxy agent it authorises")
        _only("fields.data", d, ("until", "signature", "witness", "photo"))
        until = d.get("until")
        if not isinstance(until, str):
            raise _bad("fields.data.until", "a delegation needs an end date YYYY-MM-DD")
        try:
            date.fromisoformat(until)
        except ValueError:
            raise _bad("fields.data.until", "must be a real date YYYY-MM-DD") from None
        if len(until) != 10:
            raise _bad("fields.data.until", "must be a date YYYY-MM-DD")
        _signed("fields.data", d, attachments, "a delegation")
        return d
    if kind == "custody":
        if not fields.get("for_resident_id"):
            raise _bad("fields.for_resident_id", "custody records whose materials they are")
        _only("fields.data", d, ("action", "items"))
        if d.get("action") not in CUSTODY_ACTIONS:
            raise _bad("fields.data.action", f"must be one of {', '.join(CUSTODY_ACTIONS)}")
        items = d.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise _bad("fields.data.items", f"must be a list of 1 to {MAX_ITEMS} items {{code, form}}")
        known = {m.get("code") for m in materials or [] if isinstance(m, dict)}
        out = []
        for i, it in enumerate(items):
            p = f"fields.data.items[{i}]"
            if not isinstance(it, dict):
                raise _bad(p, "must be an object {code, form, name?}")
            _only(p, it, ("code", "form", "name"))
            code = _text(f"{p}.code", it.get("code"), 60, required=True)
            if it.get("form") not in FORMS:
                raise _bad(f"{p}.form", "must be original or copy")
            name = _text(f"{p}.name", it.get("name"), 100)
            if known and code not in known and name is None:
                raise _bad(f"{p}.code", "is not on this matter's materials checklist; give a name for other material")
            out.append({k: v for k, v in (("code", code), ("form", it["form"]), ("name", name)) if v is not None})
        d["items"] = out
        return d
    if kind == "step":
        if step not in STEPS:
            raise _bad("fields.step", f"must be one of {', '.join(STEPS)}")
        if to not in STEPS[step]:
            allowed = [x for x in STEPS[step] if x]
            raise _bad("fields.to", f"the step {step} moves the matter to {' or '.join(allowed)}" if allowed
                       else f"the step {step} does not change the status; send no to")
        if to is not None and not fields.get("from"):
            raise _bad("fields.from", "a step that moves the matter says the status its author saw")
        if step == "result_obtained":
            _only("fields.data", d, ("documents",))
            _text("fields.note", fields.get("note"), 4000, required=True)
        elif step == "delivered":
            _only("fields.data", d, ("signature", "witness", "photo"))
            if not fields.get("for_resident_id"):
                raise _bad("fields.for_resident_id", "a delivery names the resident who received the result")
            _signed("fields.data", d, attachments, "a delivery")
        elif step == "escalated":
            _only("fields.data", d, ("level",))
            if d.get("level") not in ("town", "county"):
                raise _bad("fields.data.level", "an escalation goes to town or county")
        elif step == "waiting_materials":
            _only("fields.data", d, ("missing",))
            missing = d.get("missing")
            if missing is not None and (not isinstance(missing, list) or len(missing) > MAX_ITEMS
                                        or not all(isinstance(x, str) and 0 < len(x) <= 60 for x in missing)):
                raise _bad("fields.data.missing", "must be a list of material codes")
        elif step == "submitted_to_window":
            _only("fields.data", d, ("window", "receipt_no"))
            _text("fields.data.window", d.get("window"), 100)
            _text("fields.data.receipt_no", d.get("receipt_no"), 60)
        else:
            _only("fields.data", d, ())
        return d
    if kind == "feedback":
        _only("fields.data", d, ("satisfaction", "comment", "rating", "satisfied"))
        sat = d.get("satisfaction")
        rating = d.get("rating")
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
            raise _bad("fields.data.rating", "must be a whole number from 1 to 5")
        satisfied = d.get("satisfied")
        if satisfied is not None and not isinstance(satisfied, bool):
            raise _bad("fields.data.satisfied", "must be true or false")
        if sat is None and rating is not None:
            # the older numeric form (1-5) is still read: 4-5 satisfied, 3 basically, 1-2 not;
            # the dashboard's rule for it stays: satisfied means a rating of 4 or more
            sat = "satisfied" if rating >= 4 else "basically_satisfied" if rating == 3 else "dissatisfied"
            if satisfied is None:
                satisfied = rating >= 4
        if sat not in SATISFACTION:
            raise _bad("fields.data.satisfaction", f"must be one of {', '.join(SATISFACTION)}")
        _text("fields.data.comment", d.get("comment"), 2000)
        fb: dict[str, Any] = {"satisfaction": sat, "rating": rating if rating is not None else SATISFACTION_RATING[sat],
                              "satisfied": satisfied if satisfied is not None else sat != "dissatisfied"}
        if d.get("comment") is not None:
            fb["comment"] = d["comment"]
        return fb
    return d


def delegation_valid(event: Mapping[str, Any], agent_id: str, on: date) -> bool:
    """Whether a stored delegation event authorises ``agent_id`` on the local date ``on``."""
    if event.get("kind") != "delegation" or event.get("for_user_id") != agent_id:
        return False
    until = (event.get("data") or {}).get("until")
    return isinstance(until, str) and until >= on.isoformat()


def custody_trail(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (item code, form): every custody action on it in order of ``at``: {action, at, by, for}."""
    trail: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in sorted((e for e in events if e.get("kind") == "custody"), key=lambda e: str(e.get("at"))):
        for it in (e.get("data") or {}).get("items") or []:
            trail.setdefault((it["code"], it["form"]), []).append(
                {"action": e["data"]["action"], "at": e.get("at"), "by": e.get("actor_id"),
                 "for": e.get("for_resident_id")})
    return trail


def originals_unaccounted(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Codes of originals received from the resident that are neither returned nor kept by the window."""
    out = []
    for (code, form), steps in custody_trail(events).items():
        if form == "original" and CUSTODY_PLACE[steps[-1]["action"]] in ("agent", "window"):
            out.append(code)
    return sorted(out)


def is_uuid_or_none(value: Any) -> bool:
    return value is None or is_uuid(value)


def signature_state(blob_row: Mapping[str, Any] | None, proven: bool = True) -> str:
    """``received`` once the bytes are complete and the citation is proven (its author held the
    bytes, docs/protocol.md §10), else ``uploading``: a record may sync before its blobs
    (protocol §7), so a referenced signature is never reported as missing. Bytes someone else
    uploaded under a hash the author merely cited are not "received": saying so would tell
    whoever can see the matter that the server holds them."""
    return "received" if proven and blob_row is not None and blob_row.get("complete") else "uploading"


def now_local_date(now: datetime) -> date:
    return now.astimezone(LOCAL_TZ).date()


# -- the audit of sensitive reads (信访) --------------------------------------------------------------

def record_sensitive_reads(store: Store, user_id: str, device_id: str | None,
                           reads: Iterable[tuple[str, str, str]], via: str) -> int:
    """Write one audit row (action ``sensitive.read``) per matter read, in one transaction.

    ``store`` is the writer store; ``reads`` holds ``(collection, id, matter_id)`` as
    ``engine.pull`` reports them, or one row per matter a staff page showed (``via`` "staff").
    """
    by_matter: dict[str, list[str]] = {}
    for coll, rid, matter_id in reads:
        by_matter.setdefault(matter_id, []).append(f"{coll}/{rid}")
    if not by_matter:
        return 0
    with store.transaction():
        for matter_id, records in sorted(by_matter.items()):
            store.audit(user_id, "sensitive.read", "matters", matter_id,
                        {"via": via, "device_id": device_id, "records": records[:50], "count": len(records)})
    return len(by_matter)


def sensitive_reads(store: Store, matter_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """The audit trail of sensitive reads, newest first: who read which matter, when and how."""
    out = []
    for a in store.audit_entries(action="sensitive.read", record_id=matter_id or "", limit=limit):
        d = json.loads(a.details or "{}")
        out.append({"at": a.at, "user_id": a.user_id, "username": a.username, "matter_id": a.record_id,
                    "via": d.get("via"), "device_id": d.get("device_id"), "records": d.get("records") or [],
                    "count": d.get("count")})
    return out


def matter_summary(store: Store, matter_id: str, today: date | None = None) -> dict[str, Any] | None:
    """A proxy matter as the staff console shows it: delegations, the custody of each piece of
    material, the agent's steps and the resident's feedback, with the state of every signature
    blob (``received`` or ``uploading``, never missing). None when there is no such matter."""
    m = store.get("matters", matter_id)
    if m is None:
        return None
    ids = store.ids_where("matter_events", "matter_id", matter_id)
    events = sorted((dict(r.data, id=r.id, version=r.version) for r in store.get_many("matter_events", ids).values()),
                    key=lambda e: (str(e.get("at")), e["version"]))
    on = today or datetime.now(LOCAL_TZ).date()

    def blob(sha: Any, event_id: str) -> dict[str, Any] | None:
        if not isinstance(sha, str):
            return None
        proven = store.blob_citation_proven(sha, "matter_events", event_id)
        return {"sha256": sha, "state": signature_state(store.blob(sha), proven)}

    delegations = []
    for e in events:
        if e.get("kind") != "delegation":
            continue
        d = e.get("data") or {}
        delegations.append({"event_id": e["id"], "authoriser_id": e.get("for_resident_id"),
                            "agent_id": e.get("for_user_id"), "until": d.get("until"),
                            "signature": blob(d.get("signature"), e["id"]), "witness": d.get("witness"),
                            "photo": blob(d.get("photo"), e["id"]), "by": e.get("actor_id"), "at": e.get("at"),
                            "valid": delegation_valid(e, str(e.get("for_user_id")), on)
                            and e.get("for_user_id") == m.data.get("assignee_id")})
    custody = []
    for (code, form), trail in sorted(custody_trail(events).items()):
        custody.append({"code": code, "form": form, "place": CUSTODY_PLACE[trail[-1]["action"]], "trail": trail})
    steps = []
    for e in events:
        if e.get("kind") != "step":
            continue
        d = e.get("data") or {}
        steps.append({"event_id": e["id"], "step": e.get("step"), "to": e.get("to"), "applied": e.get("applied"),
                      "at": e.get("at"), "by": e.get("actor_id"), "for_resident_id": e.get("for_resident_id"),
                      "note": e.get("note"), "attachments": e.get("attachments") or [],
                      "signature": blob(d.get("signature"), e["id"]), "witness": d.get("witness"), "photo": blob(d.get("photo"), e["id"]),
                      "data": d})
    feedback = [{"event_id": e["id"], "satisfaction": (e.get("data") or {}).get("satisfaction"),
                 "comment": (e.get("data") or {}).get("comment"), "at": e.get("at"), "by": e.get("actor_id")}
                for e in events if e.get("kind") == "feedback"]
    keep = ("status", "handling_mode", "assignee_id", "category", "deadline", "effective_deadline",
            "paused_workdays", "paused_since", "sensitive", "level", "resident_id")
    return {"matter_id": matter_id, **{k: m.data.get(k) for k in keep},
            "delegations": delegations, "custody": custody, "unaccounted_originals": originals_unaccounted(events),
            "steps": steps, "feedback": feedback}
