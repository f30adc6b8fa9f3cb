"""Read-side helpers of the staff pages: names, scope checks, a matter's events and files.

Reads only (the engine owns writes). Each function takes the page's reader store.
"""

from __future__ import annotations

from typing import Any

from sync import blobs, proxy, scope
from sync.storage import Store
from sync.store import StoredRecord

from .core import Page, Refused


def user_names(store: Store) -> dict[str, str]:
    return {uid: (dn or un or uid) for uid, (dn, un) in store.all_user_names().items()}


def users_by_role(store: Store, roles: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for rid, d in store.live_users():
        if d.get("role") in roles and d.get("active") is not False:
            out.append({"id": rid, **d})
    return out


def categories(store: Store) -> dict[str, dict[str, Any]]:
    """code -> category data (active and inactive), in catalogue order."""
    rows = [d | {"id": rid} for rid, d in store.live_records("categories")]
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


def events_of(store: Store, matter_id: str) -> list[StoredRecord]:
    evs = list(store.get_many("matter_events", store.live_ids_where("matter_events", "matter_id", matter_id)).values())
    evs.sort(key=lambda e: (e.data.get("at") or "", e.version))
    return evs


def attachments_of(store: Store, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """sha256 -> attachment metadata (kind, mime, caption) for the records given."""
    out: dict[str, dict[str, Any]] = {}
    for _, d in store.live_where_in("attachments", "record_id", record_ids):
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


def conflicts_of(store: Store, record_ids: list[str], open_only: bool = False) -> list[StoredRecord]:
    out = list(store.get_many("conflicts", store.conflict_ids_about(record_ids, open_only)).values())
    out.sort(key=lambda c: c.created_at)
    return out
