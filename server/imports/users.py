"""Users from a county's .xlsx (onboarding step 3, docs/onboarding.md §3): one row per person with
username, name, phone, role and work areas, under Chinese headers or their usual synonyms.

``plan`` reads and checks the whole file against the database (a dry run: nothing is written) and
says, row by row, what would be created, what updated and what is wrong; ``apply`` writes every row
or none, through ``sync.accounts`` (the engine's system writes, so phones receive the users as
ordinary changes). A new user gets a random one-time password, returned once by ``apply`` and
never stored in clear; an existing user is updated (name, phone, role, areas), never its password.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator

from sync import accounts
from sync.engine import area_tree
from sync.schema import ROLES
from sync.storage import Store
from sync.store import AreaTree

from .report import Problem

# The largest file and the most rows read: a county has a few thousand staff, not more.
MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000

# Column -> the headers counties use for it (compared without spaces, "*" and bracketed notes).
HEADERS: dict[str, tuple[str, ...]] = {
    "username": ("用户名", "账号", "帐号", "登录名", "登录账号", "用户账号", "username", "user", "login"),
    "display_name": ("姓名", "名字", "真实姓名", "name", "displayname", "display_name"),
    "phone": ("手机号码", "手机号", "手机", "联系电话", "电话", "电话号码", "联系方式", "phone", "mobile"),
    "role": ("角色", "岗位", "身份", "role"),
    "areas": ("工作区域", "区域", "所属区域", "负责区域", "管辖区域", "网格", "areas", "area"),
}
# The header written in the template and in reports, per column.
COLUMN_ZH = {"username": "用户名", "display_name": "姓名", "phone": "手机号码", "role": "角色", "areas": "工作区域"}
REQUIRED = ("username", "display_name", "role", "areas")

# Role as a county writes it -> the role code (the codes themselves are accepted too).
ROLE_NAMES: dict[str, str] = {
    "网格员": "grid_worker", "专职网格员": "grid_worker", "兼职网格员": "grid_worker", "网格长": "grid_worker",
    "代办员": "proxy_agent", "高山代办员": "proxy_agent",
    "工作人员": "staff", "镇工作人员": "staff", "县工作人员": "staff", "街道工作人员": "staff",
    "管理员": "admin", "系统管理员": "admin",
    **{code: code for code in ROLES},
}
ROLE_ZH = {"grid_worker": "网格员", "proxy_agent": "代办员", "staff": "工作人员", "admin": "管理员"}

_AREA_SEP = re.compile(r"[、,，;；\n]+")
_PATH_SEP = re.compile(r"\s*[/／>＞]\s*")
_MOBILE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})")
_LANDLINE = re.compile(r"0[0-9]{2,3}-?[0-9]{7,8}(?:-[0-9]{1,6})?")


@dataclass
class UserRow:
    row: int
    username: str
    display_name: str
    phone: str | None
    role: str
    areas: list[str]
    user_id: str | None = None                              # an existing user, updated
    changes: dict[str, Any] = field(default_factory=dict)   # what an update changes


@dataclass
class Plan:
    """What importing the file would do: nothing at all while ``problems`` is not empty."""

    creates: list[UserRow] = field(default_factory=list)
    updates: list[UserRow] = field(default_factory=list)
    unchanged: list[UserRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Scope:
    """Who imports: ``allowed`` the area ids they administer (None: the whole tree, as the CLI and
    an admin without areas). An area admin may not create or change admins, nor users outside."""

    allowed: set[str] | None = None

    def covers(self, role: str, areas: Iterable[str]) -> bool:
        if self.allowed is None:
            return True
        areas = list(areas)
        return role != "admin" and bool(areas) and all(a in self.allowed for a in areas)


# -- reading the file --------------------------------------------------------------------------------

def _text(value: Any) -> str:
    """A cell as text: numbers Excel stored for phone numbers or usernames lose their ".0"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _header_key(text: str) -> str | None:
    norm = re.sub(r"[\s*＊]|[（(][^）)]*[）)]", "", text).lower()
    for col, names in HEADERS.items():
        if norm in names:
            return col
    return None


