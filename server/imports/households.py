"""The household roster (住户信息卡 and residents) from the .xlsx a county already keeps (issue 14, step 3).

``check(store, actor, source)`` is the dry run: it reads the sheet, checks every row, matches each
household and resident with the database and says what an apply would do, with every problem by
row, column, value and reason (in Chinese). ``apply(store, actor, source)`` does the same inside one
write transaction and, when there is no problem at all, pushes the changes through the engine as
``actor`` (so phones receive them as ordinary changes, and the merge rules hold against offline
edits); any failure midway rolls the whole transaction back. ``write_template`` and
``write_report`` make the .xlsx files the console and the CLI offer. docs/onboarding.md §4 is the
guide.

Matching: a household by its head's ID number, else by address and head's name within its grid; a
resident by ID number, else by name within the household. An empty cell never erases a value; a
changed cell becomes an update of that one field of that one record (with the record's current
version as base), and a file imported twice pushes nothing the second time.
"""

from __future__ import annotations

import io
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from sync import engine
from sync.engine import area_tree, uuid7
from sync.errors import MutationRejected
from sync.protocol import MAX_MUTATIONS, MutationIn, PushRequest
from sync.schema import COLLECTIONS, CONTROL_RE, validate_fields
from sync.scope import Actor, user_keys
from sync.storage import Store
from sync.store import AreaTree, iso, utcnow

from .report import Problem, problems_sheet

# -- the columns --------------------------------------------------------------------------------
# (key, the template's header, the other headers people write for it). Headers are compared
# after NFKC, without spaces, a leading or trailing "*" and a parenthesised hint: "身份证号（18位）".
COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("household_no", "户号", ("户编号", "户序号", "家庭编号", "户代码")),
    ("grid", "网格", ("所属网格", "网格名称", "网格编码", "网格代码", "网格编号")),
    ("address", "地址", ("住址", "家庭住址", "详细地址", "现住址", "居住地址", "门牌地址")),
    ("head_name", "户主姓名", ("户主",)),
    ("name", "姓名", ("成员姓名", "人员姓名", "居民姓名", "家庭成员")),
    ("relation", "与户主关系", ("与户主的关系", "关系")),
    ("gender", "性别", ()),
    ("id_number", "身份证号", ("公民身份号码", "身份证号码", "身份证", "证件号码")),
    ("birth_year", "出生年份", ("出生年", "出生日期", "出生年月")),
    ("phone", "联系电话", ("手机号码", "手机号", "手机", "电话", "联系方式", "电话号码")),
    ("residence", "居住状态", ("居住情况", "在住状态", "现状")),
    ("tags", "标签", ("人员标签", "人员类别", "特殊人群")),
    ("notes", "备注", ("人员备注",)),
    ("household_tags", "户标签", ("住户标签", "家庭标签", "户类别")),
    ("household_notes", "户备注", ("住户备注", "家庭备注", "住户情况")),
    ("members_count", "人口数", ("家庭人口", "家庭人口数", "人数")),
)
HEADER_OF = {key: header for key, header, _ in COLUMNS}
# The template's sheet: one row per resident; 户号 is optional (see _group).
TEMPLATE_KEYS = ("household_no", "grid", "address", "head_name", "name", "relation", "gender", "id_number",
                 "birth_year", "phone", "residence", "tags", "notes", "household_tags", "household_notes")
SHEET = "住户花名册"

GENDERS = {"男": "male", "女": "female", "未知": "unknown", "male": "male", "female": "female", "m": "male",
           "f": "female", "unknown": "unknown"}
GENDER_ZH = {"male": "男", "female": "女", "unknown": "未知"}
RESIDENCES = {"在家居住": "resident", "在家": "resident", "在住": "resident", "常住": "resident", "居住": "resident",
              "外出": "away", "外出务工": "away", "在外": "away", "外地": "away", "已迁出": "moved_out",
              "迁出": "moved_out", "已故": "deceased", "死亡": "deceased", "去世": "deceased", "已死亡": "deceased",
              "resident": "resident", "away": "away", "moved_out": "moved_out", "deceased": "deceased"}
RESIDENCE_ZH = {"resident": "在家居住", "away": "外出", "moved_out": "已迁出", "deceased": "已故"}
HEAD_RELATIONS = ("户主", "本人")
# The tags of a household and never of a person (the field app's HOUSEHOLD_TAGS less its RESIDENT_TAGS)
HOUSEHOLD_ONLY_TAGS = frozenset({"独居老人", "低保户", "困难家庭", "党员中心户", "山区农户"})
GRID_LEVELS = ("grid", "patch", "group")
TAG_SPLIT = re.compile(r"[、,，;；/|\s]+")
MOBILE_RE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^(0\d{2,3})?\d{7,8}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
MAX_ROWS = 200_000
MAX_UNZIPPED = 200 * 1024 * 1024    # an .xlsx is a zip: 20 MB of it could unpack to gigabytes
PREVIEW_PROBLEMS = 50
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

HOUSEHOLDS, RESIDENTS = COLLECTIONS["households"], COLLECTIONS["residents"]


