"""What every import reports: the problems of a file, one per bad cell, in Chinese.

A problem names its row (as a spreadsheet or text editor numbers it: the header is row 1; row 0
is the file as a whole), its column (the header as written in the file), the value found and the
reason. An import with any problem writes nothing; the report says everything wrong at once, so
that a file is fixed in one pass.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import msgspec


class Problem(msgspec.Struct, frozen=True):
    row: int
    column: str
    value: str
    reason: str

    def line(self) -> str:
        """One line of a command's output: ``第 12 行 [名称] "…": reason``."""
        where = "文件" if self.row == 0 else f"第 {self.row} 行"
        col = f" [{self.column}]" if self.column else ""
        val = f" “{self.value}”" if self.value else ""
        return f"{where}{col}{val}：{self.reason}"


HEADERS = ("行号", "列", "值", "问题")


def problems_sheet(book: Any, problems: Sequence[Problem]) -> None:
    """The sheet 问题 of an XlsxWriter workbook: the problems by row (行号, 列, 值, 问题), filtered and
    with the header frozen. Open the workbook with ``strings_to_formulas`` off, so that a value from
    the file that looks like a formula (=HYPERLINK(…)) stays text in the report."""
    sheet = book.add_worksheet("问题")
    bold = book.add_format({"bold": True})
    for c, h in enumerate(HEADERS):
        sheet.write_string(0, c, h, bold)
    for r, p in enumerate(problems, 1):
        sheet.write_number(r, 0, p.row)
        sheet.write_string(r, 1, p.column)
        sheet.write_string(r, 2, p.value)
        sheet.write_string(r, 3, p.reason)
    sheet.set_column(0, 0, 8)
    sheet.set_column(1, 2, 24)
    sheet.set_column(3, 3, 60)
    sheet.autofilter(0, 0, max(len(problems), 1), len(HEADERS) - 1)
    sheet.freeze_panes(1, 0)


def problems_xlsx(problems: Sequence[Problem]) -> bytes:
    """The problems as an .xlsx of one sheet (``problems_sheet``), every cell written as text."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    problems_sheet(book, problems)
    book.close()
    return out.getvalue()
