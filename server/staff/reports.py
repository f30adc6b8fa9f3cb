"""Reports: the three lists (问题清单 / 落实清单 / 责任清单), the monthly report (月报告) and the exports.

Each table is (headers, rows) of typed cells — text, whole numbers, ``date``, ``datetime`` (local,
naive), ``Rate`` — rendered three ways: an HTML page (printable; the three lists one page of
``PAGE_SIZE`` rows at a time), an .xlsx workbook with Chinese headers and a CSV in UTF-8 with a BOM,
so Excel on a Chinese Windows desktop opens it with the right characters.

Exports stream: rows are read from the store a batch at a time (``Store.matters_iter``) and written
as they come — XlsxWriter in ``constant_memory`` mode, CSV line by line — to an unnamed temporary
file, which the response then sends in chunks. Memory does not grow with the number of rows.
In the workbook, dates and times are Excel dates, rates numbers with a percent format, the header
row is frozen and carries an autofilter.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date, datetime, timedelta
from typing import IO, Any, Iterable, Iterator
from urllib.parse import quote, urlencode

import xlsxwriter
from litestar import Request, Response, get
from litestar.response import Stream

from sync import workflow

from .. import metrics
from .core import Page, Refused, local_today, parse_date, run
from .dashboard import period
from .labels import label
from .matters import PAGE_SIZE, _filters, iter_matters, page_number, pages_of, query_matters
from .records import audit_sensitive, categories, category_name, is_sensitive, user_names

LISTS = {"problem": "问题清单", "measure": "落实清单", "owner": "责任清单"}
Table = tuple[list[str], list[list[Any]]]


class Rate(float):
    """A rate from 0 to 1: a number with a percent format in a workbook, ``fmt_rate`` elsewhere."""


def rate_cell(x: float | None) -> Rate | str:
    return "—" if x is None else Rate(x)


def local_time(stamp: Any) -> datetime | None:
    """A stored time (any offset) as the town's local time, naive (as Excel holds it); None if not a time."""
    if not stamp or not isinstance(stamp, str):
        return None
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt.astimezone(metrics.LOCAL_TZ) if dt.tzinfo else dt).replace(tzinfo=None, microsecond=0)


def a_date(value: Any) -> date | None:
    return parse_date(value, None) if isinstance(value, str) else None


def cell_text(v: Any) -> str:
    """A cell as a page or a CSV shows it."""
    if v is None:
        return ""
    if isinstance(v, Rate):
        return metrics.fmt_rate(v)
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


# -- the three lists -----------------------------------------------------------------------------

HANDLING_MOVES = ("in_progress", "waiting_materials", "escalated")


