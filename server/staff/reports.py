"""Reports: the three lists (问题清单 / 落实清单 / 责任清单) and the monthly report (月报告).

Each table is built once as (headers, rows) and rendered three ways: an HTML page (printable),
an .xlsx workbook with Chinese headers (XlsxWriter) and CSV in UTF-8 with a BOM, so Excel on a
Chinese Windows desktop opens it with the right characters.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import xlsxwriter
from litestar import Request, Response, get

from .. import metrics
from .core import Page, local_today, parse_date, run, when
from .dashboard import period
from .matters import query_matters
from .records import audit_sensitive, categories, category_name, is_sensitive, user_names
from .labels import label

LISTS = {"problem": "问题清单", "measure": "落实清单", "owner": "责任清单"}
Table = tuple[list[str], list[list[Any]]]


def _local_date(stamp: str) -> str:
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp[:10]
    return (dt.astimezone(metrics.LOCAL_TZ) if dt.tzinfo else dt).date().isoformat()


def _period_filter(rows: list[dict[str, Any]], start: date, end: date) -> list[dict[str, Any]]:
    lo, hi = start.isoformat(), (end + timedelta(days=1)).isoformat()
    out = []
    for r in rows:
        raised = r.get("raised_at") or ""
        local = _local_date(raised) if raised else ""
        if lo <= local < hi and r.get("status") != "merged_duplicate":
            out.append(r)
    return out


def _measures(page: Page, matter_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Per matter: the latest measure taken (the newest note of a non-feedback event) and who took it."""
    out: dict[str, tuple[str, str, str]] = {}
    for _, e in page.store.live_where_in("matter_events", "matter_id", matter_ids):
        if not e.get("note") or e.get("kind") == "feedback":
            continue
        mid = e["matter_id"]
        at = e.get("at") or ""
        if mid not in out or at > out[mid][0]:
            out[mid] = (at, e["note"], e.get("actor_id") or "")
    return {k: (v[1], v[2]) for k, v in out.items()}


def three_lists(page: Page, area_id: str, start: date, end: date) -> dict[str, Table]:
    rows, _ = query_matters(page, {"area": area_id, "sort": "raised_asc"}, None)
    rows = _period_filter(rows, start, end)
    _audit_shown(page, rows)
    cats = categories(page.store)
    names = user_names(page.store)
    lang = page.lang
    measures = _measures(page, [r["id"] for r in rows])
    t = page.t
    problem: Table = ([t("序号"), t("反映时间"), t("村 / 网格"), t("户主"), t("地址"), t("分类"), t("问题"), t("描述"),
                       t("来源渠道"), t("状态")], [])
    measure: Table = ([t("序号"), t("问题"), t("落实措施"), t("经办人"), t("状态"), t("办结时间")], [])
    owner: Table = ([t("序号"), t("问题"), t("归口"), t("办理层级"), t("责任人"), t("办理时限"), t("是否超期"), t("督办")], [])
    for n, r in enumerate(rows, 1):
        hh = r["household"]
        title = r.get("title") or ""
        status = label("status", r.get("status"), lang)
        problem[1].append([n, when(r.get("raised_at"), True), page.area_path(hh.get("grid_id")), hh.get("head_name"),
                           hh.get("address"), category_name(cats, r.get("category"), lang), title,
                           r.get("description") or "", label("channel", r.get("channel"), lang), status])
        note, by = measures.get(r["id"], ("", ""))
        measure[1].append([n, title, note, names.get(by, "") if by else "", status,
                           when(r.get("resolved_at"), True) if r.get("resolved_at") else ""])
        owner[1].append([n, title, label("line", r.get("line"), lang), label("level", r.get("level"), lang),
                         names.get(r.get("assignee_id") or "", "") if r.get("assignee_id") else "",
                         r.get("deadline") or "", t("是") if r["overdue"] else t("否"),
                         t("是") if r.get("supervised") else t("否")])
    return {"problem": problem, "measure": measure, "owner": owner}


