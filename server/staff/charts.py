"""The dashboard's charts and map as server-rendered SVG geometry (issue 14: 一屏观全域).

No chart library and no script: each builder turns counts into plain numbers (bars, polylines,
dots, outlines) that ``templates/staff/_charts.html`` draws as SVG, each bar or dot a link to the
list of what it counts, with a title and description for screen readers and a table beside it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

CHART_WIDTH = 640


def trend_svg(trend: list[dict[str, Any]], width: int = CHART_WIDTH, height: int = 180) -> dict[str, Any]:
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


def top_n(rows: list[dict[str, Any]], n: int, other: str) -> list[dict[str, Any]]:
    """The ``n`` rows with the most in their first value, the rest summed into one row ``other``
    (without a link: no list holds "all the others")."""
    rows = sorted(rows, key=lambda r: (-r["values"][0], r["label"]))
    if len(rows) <= n + 1:
        return rows
    rest = rows[n:]
    width = len(rows[0]["values"])
    summed = [sum(r["values"][i] for r in rest) for i in range(width)]
    return [*rows[:n], {"label": f"{other}（{len(rest)}）", "values": summed, "links": [None] * width,
                        "note": ""}]


def fit(text: str, px: float, size: float = 11) -> str:
    """``text`` shortened with "…" to about ``px`` pixels at ``size`` px (a CJK character is a full
    em, others about half): the full text stays in the bar's title and the table."""
    out, used = "", 0.0
    for ch in text:
        w = size if ord(ch) > 0x2E80 else size * 0.56
        if used + w > px - size:
            return out + "…"
        out, used = out + ch, used + w
    return out


def hbars(rows: list[dict[str, Any]], series: Sequence[str], width: int = CHART_WIDTH) -> dict[str, Any]:
    """A horizontal bar chart: one group per row (``label``, ``values`` per series, ``links``,
    ``note`` written after the bars), one bar per series."""
    label_w, note_w, bar_h, gap, top = 150, 60, 12, 8, 4
    inner = width - label_w - note_w - 10
    most = max([1, *(v for r in rows for v in r["values"])])
    group_h = bar_h * len(series) + gap
    bars, labels = [], []
    for i, r in enumerate(rows):
        y0 = top + i * group_h
        labels.append({"x": label_w - 6, "y": y0 + bar_h * len(series) / 2 + 4, "text": fit(r["label"], label_w - 10), "full": r["label"],
                       "note": r.get("note") or "", "note_x": width - note_w + 4})
        for j, (v, href) in enumerate(zip(r["values"], r["links"])):
            w = round(inner * v / most, 1)
            bars.append({"x": label_w, "y": y0 + j * bar_h, "w": max(w, 1 if v else 0), "h": bar_h - 2,
                         "cls": f"s{j}", "n": v, "href": href, "series": series[j], "label": r["label"],
                         "tx": label_w + w + 3, "ty": y0 + j * bar_h + bar_h - 3})
    return {"width": width, "height": top + len(rows) * group_h + 4, "bars": bars, "labels": labels,
            "rows": rows, "series": list(series)}


def vbars(rows: list[dict[str, Any]], series: Sequence[str], width: int = CHART_WIDTH, height: int = 200
          ) -> dict[str, Any]:
    """A vertical grouped bar chart (the months): one group per row, one bar per series."""
    pad_l, pad_b, pad_t = 32, 22, 14
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t
    most = max([1, *(v for r in rows for v in r["values"])])
    slot = inner_w / max(1, len(rows))
    bar_w = max(2.0, (slot - 6) / len(series))
    bars, labels = [], []
    for i, r in enumerate(rows):
        x0 = pad_l + i * slot + 3
        labels.append({"x": round(x0 + (slot - 6) / 2, 1), "y": height - 6, "text": r["label"]})
        for j, (v, href) in enumerate(zip(r["values"], r["links"])):
            h = round(inner_h * v / most, 1)
            bars.append({"x": round(x0 + j * bar_w, 1), "y": round(pad_t + inner_h - h, 1), "w": round(bar_w - 1, 1),
                         "h": h, "cls": f"s{j}", "n": v, "href": href, "series": series[j], "label": r["label"],
                         "tx": round(x0 + j * bar_w + bar_w / 2, 1), "ty": round(pad_t + inner_h - h - 2, 1)})
    return {"width": width, "height": height, "bars": bars, "labels": labels, "rows": rows, "series": list(series),
            "base_y": pad_t + inner_h, "left": pad_l, "right": width - 8, "top": most, "top_y": pad_t}


# -- the map -------------------------------------------------------------------------------------

MAP_WIDTH, MAP_HEIGHT, MAP_PAD = 900, 560, 24


class Projection:
    """Equirectangular around the centre of the points, scaled to fit the map's box: x grows east,
    y south; a degree of longitude is cos(latitude) of a degree of latitude."""

    def __init__(self, points: Iterable[tuple[float, float]], width: int = MAP_WIDTH, height: int = MAP_HEIGHT,
                 pad: int = MAP_PAD) -> None:
        pts = list(points)
        lats = [p[0] for p in pts] or [0.0]
        lngs = [p[1] for p in pts] or [0.0]
        self.lat0 = (min(lats) + max(lats)) / 2
        self.lng0 = (min(lngs) + max(lngs)) / 2
        self.k = math.cos(math.radians(self.lat0))
        span_x = max((max(lngs) - min(lngs)) * self.k, 1e-6)
        span_y = max(max(lats) - min(lats), 1e-6)
        self.scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)
        self.cx, self.cy = width / 2, height / 2

    def __call__(self, lat: float, lng: float) -> tuple[float, float]:
        return (round(self.cx + (lng - self.lng0) * self.k * self.scale, 1),
                round(self.cy - (lat - self.lat0) * self.scale, 1))


def convex_hull(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of the points, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def outline(points: Iterable[tuple[float, float]], label: str) -> dict[str, Any] | None:
    """A village's outline: the hull of its (projected) points, a little widened so that a village
    of one or two houses still shows, with its label at the centre."""
    hull = convex_hull(points)
    if not hull:
        return None
    cx = sum(p[0] for p in hull) / len(hull)
    cy = sum(p[1] for p in hull) / len(hull)
    if len(hull) < 3:   # a point or a segment: a small box around it
        xs, ys = [p[0] for p in hull], [p[1] for p in hull]
        hull = [(min(xs) - 6, min(ys) - 6), (max(xs) + 6, min(ys) - 6), (max(xs) + 6, max(ys) + 6),
                (min(xs) - 6, max(ys) + 6)]
    return {"points": " ".join(f"{x},{y}" for x, y in hull), "label": label, "x": round(cx, 1), "y": round(cy, 1)}