def measures_of(page: Page, matter_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Per matter: the measure taken (落实措施) and who took it.

    What was done, in the handler's words: the note of the latest move to ``resolved`` (办结: a
    status event, or an agent's step that resolved it) when there is one; otherwise, while the work
    goes on, the latest note of a handling step — a ``step`` or ``note`` event, or a move into
    in_progress / waiting_materials / escalated. Never the 销号 note (closed: the verification), a
    督办 note (supervise: the supervisor's demand), a 受理/派单 note or the resident's feedback."""
    best: dict[str, tuple[int, str, str, str]] = {}
    for _, e in page.store.live_where_in("matter_events", "matter_id", matter_ids):
        note = e.get("note")
        if not note or e.get("applied") is False:
            continue
        kind, to = e.get("kind"), e.get("to")
        if kind in ("status", "step") and to == "resolved":
            rank = 2
        elif kind in ("step", "note") or (kind == "status" and to in HANDLING_MOVES):
            rank = 1
        else:
            continue
        mid, at = e["matter_id"], e.get("at") or ""
        if mid not in best or (rank, at) > best[mid][:2]:
            best[mid] = (rank, at, note, e.get("actor_id") or "")
    return {k: (v[2], v[3]) for k, v in best.items()}


def list_headers(page: Page) -> dict[str, list[str]]:
    t = page.t
    return {
        "problem": [t("序号"), t("工单编号"), t("反映时间"), t("村 / 网格"), t("户主"), t("地址"), t("分类"), t("问题"),
                    t("描述"), t("来源渠道"), t("状态")],
        "measure": [t("序号"), t("工单编号"), t("问题"), t("落实措施"), t("经办人"), t("状态"), t("办结时间")],
        "owner": [t("序号"), t("工单编号"), t("问题"), t("归口"), t("办理层级"), t("责任人"), t("办理时限"), t("是否超期"),
                  t("超期天数"), t("督办")],
    }


class ListContext:
    """What rendering rows of the three lists needs, read once per request."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.cats = categories(page.store)
        self.names = user_names(page.store)

    def rows(self, rows: list[dict[str, Any]], first: int) -> dict[str, list[list[Any]]]:
        page, lang, t, names, cats = self.page, self.page.lang, self.page.t, self.names, self.cats
        measures = measures_of(page, [r["id"] for r in rows])
        out: dict[str, list[list[Any]]] = {k: [] for k in LISTS}
        for n, r in enumerate(rows, first):
            hh = r["household"]
            title, number = r.get("title") or "", r.get("number") or ""
            status = label("status", r.get("status"), lang)
            out["problem"].append([n, number, local_time(r.get("raised_at")), page.area_path(hh.get("grid_id")),
                                   hh.get("head_name"), hh.get("address"), category_name(cats, r.get("category"), lang),
                                   title, r.get("description") or "", label("channel", r.get("channel"), lang), status])
            note, by = measures.get(r["id"], ("", ""))
            out["measure"].append([n, number, title, note, names.get(by, "") if by else "", status,
                                   local_time(r.get("resolved_at"))])
            out["owner"].append([n, number, title, label("line", r.get("line"), lang), label("level", r.get("level"), lang),
                                 names.get(r.get("assignee_id") or "", "") if r.get("assignee_id") else "",
                                 a_date(workflow.held_to(r)), t("是") if r["overdue"] else t("否"), r["overdue_days"],
                                 t("是") if r.get("supervised") else t("否")])
        return out


def period_filter(area_id: str, start: date, end: date) -> dict[str, Any]:
    """The matters of the three lists: raised (local date) from ``start`` to ``end``, not merged away."""
    return {"area": area_id, "sort": "raised_asc", "raised_from": start.isoformat(),
            "raised_before": (end + timedelta(days=1)).isoformat(), "not_statuses": ("merged_duplicate",)}


def three_lists(page: Page, area_id: str, start: date, end: date, n: int = 1) -> tuple[dict[str, Table], int]:
    """One page (``n``) of the three lists and how many matters they hold in all."""
    rows, total = query_matters(page, period_filter(area_id, start, end), PAGE_SIZE, (n - 1) * PAGE_SIZE)
    _audit_shown(page, rows)
    heads = list_headers(page)
    body = ListContext(page).rows(rows, (n - 1) * PAGE_SIZE + 1)
    return {k: (heads[k], body[k]) for k in LISTS}, total


def _audit_shown(page: Page, rows: list[dict[str, Any]]) -> None:
    """A report or export that shows a 信访 matter's text is a read of it: audited like a page."""
    shown = [r["id"] for r in rows if is_sensitive(r)]
    if shown:
        audit_sensitive(page, shown, "report")


def monthly(page: Page, area_id: str, month: date) -> dict[str, Any]:
    """The month's figures, the areas below ranked, matters by line, and the overdue list."""
    nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    today = min(local_today(), nxt - timedelta(days=1))
    f = metrics.dashboard(page.store, area_id, month, nxt, today, page.keys)
    t = page.t
    lo, hi = month.isoformat(), nxt.isoformat()
    visits, households = page.store.visit_counts(page.tree.subtree(area_id), lo, hi)
    summary: Table = ([t("指标"), t("数值")], [
        [t("本月走访（户次）"), visits], [t("本月走访住户"), households],
        [t("收集事项"), f["collected"]], [t("已化解"), f["resolved"]],
        [t("化解率"), rate_cell(f["resolution_rate"])], [t("按时办结率"), rate_cell(f["on_time_rate"])],
        [t("当前超期"), f["overdue_now"]], [t("督办中"), f["supervised_open"]],
        [t("满意度"), rate_cell(f["satisfaction"]["rate"])],
        [t("不下山占比"), rate_cell(f["bu_xiashan_share"])],
        [t("近30天走访覆盖"), rate_cell(f["coverage_30"]["all"]["rate"])],
        [t("未处理冲突"), f["sync"]["open_conflicts"]],
    ])
    ranking: Table = ([t("区域"), t("收集"), t("化解"), t("化解率"), t("近30天覆盖")],
                      [[r["name"], r["collected"], r["resolved"], rate_cell(r["rate"]),
                        rate_cell(r["coverage_30"]["rate"])] for r in f["ranking"]])
    by_line: dict[str, list[int]] = {}
    for batch in iter_matters(page, period_filter(area_id, month, nxt - timedelta(days=1))):
        for r in batch:
            c = by_line.setdefault(label("line", r.get("line"), page.lang), [0, 0])
            c[0] += 1
            c[1] += r.get("status") in metrics.DONE
    lines: Table = ([t("归口"), t("收集"), t("化解")], [[k, v[0], v[1]] for k, v in sorted(by_line.items())])
    names = user_names(page.store)
    overdue: Table = ([t("工单编号"), t("问题"), t("村 / 网格"), t("责任人"), t("办理时限"), t("超期天数"), t("状态")], [])
    for batch in iter_matters(page, {"area": area_id, "overdue": "1", "sort": "overdue_days"}):
        _audit_shown(page, batch)
        overdue[1].extend([r.get("number") or "", r.get("title"), page.area_path(r["household"].get("grid_id")),
                           names.get(r.get("assignee_id") or "", ""), a_date(workflow.held_to(r)), r["overdue_days"],
                           label("status", r.get("status"), page.lang)] for r in batch)
    return {"figures": f, "tables": {"summary": summary, "ranking": ranking, "lines": lines, "overdue": overdue},
            "next": nxt}


SHEETS = {"summary": "月报告", "ranking": "区域排名", "lines": "归口统计", "overdue": "超期事项"}


# -- writing exports -----------------------------------------------------------------------------

class Sheet:
    """One worksheet written row by row: a title row, the header row (frozen, with an autofilter),
    then the rows, each cell by its Python type."""

    def __init__(self, book: "Book", name: str, headers: list[str], title: str) -> None:
        self.book, self.ws, self.width = book, book.wb.add_worksheet(name[:31]), len(headers)
        self.ws.write(0, 0, title, book.bold)
        for c, h in enumerate(headers):
            self.ws.write_string(1, c, str(h), book.head)
            self.ws.set_column(c, c, min(40, max(8, len(str(h)) * 2.2)))
        self.ws.freeze_panes(2, 0)
        self.row = 2

    def add(self, values: Iterable[Any]) -> None:
        b, ws, r = self.book, self.ws, self.row
        for c, v in enumerate(values):
            if v is None or v == "":
                ws.write_blank(r, c, None, b.cell)
            elif isinstance(v, bool):
                ws.write_string(r, c, "是" if v else "否", b.cell)
            elif isinstance(v, Rate):
                ws.write_number(r, c, float(v), b.rate)
            elif isinstance(v, (int, float)):
                ws.write_number(r, c, v, b.cell)
            elif isinstance(v, datetime):
                ws.write_datetime(r, c, v, b.datetime)
            elif isinstance(v, date):
                ws.write_datetime(r, c, datetime.combine(v, datetime.min.time()), b.date)
            else:
                ws.write_string(r, c, str(v), b.cell)
        self.row += 1

    def close(self) -> None:
        self.ws.autofilter(1, 0, max(1, self.row - 1), max(0, self.width - 1))


class Book:
    """An .xlsx workbook written to an unnamed temporary file in constant memory."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()
        self.wb = xlsxwriter.Workbook(self.file, {"constant_memory": True, "strings_to_formulas": False,
                                                  "strings_to_urls": False, "strings_to_numbers": False})
        self.head = self.wb.add_format({"bold": True, "bg_color": "#DDE7F0", "border": 1, "text_wrap": True})
        self.cell = self.wb.add_format({"border": 1, "valign": "top"})
        self.date = self.wb.add_format({"border": 1, "valign": "top", "num_format": "yyyy-mm-dd"})
        self.datetime = self.wb.add_format({"border": 1, "valign": "top", "num_format": "yyyy-mm-dd hh:mm"})
        self.rate = self.wb.add_format({"border": 1, "valign": "top", "num_format": "0.0%"})
        self.bold = self.wb.add_format({"bold": True, "font_size": 14})
        self.sheets: list[Sheet] = []

    def sheet(self, name: str, headers: list[str], title: str) -> Sheet:
        s = Sheet(self, name, headers, title)
        self.sheets.append(s)
        return s

    def finish(self) -> IO[bytes]:
        for s in self.sheets:
            s.close()
        self.wb.close()
        self.file.seek(0)
        return self.file


def xlsx_file(title: str, sheets: list[tuple[str, Table]]) -> IO[bytes]:
    """A workbook of small tables (the monthly report)."""
    book = Book()
    for name, (headers, rows) in sheets:
        s = book.sheet(name, headers, title)
        for row in rows:
            s.add(row)
    return book.finish()


def _csv_safe(v: Any) -> Any:
    # A cell starting with = + - @ would be a formula in Excel: quote it as text.
    text = cell_text(v)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not isinstance(v, (int, float)) else text


class CsvFile:
    """A CSV in UTF-8 with a BOM, written line by line to an unnamed temporary file."""

    def __init__(self, headers: list[str]) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()
        self.text = io.TextIOWrapper(self.file, encoding="utf-8", newline="", write_through=False)
        self.text.write("\ufeff")
        self.w = csv.writer(self.text, lineterminator="\r\n")
        self.w.writerow(headers)

    def add(self, row: Iterable[Any]) -> None:
        self.w.writerow([_csv_safe(v) for v in row])

    def finish(self) -> IO[bytes]:
        self.text.flush()
        self.text.detach()
        self.file.seek(0)
        return self.file


def csv_file(table: Table) -> IO[bytes]:
    out = CsvFile(table[0])
    for row in table[1]:
        out.add(row)
    return out.finish()


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    try:
        while True:
            block = f.read(1 << 16)
            if not block:
                return
            yield block
    finally:
        f.close()


def download(f: IO[bytes] | bytes, filename: str, media_type: str) -> Response[Any]:
    """Send a finished temporary file in chunks (it is deleted when closed), or a small file made in memory."""
    if isinstance(f, bytes):
        f = io.BytesIO(f)
    return Stream(_chunks(f), media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}", "Cache-Control": "no-store"})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"


# -- pages ---------------------------------------------------------------------------------------

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
    title = f"{page.area_name(area_id)} {start.isoformat()}—{end.isoformat()}"
    stem = f"{page.area_name(area_id)}_{start.isoformat()}_{end.isoformat()}"
    if fmt in ("xlsx", "csv"):
        if not area_id:
            raise Refused(404, "没有可查看的区域。")
        page.audit("staff.export", None, None, {"report": "lists" if fmt == "xlsx" else which, "format": fmt,
                                                 "area": area_id})
        heads = list_headers(page)
        ctx = ListContext(page)
        n = 1
        if fmt == "xlsx":
            book = Book()
            sheets = {k: book.sheet(page.t(LISTS[k]), heads[k], title) for k in LISTS}
        else:
            out = CsvFile(heads[which])
        for batch in iter_matters(page, period_filter(area_id, start, end)):
            _audit_shown(page, batch)
            body = ctx.rows(batch, n)
            n += len(batch)
            for k in (LISTS if fmt == "xlsx" else (which,)):
                for row in body[k]:
                    (sheets[k] if fmt == "xlsx" else out).add(row)
        if fmt == "xlsx":
            return download(book.finish(), f"{page.t('三张清单')}_{stem}.xlsx", XLSX)
        return download(out.finish(), f"{page.t(LISTS[which])}_{stem}.csv", CSV)
    n = page_number(page)
    tables, total = three_lists(page, area_id, start, end, n) if area_id else ({k: ([], []) for k in LISTS}, 0)
    qs = urlencode({"area": area_id, "start": start.isoformat(), "end": end.isoformat(), "list": which})
    return page.render("staff/report_lists.html", tables=tables, which=which, lists=LISTS, area_id=area_id,
                       start=start.isoformat(), end=end.isoformat(), title=title, total=total, n=n,
                       pages=pages_of(total), qs=qs, cell=cell_text)


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
            return download(xlsx_file(title, [(page.t(SHEETS[k]), v) for k, v in report["tables"].items()]),
                            stem + ".xlsx", XLSX)
        return download(csv_file(report["tables"]["summary"]), stem + ".csv", CSV)
    return page.render("staff/report_monthly.html", report=report, area_id=area_id, month=month.strftime("%Y-%m"),
                       title=title, sheets=SHEETS, cell=cell_text,
                       options=[a for a in page.options() if page.tree.level.get(a) not in ("group", "patch")])


# -- the matters list, exported with its filters --------------------------------------------------

@get("/staff/matters/export", include_in_schema=False)
async def matter_export(request: Request) -> Response[Any]:
    return await run(request, _matter_export)


def matter_export_headers(page: Page) -> list[str]:
    t = page.t
    return [t("工单编号"), t("事项"), t("户主"), t("地址"), t("村 / 网格"), t("分类"), t("归口"), t("状态"), t("承办人"),
            t("来源渠道"), t("反映时间"), t("办理时限"), t("即将超期"), t("超期天数"), t("督办"), t("办结时间")]


def _matter_export(page: Page) -> Response[Any]:
    """The matters list as filtered (every filter of the page, all pages), as .xlsx or .csv."""
    fmt = page.query.get("format") or ""
    if fmt not in ("xlsx", "csv"):
        raise Refused(400, "导出格式必须是 xlsx 或 csv。")
    f = _filters(page)
    page.audit("staff.export", None, None, {"report": "matters", "format": fmt,
                                             "filters": {k: v for k, v in f.items() if v}})
    cats, names, lang, t = categories(page.store), user_names(page.store), page.lang, page.t
    heads = matter_export_headers(page)
    title = f"{t('事项')} {local_today().isoformat()}"
    if fmt == "xlsx":
        book = Book()
        out: Sheet | CsvFile = book.sheet(t("事项"), heads, title)
    else:
        out = CsvFile(heads)
    places: dict[str, str] = {}   # grid id -> "村 / 网格", once per grid
    for batch in iter_matters(page, f):
        _audit_shown(page, batch)
        for r in batch:
            hh = r["household"]
            grid = hh.get("grid_id") or ""
            if grid not in places:
                places[grid] = page.area_path(grid)
            out.add([r.get("number") or "", r.get("title") or "", hh.get("head_name"), hh.get("address"),
                     places[grid], category_name(cats, r.get("category"), lang),
                     label("line", r.get("line"), lang), label("status", r.get("status"), lang),
                     names.get(r.get("assignee_id") or "", "") if r.get("assignee_id") else "",
                     label("channel", r.get("channel"), lang), local_time(r.get("raised_at")),
                     a_date(workflow.held_to(r)), t("是") if r["due_soon"] else t("否"), r["overdue_days"],
                     t("是") if r.get("supervised") else t("否"), local_time(r.get("resolved_at"))])
    stem = f"{t('事项')}_{local_today().isoformat()}"
    if isinstance(out, Sheet):
        return download(book.finish(), stem + ".xlsx", XLSX)
    return download(out.finish(), stem + ".csv", CSV)


ROUTES: list[Any] = [reports_home, report_lists, report_monthly, matter_export]
