"""The chart and map geometry of server/staff/charts.py, as pure functions."""

from __future__ import annotations

import math

import pytest

from server.staff.charts import Projection, convex_hull, fit, hbars, outline, top_n, vbars


@pytest.mark.parametrize("points, hull", [
    ([], []),
    ([(1.0, 1.0)], [(1.0, 1.0)]),
    ([(0.0, 0.0), (2.0, 0.0), (1.0, 1.0), (2.0, 2.0), (0.0, 2.0), (1.0, 0.0)],   # inner and edge points go
     [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]),
    ([(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)], [(0.0, 0.0), (2.0, 2.0)]),             # collinear: a segment
])
def test_convex_hull(points: list[tuple[float, float]], hull: list[tuple[float, float]]) -> None:
    assert convex_hull(points) == hull


def test_an_outline_of_one_house_is_a_box_around_it() -> None:
    shape = outline([(10.0, 20.0)], "杖锡村")
    assert shape is not None and shape["label"] == "杖锡村" and (shape["x"], shape["y"]) == (10.0, 20.0)
    assert shape["points"] == "4.0,14.0 16.0,14.0 16.0,26.0 4.0,26.0"
    assert outline([], "x") is None


def test_the_projection_fits_the_box_and_keeps_east_right_and_north_up() -> None:
    pts = [(29.80, 121.30), (29.90, 121.30), (29.80, 121.50)]
    p = Projection(pts, width=600, height=400, pad=20)
    xy = [p(*q) for q in pts]
    assert all(20 - 0.1 <= x <= 580.1 and 20 - 0.1 <= y <= 380.1 for x, y in xy)
    (x0, y0), (x1, y1), (x2, y2) = xy
    assert y1 < y0 and x2 > x0                          # north is up, east is right
    # a degree of longitude is cos(latitude) of a degree of latitude
    assert (x2 - x0) / (y0 - y1) == pytest.approx(2 * math.cos(math.radians(29.85)), rel=1e-2)
    assert max(x2 - x0, y0 - y1) == pytest.approx(560, abs=0.2)   # the wider side fills the box


def test_one_point_projects_to_the_centre() -> None:
    assert Projection([(29.8, 121.3)], width=600, height=400)(29.8, 121.3) == (300.0, 200.0)


def test_top_n_sums_the_rest_without_a_link() -> None:
    rows = [{"label": f"c{i}", "values": [i, i // 2], "links": [f"/a{i}", f"/b{i}"], "note": ""} for i in range(6)]
    out = top_n(rows, 3, "其他")
    assert [r["label"] for r in out] == ["c5", "c4", "c3", "其他（3）"]
    assert out[-1]["values"] == [0 + 1 + 2, 0 + 0 + 1] and out[-1]["links"] == [None, None]
    assert top_n(rows[:4], 3, "其他") == sorted(rows[:4], key=lambda r: -r["values"][0])   # one more: no 其他


def test_fit_shortens_long_labels() -> None:
    assert fit("农村建房审批", 140) == "农村建房审批"
    short = fit("Appointments and medical appointments", 140)
    assert short.endswith("…") and len(short) < 30
    assert fit("这是一个非常非常长的分类名称", 140).endswith("…")


def test_bars_scale_to_the_largest_value() -> None:
    rows = [{"label": "a", "values": [10, 5], "links": ["/a", None]}, {"label": "b", "values": [0, 0],
                                                                        "links": [None, None]}]
    h = hbars(rows, ("收集", "化解"))
    widths = [b["w"] for b in h["bars"]]
    assert widths[0] == 2 * widths[1] and widths[2:] == [0, 0]
    assert [b["href"] for b in h["bars"]] == ["/a", None, None, None]
    v = vbars(rows, ("收集", "化解"))
    assert v["bars"][0]["h"] == 2 * v["bars"][1]["h"] and v["bars"][0]["y"] + v["bars"][0]["h"] == v["base_y"]
