"""一屏观全域: the dashboard for a chosen period and area."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get

from .. import metrics
from . import charts
from .charts import trend_svg
from .core import Page, local_today, parse_date, run
from .labels import label
from .records import audit_sensitive, categories, category_name, is_sensitive

CATEGORY_TOP, LINE_TOP, VILLAGE_TOP = 10, 14, 15
# Above this many households with a location the map draws one circle per grid (sized by its count)
# instead of a dot per household: a county (430,000 households) never ships a dot each.
MAP_DOTS = 2500
MAP_CELLS = 400


def period(page: Page) -> tuple[str, date, date]:
    """The area and period a page asks for (?area, ?start, ?end), inside the user's scope."""
    q = page.query
    area_id = q.get("area") or ""
    if area_id not in page.allowed:
        area_id = page.roots[0] if page.roots else ""
    today = local_today()
    start = parse_date(q.get("start"), date(today.year, 1, 1)) or today
    end = parse_date(q.get("end"), today) or today
    if end < start:
        start, end = end, start
    return area_id, start, end


def matters_link(area_id: str, **filters: str) -> str:
    """The matters list (``/staff/matters``) of the area under these filters (``matters._filters``)."""
    return "/staff/matters?" + urlencode({"area": area_id, **{k: v for k, v in filters.items() if v}})


def card_links(area_id: str, start: date, end: date) -> dict[str, str]:
    """Where each number of the dashboard's cards leads: the list of exactly the matters it counts,
    by the definitions of ``server.metrics`` (tests/test_dashboard_cards.py follows every one)."""
    period = {"start": start.isoformat(), "end": end.isoformat()}
    done = {**period, "status": "done"}
    return {
        "collected": matters_link(area_id, status="counted", **period),
        "resolved": matters_link(area_id, **done),
        "on_time": matters_link(area_id, on_time="1", **done),
        "with_deadline": matters_link(area_id, deadline="1", **done),
        "overdue": matters_link(area_id, overdue="1"),
        "supervised": matters_link(area_id, supervised="1", status="open"),
        "satisfied": matters_link(area_id, feedback="satisfied", **done),
        "rated": matters_link(area_id, feedback="rated", **done),
        "bu_xiashan_proxy": matters_link(area_id, mountain="1", handling="proxy", delegated="1", **done),
        "bu_xiashan_completed": matters_link(area_id, mountain="1", **done),
    }


def households_link(area_id: str, tag: str = "", visited: int | None = None) -> str:
    """The households list of the area: with the tag, visited within the last ``visited`` days."""
    q = {"area": area_id, "tag": tag, "visited": str(visited) if visited else ""}
    return "/staff/households?" + urlencode({k: v for k, v in q.items() if v})