def _audit_shown(page: Page, rows: list[dict[str, Any]]) -> None:
    """A report or export that shows a 信访 matter's text is a read of it: audited like a page."""
    shown = [r["id"] for r in rows if is_sensitive(r)]
    if shown:
        audit_sensitive(page, shown, "report")


def monthly(page: Page, area_id: str, month: date) -> dict[str, Any]:
    """The month's figures, the areas below ranked, matters by line, and the overdue and supervised lists."""
    nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    today = min(local_today(), nxt - timedelta(days=1))
    f = metrics.dashboard(page.store, area_id, month, nxt, today, page.keys)
    t = page.t
    lo, hi = month.isoformat(), nxt.isoformat()
    visits, households = page.store.visit_counts(page.tree.subtree(area_id), lo, hi)
    summary: Table = ([t("指标"), t("数值")], [
        [t("本月走访（户次）"), visits], [t("本月走访住户"), households],
        [t("收集事项"), f["collected"]], [t("已化解"), f["resolved"]],
        [t("化解率"), metrics.fmt_rate(f["resolution_rate"])], [t("按时办结率"), metrics.fmt_rate(f["on_time_rate"])],
        [t("当前超期"), f["overdue_now"]], [t("督办中"), f["supervised_open"]],
        [t("满意度"), metrics.fmt_rate(f["satisfaction"]["rate"])],
        [t("不下山占比"), metrics.fmt_rate(f["bu_xiashan_share"])],
        [t("近30天走访覆盖"), metrics.fmt_rate(f["coverage_30"]["all"]["rate"])],
        [t("未处理冲突"), f["sync"]["open_conflicts"]],
    ])
    ranking: Table = ([t("区域"), t("收集"), t("化解"), t("化解率"), t("近30天覆盖")],
                      [[r["name"], r["collected"], r["resolved"], metrics.fmt_rate(r["rate"]),
                        metrics.fmt_rate(r["coverage_30"]["rate"])] for r in f["ranking"]])
    rows, _ = query_matters(page, {"area": area_id}, None)
    in_month = _period_filter(rows, month, nxt - timedelta(days=1))
    by_line: dict[str, list[int]] = {}
    for r in in_month:
        c = by_line.setdefault(label("line", r.get("line"), page.lang), [0, 0])
        c[0] += 1
        c[1] += r.get("status") in metrics.DONE
    lines: Table = ([t("归口"), t("收集"), t("化解")], [[k, v[0], v[1]] for k, v in sorted(by_line.items())])
    names = user_names(page.store)
    _audit_shown(page, [r for r in rows if r["overdue"]])
    overdue: Table = ([t("问题"), t("村 / 网格"), t("责任人"), t("办理时限"), t("状态")],
                      [[r.get("title"), page.area_path(r["household"].get("grid_id")),
                        names.get(r.get("assignee_id") or "", ""), r.get("deadline"),
                        label("status", r.get("status"), page.lang)] for r in rows if r["overdue"]])
    return {"figures": f, "tables": {"summary": summary, "ranking": ranking, "lines": lines, "overdue": overdue},
            "next": nxt}


SHEETS = {"summary": "月报告", "ranking": "区域排名", "lines": "归口统计", "overdue": "超期事项"}


def xlsx_bytes(title: str, sheets: list[tuple[str, Table]]) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    head = wb.add_format({"bold": True, "bg_color": "#DDE7F0", "border": 1, "text_wrap": True})
    cell = wb.add_format({"border": 1, "text_wrap": True, "valign": "top"})
    bold = wb.add_format({"bold": True, "font_size": 14})
    for name, (headers, rows) in sheets:
        ws = wb.add_worksheet(name[:31])
        ws.write(0, 0, title, bold)
        for c, h in enumerate(headers):
            ws.write_string(1, c, str(h), head)
            width = max([len(str(h)), *(len(str(r[c] or "")) for r in rows[:200])]) if rows else len(str(h))
            ws.set_column(c, c, min(60, max(6, width * 1.6)))
        for r, row in enumerate(rows, start=2):
            for c, v in enumerate(row):
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    ws.write_number(r, c, v, cell)
                else:
                    ws.write_string(r, c, "" if v is None else str(v), cell)
        ws.freeze_panes(2, 0)
    wb.close()
    return buf.getvalue()


