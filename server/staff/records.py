"""Read-side helpers of the staff pages: names, scope checks, a matter's events and files.

Reads only (the engine owns writes). Each function takes the page's reader store.
"""

from __future__ import annotations

from typing import Any

from sync import blobs, proxy, scope
from sync.store import SQLiteStore, StoredRecord, loads

from .core import Page, Refused


def user_names(store: SQLiteStore) -> dict[str, str]:
    return {uid: (dn or un or uid) for uid, dn, un in store.conn.execute(
        "SELECT id, json_extract(data, '$.display_name'), username FROM users")}


def users_by_role(store: SQLiteStore, roles: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for rid, data in store.conn.execute("SELECT id, data FROM users WHERE deleted = 0 ORDER BY username"):
        d = loads(data)
        if d.get("role") in roles and d.get("active") is not False:
            out.append({"id": rid, **d})
    return out


def categories(store: SQLiteStore) -> dict[str, dict[str, Any]]:
    """code -> category data (active and inactive), in catalogue order."""
    rows = [loads(d) | {"id": rid} for rid, d in store.conn.execute(
        "SELECT id, data FROM categories WHERE deleted = 0")]
    rows.sort(key=lambda c: (c.get("sort") or 0, c.get("code") or ""))
    return {c["code"]: c for c in rows}


def category_name(cats: dict[str, dict[str, Any]], code: str | None, lang: str) -> str:
    if not code:
        return "—"
    c = cats.get(code)
    if c is None:
        return code
    return str(c.get("name_en") if lang == "en" else c.get("name_zh")) or code


def is_sensitive(matter: dict[str, Any]) -> bool:
    """信访 and other sensitive matters: restricted and every read audited. The engine's one
    definition (``sync.scope.matter_sensitive``), stored on the matter by every write."""
    return scope.is_sensitive(matter)


def audit_sensitive(page: Page, matter_ids: list[str], where: str) -> None:
    """One ``sensitive.read`` audit row per sensitive matter a page showed (as for a phone's pull)."""
    proxy.record_sensitive_reads(page.writer, page.user.id, page.actor().device_id,
                                 [("matters", mid, mid) for mid in matter_ids], f"staff:{where}")


def household_of(page: Page, household_id: str | None) -> StoredRecord:
    """The household if it lies in the user's scope; 404 otherwise (no leak of what exists)."""
    h = page.store.get("households", household_id) if household_id else None
    if h is None or not page.can_see_area(h.data.get("grid_id")):
        raise Refused(404, page.t("没有找到这条记录，或不在您的管辖范围内。"))
    return h


def matter_of(page: Page, matter_id: str) -> tuple[StoredRecord, StoredRecord]:
    """A matter the user may see (the engine's predicate: a 信访 matter only by its handling chain)."""
    m = page.store.get("matters", matter_id)
    if m is None or m.deleted or not page.sees(m):
        raise Refused(404, page.t("没有找到这条记录，或不在您的管辖范围内。"))
    return m, household_of(page, m.data.get("household_id"))


def events_of(store: SQLiteStore, matter_id: str) -> list[StoredRecord]:
    rows = store.conn.execute("SELECT id FROM matter_events WHERE matter_id = ? AND deleted = 0", (matter_id,))
    evs = list(store.get_many("matter_events", [r[0] for r in rows]).values())
    evs.sort(key=lambda e: (e.data.get("at") or "", e.version))
    return evs


def attachments_of(store: SQLiteStore, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """sha256 -> attachment metadata (kind, mime, caption) for the records given."""
    if not record_ids:
        return {}
    q = ",".join("?" * len(record_ids))
    out: dict[str, dict[str, Any]] = {}
    for (data,) in store.conn.execute(f"SELECT data FROM attachments WHERE record_id IN ({q}) AND deleted = 0",
                                      record_ids):
        d = loads(data)
        out[d["sha256"]] = d
    return out


def blob_state(page: Page, sha: str) -> str:
    """complete (the viewer may open it) / pending (not yet, shown as 正在上传).

    The same rule as a download (``sync.blobs``): the bytes count once a citation is proven, so the
    page tells a staff member no more than ``GET`` would — not whether the server holds bytes under
    a hash someone merely cited (issue 12, finding 5).
    """
    b = page.store.blob(sha)
    if b is not None and b.get("complete") and blobs.holds_or_reads(page.store, page.user.id, page.keys, sha):
        return "complete"
    return "pending"


def conflicts_of(store: SQLiteStore, record_ids: list[str], open_only: bool = False) -> list[StoredRecord]:
    if not record_ids:
        return []
    q = ",".join("?" * len(record_ids))
    rows = store.conn.execute(
        f"SELECT id FROM conflicts WHERE json_extract(data, '$.record_id') IN ({q}) AND deleted = 0"
        + (" AND status = 'open'" if open_only else ""), record_ids)
    out = list(store.get_many("conflicts", [r[0] for r in rows]).values())
    out.sort(key=lambda c: c.created_at)
    return out