def read_rows(source: bytes | IO[bytes]) -> tuple[dict[int, str], list[tuple[int, dict[str, str]]], list[Problem]]:
    """The first sheet's header (column index -> column) and data rows (Excel's row number, cells by
    column), or the problems that stop reading. The header is the first of the first 10 rows that
    names a username column (a title row above it is allowed)."""
    from openpyxl import load_workbook

    data = source if isinstance(source, bytes) else source.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return {}, [], [Problem(0, "", "", f"文件过大（超过 {MAX_BYTES // (1024 * 1024)} MB）。")]
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:   # openpyxl raises many kinds for a file that is not a workbook
        return {}, [], [Problem(0, "", "", "文件不是有效的 Excel 工作簿（.xlsx）；旧版 .xls 请先另存为 .xlsx。")]
    try:
        ws = wb.worksheets[0]
        header: dict[int, str] = {}
        rows: list[tuple[int, dict[str, str]]] = []
        problems: list[Problem] = []
        it: Iterator[tuple[Any, ...]] = ws.iter_rows(values_only=True, max_col=40)
        n = 0
        for n, values in enumerate(it, 1):
            if not header:
                found = {i: _header_key(_text(v)) for i, v in enumerate(values)}
                if "username" in found.values():
                    for i, col in found.items():
                        if col and col not in header.values():
                            header[i] = col
                    missing = [COLUMN_ZH[c] for c in REQUIRED if c not in header.values()]
                    for name in missing:
                        problems.append(Problem(n, name, "", f"缺少必填列“{name}”。"))
                    if missing:
                        break
                elif n >= 10:
                    break
                continue
            cells = {col: _text(values[i]) if i < len(values) else "" for i, col in header.items()}
            if not any(cells.values()):
                continue
            if len(rows) >= MAX_ROWS:
                problems.append(Problem(n, "", "", f"行数过多：一个文件最多 {MAX_ROWS} 个用户，请分批导入。"))
                break
            rows.append((n, cells))
        if not header and not problems:
            problems.append(Problem(1, "用户名", "", "找不到表头：第一个工作表的前10行中没有“用户名”（或“账号”）列。"))
        return header, rows, problems
    except Exception:
        return {}, [], [Problem(0, "", "", "文件无法读取（工作表已损坏）。")]
    finally:
        wb.close()


# -- areas as people write them ----------------------------------------------------------------------

class AreaIndex:
    """Areas by id, by administrative code, by name and by path of names (章水镇/杖锡村/第一网格)."""

    def __init__(self, store: Store, tree: AreaTree) -> None:
        self.tree = tree
        recs = store.get_many("areas", list(tree.parent))
        self.names = {aid: str(r.data.get("name") or "") for aid, r in recs.items()}
        self.by_name: dict[str, list[str]] = {}
        self.by_code: dict[str, list[str]] = {}
        for aid, name in self.names.items():
            self.by_name.setdefault(name, []).append(aid)
            code = _code(str(recs[aid].data.get("code") or ""))
            if code:
                self.by_code.setdefault(code, []).append(aid)

    def path_names(self, aid: str) -> list[str]:
        return [self.names.get(a, "") for a in reversed(self.tree.path(aid))]

    def resolve(self, ref: str) -> tuple[str | None, str]:
        """The area ``ref`` names, or None and why (in Chinese)."""
        if ref in self.tree:
            return ref, ""
        code = _code(ref)
        if code and code in self.by_code:
            found = self.by_code[code]
        else:
            parts = [p for p in _PATH_SEP.split(ref) if p]
            if not parts:
                return None, "区域为空。"
            found = [a for a in self.by_name.get(parts[-1], []) if self.path_names(a)[-len(parts):] == parts]
        if not found:
            return None, "找不到该区域（可写区划代码，或“镇/村/网格”这样的路径）。"
        if len(found) > 1:
            return None, "区域名称不唯一，请写出上级，如“章水镇/杖锡村/第一网格”，或写区划代码。"
        return found[0], ""


