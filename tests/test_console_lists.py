"""The console's lists at county scale (issue 14): pagination whose totals are the rows one can page
through, exports that stream (typed cells, autofilter, the filtered list, memory bounded), the
work-order number, 即将超期 and 超期天数 as one rule each with their SQL twins, bulk 派单/督办 on a
selection, the return to the list after an action, and the 落实清单's measures."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import re
import threading
import tracemalloc
from typing import Any

import openpyxl
import pytest

from server.metrics import FINISHED
from server.staff.core import local_today
from sync import accounts, workflow
from sync.catalogue import install_catalogue
from sync.engine import area_tree
from sync.scope import user_keys
from sync.storage import MatterFilter
from sync.store import MATTER_NUMBER_COUNTER

from . import backend
from .conftest import Town, new_id
from .test_staff_console import Console, con, csrf  # noqa: F401  (con: the fixture)

TITLE = re.compile(r'data-testid="matter-row">.*?<a href="/staff/matters/([0-9a-f-]{36})\?', re.S)


def many(t: Town, n: int, household: str | None = None, prefix: str = "事项", **fields: Any) -> list[str]:
    """``n`` matters of one household, pushed 500 to a batch (as a phone's outbox would)."""
    h = household or t.household("w1", "g1")
    ids = [new_id() for _ in range(n)]
    for i in range(0, n, 500):
        res = t.push("w1", *[t.mut("matters", mid, {"household_id": h, "title": f"{prefix}{i + k}", **fields})
                             for k, mid in enumerate(ids[i:i + 500])])
        assert all(r.status == "applied" for r in res), res[:3]
    return ids


def page_ids(con: Console, path: str) -> list[str]:
    r = con.c.get(path)
    assert r.status_code == 200, r.text[:500]
    return TITLE.findall(r.text)


def set_fields(t: Town, mid: str, **fields: Any) -> None:
    assert t.push1("staff", t.mut("matters", mid, fields, base=t.version("matters", mid))).status == "applied"


def walk(t: Town, mid: str, *moves: str, note: str = "") -> None:
    cur = t.store.get("matters", mid).data["status"]   # type: ignore[union-attr]
    for to in moves:
        assert t.move("staff", mid, cur, to, note).status == "applied", (cur, to)
        cur = to


# -- pagination ------------------------------------------------------------------------------------

def test_every_list_pages_through_its_whole_total(con: Console) -> None:
    """The intake queue (once capped at 200), the matters list under a filter, the three lists and the
    household search: the count shown is the number of distinct rows the pages hold."""
    t = con.town
    ids = many(t, 120, raised_at="2026-11-05T09:00:00+08:00")
    assert con.login("staff1").status_code == 303
    seen: list[str] = []
    for n in (1, 2, 3):
        seen += page_ids(con, f"/staff/intake?page={n}")
    assert len(seen) == 120 and set(seen) == set(ids)
    first = con.c.get("/staff/intake").text
    assert re.search(r"<small>120</small>", first) and "1 / 3" in first and 'href="?page=2"' in first
    # a filter stays on the page links
    listed = con.c.get("/staff/matters?status=submitted&q=%E4%BA%8B%E9%A1%B9&sort=raised_asc").text
    assert '<small id="total">120</small>' in listed
    assert 'href="?status=submitted&amp;q=%E4%BA%8B%E9%A1%B9&amp;sort=raised_asc&amp;page=2"' in listed
    seen = []
    for n in (1, 2, 3):
        seen += page_ids(con, f"/staff/matters?status=submitted&sort=raised_asc&page={n}")
    assert len(seen) == 120 and set(seen) == set(ids)
    # the three lists: one page at a time, the total counted in the database
    rows = []
    for n in (1, 2, 3):
        html = con.c.get(f"/staff/reports/lists?start=2026-11-01&end=2026-11-30&list=owner&page={n}").text
        assert '<small id="total">120</small>' in html
        rows += re.findall(r"<tr><td>(\d+)</td>", html)
    assert [int(x) for x in rows] == list(range(1, 121))
    assert con.c.get("/staff/reports/lists?start=2026-11-01&end=2026-11-30&page=4").text.count("<tr><td>") == 0
    assert con.c.get("/staff/matters?page=0").status_code == 400
    # households: 60 more, searched by the address they share
    for _ in range(60):
        t.household("w1", "g1", address="杖锡村下岙9号")
    found: list[str] = []
    for n in (1, 2):
        html = con.c.get(f"/staff/households?q=%E4%B8%8B%E5%B2%99&page={n}").text
        assert re.search(r"<small[^>]*>60</small>", html)
        found += re.findall(r'data-testid="household-row"><td><a href="/staff/households/([0-9a-f-]{36})"', html)
    assert len(found) == 60 and len(set(found)) == 60


# -- exports ---------------------------------------------------------------------------------------

def test_the_filtered_matters_list_exports_with_excel_types(con: Console) -> None:
    t = con.town
    ids = many(t, 30, raised_at="2026-11-05T09:30:00+08:00")
    today = local_today()
    late = ids[:7]
    for k, mid in enumerate(late):
        set_fields(t, mid, deadline=(today - dt.timedelta(days=k + 1)).isoformat())
        walk(t, mid, "accepted")
    assert con.login("staff1").status_code == 303
    html = con.c.get("/staff/matters?overdue=1&sort=overdue_days").text
    listed = TITLE.findall(html)
    assert len(listed) == 7 and 'href="/staff/matters/export?overdue=1&amp;sort=overdue_days&amp;format=xlsx"' in html
    r = con.c.get("/staff/matters/export?overdue=1&sort=overdue_days&format=xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = openpyxl.load_workbook(io.BytesIO(r.content))["事项"]
    rows = list(ws.iter_rows(values_only=True))
    head = rows[1]
    assert head[:2] == ("工单编号", "事项") and ws.auto_filter.ref == f"A2:P{len(rows)}" and ws.freeze_panes == "A3"
    body = rows[2:]
    numbers = {t.store.get("matters", m).data["number"] for m in listed}   # type: ignore[union-attr]
    assert len(body) == 7 and {b[0] for b in body} == numbers             # the export's rows are the list's
    col = {h: i for i, h in enumerate(head)}
    assert [b[col["超期天数"]] for b in body] == [7, 6, 5, 4, 3, 2, 1]       # sorted as the list, whole numbers
    first = body[0]
    assert isinstance(first[col["反映时间"]], dt.datetime) and first[col["反映时间"]] == dt.datetime(2026, 11, 5, 9, 30)
    assert first[col["办理时限"]] == dt.datetime.combine(today - dt.timedelta(days=7), dt.time())
    assert ws.cell(3, col["办理时限"] + 1).number_format == "yyyy-mm-dd"
    assert ws.cell(3, col["反映时间"] + 1).number_format == "yyyy-mm-dd hh:mm"
    c = con.c.get("/staff/matters/export?overdue=1&format=csv")
    assert c.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert table[0][0] == "工单编号" and len(table) == 8
    assert con.c.get("/staff/matters/export?format=pdf").status_code == 400
    # rates are numbers with a percent format (the monthly report's)
    m = con.c.get("/staff/reports/monthly?month=2026-11&format=xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(m.content))
    summary = wb["月报告"]
    cells = {row[0].value: row[1] for row in summary.iter_rows(min_row=3)}
    assert cells["化解率"].value == 0 and cells["化解率"].number_format == "0.0%"


def test_a_petition_in_an_export_is_audited_and_village_staff_get_none(con: Console) -> None:
    t = con.town
    install_catalogue(con.store)
    accounts.create_user(con.store, "vstaff", "demo", "staff", [t.ids["v1"]],
                         password_hash=con.store.password_hash(t.actors["staff"].user_id))
    petition = t.matter("w1", title="反映征地补偿", category="proxy.petition")
    t.matter("w1", title="村道路灯不亮")
    assert con.login("vstaff").status_code == 303
    body = con.c.get("/staff/matters/export?format=csv").content.decode("utf-8-sig")
    assert "村道路灯不亮" in body and "反映征地补偿" not in body
    con.c.cookies.clear()
    assert con.login("staff1").status_code == 303
    before = audited_reads(con, petition)
    body = con.c.get("/staff/matters/export?format=csv").content.decode("utf-8-sig")
    assert "反映征地补偿" in body and audited_reads(con, petition) == before + 1


def audited_reads(con: Console, matter: str) -> int:
    return int(con.store.conn.execute("SELECT count(*) FROM audit WHERE action = 'sensitive.read' AND record_id = ?",
                                      (matter,)).fetchone()[0])


def _export_peak(con: Console, path: str) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        r = con.c.get(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200
    return peak - len(r.content), len(r.content)


def test_export_memory_does_not_grow_with_the_rows(con: Console) -> None:
    """Bounded, not timed: exporting five times the matters takes about the same memory (the
    response's own bytes aside, which the test client holds). Built in memory, the workbook of 3,000
    rows took several times that of 600."""
    t = con.town
    h = t.household("w1", "g1", address="杖锡村上岙1号")
    many(t, 600, household=h, prefix="小批", description="描述" * 40)
    assert con.login("staff1").status_code == 303
    con.c.get("/staff/matters/export?q=%E5%B0%8F%E6%89%B9&format=xlsx")   # warm up (imports, templates)
    small, _ = _export_peak(con, "/staff/matters/export?q=%E5%B0%8F%E6%89%B9&format=xlsx")
    many(t, 2400, household=h, prefix="小批", description="描述" * 40)
    large, size = _export_peak(con, "/staff/matters/export?q=%E5%B0%8F%E6%89%B9&format=xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(con.c.get("/staff/matters/export?q=%E5%B0%8F%E6%89%B9&format=xlsx")
                                           .content), read_only=True)["事项"]
    assert sum(1 for _ in ws.iter_rows()) == 3002
    assert large < small * 1.6 + 2_000_000, (small, large, size)


# -- the work-order number -------------------------------------------------------------------------

def test_the_number_is_given_once_by_the_server_and_found_exactly(con: Console) -> None:
    t = con.town
    a = t.matter("w1", title="第一件", number="2026-999999")     # a client's number is not taken
    b = t.matter("w1", title="第二件")
    year = str(local_today().year)
    na, nb = (t.store.get("matters", m).data["number"] for m in (a, b))   # type: ignore[union-attr]
    assert re.fullmatch(rf"{year}-\d{{6}}", na) and int(nb[5:]) == int(na[5:]) + 1
    set_fields(t, a, deadline="2026-12-31")
    r = t.push1("w1", t.mut("matters", a, {"number": "X-1", "title": "第一件（改）"}, base=t.version("matters", a)))
    assert r.status == "applied" and t.store.get("matters", a).data["number"] == na   # type: ignore[union-attr]
    pulled = t.pull_all("w1")
    assert pulled[("matters", b)].data["number"] == nb                     # phones receive it
    assert con.login("staff1").status_code == 303
    assert page_ids(con, f"/staff/matters?q={na}") == [a]                  # the list's q finds it exactly
    assert page_ids(con, f"/staff/matters?q={na[:-1]}") == []
    assert na in con.c.get(f"/staff/matters/{a}").text and na in con.c.get(f"/staff/matters/{a}/print").text
    assert na in con.c.get("/staff/matters").text


def test_two_concurrent_pushes_never_share_a_number(db: str, town: Town) -> None:
    """Two servers (two stores on one database) each create 40 matters at the same moment."""
    h = town.household("w1", "g1")
    stores = [backend.open_store(db) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def push(store: Any) -> None:
        from sync import engine
        import json
        try:
            barrier.wait()
            for _ in range(4):
                body = json.dumps({"protocol": 1, "mutations": [town.mut("matters", new_id(), {
                    "household_id": h, "title": "并发"}) for _ in range(10)]}).encode()
                res = engine.push(store, town.actors["w1"], body).results
                assert all(r.status == "applied" for r in res)
        except BaseException as e:   # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=push, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in stores:
        s.close()
    assert not errors, errors
    numbers = [d["number"] for _, d in town.store.live_records("matters")]
    serials = sorted(int(n.split("-")[1]) for n in numbers)
    assert len(numbers) == 80 and serials == list(range(1, 81))


def test_the_migration_numbers_the_matters_made_before(store: Any, town: Town) -> None:
    ids = [town.matter("w1", title=f"旧事项{i}") for i in range(5)]
    # as before migration 0006: no numbers, no counter
    for mid in ids:
        rec = store.get("matters", mid)
        data = dict(rec.data)
        data.pop("number")
        with store.transaction():
            store.conn.execute("UPDATE matters SET data = ? WHERE id = ?", (store._data_text(data), mid))
    with store.transaction():
        store.conn.execute("DELETE FROM counters WHERE name LIKE 'matter_number:%'")
        store.conn.execute("DELETE FROM migrations WHERE name = '0006 matter work-order numbers'")
    assert store.migrate() == ["0006 matter work-order numbers"]
    order = [r[0] for r in store.conn.execute("SELECT id FROM matters ORDER BY created_at, id")]
    numbers = [store.get("matters", mid).data["number"] for mid in order]
    year = numbers[0][:4]
    assert numbers == [f"{year}-{k:06d}" for k in range(1, 6)]
    assert int(store.conn.execute("SELECT value FROM counters WHERE name = ?",
                                  (MATTER_NUMBER_COUNTER + year,)).fetchone()[0]) == 5
    new = town.matter("w1", title="新事项")
    assert store.get("matters", new).data["number"] == f"{year}-000006"


# -- 即将超期 and 超期天数 -------------------------------------------------------------------------------

def test_due_soon_and_days_overdue_agree_between_python_sql_and_the_page(con: Console) -> None:
    t = con.town
    today = local_today()
    until = workflow.due_soon_until(today)
    cases = {  # deadline offset in calendar days, the moves to make
        "yesterday": (-1, ("accepted",)), "last week": (-7, ("accepted", "assigned")),
        "today": (0, ("accepted",)), "tomorrow": (1, ("accepted",)), "in two days": (2, ("accepted",)),
        "in three days": (3, ("accepted",)), "in five days": (5, ("accepted",)), "in ten days": (10, ("accepted",)),
        "resolved tomorrow": (1, ("accepted", "in_progress", "resolved")),
        "waiting tomorrow": (1, ("accepted", "in_progress", "waiting_materials")),
        "waiting last week": (-7, ("accepted", "in_progress", "waiting_materials")),
        "submitted tomorrow": (1, ()),
    }
    ids = {}
    for name, (days, moves) in cases.items():
        mid = t.matter("w1", title=name)
        set_fields(t, mid, deadline=(today + dt.timedelta(days=days)).isoformat())
        walk(t, mid, *moves)
        ids[name] = mid
    tree = area_tree(t.store)
    keys = user_keys(t.actors["staff"], tree)
    grids = tree.subtree(t.ids["town"])
    rows, total = t.store.matters_page(grids, keys, MatterFilter(ended=FINISHED), "raised", None)
    day = today.isoformat()
    soon = {r.id for r in rows if workflow.is_due_soon(r.data, day, until, FINISHED)}
    sql, n = t.store.matters_page(grids, keys, MatterFilter(ended=FINISHED, due_soon_on=day, due_soon_until=until),
                                  "raised", None)
    assert {r.id for r in sql} == soon and n == len(soon)
    # the definition, case by case: held to a date from today to two working days on, clock running
    assert {ids[k] for k in ("today", "tomorrow", "submitted tomorrow")} <= soon
    assert not {ids[k] for k in ("yesterday", "last week", "in ten days", "resolved tomorrow", "waiting tomorrow",
                                 "waiting last week")} & soon
    for k in ("in two days", "in three days", "in five days"):   # depends on the weekday of today
        assert (ids[k] in soon) == ((today + dt.timedelta(days=cases[k][0])).isoformat() <= until), k
    days = {r.id: workflow.overdue_days(r.data, day, FINISHED) for r in rows}
    assert days[ids["yesterday"]] == 1 and days[ids["last week"]] == 7 and days[ids["waiting last week"]] == 0
    assert days[ids["today"]] == 0 and days[ids["resolved tomorrow"]] == 0
    # the page: the same count, the same rows, sorted by days overdue
    assert con.login("staff1").status_code == 303
    html = con.c.get("/staff/matters?due_soon=1").text
    assert f'<small id="total">{len(soon)}</small>' in html and set(TITLE.findall(html)) == soon
    order = page_ids(con, "/staff/matters?sort=overdue_days")
    assert order[:2] == [ids["last week"], ids["yesterday"]]
    assert '<td class="num">7</td>' in con.c.get("/staff/matters?overdue=1").text


# -- bulk 派单 and 督办, and the way back to the list -------------------------------------------------

def test_bulk_dispatch_and_supervise_each_matter_through_the_engine(con: Console) -> None:
    t = con.town
    install_catalogue(con.store)
    accounts.create_user(con.store, "vstaff", "demo", "staff", [t.ids["v1"]],
                         password_hash=con.store.password_hash(t.actors["staff"].user_id))
    own = t.matter("w1", title="本村事项")                                   # submitted, in v1
    accepted = t.matter("w1", title="已受理事项")
    walk(t, accepted, "accepted")
    other = t.matter("w3", household=t.household("w3", "g3"), title="外村事项")  # v2: outside vstaff's scope
    petition = t.matter("w1", title="反映征地补偿", category="proxy.petition")   # 信访: not vstaff's chain
    assert con.login("vstaff").status_code == 303
    page = con.c.get("/staff/intake").text
    worker = t.actors["w1"].user_id
    form = {"csrf": csrf(page), "action": "dispatch", "assignee_id": worker, "line": "", "deadline": "",
            "note": "请尽快处理", "next": "/staff/intake?page=1", "ids": [own, accepted, other, petition, "nonsense"]}
    assert con.c.post("/staff/matters/bulk", data={**form, "csrf": "x"}).status_code == 403
    r = con.c.post("/staff/matters/bulk", data=form)
    assert r.status_code == 200
    rows = re.findall(r'data-testid="bulk-row" class="(\w+)">(.*?)</tr>', r.text, re.S)
    assert [c for c, _ in rows] == ["done", "done", "refused", "refused", "refused"]
    assert "外村事项" not in r.text and "反映征地补偿" not in r.text and "不在您的管辖范围内" in r.text
    assert 'href="/staff/intake?page=1" id="bulk-back"' in r.text
    for mid in (own, accepted):
        d = con.matter(mid)
        assert d["status"] == "assigned" and d["assignee_id"] == worker
        assert con.events(mid)[-1]["kind"] == "assign" and con.events(mid)[-1]["actor_id"] != worker
    assert con.matter(other)["status"] == "submitted" and con.matter(petition)["status"] == "submitted"
    # supervise: the note is required, and nothing is written without it
    before = [con.matter(m)["supervised"] for m in (own, accepted)]
    bad = con.c.post("/staff/matters/bulk", data={**form, "action": "supervise", "note": "", "ids": [own, accepted]})
    assert bad.status_code == 400 and "督办须填写督办意见" in bad.text
    assert [con.matter(m)["supervised"] for m in (own, accepted)] == before
    ok = con.c.post("/staff/matters/bulk", data={**form, "action": "supervise", "note": "请本周内办结",
                                                 "ids": [own, accepted]})
    assert ok.text.count('class="done"') == 2
    assert all(con.matter(m)["supervised"] and con.matter(m)["supervision_note"] == "请本周内办结"
               for m in (own, accepted))
    # a second 派单 of an assigned matter is refused by the workflow, in Chinese
    again = con.c.post("/staff/matters/bulk", data={**form, "ids": [own]})
    assert 'class="refused"' in again.text and "当前状态下不能执行此操作" in again.text


def test_an_action_returns_to_the_list_position_it_came_from(con: Console) -> None:
    t = con.town
    many(t, 60)
    mid = t.matter("w1", title="要跟进的事项")
    assert con.login("staff1").status_code == 303
    back = "/staff/matters?status=submitted&sort=raised_asc&page=2"
    listed = con.c.get(back).text
    assert f'href="/staff/matters/{mid}?next=/staff/matters%3Fstatus%3Dsubmitted%26sort%3Draised_asc%26page%3D2"' \
        in listed
    page = con.c.get(f"/staff/matters/{mid}", params={"next": back}).text
    assert f'name="next" value="{back.replace("&", "&amp;")}"' in page
    r = con.act(mid, action="note", note="已电话联系", next=back)
    assert r.status_code == 303 and r.headers["location"] == back + "&msg=noted"
    # an invalid action goes back to the matter page, still carrying the way back
    r = con.act(mid, action="note", note="", next=back)
    assert r.headers["location"].startswith(f"/staff/matters/{mid}?") and "next=" in r.headers["location"]
    for hostile in ("https://evil.example/", "//evil.example/staff/matters", "/staff/admin/users",
                    "/staff/matters?status=open&x=%0d%0aSet-Cookie", "/staff/matters/../admin"):
        r = con.act(mid, action="note", note="再次跟进", next=hostile)
        loc = r.headers["location"]
        assert loc.startswith(f"/staff/matters/{mid}") or loc.startswith("/staff/matters?status=open&msg="), loc
        assert "evil" not in loc and "admin" not in loc and "Set-Cookie" not in loc


# -- the 落实清单 ------------------------------------------------------------------------------------

def test_the_measure_list_shows_what_was_done_not_the_closing_or_supervision_note(con: Console) -> None:
    t = con.town
    done = t.matter("w1", title="路灯不亮", raised_at="2026-11-03T09:00:00+08:00")
    walk(t, done, "accepted", "in_progress")
    assert t.push1("staff", t.mut("matter_events", new_id(), {"matter_id": done, "kind": "supervise",
                                                               "note": "请加快办理"})).status == "applied"
    walk(t, done, "resolved", note="已更换路灯灯头，恢复照明。")
    walk(t, done, "closed", note="经回访核实，群众满意，予以销号。")
    going = t.matter("w1", title="排水沟堵塞", raised_at="2026-11-04T09:00:00+08:00")
    walk(t, going, "accepted")
    assert t.push1("staff", t.mut("matter_events", new_id(), {"matter_id": going, "kind": "note",
                                                               "note": "已联系村里清淤队。"})).status == "applied"
    assert t.push1("staff", t.mut("matter_events", new_id(), {"matter_id": going, "kind": "supervise",
                                                               "note": "限三日内疏通"})).status == "applied"
    fresh = t.matter("w1", title="新反映", raised_at="2026-11-05T09:00:00+08:00")
    assert con.login("staff1").status_code == 303
    html = con.c.get("/staff/reports/lists?start=2026-11-01&end=2026-11-30&list=measure").text
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r"<tr><td>\d+</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", html)}
    assert rows == {"路灯不亮": "已更换路灯灯头，恢复照明。", "排水沟堵塞": "已联系村里清淤队。", "新反映": ""}
    assert "予以销号" not in html and "请加快办理" not in html and "限三日内疏通" not in html
    del fresh
