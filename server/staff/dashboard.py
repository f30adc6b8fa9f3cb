"""一屏观全域: the dashboard for a chosen period and area."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get

from .. import metrics
from .core import Page, local_today, parse_date, run


def trend_svg(trend: list[dict[str, Any]], width: int = 640, height: int = 180) -> dict[str, Any]:
    """Geometry of the weekly chart: two polylines (collected, resolved), axis ticks."""
    pad_l, pad_b, pad_t = 32, 24, 10
    n = len(trend)
    top = max([1, *(w["collected"] for w in trend), *(w["resolved"] for w in trend)])
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t

    def xy(i: int, v: int) -> tuple[float, float]:
        x = pad_l + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)
        return round(x, 1), round(pad_t + inner_h - inner_h * v / top, 1)

    def line(key: str) -> str:
        return " ".join(f"{x},{y}" for x, y in (xy(i, w[key]) for i, w in enumerate(trend)))

    step = max(1, n // 8)
    labels = [{"x": xy(i, 0)[0], "text": w["week"][-3:]} for i, w in enumerate(trend) if i % step == 0]
    return {"width": width, "height": height, "collected": line("collected"), "resolved": line("resolved"),
            "labels": labels, "top": top, "base_y": pad_t + inner_h, "top_y": pad_t, "left": pad_l,
            "right": width - 8, "label_y": height - 6}


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
    if figures:
        for r in figures["ranking"]:
            r["links"] = card_links(r["area_id"], start, end)
    return page.render("staff/dashboard.html", options=options, area_id=area_id, start=start.isoformat(),
                       end=end.isoformat(), today=today.isoformat(), f=figures, links=links, hh_link=households_link,
                       chart=trend_svg(figures["trend"]) if figures else None)
