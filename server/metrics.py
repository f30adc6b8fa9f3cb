"""The staff console's dashboard figures (一屏观全域, issue 6; DOMAIN.md §5), as plain data.

``dashboard(store, area_id, start, end, today)`` computes every figure of the dashboard for one
area (town, village or grid: the households whose grid lies in that area's subtree) and one
period ``[start, end)`` of local dates on the matters' ``raised_at``. ``today`` is the local date
the "now" figures (overdue, supervision, coverage, sync health) are measured against.

Definitions (every rate is ``None`` when its denominator is 0; ``fmt_rate`` shows it as "—"):

* ``collected``: matters raised in the period, except those merged as duplicates
  (``merged_duplicate``: the same problem is counted once, on the matter it was merged into).
* ``resolved``: of those, the matters whose status is now ``resolved`` or ``closed``
  (a matter reopened after resolution is not resolved).
* ``resolution_rate`` (化解率) = resolved ÷ collected.
* The deadline a matter is held to is its ``effective_deadline``: ``deadline`` moved on by the
  working days it spent waiting for materials (``paused_workdays``; docs/proxy.md). A matter
  stored before that field existed is held to ``deadline``.
* ``on_time_rate`` = resolved matters with a deadline whose local resolution date
  (``resolved_at``, else ``closed_at``) is on or before the effective deadline ÷ resolved matters
  with a deadline.
* ``overdue_now``: matters of the area (any raise date) with an effective deadline before
  ``today`` and a status other than resolved, closed, not_accepted, merged_duplicate and
  waiting_materials (waiting for materials stops the clock).
* ``supervised_open``: matters of the area (any raise date) under supervision (督办) and not yet
  resolved, closed, not accepted or merged.
* ``satisfaction``: resident ratings are matter events of kind ``feedback`` whose ``data`` holds
  ``rating`` (1–5) and/or ``satisfied``; the latest one per matter counts, over the period's
  resolved matters: ``{rated, satisfied, rate (satisfied ÷ rated), mean_rating, rating_coverage
  (rated ÷ resolved)}``. A rating of 4 or more counts as satisfied when ``satisfied`` is absent.
* ``bu_xiashan_share`` (不下山): of the period's resolved matters of mountain households (the grid
  lies under an area marked ``mountain``), the share completed through proxy handling: a proxy
  matter (``handling_mode = proxy``) on which the resident authorised an agent (at least one
  ``delegation`` event). Marking a matter "proxy" is not enough: without a delegation no agent
  can have carried it down the mountain. ``{proxy, completed}`` and the rate.
* ``coverage_30`` / ``coverage_90``: households visited on a local date within the last N days
  (``today - N < date <= today``) ÷ households, overall and for the key populations 独居老人 and
  低保户 (household tags), each ``{visited, total, rate}``.
* ``ranking``: the areas directly below ``area_id`` with collected, resolved, rate and
  coverage_30, best rate first (areas without matters last).
* ``trend``: per ISO week overlapping the period: matters collected (by raise date) and
  matters resolved (by local resolution date within the period, status now resolved/closed).
* ``sync``: the active devices of the users who work in the area (their areas meet the
  subtree): last_seen_at, silent (not seen for more than 7 days before ``today``), and the open
  conflicts and open rejected mutations of the area (or, when a rejection has no area, of its
  author among those users: ``conflict_of_area``), those the viewer may see when ``keys`` is given
  (the conflicts list, ``?area=…&kind=…``, shows the same).

Dates are local dates of the town (China Standard Time, UTC+8); stored times carry an offset,
which the store's queries take into account (``sync.storage.Store``: "local date").
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable

from sync.engine import area_tree
from sync.scope import visible
from sync.storage import Store

LOCAL_TZ = timezone(timedelta(hours=8))
DONE = ("resolved", "closed")
FINISHED = ("resolved", "closed", "not_accepted", "merged_duplicate")
KEY_POPULATIONS = ("独居老人", "低保户")
SILENT_DAYS = 7


def rate(num: int, den: int) -> float | None:
    """num ÷ den, or None when there is nothing to divide by."""
    return num / den if den else None


def fmt_rate(x: float | None) -> str:
    """0.874 -> "87.4%"; None -> "—" (the page shows a dash for an empty denominator)."""
    if x is None:
        return "—"
    return f"{x * 100:.1f}%"


def _local_midnight_utc(d: date) -> str:
    return datetime.combine(d, time(0), LOCAL_TZ).astimezone(timezone.utc).isoformat()


def coverage_window(today: date, days: int) -> tuple[str, str]:
    """The instants [since, until) of "visited within the last ``days`` days": local dates
    ``today - days < date <= today`` (the coverage figures and the list their numbers open)."""
    return _local_midnight_utc(today - timedelta(days=days - 1)), _local_midnight_utc(today + timedelta(days=1))


def _fraction(visited: int, total: int) -> dict[str, Any]:
    return {"visited": visited, "total": total, "rate": rate(visited, total)}


def dashboard(store: Store, area_id: str, start: date, end: date, today: date,
              keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Every figure of the dashboard for an area and period.

    ``keys``: the viewer's scope keys; matters are then counted only where the viewer may see them
    (the engine's predicate, as the lists the cards open: a 信访 matter only for its handling chain).
    None counts every matter of the area (the CLI, tests of the figures themselves).
    """
    seen = sorted(keys) if keys is not None else None
    tree = area_tree(store)
    if area_id not in tree:
        raise KeyError(f"no such area {area_id}")
    subtree = tree.subtree(area_id)
    children = sorted(tree.children.get(area_id, []))
    # Which child of area_id each area of the subtree belongs to (for the ranking).
    child_of: dict[str, str] = {}
    for a in subtree:
        path = tree.path(a)
        if a != area_id and area_id in path:
            child_of[a] = path[path.index(area_id) - 1]
    mountain = {a for a in subtree if tree.is_mountain(a)}

    # -- the period's matters, one row each ------------------------------------------------------
    rows = store.dashboard_matters(subtree, start.isoformat(), end.isoformat(), seen)
    collected = len(rows)
    done_rows = [r for r in rows if r.status in DONE]
    resolved = len(done_rows)
    with_deadline = [r for r in done_rows if r.held_to]
    on_time = sum(1 for r in with_deadline if r.resolved_on is not None and r.resolved_on <= r.held_to)
    mountain_done = [r for r in done_rows if r.grid_id in mountain]
    delegated = store.matters_with_event([r.id for r in mountain_done if r.handling_mode == "proxy"], "delegation")
    mountain_proxy = sum(1 for r in mountain_done if r.handling_mode == "proxy" and r.id in delegated)

    per_child: dict[str, dict[str, int]] = {c: {"collected": 0, "resolved": 0} for c in children}
    for r in rows:
        c = child_of.get(r.grid_id)
        if c in per_child:
            per_child[c]["collected"] += 1
            per_child[c]["resolved"] += r.status in DONE

    # -- "now" figures over all the area's matters -------------------------------------------------
    overdue_now, supervised_open = store.matters_now(subtree, today.isoformat(), FINISHED, seen)

    # -- satisfaction: the latest feedback per resolved matter of the period -----------------------
    latest: dict[str, tuple[Any, Any, Any]] = {}
    for fb in store.feedback_of([r.id for r in done_rows]):
        if fb.rating is None and fb.satisfied is None:
            continue
        if fb.matter_id not in latest or fb.at >= latest[fb.matter_id][0]:
            latest[fb.matter_id] = (fb.at, fb.rating, fb.satisfied)
    ratings = [r for _, r, _ in latest.values() if isinstance(r, (int, float))]
    happy = sum(1 for _, r, s in latest.values()
                if (bool(s) if s is not None else isinstance(r, (int, float)) and r >= 4))
    satisfaction = {"rated": len(latest), "satisfied": happy, "rate": rate(happy, len(latest)),
                    "mean_rating": (sum(ratings) / len(ratings)) if ratings else None,
                    "rating_coverage": rate(len(latest), resolved)}

    # -- visit coverage ----------------------------------------------------------------------------
    # Households visited in the last 90 days, and whether their latest visit is of the last 30.
    lo90, upper = coverage_window(today, 90)
    lo30 = coverage_window(today, 30)[0]
    visited = store.visited_households(lo90, upper, lo30)
    tally: dict[tuple[str, bool, bool], list[int]] = {}
    for h in store.households_tagged(subtree, KEY_POPULATIONS):
        elder, dibao = h.tags
        t = tally.setdefault((h.grid_id, elder, dibao), [0, 0, 0])
        t[0] += 1
        recent = visited.get(h.id)
        if recent is not None:
            t[1] += recent
            t[2] += 1
    # (grid, elder, dibao, households, visited in 30 days, visited in 90 days)
    cov_rows = [(g, e, d, t[0], t[1], t[2]) for (g, e, d), t in tally.items()]
    groups: dict[str, Callable[[int, int], bool]] = {
        "all": lambda e, d: True, "独居老人": lambda e, d: bool(e), "低保户": lambda e, d: bool(d)}
    coverage: dict[int, dict[str, dict[str, Any]]] = {}
    for n in (30, 90):
        coverage[n] = {}
        for name, keep in groups.items():
            sel = [r for r in cov_rows if keep(r[1], r[2])]
            visited = sum(r[4] if n == 30 else r[5] for r in sel)
            coverage[n][name] = _fraction(visited, sum(r[3] for r in sel))
    child_cov: dict[str, list[int]] = {c: [0, 0] for c in children}
    for r in cov_rows:
        c = child_of.get(r[0])
        if c in child_cov:
            child_cov[c][0] += r[4]
            child_cov[c][1] += r[3]

    # -- ranking of the areas directly below -------------------------------------------------------
    names = store.area_labels(children)
    ranking = []
    for c in children:
        pc = per_child[c]
        ranking.append({"area_id": c, "name": names.get(c, (c, None))[0], "level": tree.level.get(c),
                        "collected": pc["collected"], "resolved": pc["resolved"],
                        "rate": rate(pc["resolved"], pc["collected"]),
                        "coverage_30": _fraction(child_cov[c][0], child_cov[c][1])})
    ranking.sort(key=lambda x: (x["rate"] is None, -(x["rate"] or 0), -x["collected"],
                                names.get(x["area_id"], ("", None))[1] or 0, x["name"] or ""))

    # -- weekly trend ------------------------------------------------------------------------------
    resolved_by_day = store.resolved_per_day(subtree, start.isoformat(), end.isoformat(), seen)
    trend = _weeks(start, end)
    index = {w["week"]: w for w in trend}

    def week_of(d: str) -> str:
        y, wk, _ = date.fromisoformat(d).isocalendar()
        return f"{y}-W{wk:02d}"

    for r in rows:
        index[week_of(r.raised_on)]["collected"] += 1
    for d, n in resolved_by_day:
        index[week_of(d)]["resolved"] += n

    return {
        "area_id": area_id, "start": start.isoformat(), "end": end.isoformat(), "today": today.isoformat(),
        "collected": collected, "resolved": resolved, "resolution_rate": rate(resolved, collected),
        "on_time": {"on_time": on_time, "with_deadline": len(with_deadline)},
        "on_time_rate": rate(on_time, len(with_deadline)),
        "overdue_now": overdue_now, "supervised_open": supervised_open,
        "satisfaction": satisfaction,
        "bu_xiashan": {"proxy": mountain_proxy, "completed": len(mountain_done)},
        "bu_xiashan_share": rate(mountain_proxy, len(mountain_done)),
        "coverage_30": coverage[30], "coverage_90": coverage[90],
        "ranking": ranking, "trend": trend,
        "sync": _sync_health(store, set(subtree), today, seen),
    }