class UnreadableFile(Exception):
    """The file cannot be read as a roster at all (no sheet with the roster's headers, not an .xlsx):
    one Chinese sentence for the person importing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImportRefused(Exception):
    """``apply`` wrote nothing: the file has problems, or a write failed midway (all rolled back)."""

    def __init__(self, message: str, result: "Result | None" = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


@dataclass
class Person:
    row: int
    name: str
    relation: str | None
    fields: dict[str, Any]          # resident fields given (non-empty cells), normalised


@dataclass
class Household:
    rows: list[int]
    grid_id: str | None
    fields: dict[str, Any]          # household fields given (non-empty cells), normalised
    people: list[Person] = field(default_factory=list)


@dataclass
class Result:
    """What a dry run found (or an apply did)."""

    rows: int = 0
    households_new: int = 0
    households_updated: int = 0
    households_unchanged: int = 0
    residents_new: int = 0
    residents_updated: int = 0
    residents_unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    mutations: list[dict[str, Any]] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "households_new": self.households_new,
                "households_updated": self.households_updated, "households_unchanged": self.households_unchanged,
                "residents_new": self.residents_new, "residents_updated": self.residents_updated,
                "residents_unchanged": self.residents_unchanged, "problems": len(self.problems)}


# -- the reasons in English ------------------------------------------------------------------------
# Each Chinese reason (and refusal) this module says, as a pattern, and its English: the console in
# English shows every problem in English (the file's own headers and values stay as written).
_EN: tuple[tuple[str, str], ...] = (
    (r"身份证号校验位不正确（GB 11643），请核对号码。", r"The ID number's check character is wrong (GB 11643): check the number."),
    (r"身份证号应为18位（最后一位可以是X）或15位数字。", r"An ID number has 18 characters (the last may be X) or 15 digits."),
    (r"身份证号的地区码不正确。", r"The ID number's region code is wrong."),
    (r"身份证号中的出生日期不是有效日期。", r"The birth date in the ID number is not a real date."),
    (r"身份证号中的出生日期不合理。", r"The birth date in the ID number is not plausible."),
    (r"电话号码格式不正确（手机号11位，座机如0574-88301234）。",
     r"Not a phone number (a mobile has 11 digits; a landline looks like 0574-88301234)."),
    (r"内容过长（最多(\d+)个字）。", r"Too long (at most \1 characters)."),
    (r"含有换行或控制字符。", r"Contains a line break or control characters."),
    (r"“(.+)”必须填写。", r"“\1” is required."),
    (r"“(.+)”必须填写（该户各行都没有填）。", r"“\1” is required (no row of this household has it)."),
    (r"性别应填“男”或“女”。", r"Gender is 男 (male) or 女 (female)."),
    (r"身份证号被Excel存成了数字，末几位已丢失：请把该列设为“文本”后重新填写。",
     r"Excel stored this ID number as a number and lost its last digits: format the column as Text and enter it again."),
    (r"出生年份应为1880年至今年之间的四位年份。", r"The birth year is a four-digit year from 1880 to this year."),
    (r"出生年份与身份证号（(\d+)年）不一致。", r"The birth year differs from the ID number's (\1)."),
    (r"性别与身份证号（男）不一致。", r"The gender differs from the ID number's (male)."),
    (r"性别与身份证号（女）不一致。", r"The gender differs from the ID number's (female)."),
    (r"居住状态应为：在家居住、外出、已迁出或已故。",
     r"Residence is one of 在家居住 (at home), 外出 (away), 已迁出 (moved out), 已故 (deceased)."),
    (r"标签用“、”分隔，每个最多20个字，最多50个。", r"Tags are separated by “、”: at most 50, each at most 20 characters."),
    (r"人口数应为0到99之间的整数。", r"人口数 (household size) is a whole number from 0 to 99."),
    (r"找不到该网格：请填写网格编码，或“镇/村/网格”形式的路径。", r"No such grid: give its code, or a path such as 镇/村/网格."),
    (r"该网格不在您管辖的区域内。", r"This grid is outside your areas."),
    (r"有多个同名网格，请填写网格编码或完整路径（镇/村/网格）。",
     r"Several grids have this name: give its code or its full path (镇/村/网格)."),
    (r"身份证号与第(\d+)行重复。", r"The same ID number as row \1."),
    (r"同一户（第(\d+)行起）的(.+)前后不一致。", r"This household's \2 differs from its row \1."),
    (r"同一户有两个户主（第(\d+)行和第(\d+)行）。", r"The household has two heads (rows \1 and \2)."),
    (r"与第(\d+)行是同一地址、同一户主，重复登记。", r"The same address and head as row \1: registered twice."),
    (r"同一户中与第(\d+)行同名且都没有身份证号，无法区分。",
     r"The same name as row \1 of this household and neither has an ID number: they cannot be told apart."),
    (r"该身份证号已登记在另一户中（(.*)）。", r"This ID number is registered in another household (\1)."),
    (r"该身份证号已登记在您管辖范围以外的住户中，请与上级核实。",
     r"This ID number is registered in a household outside your areas: check with the level above."),
    (r"该户主的身份证号已登记在您管辖范围以外的住户中，请与上级核实。",
     r"The head's ID number is registered in a household outside your areas: check with the level above."),
    (r"系统中已有多户地址和户主姓名都相同，无法确定对应哪一户，请在住户档案中先合并。",
     r"Several recorded households have this address and head: which one is meant cannot be told. Merge them first."),
    (r"户主身份证号对应的住户与地址、户主姓名对应的住户不是同一户，请核对。",
     r"The head's ID number and the address with the head's name point to two different households: check them."),
    (r"该户在系统中有多个同名成员，请填写身份证号以区分。",
     r"The household has several recorded members of this name: give the ID number to tell them apart."),
    (r"与同一户中的另一行是同一个人。", r"The same person as another row of this household."),
    (r"“(.*)”的内容不符合要求。", r"“\1” is not valid."),
    (r"文件中有 (\d+) 处问题，未导入任何数据：请先修改后再导入。",
     r"The file has \1 problems: nothing was imported. Correct them and import it again."),
    (r"第(\d+)行写入失败（(.*)），已全部撤销，未导入任何数据。",
     r"Writing row \1 failed (\2): everything was undone, nothing was imported."),
    (r"文件超过 (\d+) 行，请分批导入。", r"The file has more than \1 rows: import it in parts."),
    (r"文件解压后过大（超过200MB），请分批导入。", r"The file unpacks to more than 200 MB: import it in parts."),
    (r"无法读取该文件：请上传 Excel 工作簿（.xlsx）。", r"The file cannot be read: upload an Excel workbook (.xlsx)."),
    (r"没有找到住户花名册的表头（至少需要“户主姓名”，或“姓名”和“网格”两列）。请使用系统提供的模板。",
     r"No roster header row found (it needs 户主姓名, or both 姓名 and 网格). Use the template."),
)
_EN_RE = tuple((re.compile(zh), en) for zh, en in _EN)


def say(reason: str, lang: str) -> str:
    """A reason of this module in the page's language."""
    if lang != "en":
        return reason
    for pattern, en in _EN_RE:
        m = pattern.fullmatch(reason)
        if m:
            return m.expand(en)
    return reason