def csv_bytes(table: Table) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(table[0])
    for row in table[1]:
        # A cell starting with = + - @ would be a formula in Excel: quote it as text.
        w.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def download(data: bytes, filename: str, media_type: str) -> Response[bytes]:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}", "Cache-Control": "no-store"})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@get("/staff/reports", include_in_schema=False)
async def reports_home(request: Request) -> Response[Any]:
    return await run(request, _reports_home)


def _reports_home(page: Page) -> Response[Any]:
    area_id, start, end = period(page)
    today = local_today()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    options = [a for a in page.options() if page.tree.level.get(a) not in ("group", "patch")]
    return page.render("staff/reports.html", options=options, area_id=area_id, start=start.isoformat(),
                       end=end.isoformat(), month=today.strftime("%Y-%m"), last_month=last_month.strftime("%Y-%m"))


@get("/staff/reports/lists", include_in_schema=False)
async def report_lists(request: Request) -> Response[Any]:
    return await run(request, _report_lists)


def _report_lists(page: Page) -> Response[Any]:
    area_id, start, end = period(page)
    which = page.query.get("list") if page.query.get("list") in LISTS else "problem"
    fmt = page.query.get("format") or "html"
    tables = three_lists(page, area_id, start, end) if area_id else {k: ([], []) for k in LISTS}
    title = f"{page.area_name(area_id)} {start.isoformat()}—{end.isoformat()}"
    stem = f"{page.area_name(area_id)}_{start.isoformat()}_{end.isoformat()}"
    if fmt == "xlsx":
        page.audit("staff.export", None, None, {"report": "lists", "format": "xlsx", "area": area_id})
        return download(xlsx_bytes(title, [(page.t(LISTS[k]), tables[k]) for k in LISTS]),
                        f"{page.t('三张清单')}_{stem}.xlsx", XLSX)
    if fmt == "csv":
        page.audit("staff.export", None, None, {"report": which, "format": "csv", "area": area_id})
        return download(csv_bytes(tables[which]), f"{page.t(LISTS[which])}_{stem}.csv", "text/csv; charset=utf-8")
    return page.render("staff/report_lists.html", tables=tables, which=which, lists=LISTS, area_id=area_id,
                       start=start.isoformat(), end=end.isoformat(), title=title)


@get("/staff/reports/monthly", include_in_schema=False)
async def report_monthly(request: Request) -> Response[Any]:
    return await run(request, _report_monthly)


def _report_monthly(page: Page) -> Response[Any]:
    area_id, _, _ = period(page)
    raw = page.query.get("month") or ""
    # parse_date: 2000-2099 only (a month at the calendar's edge overflowed: a 500; issue 12).
    month = parse_date(raw + "-01", None) or local_today().replace(day=1)
    fmt = page.query.get("format") or "html"
    report = monthly(page, area_id, month) if area_id else None
    title = f"{page.area_name(area_id)} {month.strftime('%Y-%m')} {page.t('月报告')}"
    if report and fmt in ("xlsx", "csv"):
        page.audit("staff.export", None, None, {"report": "monthly", "format": fmt, "area": area_id,
                                                 "month": month.strftime("%Y-%m")})
        stem = f"{page.t('月报告')}_{page.area_name(area_id)}_{month.strftime('%Y-%m')}"
        if fmt == "xlsx":
            return download(xlsx_bytes(title, [(page.t(SHEETS[k]), v) for k, v in report["tables"].items()]),
                            stem + ".xlsx", XLSX)
        return download(csv_bytes(report["tables"]["summary"]), stem + ".csv", "text/csv; charset=utf-8")
    return page.render("staff/report_monthly.html", report=report, area_id=area_id, month=month.strftime("%Y-%m"),
                       title=title, sheets=SHEETS, options=[a for a in page.options()
                                                            if page.tree.level.get(a) not in ("group", "patch")])


ROUTES: list[Any] = [reports_home, report_lists, report_monthly]