def _weeks(start: date, end: date) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if end <= start:
        return out
    monday = start - timedelta(days=start.weekday())
    while monday < end:
        y, wk, _ = monday.isocalendar()
        out.append({"week": f"{y}-W{wk:02d}", "monday": monday.isoformat(), "collected": 0, "resolved": 0})
        monday += timedelta(days=7)
    return out


def area_users(store: Store, subtree: set[str]) -> dict[str, Any]:
    """The live users who work in the area (their areas meet the subtree): id -> username."""
    return {uid: data.get("username") for uid, data in store.live_users()
            if subtree.intersection(data.get("areas") or [])}


def conflict_of_area(data: dict[str, Any], subtree: set[str], users: dict[str, Any]) -> bool:
    """Whether a conflict (or rejected change) belongs to the area: its area lies in the subtree, or
    it has no area and its author works there (the sync-health figures and the list they open)."""
    area = data.get("area_id")
    return area in subtree or (area is None and data.get("author_id") in users)


def _sync_health(store: Store, subtree: set[str], today: date, keys: Iterable[str] | None = None) -> dict[str, Any]:
    users = area_users(store, subtree)
    cutoff = datetime.combine(today - timedelta(days=SILENT_DAYS), time(0), LOCAL_TZ)
    devices = []
    for dev in store.active_devices_of(sorted(users)):
        seen = dev["last_seen_at"]
        silent = seen is None or datetime.fromisoformat(seen.replace("Z", "+00:00")) < cutoff
        devices.append({"device_id": dev["id"], "user_id": dev["user_id"], "username": users[dev["user_id"]],
                        "name": dev["name"], "last_seen_at": seen, "silent": silent,
                        "outbox_depth": dev["outbox_depth"], "app_version": dev["app_version"]})
    open_conflicts = rejected = 0
    seen = frozenset(keys) if keys is not None else None
    for c in store.get_many("conflicts", store.live_ids_where("conflicts", "status", "open")).values():
        if seen is not None and not visible(seen, c.keys):
            continue
        if conflict_of_area(c.data, subtree, users):
            if c.data.get("kind") == "rejected":
                rejected += 1
            else:
                open_conflicts += 1
    return {"devices": devices, "silent": sum(d["silent"] for d in devices),
            "open_conflicts": open_conflicts, "rejected": rejected}