# -- reading the sheet -------------------------------------------------------------------------

def _header_key(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    h = unicodedata.normalize("NFKC", text)
    h = re.sub(r"\(.*?\)", "", h)
    h = re.sub(r"\s+", "", h).strip("*")
    for key, header, synonyms in COLUMNS:
        if h == header or h in synonyms:
            return key
    return None


@dataclass
class Sheet:
    columns: dict[str, tuple[int, str]]    # key -> (index, header as written)
    rows: list[tuple[int, tuple[Any, ...]]]


def read_sheet(source: str | Path | bytes | IO[bytes]) -> Sheet:
    """The roster's header row and data rows from the first sheet that has one (a title row or
    two above the header are fine)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with zipfile.ZipFile(source) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNZIPPED:
                raise UnreadableFile("文件解压后过大（超过200MB），请分批导入。")
            for rows in _sheets(z):
                it = iter(rows)
                for n, values in it:
                    if n > 10:
                        break
                    cols: dict[str, tuple[int, str]] = {}
                    for i, v in enumerate(values):
                        key = _header_key(v)
                        if key is not None and key not in cols:
                            cols[key] = (i, str(v).strip())
                    if "head_name" in cols or ("name" in cols and "grid" in cols):
                        data = []
                        for m, r in it:
                            if any(v is not None and str(v).strip() != "" for v in r):
                                data.append((m, r))
                                if len(data) > MAX_ROWS:
                                    raise UnreadableFile(f"文件超过 {MAX_ROWS} 行，请分批导入。")
                        return Sheet(cols, data)
    except (zipfile.BadZipFile, KeyError, ET.ParseError, ValueError, OSError) as e:
        raise UnreadableFile("无法读取该文件：请上传 Excel 工作簿（.xlsx）。") from e
    raise UnreadableFile("没有找到住户花名册的表头（至少需要“户主姓名”，或“姓名”和“网格”两列）。"
                         "请使用系统提供的模板。")


# An .xlsx read directly (a zip of XML parts, ECMA-376): a tenth of openpyxl's time per row, which
# at a county's 25,000 rows is most of a dry run. Only what a roster needs: cell values as text,
# numbers and booleans, in sheet order; styles (dates are numbers here, see _year) and formulas'
# formulas are not read (their cached values are).
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_COL = re.compile(r"[A-Z]+")


def _sheets(z: zipfile.ZipFile) -> Iterator[Iterator[tuple[int, tuple[Any, ...]]]]:
    shared: list[str] = []
    if "xl/sharedStrings.xml" in z.namelist():
        with z.open("xl/sharedStrings.xml") as f:
            for _, el in ET.iterparse(f):
                if el.tag == _NS + "si":
                    shared.append("".join(t.text or "" for t in el.iter(_NS + "t")))
                    el.clear()
    rels = {}
    with z.open("xl/_rels/workbook.xml.rels") as f:
        for el in ET.parse(f).getroot():
            target = el.get("Target") or ""
            rels[el.get("Id")] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    with z.open("xl/workbook.xml") as f:
        sheets = [rels[s.get(_REL)] for s in ET.parse(f).getroot().iter(_NS + "sheet")]
    for part in sheets:
        yield _rows(z, part, shared)


def _rows(z: zipfile.ZipFile, part: str, shared: list[str]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    with z.open(part) as f:
        n = 0
        for _, el in ET.iterparse(f):
            if el.tag != _NS + "row":
                continue
            n = int(el.get("r") or n + 1)
            values: list[Any] = []
            for c in el.iter(_NS + "c"):
                ref = c.get("r")
                if ref:
                    col = 0
                    for ch in _COL.match(ref).group():   # type: ignore[union-attr]
                        col = col * 26 + ord(ch) - 64
                    values.extend([None] * (col - 1 - len(values)))
                t = c.get("t")
                v = c.find(_NS + "v")
                if t == "inlineStr":
                    value: Any = "".join(x.text or "" for x in c.iter(_NS + "t"))
                elif v is None or v.text is None:
                    value = None
                elif t == "s":
                    value = shared[int(v.text)]
                elif t in ("str", "e", "d"):
                    value = v.text
                elif t == "b":
                    value = v.text == "1"
                else:
                    num = float(v.text)
                    value = int(num) if num.is_integer() and abs(num) < 2 ** 53 else num
                values.append(value)
            el.clear()
            yield n, tuple(values)


# -- checking one cell ---------------------------------------------------------------------------

def _text(v: Any) -> str:
    """A cell as text: whole numbers without ".0", dates as YYYY-MM-DD."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v).strip()


def _plain(v: Any) -> str:
    """Codes, numbers and phones: NFKC (full-width digits are digits), no spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", _text(v)))


def id_number_problem(number: str, today: date | None = None) -> str | None:
    """Why ``number`` is not a resident ID number (GB 11643-1999), or None. 18 characters: 6-digit
    region, birth date, 3-digit sequence, ISO 7064 MOD 11-2 check character; or the old 15 digits."""
    today = today or date.today()
    if re.fullmatch(r"\d{15}", number):
        born = "19" + number[6:12]
    elif re.fullmatch(r"\d{17}[\dX]", number):
        total = sum(int(c) * w for c, w in zip(number, ID_WEIGHTS))
        if "10X98765432"[total % 11] != number[17]:
            return "身份证号校验位不正确（GB 11643），请核对号码。"
        born = number[6:14]
    else:
        return "身份证号应为18位（最后一位可以是X）或15位数字。"
    if number[0] not in "12345678":
        return "身份证号的地区码不正确。"
    try:
        day = date(int(born[:4]), int(born[4:6]), int(born[6:8]))
    except ValueError:
        return "身份证号中的出生日期不是有效日期。"
    if day.year < 1880 or day > today:
        return "身份证号中的出生日期不合理。"
    return None


def _id_facts(number: str) -> tuple[int, str]:
    """Birth year and gender written in an ID number that passed ``id_number_problem``."""
    if len(number) == 15:
        return 1900 + int(number[6:8]), "male" if int(number[14]) % 2 else "female"
    return int(number[6:10]), "male" if int(number[16]) % 2 else "female"


def phone_problem(phone: str) -> str | None:
    digits = phone.replace("-", "").replace("(", "").replace(")", "")
    if MOBILE_RE.match(digits) or LANDLINE_RE.match(digits):
        return None
    return "电话号码格式不正确（手机号11位，座机如0574-88301234）。"


def _tags(raw: str) -> list[str]:
    return sorted({t for t in TAG_SPLIT.split(raw) if t})


class _Row:
    """One data row being checked: its cells by key, and the problems found in it."""

    def __init__(self, sheet: Sheet, n: int, values: tuple[Any, ...], problems: list[Problem]) -> None:
        self.sheet, self.n, self.values, self.problems = sheet, n, values, problems

    def raw(self, key: str) -> Any:
        col = self.sheet.columns.get(key)
        return self.values[col[0]] if col is not None and col[0] < len(self.values) else None

    def header(self, key: str) -> str:
        col = self.sheet.columns.get(key)
        return col[1] if col is not None else HEADER_OF[key]

    def bad(self, key: str, value: Any, reason: str) -> None:
        self.problems.append(Problem(self.n, self.header(key) if key else "", _text(value)[:200], reason))

    def text(self, key: str, max_len: int, multiline: bool = False) -> str:
        v = _text(self.raw(key))
        if len(v) > max_len:
            self.bad(key, v, f"内容过长（最多{max_len}个字）。")
            return ""
        if CONTROL_RE.search(v) or (not multiline and ("\n" in v or "\r" in v)):
            self.bad(key, v, "含有换行或控制字符。")
            return ""
        return v


def _check_row(sheet: Sheet, n: int, values: tuple[Any, ...], problems: list[Problem],
               residents_sheet: bool) -> tuple[dict[str, Any], Person | None]:
    """The household cells and the resident of one row, normalised; problems appended."""
    r = _Row(sheet, n, values, problems)
    hh: dict[str, Any] = {"_no": _plain(r.raw("household_no")), "_grid": r.text("grid", 200)}
    hh["address"] = re.sub(r"\s+", " ", r.text("address", HOUSEHOLDS.by_name["address"].max_len))
    hh["head_name"] = re.sub(r"\s+", "", r.text("head_name", 50))
    # with a 户号 the household's cells may stand on any one of its rows (checked per household)
    if not hh["_no"]:
        for key, value in (("grid", hh["_grid"]), ("address", hh["address"])):
            if not value and _text(r.raw(key)) == "":
                r.bad(key, "", f"“{r.header(key)}”必须填写。")
    person: dict[str, Any] = {}
    name = re.sub(r"\s+", "", r.text("name", 50)) if residents_sheet else hh["head_name"]
    relation = r.text("relation", 20) if residents_sheet else "户主"
    if relation in HEAD_RELATIONS:
        relation = "户主"
    if not hh["head_name"]:
        if residents_sheet and relation == "户主" and name:
            hh["head_name"] = name
        elif not hh["_no"]:
            r.bad("head_name", "", f"“{r.header('head_name')}”必须填写。")
    if residents_sheet and not name:
        r.bad("name", "", f"“{r.header('name')}”必须填写。")
    gender = _plain(r.raw("gender")).lower()
    if gender:
        if gender not in GENDERS:
            r.bad("gender", r.raw("gender"), "性别应填“男”或“女”。")
        else:
            person["gender"] = GENDERS[gender]
    id_cell = r.raw("id_number")
    id_number = _plain(id_cell).upper()
    if isinstance(id_cell, (int, float)) and not isinstance(id_cell, bool) and len(id_number) > 15:
        # Excel keeps 15 significant digits: the last ones of an 18-digit number typed as a number are lost
        r.bad("id_number", id_cell, "身份证号被Excel存成了数字，末几位已丢失：请把该列设为“文本”后重新填写。")
        id_number = ""
    elif id_number:
        why = id_number_problem(id_number)
        if why:
            r.bad("id_number", id_number, why)
            id_number = ""
        else:
            person["id_number"] = id_number
    year_cell = r.raw("birth_year")
    if isinstance(year_cell, (int, float)) and not isinstance(year_cell, bool) and 2100 < year_cell < 80000:
        year_cell = date(1899, 12, 30) + timedelta(days=int(year_cell))   # a date cell: Excel's day number
    year_text = _plain(year_cell)
    if year_text:
        m = re.fullmatch(r"(\d{4})(?:[-./年]?\d{1,2}(?:[-./月]?\d{1,2}日?)?)?", year_text)
        year = int(m.group(1)) if m else None
        if year is None or not 1880 <= year <= date.today().year:
            r.bad("birth_year", year_cell, "出生年份应为1880年至今年之间的四位年份。")
        else:
            person["birth_year"] = year
    if id_number:
        born, sex = _id_facts(id_number)
        if "birth_year" in person and person["birth_year"] != born:
            r.bad("birth_year", year_cell, f"出生年份与身份证号（{born}年）不一致。")
        if person.get("gender") in ("male", "female") and person["gender"] != sex:
            r.bad("gender", r.raw("gender"), f"性别与身份证号（{GENDER_ZH[sex]}）不一致。")
        person.setdefault("birth_year", born)
        person.setdefault("gender", sex)
    phone = _plain(r.raw("phone"))
    if phone:
        why = phone_problem(phone)
        if why:
            r.bad("phone", r.raw("phone"), why)
        else:
            person["phone"] = phone
    residence = _plain(r.raw("residence"))
    if residence:
        if residence not in RESIDENCES:
            r.bad("residence", residence, "居住状态应为：在家居住、外出、已迁出或已故。")
        else:
            person["residence"] = RESIDENCES[residence]
    # on a sheet of residents 标签 is the resident's; on a sheet of households, the household's
    tag_cells = (("tags", person), ("household_tags", hh)) if residents_sheet else \
        (("household_tags", hh), ("tags", hh))
    for key, target in tag_cells:
        raw = r.text(key, 1000)
        if raw:
            tags = _tags(raw)
            if any(len(t) > 20 for t in tags) or len(tags) > 50:
                r.bad(key, raw, "标签用“、”分隔，每个最多20个字，最多50个。")
            else:
                target["tags"] = sorted(set(target.get("tags", [])) | set(tags))
    if residents_sheet and person.get("tags"):
        # 低保户, 独居老人 … written beside a person are the household's (the dashboard counts households)
        moved = [t for t in person["tags"] if t in HOUSEHOLD_ONLY_TAGS]
        if moved:
            person["tags"] = [t for t in person["tags"] if t not in HOUSEHOLD_ONLY_TAGS]
            hh["tags"] = sorted(set(hh.get("tags", [])) | set(moved))
            if not person["tags"]:
                del person["tags"]
    notes = r.text("notes", 4000, multiline=True)
    if notes:
        (person if residents_sheet else hh)["notes"] = notes
    hnotes = r.text("household_notes", 4000, multiline=True)
    if hnotes:
        hh["notes"] = hnotes
    count = _plain(r.raw("members_count"))
    if count:
        if not re.fullmatch(r"\d{1,2}", count):
            r.bad("members_count", count, "人口数应为0到99之间的整数。")
        else:
            hh["members_count"] = int(count)
    if phone and "phone" in person and relation == "户主":
        hh["phone"] = person["phone"]
    if relation:
        person["relation"] = relation
    if not name:
        return hh, None
    person["name"] = name
    return hh, Person(n, name, relation or None, person)


# -- grids ---------------------------------------------------------------------------------------

class Grids:
    """Finds a grid by its code, by its name or by a path of names (章水镇/杖锡村/第一网格, where a
    grid named 杖锡村第一网格 also answers to 第一网格 under 杖锡村), and says whether the importer
    holds it (the engine's scope keys: an ``a:`` key on its path)."""

    def __init__(self, store: Store, tree: AreaTree, actor: Actor) -> None:
        self.tree = tree
        recs = store.get_many("areas", list(tree.parent))
        self.name = {a: str(r.data.get("name") or "") for a, r in recs.items()}
        self.by_code: dict[str, list[str]] = {}
        self.by_name: dict[str, list[str]] = {}
        for a, r in recs.items():
            if r.data.get("code"):
                self.by_code.setdefault(str(r.data["code"]), []).append(a)
            self.by_name.setdefault(self.name[a], []).append(a)
        self.keys = user_keys(actor, tree)
        self._memo: dict[str, tuple[str | None, str | None]] = {}

    def holds(self, area_id: str) -> bool:
        return any(f"a:{x}" in self.keys for x in self.tree.path(area_id))

    def path_text(self, area_id: str) -> str:
        return "/".join(self.name.get(a, "") for a in reversed(self.tree.path(area_id)))

    def _matches(self, area_id: str, part: str, parent: str | None) -> bool:
        n = self.name.get(area_id, "")
        return n == part or (parent is not None and n == self.name.get(parent, "") + part)

    def find(self, ref: str) -> tuple[str | None, str | None]:
        """(grid id, None), or (None, the reason in Chinese)."""
        if ref in self._memo:
            return self._memo[ref]
        found = self._find(ref)
        self._memo[ref] = found
        return found

    def _find(self, ref: str) -> tuple[str | None, str | None]:
        code = unicodedata.normalize("NFKC", ref).strip()
        if code in self.by_code:
            hits = self.by_code[code]
        else:
            parts = [p.strip() for p in re.split(r"[/／>＞]", ref) if p.strip()]
            hits = [a for a in self.tree.parent if self._matches(a, parts[-1], self.tree.parent.get(a))]
            for depth, part in enumerate(reversed(parts[:-1]), 1):
                hits = [a for a in hits if len(self.tree.path(a)) > depth
                        and self._matches(self.tree.path(a)[depth], part, self.tree.parent.get(self.tree.path(a)[depth]))]
        hits = [a for a in hits if self.tree.level.get(a) in GRID_LEVELS]
        if not hits:
            return None, "找不到该网格：请填写网格编码，或“镇/村/网格”形式的路径。"
        mine = [a for a in hits if self.holds(a)]
        if not mine:
            return None, "该网格不在您管辖的区域内。"
        if len(mine) > 1:
            return None, "有多个同名网格，请填写网格编码或完整路径（镇/村/网格）。"
        return mine[0], None


# -- the plan --------------------------------------------------------------------------------------

def _group(sheet: Sheet, problems: list[Problem], grids: Grids) -> list[Household]:
    """Rows into households: by 户号 when the sheet has it, else by grid, address and head's name."""
    residents_sheet = "name" in sheet.columns
    households: dict[Any, Household] = {}
    first_id_row: dict[str, int] = {}
    for n, values in sheet.rows:
        before = len(problems)
        hh, person = _check_row(sheet, n, values, problems, residents_sheet)
        grid_id = None
        if hh["_grid"]:
            grid_id, why = grids.find(hh["_grid"])
            if why:
                problems.append(Problem(n, sheet.columns["grid"][1], hh["_grid"], why))
        if person is not None and "id_number" in person.fields:
            num = person.fields["id_number"]
            if num in first_id_row:
                problems.append(Problem(n, sheet.columns["id_number"][1], num,
                                        f"身份证号与第{first_id_row[num]}行重复。"))
            else:
                first_id_row[num] = n
        if len(problems) > before and not hh["_no"] and (not hh["head_name"] or not hh["_grid"]):
            continue
        key: Any = ("no", hh["_no"]) if hh["_no"] else ("key", grid_id or hh["_grid"], hh["address"], hh["head_name"])
        h = households.get(key)
        fields = {k: v for k, v in hh.items() if not k.startswith("_") and v not in ("", None)}
        if h is None:
            h = households[key] = Household([n], grid_id, fields)
        else:
            h.rows.append(n)
            for k, v in fields.items():
                if k in h.fields and h.fields[k] != v and k in ("address", "head_name"):
                    problems.append(Problem(n, sheet.columns.get(k, (0, HEADER_OF.get(k, k)))[1], str(v),
                                            f"同一户（第{h.rows[0]}行起）的{HEADER_OF.get(k, k)}前后不一致。"))
                elif k == "tags":
                    h.fields["tags"] = sorted(set(h.fields.get("tags", [])) | set(v))   # on any of its rows
                else:
                    h.fields.setdefault(k, v)
            if h.grid_id is None:
                h.grid_id = grid_id
            elif grid_id != h.grid_id and grid_id is not None:
                problems.append(Problem(n, sheet.columns["grid"][1], hh["_grid"],
                                        f"同一户（第{h.rows[0]}行起）的网格前后不一致。"))
        if person is not None:
            h.people.append(person)
    out = list(households.values())
    # the same household twice (two 户号 with one address and head, or two heads in one household)
    seen: dict[tuple[Any, ...], int] = {}
    for h in out:
        heads = [p for p in h.people if p.relation == "户主"]
        if not h.fields.get("head_name") and heads:
            h.fields["head_name"] = heads[0].name
        for key in ("grid", "address", "head_name"):
            present = h.grid_id is not None if key == "grid" else bool(h.fields.get(key))
            if not present and not any(p.row in h.rows for p in problems):
                header = sheet.columns.get(key, (0, HEADER_OF[key]))[1]
                problems.append(Problem(h.rows[0], header, "", f"“{header}”必须填写（该户各行都没有填）。"))
        if len(heads) > 1:
            problems.append(Problem(heads[1].row, sheet.columns.get("relation", (0, "与户主关系"))[1], "户主",
                                    f"同一户有两个户主（第{heads[0].row}行和第{heads[1].row}行）。"))
        same = (h.grid_id, h.fields.get("address"), h.fields.get("head_name"))
        if same in seen:
            problems.append(Problem(h.rows[0], sheet.columns.get("address", (0, "地址"))[1],
                                    str(h.fields.get("address", "")),
                                    f"与第{seen[same]}行是同一地址、同一户主，重复登记。"))
        else:
            seen[same] = h.rows[0]
        names: dict[str, int] = {}
        for p in h.people:
            if "id_number" in p.fields:
                continue
            if p.name in names:
                problems.append(Problem(p.row, sheet.columns.get("name", (0, "姓名"))[1], p.name,
                                        f"同一户中与第{names[p.name]}行同名且都没有身份证号，无法区分。"))
            names[p.name] = p.row
        if residents_sheet:
            h.fields["members_count"] = len(h.people)
    return out


def _diff(given: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``given`` that differ from ``current`` (an empty cell never erases)."""
    out: dict[str, Any] = {}
    for k, v in given.items():
        cur = current.get(k)
        if k == "tags":
            old = set(cur or [])
            if set(v) != old:
                out[k] = {"add": sorted(set(v) - old), "remove": sorted(old - set(v))}
        elif cur != v:
            out[k] = v
    return out


def plan(store: Store, actor: Actor, sheet: Sheet, now: str | None = None) -> Result:
    """What importing ``sheet`` as ``actor`` would do to the database as it is now."""
    res = Result(rows=len(sheet.rows))
    problems = res.problems
    tree = area_tree(store)
    grids = Grids(store, tree, actor)
    households = _group(sheet, problems, grids)
    at = now or iso(utcnow())
    col = {k: v[1] for k, v in sheet.columns.items()}

    grid_ids = sorted({h.grid_id for h in households if h.grid_id})
    existing_h = dict(store.live_where_in("households", "grid_id", grid_ids)) if grid_ids else {}
    existing_r = dict(store.live_where_in("residents", "household_id", list(existing_h))) if existing_h else {}
    numbers = sorted({p.fields["id_number"] for h in households for p in h.people if "id_number" in p.fields})
    by_number: dict[str, tuple[str, dict[str, Any]]] = {}
    for rid, d in existing_r.items():
        if d.get("id_number"):
            by_number[d["id_number"]] = (rid, d)
    elsewhere = [x for x in numbers if x not in by_number]
    for rid, d in store.residents_with_id_numbers(elsewhere) if elsewhere else []:
        by_number[d["id_number"]] = (rid, d)
    by_key: dict[tuple[Any, ...], list[str]] = {}
    for hid, d in existing_h.items():
        by_key.setdefault((d.get("grid_id"), d.get("address"), d.get("head_name")), []).append(hid)
    residents_of: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for rid, d in existing_r.items():
        residents_of.setdefault(d.get("household_id") or "", []).append((rid, d))
    other_households: dict[str, Any] = {}
    far = {d.get("household_id") for _, d in by_number.values()} - set(existing_h) - {None}
    if far:
        other_households = store.get_many("households", sorted(far))   # type: ignore[arg-type]

    def held(hid: str) -> bool:
        """Whether the importer holds the household (in the file's grids, or elsewhere in scope)."""
        if hid in existing_h:
            return True
        rec = other_households.get(hid)
        return rec is not None and not rec.deleted and bool(rec.data.get("grid_id")) and grids.holds(rec.data["grid_id"])

    def where(hid: str) -> str:
        d = existing_h.get(hid) or other_households[hid].data
        return f"{grids.path_text(d.get('grid_id') or '')} {d.get('address') or ''} 户主{d.get('head_name') or ''}"

    def registered_elsewhere(p: Person) -> None:
        num = p.fields["id_number"]
        hid = by_number[num][1].get("household_id") or ""
        problems.append(Problem(p.row, col.get("id_number", "身份证号"), num,
                                f"该身份证号已登记在另一户中（{where(hid)}）。" if held(hid)
                                else "该身份证号已登记在您管辖范围以外的住户中，请与上级核实。"))

    muts_h: list[dict[str, Any]] = []
    muts_r: list[dict[str, Any]] = []
    updated_h: dict[str, dict[str, Any]] = {}
    updated_r: dict[str, dict[str, Any]] = {}
    for h in households:
        if h.grid_id is None:
            continue
        head = next((p for p in h.people if p.relation == "户主"), None)
        match: str | None = None
        why: str | None = None
        if head is not None and "id_number" in head.fields and head.fields["id_number"] in by_number:
            _, d = by_number[head.fields["id_number"]]
            hid = d.get("household_id") or ""
            if not held(hid):
                why = "该户主的身份证号已登记在您管辖范围以外的住户中，请与上级核实。"
            else:
                match = hid
        keyed = by_key.get((h.grid_id, h.fields.get("address"), h.fields.get("head_name")), [])
        if why is None and match is None:
            if len(keyed) > 1:
                why = "系统中已有多户地址和户主姓名都相同，无法确定对应哪一户，请在住户档案中先合并。"
            elif keyed:
                match = keyed[0]
        elif why is None and keyed and match not in keyed:
            why = "户主身份证号对应的住户与地址、户主姓名对应的住户不是同一户，请核对。"
        if why:
            problems.append(Problem(h.rows[0], col.get("id_number") or col.get("address", "地址"),
                                    head.fields.get("id_number", "") if head else "", why))
            for p in h.people:
                if p is not head and p.fields.get("id_number") in by_number:
                    registered_elsewhere(p)
            continue
        fields = {"grid_id": h.grid_id, **h.fields}
        if match is None:
            hid = uuid7()
            muts_h.append({"collection": "households", "id": hid, "base": 0, "fields": fields, "row": h.rows[0]})
            res.households_new += 1
            current: dict[str, Any] = {}
            current_people: list[tuple[str, dict[str, Any]]] = []
        else:
            hid = match
            # elsewhere in scope (not in the file's grids): a changed 网格 moves it
            current = existing_h[hid] if hid in existing_h else other_households[hid].data
            current_people = residents_of.get(hid, [])
        by_name: dict[str, list[str]] = {}
        mine = {rid: d for rid, d in current_people}
        for rid, d in current_people:
            by_name.setdefault(d.get("name") or "", []).append(rid)
        taken: set[str] = set()
        added = 0
        for p in h.people:
            resident: str | None = None
            num = p.fields.get("id_number")
            if num and num in by_number:
                other, d = by_number[num]
                if other in mine:
                    resident = other
                else:
                    registered_elsewhere(p)
                    continue
            if resident is None and match is not None:
                same = [x for x in by_name.get(p.name, []) if x not in taken
                        and not (num and mine[x].get("id_number") and mine[x]["id_number"] != num)]
                if len(same) > 1:
                    problems.append(Problem(p.row, col.get("name", "姓名"), p.name,
                                            "该户在系统中有多个同名成员，请填写身份证号以区分。"))
                    continue
                resident = same[0] if same else None
            if resident is not None and resident in taken:
                problems.append(Problem(p.row, col.get("name", "姓名"), p.name, "与同一户中的另一行是同一个人。"))
                continue
            if resident is None:
                resident = uuid7()
                muts_r.append({"collection": "residents", "id": resident, "base": 0,
                               "fields": {"household_id": hid, **p.fields}, "row": p.row})
                res.residents_new += 1
                added += 1
            else:
                taken.add(resident)
                changed = _diff(p.fields, mine[resident])
                if changed:
                    updated_r[resident] = {"collection": "residents", "id": resident, "fields": changed, "row": p.row}
                    res.residents_updated += 1
                else:
                    res.residents_unchanged += 1
        if match is not None:
            if "name" in sheet.columns:
                # the household's people once imported: those the file lists and those it does not
                # (an import never deletes; a resident a phone added is still there)
                fields["members_count"] = len(current_people) + added
            changed = _diff(fields, current)
            if changed:
                updated_h[hid] = {"collection": "households", "id": hid, "fields": changed, "row": h.rows[0]}
                res.households_updated += 1
            else:
                res.households_unchanged += 1
    # the current versions are the updates' bases: what the import saw (an offline edit with an
    # older base meets them as a conflict, as any two edits of one field do)
    for coll, updates in (("households", updated_h), ("residents", updated_r)):
        if updates:
            for rid, rec in store.get_many(coll, list(updates)).items():
                updates[rid]["base"] = rec.version
    mutations = [*muts_h, *updated_h.values(), *muts_r, *updated_r.values()]
    # the engine's own check of every value (lengths, characters): a problem by row, never a rejection midway
    for m in mutations:
        schema = HOUSEHOLDS if m["collection"] == "households" else RESIDENTS
        try:
            validate_fields(schema, m["fields"], create=m["base"] == 0)
        except MutationRejected as e:
            name = re.match(r"fields\.(\w+)", e.message)
            f = schema.by_name.get(name.group(1)) if name else None
            problems.append(Problem(m["row"], "", _text(m["fields"].get(f.name) if f else "")[:200],
                                    f"“{f.help_zh if f else ''}”的内容不符合要求。"))
    for m in mutations:
        m["at"] = at
    res.mutations = mutations
    problems.sort(key=lambda p: p.row)
    return res


# -- dry run and apply ---------------------------------------------------------------------------

def check(store: Store, actor: Actor, source: str | Path | bytes | IO[bytes]) -> Result:
    """The dry run: what an apply would do now, and every problem. Writes nothing."""
    sheet = read_sheet(source)
    with store.read():
        return plan(store, actor, sheet)


def apply(store: Store, actor: Actor, source: str | Path | bytes | IO[bytes], *, label: str = "") -> Result:
    """Import the roster: all of it or nothing.

    The plan is made again inside the write transaction (so it is the database's state that is
    written against, not the dry run's), refused with ``ImportRefused`` when it has any problem, and
    pushed through the engine as ``actor`` in batches inside that one transaction: a rejected
    mutation or any error midway rolls everything back."""
    sheet = read_sheet(source)
    with store.transaction():
        res = plan(store, actor, sheet)
        if res.problems:
            raise ImportRefused(f"文件中有 {len(res.problems)} 处问题，未导入任何数据：请先修改后再导入。", res)
        for i in range(0, len(res.mutations), MAX_MUTATIONS):
            chunk = res.mutations[i:i + MAX_MUTATIONS]
            req = PushRequest(protocol=1, mutations=[
                MutationIn(mid=uuid7(), collection=m["collection"], id=m["id"], op="upsert", base=m["base"],
                           fields=m["fields"], at=m["at"]) for m in chunk])
            resp = engine.push(store, actor, req)
            for m, r in zip(chunk, resp.results):
                if r.status != "applied":
                    why = r.error.message if r.error else r.status
                    raise ImportRefused(f"第{m['row']}行写入失败（{why}），已全部撤销，未导入任何数据。", res)
        if res.mutations:
            store.audit(None if actor.user_id == "system" else actor.user_id, "import.households", None, None,
                        {"file": label[:200], **res.counts()})
        res.applied = True
    return res


# -- the .xlsx files ------------------------------------------------------------------------------

GUIDE: tuple[tuple[str, str], ...] = (
    ("户号", "可选。同一户的各行填同一个户号；不填时按“网格 + 地址 + 户主姓名”归为一户。"),
    ("网格", "必填。网格编码，或“镇/村/网格”形式的路径，例如 章水镇/杖锡村/第一网格（见“网格”工作表）。"),
    ("地址", "必填。同“住址”。"),
    ("户主姓名", "必填。同“户主”。"),
    ("姓名", "必填。本行人员的姓名；户主本人一行的姓名即户主姓名。"),
    ("与户主关系", "户主本人填“户主”（或“本人”），其他如 配偶、子、女、父、母、孙子、孙女。"),
    ("性别", "男 或 女；不填时按身份证号判断。"),
    ("身份证号", "同“公民身份号码”“身份证号码”。18位（校验位按 GB 11643 核对），请把该列设为文本，以免 Excel 丢失末几位。"),
    ("出生年份", "四位年份，也可填出生日期；不填时按身份证号得出。"),
    ("联系电话", "同“手机号码”。手机号11位，座机如 0574-88301234。户主一行的电话也作为住户的联系电话。"),
    ("居住状态", "在家居住、外出、已迁出、已故。"),
    ("标签", "本人的标签，用“、”分隔，如 党员、残疾人、慢性病、高龄、外出务工。"),
    ("备注", "本人的备注。"),
    ("户标签", "住户的标签，用“、”分隔，如 独居老人、低保户、困难家庭、留守儿童、党员中心户、山区农户（同一户填在任一行即可）。"
             "“标签”列中的 独居老人、低保户、困难家庭、党员中心户、山区农户 也记为住户的标签。"),
    ("户备注", "住户的备注（住户信息卡上的情况说明）。"),
)


def write_template(out: str | Path | IO[bytes], grid_paths: Sequence[tuple[str, str]] = ()) -> None:
    """The roster template: the sheet to fill (one row per resident), how to fill it, and the
    grids the importer may use (code, path)."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(out, {"in_memory": True})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    text = wb.add_format({"num_format": "@"})
    ws = wb.add_worksheet(SHEET)
    for i, key in enumerate(TEMPLATE_KEYS):
        ws.write_string(0, i, HEADER_OF[key], head)
        ws.set_column(i, i, 22 if key in ("grid", "address", "id_number", "tags", "household_tags") else 12,
                      text if key in ("household_no", "id_number", "phone", "grid") else None)
    ws.freeze_panes(1, 0)
    ws.data_validation(1, TEMPLATE_KEYS.index("gender"), 100_000, TEMPLATE_KEYS.index("gender"),
                       {"validate": "list", "source": ["男", "女"]})
    ws.data_validation(1, TEMPLATE_KEYS.index("residence"), 100_000, TEMPLATE_KEYS.index("residence"),
                       {"validate": "list", "source": list(RESIDENCE_ZH.values())})
    guide = wb.add_worksheet("填写说明")
    guide.write_row(0, 0, ["列", "说明"], head)
    for n, (col, why) in enumerate(GUIDE, 1):
        guide.write_row(n, 0, [col, why])
    n = len(GUIDE) + 2
    guide.write_string(n, 0, "也可导入每户一行的简表（户主姓名、网格、地址、联系电话、身份证号、户标签…），每行登记一户及其户主。")
    guide.write_string(n + 1, 0, "先“预览”（不写入），没有问题后再“导入”；同一文件重复导入不会产生重复记录，修改过的单元格只更新该项。")
    guide.set_column(0, 0, 14)
    guide.set_column(1, 1, 100)
    gs = wb.add_worksheet("网格")
    gs.write_row(0, 0, ["网格编码", "路径"], head)
    for n, (code, path) in enumerate(grid_paths, 1):
        gs.write_string(n, 0, code)
        gs.write_string(n, 1, path)
    gs.set_column(0, 0, 16)
    gs.set_column(1, 1, 40)
    wb.close()


def template_grids(store: Store, actor: Actor) -> list[tuple[str, str]]:
    """(code, path) of the grids the importer holds, by path."""
    tree = area_tree(store)
    grids = Grids(store, tree, actor)
    recs = store.get_many("areas", [a for a in tree.parent if tree.level.get(a) in GRID_LEVELS])
    out = [(str(r.data.get("code") or ""), grids.path_text(a)) for a, r in recs.items() if grids.holds(a)]
    return sorted(out, key=lambda x: x[1])


def template_bytes(store: Store, actor: Actor) -> bytes:
    buf = io.BytesIO()
    write_template(buf, template_grids(store, actor))
    return buf.getvalue()


SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("rows", "数据行"), ("households_new", "新增住户"), ("households_updated", "更新住户"),
    ("households_unchanged", "无变化住户"), ("residents_new", "新增成员"), ("residents_updated", "更新成员"),
    ("residents_unchanged", "无变化成员"), ("problems", "问题"),
)


def write_report(out: str | Path | IO[bytes], res: Result) -> None:
    """The check's report: the problems by row (行号, 列, 值, 问题) and the counts."""
    import xlsxwriter

    # every cell as text: a value from the file that looks like a formula stays text in the report
    wb = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    problems_sheet(wb, res.problems)
    ss = wb.add_worksheet("汇总")
    for n, (key, label) in enumerate(SUMMARY_ROWS):
        ss.write_string(n, 0, label)
        ss.write_number(n, 1, res.counts()[key])
    ss.set_column(0, 0, 14)
    wb.close()


def report_bytes(res: Result) -> bytes:
    buf = io.BytesIO()
    write_report(buf, res)
    return buf.getvalue()


def summary_lines(res: Result) -> Iterator[str]:
    """The counts and the problems as lines of text (the CLI's output)."""
    c = res.counts()
    yield "，".join(f"{label} {c[key]}" for key, label in SUMMARY_ROWS)
    for p in res.problems:
        yield f"第{p.row}行 {p.column or '（整行）'} {p.value!r}: {p.reason}"


def first_problems(res: Result, limit: int = PREVIEW_PROBLEMS) -> list[Problem]:
    return res.problems[:limit]