def _code(text: str) -> str:
    """An administrative code for comparison: 统计用区划代码 may be written short (6 or 9 digits)
    or in full (12); both name the same area."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) in (6, 9, 12):
        return text.ljust(12, "0")
    return text if text.isascii() and text.isdigit() and len(text) >= 4 else ""


def normal_phone(text: str) -> str | None:
    """A mobile (11 digits, +86 dropped) or a landline with its area code, else None."""
    compact = re.sub(r"[\s\u3000]", "", text)
    m = _MOBILE.fullmatch(compact.replace("-", ""))
    if m:
        return m.group(1)
    if _LANDLINE.fullmatch(compact):
        return compact
    return None


# -- the plan -----------------------------------------------------------------------------------------

def plan(store: Store, source: bytes | IO[bytes], scope: Scope | None = None) -> Plan:
    """Read the file and decide every row against the database; writes nothing."""
    scope = scope or Scope()
    out = Plan()
    _, rows, out.problems = read_rows(source)
    if out.problems:
        return out
    if not rows:
        out.problems.append(Problem(0, "", "", "文件中没有用户。"))
        return out
    index = AreaIndex(store, area_tree(store))
    first_row: dict[str, int] = {}
    for n, cells in rows:
        row_problems: list[Problem] = []

        def bad(column: str, reason: str) -> None:
            row_problems.append(Problem(n, COLUMN_ZH[column], cells.get(column, ""), reason))

        username = cells.get("username", "")
        if not username:
            bad("username", "请填写用户名。")
        elif accounts.username_problem(username):
            bad("username", "用户名只能包含字母、数字和 . _ -，最多50个字符。")
        elif username in first_row:
            bad("username", f"与第 {first_row[username]} 行的用户名重复。")
        else:
            first_row[username] = n
        display_name = cells.get("display_name", "")
        if not display_name:
            bad("display_name", "请填写姓名。")
        elif len(display_name) > 50:
            bad("display_name", "姓名最多50个字符。")
        phone = None
        if cells.get("phone"):
            phone = normal_phone(cells["phone"])
            if phone is None:
                bad("phone", "手机号码应为11位手机号，或带区号的固定电话（如 0574-88888888）。")
        role = ROLE_NAMES.get(re.sub(r"\s", "", cells.get("role", "")))
        if role is None:
            bad("role", "未知角色：请填写 网格员、代办员、工作人员 或 管理员。")
        areas: list[str] = []
        for ref in (r.strip() for r in _AREA_SEP.split(cells.get("areas", ""))):
            if not ref:
                continue
            aid, why = index.resolve(ref)
            if aid is None:
                row_problems.append(Problem(n, COLUMN_ZH["areas"], ref, why))
            elif scope.allowed is not None and aid not in scope.allowed:
                row_problems.append(Problem(n, COLUMN_ZH["areas"], ref, "该区域不在您的管辖范围内。"))
            elif aid not in areas:
                areas.append(aid)
        if role and role != "admin" and not cells.get("areas", "").strip():
            bad("areas", "请填写工作区域。")
        if role == "admin" and not scope.covers(role, areas):
            bad("role", "只有全县（不限区域）的管理员可以导入管理员。")
        if row_problems or role is None:
            out.problems.extend(row_problems)
            continue
        row = UserRow(n, username, display_name, phone, role, areas)
        existing = store.user_by_username(username)
        if existing is None:
            out.creates.append(row)
            continue
        if not scope.covers(str(existing.data.get("role") or ""), existing.data.get("areas") or []):
            out.problems.append(Problem(n, COLUMN_ZH["username"], username,
                                        "该用户名已被您管辖范围以外的用户使用。"))
            continue
        row.user_id = existing.id
        old = existing.data
        if display_name != (old.get("display_name") or ""):
            row.changes["display_name"] = display_name
        if phone is not None and phone != old.get("phone"):
            row.changes["phone"] = phone
        if role != old.get("role"):
            row.changes["role"] = role
        if set(areas) != set(old.get("areas") or []):
            row.changes["areas"] = areas
        (out.updates if row.changes else out.unchanged).append(row)
    if out.problems:
        out.creates, out.updates, out.unchanged = [], [], []
    return out


@dataclass
class Applied:
    plan: Plan
    passwords: list[tuple[str, str, str]]   # (username, name, one-time password) of each new user


def apply(store: Store, source: bytes, scope: Scope | None = None, by: str | None = None) -> Applied:
    """Import the file: every row or none. The plan is made again inside the write transaction, so
    what another admin did since the dry run is taken into account; a problem then writes nothing.
    Returns the one-time passwords of the new users, which exist nowhere else."""
    first = plan(store, source, scope)
    if not first.ok or not (first.creates or first.updates):
        return Applied(first, [])      # nothing to write (the same file again): nothing written
    # scrypt is slow on purpose: hash before taking the write lock.
    ready = {r.username: accounts.one_time_password(r.username) for r in first.creates}
    hashes = {u: accounts.hash_password(p) for u, p in ready.items()}
    with store.transaction():
        again = plan(store, source, scope)
        if not again.ok or {r.username for r in again.creates} - set(ready):
            if again.ok:   # a user removed since the dry run is to be created: plan once more
                again.problems.append(Problem(0, "", "", "导入期间用户发生了变化，请重新预览后再导入。"))
            return Applied(again, [])
        for r in again.creates:
            accounts.create_user(store, r.username, "", r.role, r.areas, display_name=r.display_name,
                                 phone=r.phone, password_hash=hashes[r.username], must_change=True)
        for r in again.updates:
            assert r.user_id is not None
            accounts.update_user(store, r.user_id, by=by, **r.changes)
        store.audit(by, "user.import", None, None, {"created": len(again.creates), "updated": len(again.updates),
                                                    "unchanged": len(again.unchanged)})
    return Applied(again, [(r.username, r.display_name, ready[r.username]) for r in again.creates])


# -- files for people -----------------------------------------------------------------------------------

def template_xlsx(area_paths: list[tuple[str, str]]) -> bytes:
    """The import template: the header row, an instructions sheet and the importer's areas
    (path, code) to copy from."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    text = wb.add_format({"num_format": "@"})
    ws = wb.add_worksheet("用户")
    cols = ["username", "display_name", "phone", "role", "areas"]
    widths = {"username": 16, "display_name": 12, "phone": 16, "role": 12, "areas": 48}
    for i, col in enumerate(cols):
        ws.write(0, i, COLUMN_ZH[col], bold)
        ws.set_column(i, i, widths[col], text)
    ws.data_validation(1, 3, MAX_ROWS, 3, {"validate": "list", "source": list(ROLE_ZH.values())})
    ws.freeze_panes(1, 0)
    notes = wb.add_worksheet("说明")
    notes.set_column(0, 0, 14)
    notes.set_column(1, 1, 90)
    for i, (head, body) in enumerate([
        ("用户名", "必填。登录用的账号：字母、数字和 . _ -，最多50个字符；文件内不能重复。已存在的用户名会更新其姓名、手机号码、角色和工作区域，不会改动其密码。"),
        ("姓名", "必填。"),
        ("手机号码", "选填。11位手机号，或带区号的固定电话（如 0574-88888888）。"),
        ("角色", "必填。网格员、代办员、工作人员 或 管理员。"),
        ("工作区域", "网格员、代办员、工作人员必填。写区划代码或路径（如 章水镇/杖锡村/第一网格），多个用“、”或“,”分隔。可用的区域见“区域”工作表。"),
        ("初始密码", "每个新用户会得到一个一次性初始密码，只在导入后提供一次（下载的密码表）；用户首次登录时必须设置自己的新密码。"),
    ]):
        notes.write(i, 0, head, bold)
        notes.write(i, 1, body)
    ref = wb.add_worksheet("区域")
    ref.write_row(0, 0, ["区域路径", "区划代码"], bold)
    ref.set_column(0, 0, 48)
    ref.set_column(1, 1, 16, text)
    for i, (path, code) in enumerate(area_paths, 1):
        ref.write_string(i, 0, path)
        ref.write_string(i, 1, code)
    wb.close()
    return buf.getvalue()


def passwords_xlsx(passwords: list[tuple[str, str, str]]) -> bytes:
    """The new users' one-time passwords, to hand out: the only copy there is."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    ws = wb.add_worksheet("初始密码")
    ws.write_row(0, 0, ["用户名", "姓名", "初始密码（一次性）"], bold)
    ws.set_column(0, 0, 18)
    ws.set_column(1, 1, 14)
    ws.set_column(2, 2, 20)
    for i, (username, name, password) in enumerate(passwords, 1):
        ws.write_string(i, 0, username)
        ws.write_string(i, 1, name)
        ws.write_string(i, 2, password)
    ws.write_string(len(passwords) + 2, 0, "首次登录时须设置新密码；本表是初始密码的唯一副本，分发后请妥善销毁。")
    wb.close()
    return buf.getvalue()


def area_choices(store: Store, allowed: set[str] | None) -> list[tuple[str, str]]:
    """(path, code) of every area the importer may give, outermost first, for the template."""
    tree = area_tree(store)
    index = AreaIndex(store, tree)
    recs = store.get_many("areas", list(tree.parent))
    out = [("/".join(index.path_names(a)), str(recs[a].data.get("code") or "")) for a in tree.parent
           if allowed is None or a in allowed]
    return sorted(out)