def _month_starts(end: date, n: int = 12) -> list[date]:
    """The first days of the ``n`` months up to the one of ``end``, oldest first."""
    y, m = end.year, end.month
    out = []
    for _ in range(n):
        out.append(date(y, m, 1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def chart_data(page: Page, area_id: str, start: date, end: date) -> dict[str, Any]:
    """The dashboard's charts for the area and period: matters by category, 归口 line and village
    (collected and resolved, as the cards count them, ``Store.matter_breakdown``), and per month
    (collected and resolved, the 12 months up to the period's end). Every bar links to its list."""
    grids = page.tree.subtree(area_id)
    period = {"start": start.isoformat(), "end": end.isoformat()}
    t = page.t
    series = (t("收集"), t("化解"))
    acc: dict[str, dict[Any, list[int]]] = {"category": {}, "line": {}, "village": {}}
    for grid, cat, line, n, done in page.store.matter_breakdown(grids, start.isoformat(),
                                                                (end + timedelta(days=1)).isoformat(), page.keys):
        for kind, key in (("category", cat), ("line", line), ("village", page.tree.village_of(grid))):
            a = acc[kind].setdefault(key, [0, 0])
            a[0] += n
            a[1] += done

    def row(text: str, counts: list[int], area: str, **filters: str) -> dict[str, Any]:
        links = [matters_link(area, status="counted", **period, **filters),
                 matters_link(area, status="done", **period, **filters)]
        return {"label": text, "values": counts, "links": links, "note": metrics.fmt_rate(metrics.rate(counts[1], counts[0]))}

    def unlinked(text: str, counts: list[int]) -> dict[str, Any]:
        return {"label": text, "values": counts, "links": [None, None],
                "note": metrics.fmt_rate(metrics.rate(counts[1], counts[0]))}

    cats = categories(page.store)
    by_cat = [row(category_name(cats, code, page.lang), c, area_id, category=code) if code else unlinked(t("未分类"), c)
              for code, c in acc["category"].items()]
    by_line = [row(label("line", code, page.lang), c, area_id, line=code) if code else unlinked(t("未归口"), c)
               for code, c in acc["line"].items()]
    by_village = [row(page.area_name(v), c, v) if v else unlinked(t("未归属村"), c) for v, c in acc["village"].items()]

    months = _month_starts(end)
    after = date(end.year + (end.month == 12), end.month % 12 + 1, 1)
    raised: dict[str, int] = {}
    resolved: dict[str, int] = {}
    lo, hi = months[0].isoformat(), after.isoformat()
    for d, n in page.store.raised_per_day(grids, lo, hi, page.keys):
        raised[d[:7]] = raised.get(d[:7], 0) + n
    for d, n in page.store.resolved_per_day(grids, lo, hi, page.keys):
        resolved[d[:7]] = resolved.get(d[:7], 0) + n
    by_month = []
    for i, first in enumerate(months):
        last = ((months[i + 1] if i + 1 < len(months) else after) - timedelta(days=1)).isoformat()
        key = first.isoformat()[:7]
        by_month.append({"label": f"{first.month}月" if page.lang == "zh" else first.strftime("%b"), "month": key, "values": [raised.get(key, 0),
                                                                                      resolved.get(key, 0)],
                         "links": [matters_link(area_id, status="counted", start=first.isoformat(), end=last),
                                   matters_link(area_id, status="done", rstart=first.isoformat(), rend=last)]})
    other = t("其他")
    return {
        "category": charts.hbars(charts.top_n(by_cat, CATEGORY_TOP, other), series),
        "line": charts.hbars(charts.top_n(by_line, LINE_TOP, other), series),
        "village": charts.hbars(charts.top_n(by_village, VILLAGE_TOP, other), series),
        "month": charts.vbars(by_month, series),
        "months": f"{months[0].isoformat()[:7]} — {months[-1].isoformat()[:7]}",
    }


def map_data(page: Page, area_id: str, today: date) -> dict[str, Any]:
    """The map of the area: households, open matters (at their household) and the visits of the last
    30 days, over the villages' outlines (the convex hull of their households). Up to ``MAP_DOTS``
    households, a dot each, linking to the dossier or the matter; above, one circle per grid sized by
    its count, linking to the grid's list. Only what the user may see: households of their areas,
    matters visible under their keys (a 信访 matter only for its handling chain, each dot of one
    audited as a read)."""
    grids = page.tree.subtree(area_id)
    cells = page.store.household_cells(grids)
    total = sum(c[2] for c in cells)   # households with a location
    since, until = metrics.coverage_window(today, 30)
    names = page.area_name
    out: dict[str, Any] = {"width": charts.MAP_WIDTH, "height": charts.MAP_HEIGHT, "households": total,
                           "outlines": [], "dots": {"households": [], "matters": [], "visits": []}}
    if not cells:
        out["mode"] = "empty"
        return out
    by_village: dict[str | None, list[tuple[float, float]]] = {}
    zoomed = page.tree.level.get(area_id) in ("village", "community")   # a village: its grids' outlines

    def unit(grid: str) -> str | None:
        return grid if zoomed else page.tree.village_of(grid)

    if total > MAP_DOTS:
        corners = [(la, lo) for *_, la0, la1, lo0, lo1, _, _ in cells for la in (la0, la1) for lo in (lo0, lo1)]
        proj = charts.Projection(corners)
        for g, _, _, la0, la1, lo0, lo1, _, _ in cells:
            by_village.setdefault(unit(g), []).extend(
                proj(la, lo) for la in (la0, la1) for lo in (lo0, lo1))
        # One circle per grid; with more grids than MAP_CELLS (a county's 1,409), one per village.
        per_village = len(cells) > MAP_CELLS
        out["mode"] = "villages" if per_village else "cells"

        def cell_of(g: str) -> str:
            return (page.tree.village_of(g) or g) if per_village else g

        # a circle counts every household of its cell (as the list it opens), drawn at the located ones' centre
        acc: dict[str, list[float]] = {}
        for g, n, located, *_, la, lo in cells:
            a = acc.setdefault(cell_of(g), [0, 0, 0.0, 0.0])
            a[0] += n
            a[1] += located
            a[2] += la * located
            a[3] += lo * located
        centre = {k: proj(a[2] / a[1], a[3] / a[1]) for k, a in acc.items()}
        matters: dict[str, int] = {}
        for g, n in page.store.open_matter_cells(grids, page.keys, metrics.FINISHED):
            matters[cell_of(g)] = matters.get(cell_of(g), 0) + n
        visited: dict[str, int] = {}
        for g, n in page.store.visited_cells(grids, since, until):
            visited[cell_of(g)] = visited.get(cell_of(g), 0) + n
        most = max([1.0, *(a[0] for a in acc.values())])

        def circle(k: str, n: int, href: str, what: str) -> dict[str, Any]:
            x, y = centre[k]
            return {"x": x, "y": y, "r": round(2 + 14 * math.sqrt(n / most), 1), "href": href, "n": n,
                    "title": f"{page.area_path(k, 3)}：{what} {n}"}

        for k, a in sorted(acc.items()):
            out["dots"]["households"].append(circle(k, int(a[0]), households_link(k), page.t("住户")))
            if matters.get(k):
                out["dots"]["matters"].append(circle(k, matters[k], matters_link(k, status="open"),
                                                     page.t("未办结事项")))
            if visited.get(k):
                out["dots"]["visits"].append(circle(k, visited[k], households_link(k, visited=30),
                                                    page.t("近30天走访过")))
    else:
        out["mode"] = "dots"
        homes = page.store.household_points(grids)
        visits = [v for v in page.store.visit_points(grids, since, until) if v[3] is not None and v[4] is not None]
        proj = charts.Projection([(h[2], h[3]) for h in homes] + [(v[3], v[4]) for v in visits])
        where = {}
        for hid, g, la, lo, head in homes:
            where[hid] = xy = proj(la, lo)
            by_village.setdefault(unit(g), []).append(xy)
            out["dots"]["households"].append({"x": xy[0], "y": xy[1], "r": 2.5, "href": f"/staff/households/{hid}",
                                              "title": f"{head or page.t('住户')}（{page.area_path(g)}）"})
        shown = []
        stacked: dict[str, int] = {}
        for mid, hid, g, _, _, (_, d) in page.store.open_matter_points(grids, page.keys, metrics.FINISHED):
            if hid not in where:
                continue
            k = stacked[hid] = stacked.get(hid, -1) + 1   # several matters of one household side by side
            x, y = where[hid]
            if is_sensitive(d):
                shown.append(mid)
            out["dots"]["matters"].append({"x": round(x + 4 * k, 1), "y": round(y - 4, 1), "r": 3.5,
                                           "href": f"/staff/matters/{mid}",
                                           "title": f"{d.get('title') or page.t('事项')}（{label('status', d.get('status'), page.lang)}）"})
        if shown:
            audit_sensitive(page, shown, "map")
        for vid, hid, g, la, lo in visits:
            x, y = proj(la, lo)
            out["dots"]["visits"].append({"x": x, "y": y, "r": 2, "href": f"/staff/households/{hid}",
                                          "title": f"{page.t('走访')}（{page.area_path(g)}）"})
    for v, pts in by_village.items():
        shape = charts.outline(pts, names(v) if v else page.t("未归属村"))   # v: a village, or a grid when zoomed
        if shape:
            out["outlines"].append(shape)
    out["outlines"].sort(key=lambda o: o["label"])
    return out


@get("/staff/", include_in_schema=False)
async def dashboard(request: Request) -> Response[Any]:
    return await run(request, _dashboard)


def _dashboard(page: Page) -> Response[Any]:
    area_id, start, end = period(page)
    today = local_today()
    figures = metrics.dashboard(page.store, area_id, start, end + timedelta(days=1), today,
                                page.keys) if area_id else None
    options = [a for a in page.options() if page.tree.level.get(a) not in ("grid", "group", "patch")]
    links = card_links(area_id, start, end) if figures else {}
    sync_links = {"conflicts": "/staff/conflicts?" + urlencode({"area": area_id, "kind": "conflict"}),
                  "rejected": "/staff/conflicts?" + urlencode({"area": area_id, "kind": "rejected"})}
    if figures:
        for r in figures["ranking"]:
            r["links"] = card_links(r["area_id"], start, end)
    extra = {"charts": chart_data(page, area_id, start, end), "map": map_data(page, area_id, today)} if figures else {}
    return page.render("staff/dashboard.html", options=options, area_id=area_id, start=start.isoformat(),
                       end=end.isoformat(), today=today.isoformat(), f=figures, links=links,
                       sync_links=sync_links, hh_link=households_link,
                       chart=trend_svg(figures["trend"]) if figures else None, **extra)
