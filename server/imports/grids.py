"""Grids (and 片) under villages, with their 网格长 and 网格员, from an .xlsx (docs/onboarding.md §2).

One row a grid: the village or community (its 12-digit code, or a path of names such as
章水镇/杖锡村), optionally the 片 it lies in, the grid's name, the 网格长's username and the 网格员's
usernames (separated by 、 , ； or spaces). Grids and 片 are created through the engine, once:
a grid is the same grid when its village and name are (a second run of the file writes nothing).
Each listed user's areas are made to include the grid (``sync.accounts.update_user``); their other
areas stay. Any problem is reported by row and nothing is written.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from sync import accounts
from sync.engine import area_tree, uuid7
from sync.scope import Actor
from sync.storage import Store

from .areas import CODE_RE, MAX_BYTES, SYSTEM, push_all, valid_name
from .report import Problem

# The template's headers, and the other ways a county's sheet may say the same.
VILLAGE, PATCH, GRID, HEAD, WORKERS = "村（社区）代码或路径", "片区", "网格名称", "网格长用户名", "网格员用户名"
SYNONYMS = {
    VILLAGE: ("村（社区）代码或路径", "村（社区）", "村社区", "村", "社区", "村代码", "区划代码", "村（社区）代码",
              "village"),
    PATCH: ("片区", "片", "片名", "片区名称", "patch"),
    GRID: ("网格名称", "网格", "网格名", "grid"),
    HEAD: ("网格长用户名", "网格长", "head"),
    WORKERS: ("网格员用户名", "网格员", "专职网格员", "workers"),
}
REQUIRED = (VILLAGE, GRID)
VILLAGE_LEVELS = ("village", "community")
SEPARATORS = re.compile(r"[,，、;；\s]+")
LEVEL_ZH = {"province": "省", "city": "市", "county": "区县", "district": "区", "town": "镇（乡）", "street": "街道",
            "village": "村", "community": "社区", "patch": "片区", "grid": "网格", "group": "组"}
ROLE_ZH = {"grid_worker": "网格员", "proxy_agent": "代办员", "staff": "镇工作人员", "admin": "管理员"}


@dataclass
class Outcome:
    """What a grid import found and did (or, on a dry run, would do)."""

    problems: list[Problem] = field(default_factory=list)
    grids_created: list[str] = field(default_factory=list)     # 村 / 片 / 网格, as shown
    patches_created: list[str] = field(default_factory=list)
    users_updated: list[str] = field(default_factory=list)     # usernames
    unchanged: int = 0                                         # grids already there
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def _header_key(text: Any) -> str:
    h = re.sub(r"\s+", "", str(text or "")).replace("(可选)", "").replace("（可选）", "").lower()
    return next((key for key, names in SYNONYMS.items() if h in [n.lower() for n in names]), "")


def _cell(value: Any) -> str:
    """A cell as text: a code typed as a number (330203106260, or 3.3020310626E11) as its digits."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read_sheet(data: bytes) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    """The rows of the first sheet, by column key, with their row numbers; or the file's problems."""
    if len(data) > MAX_BYTES:
        return [], [Problem(0, "", "", f"文件过大（超过 {MAX_BYTES // 1024 // 1024} MB），请检查是否选错了文件。")]
    import openpyxl

    try:
        with warnings.catch_warnings():
            # openpyxl warns about what it does not read (data validation, styles): not the user's error
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheet = book.worksheets[0]
                lines = [(i, list(r)) for i, r in enumerate(sheet.iter_rows(values_only=True), 1)]
            finally:
                book.close()
    except Exception:   # a zip that is not a workbook, a damaged file: the user's file, never a 500
        return [], [Problem(0, "", "", "无法读取该文件：请上传 .xlsx 格式的 Excel 文件（可下载模板填写）。")]
    head = next(((i, r) for i, r in lines if any(_cell(c) for c in r)), None)
    if head is None:
        return [], [Problem(0, "", "", "文件是空的。")]
    hrow, cells = head
    columns = {}
    for c, text in enumerate(cells):
        key = _header_key(text)
        if key and key not in columns:
            columns[key] = c
    missing = [k for k in REQUIRED if k not in columns]
    if missing:
        return [], [Problem(hrow, "", "、".join(_cell(c) for c in cells if _cell(c))[:200],
                            f"表头缺少“{'”“'.join(missing)}”列（请使用模板的表头）。")]
    rows = []
    for i, r in lines:
        if i <= hrow or not any(_cell(c) for c in r):
            continue
        rows.append((i, {k: _cell(r[c]) if c < len(r) else "" for k, c in columns.items()}))
    if not rows:
        return [], [Problem(0, "", "", "文件中没有网格数据。")]
    return rows, []


@dataclass
class _Areas:
    """The area tree with names, codes and levels, for resolving what a row names."""

    tree: Any
    data: dict[str, dict[str, Any]]
    by_name: dict[str, list[str]] = field(default_factory=dict)   # name or official name -> ids
    by_code: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store) -> "_Areas":
        tree = area_tree(store)
        out = cls(tree, {a: r.data for a, r in store.get_many("areas", list(tree.parent)).items()})
        for a, d in out.data.items():
            for name in {d.get("name"), d.get("official_name")}:
                if isinstance(name, str):
                    out.by_name.setdefault(name, []).append(a)
            if d.get("code"):
                out.by_code.setdefault(d["code"], []).append(a)
        return out

    def named(self, aid: str, name: str) -> bool:
        d = self.data[aid]
        return name in (d.get("name"), d.get("official_name"))

    def village(self, ref: str) -> tuple[str | None, str]:
        """The village or community a cell names (code or path), or None and why not."""
        if CODE_RE.fullmatch(ref):
            found = self.by_code.get(ref, [])
            if not found:
                return None, f"没有区划代码为 {ref} 的区域（请先导入区划，见“区划导入”）。"
        else:
            parts = [p.strip() for p in re.split(r"[/／>]", ref) if p.strip()]
            if not parts:
                return None, "请填写村（社区）的12位区划代码或路径（如 章水镇/杖锡村）。"
            found = []
            for a in self.by_name.get(parts[-1], []):
                above = self.tree.path(a)[1:]
                # each earlier part names an ancestor, in order, outermost first
                it = iter(above)
                if all(any(self.named(x, p) for x in it) for p in reversed(parts[:-1])):
                    found.append(a)
            villages = [a for a in found if self.tree.level.get(a) in VILLAGE_LEVELS]
            if len(villages) > 1:
                return None, "有多个同名的村（社区），请写出上级路径（如 章水镇/杖锡村）或区划代码。"
            if not villages and not found:
                return None, "找不到该村（社区），请检查名称和路径，或使用区划代码。"
            found = villages or found
        level = self.tree.level.get(found[0])
        if level not in VILLAGE_LEVELS:
            return None, f"该区域是{LEVEL_ZH.get(level or '', level)}，网格应建在村或社区之下。"
        return found[0], ""

    def child(self, parent: str, level: str, name: str) -> str | None:
        return next((a for a in self.tree.children.get(parent, []) if self.tree.level.get(a) == level
                     and self.data[a].get("name") == name), None)

    def grid_in(self, village: str, name: str) -> str | None:
        """A grid of that name anywhere under the village (directly or in a 片)."""
        return next((a for a in self.tree.subtree(village) if self.tree.level.get(a) == "grid"
                     and self.data[a].get("name") == name), None)


def _name_problem(value: str) -> str:
    return "" if valid_name(value) else "名称过长（最多100字）或含有控制字符。"


def plan(store: Store, rows: list[tuple[int, dict[str, str]]], allowed: set[str] | None = None
         ) -> tuple[list[dict[str, Any]], dict[str, list[str]], Outcome]:
    """The area mutations (片 before grids) and each user's new areas that bring the database to
    the file. ``allowed``: the importing admin's areas (None: everything)."""
    out = Outcome()
    areas = _Areas.load(store)
    mutations: list[dict[str, Any]] = []
    new_patch: dict[tuple[str, str], str] = {}       # (village, patch name) -> new id
    grid_rows: dict[tuple[str, str], int] = {}       # (village, grid name) -> first row
    sort_next: dict[str, int] = {}
    user_areas: dict[str, list[str]] = {}            # user id -> areas, as they will be
    usernames: dict[str, str] = {}

    def next_sort(parent: str) -> int:
        if parent not in sort_next:
            sort_next[parent] = max([int(areas.data[a].get("sort") or 0) for a in areas.tree.children.get(parent, [])]
                                    + [0])
        sort_next[parent] += 1
        return sort_next[parent]

    for i, r in rows:
        bad = len(out.problems)
        village, why = areas.village(r.get(VILLAGE, ""))
        if village is None:
            out.problems.append(Problem(i, VILLAGE, r.get(VILLAGE, ""), why))
        elif allowed is not None and village not in allowed:
            out.problems.append(Problem(i, VILLAGE, r.get(VILLAGE, ""), "该村（社区）超出您管辖的区域。"))
        name, patch = r.get(GRID, ""), r.get(PATCH, "")
        if not name:
            out.problems.append(Problem(i, GRID, "", "网格名称不能为空。"))
        for column, value in ((GRID, name), (PATCH, patch)):
            if value and _name_problem(value):
                out.problems.append(Problem(i, column, value[:60], _name_problem(value)))
        people: list[tuple[str, str]] = []
        if r.get(HEAD):
            if len(SEPARATORS.split(r[HEAD])) > 1:
                out.problems.append(Problem(i, HEAD, r[HEAD], "每个网格只有一名网格长。"))
            else:
                people.append((HEAD, r[HEAD]))
        people += [(WORKERS, u) for u in SEPARATORS.split(r.get(WORKERS, "")) if u]
        users = []
        for column, username in people:
            user = store.user_by_username(username)
            if user is None or user.deleted:
                out.problems.append(Problem(i, column, username, "没有该用户名的用户（请先导入或创建用户）。"))
            elif user.data.get("role") != "grid_worker":
                role = user.data.get("role") or ""
                out.problems.append(Problem(i, column, username,
                                            f"该用户的角色是{ROLE_ZH.get(role, role)}，网格长和网格员应为网格员角色。"))
            elif allowed is not None and not all(a in allowed for a in user.data.get("areas") or []):
                out.problems.append(Problem(i, column, username, "该用户的工作区域超出您管辖的区域。"))
            else:
                users.append(user)
        if village is None or not name or len(out.problems) > bad:
            continue
        key = (village, name)
        if key in grid_rows:
            out.problems.append(Problem(i, GRID, name, f"与第 {grid_rows[key]} 行重复（同一村内网格名称须唯一）。"))
            continue
        grid_rows[key] = i
        parent = village
        if patch:
            existing_patch = areas.child(village, "patch", patch)
            if existing_patch is not None:
                parent = existing_patch
            elif (village, patch) in new_patch:
                parent = new_patch[(village, patch)]
            else:
                parent = new_patch[(village, patch)] = uuid7()
                mutations.append({"id": parent, "base": 0, "fields": {
                    "parent_id": village, "level": "patch", "name": patch, "sort": next_sort(village)}})
                out.patches_created.append(f"{areas.data[village].get('name')} / {patch}")
        grid = areas.grid_in(village, name)
        if grid is not None:
            if areas.tree.parent.get(grid) != parent:
                out.problems.append(Problem(i, PATCH, patch, "该网格已存在，但位于另一个片区（或不在片区）之下；"
                                                             "网格的上级不能更改。"))
                continue
            out.unchanged += 1
        else:
            grid = uuid7()
            mutations.append({"id": grid, "base": 0, "fields": {"parent_id": parent, "level": "grid", "name": name,
                                                                "sort": next_sort(parent)}})
            out.grids_created.append(" / ".join(x for x in (areas.data[village].get("name"), patch, name) if x))
        for user in users:
            current = user_areas.setdefault(user.id, list(user.data.get("areas") or []))
            usernames[user.id] = user.data.get("username") or ""
            if grid not in current:
                current.append(grid)
    changes = {uid: a for uid, a in user_areas.items()
               if a != list((store.get("users", uid).data.get("areas") or []))}  # type: ignore[union-attr]
    out.users_updated = sorted(usernames[u] for u in changes)
    return mutations, changes, out


def import_grids(store: Store, data: bytes, actor: Actor = SYSTEM, dry_run: bool = False,
                 allowed: set[str] | None = None) -> Outcome:
    """Read, check and (unless ``dry_run`` or anything is wrong) apply a grid sheet in one
    transaction: the grids and 片 through the engine, then the users' areas; all or nothing."""
    rows, problems = read_sheet(data)
    if problems:
        return Outcome(problems=problems)
    with store.transaction():
        mutations, changes, out = plan(store, rows, allowed)
        out.problems.sort(key=lambda p: p.row)
        if out.problems or dry_run or not (mutations or changes):
            return out
        push_all(store, actor, "areas", mutations)
        for uid, areas in changes.items():
            accounts.update_user(store, uid, by=actor.user_id, areas=areas)
        out.applied = True
    return out


def template_xlsx() -> bytes:
    """The sheet to fill in: the headers, and a second sheet saying what goes in each column."""
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    sheet = book.add_worksheet("网格")
    bold = book.add_format({"bold": True})
    text = book.add_format({"num_format": "@"})   # codes stay text: Excel would show 3.30203E+11
    for c, h in enumerate((VILLAGE, PATCH + "（可选）", GRID, HEAD, WORKERS)):
        sheet.write_string(0, c, h, bold)
    sheet.set_column(0, 0, 24, text)
    sheet.set_column(1, 4, 18, text)
    sheet.freeze_panes(1, 0)
    notes = book.add_worksheet("填写说明")
    for r, (col, what) in enumerate((
            ("列", "填写什么"),
            (VILLAGE, "村或社区的12位统计用区划代码（如 330203106260），或名称路径（如 章水镇/杖锡村）"),
            (PATCH + "（可选）", "网格所在的片区名称；不分片的村留空。片区不存在时自动创建"),
            (GRID, "网格名称（如 杖锡村第一网格）；同一村内不重复"),
            (HEAD, "网格长的登录用户名（一人）；须为已有的网格员账号"),
            (WORKERS, "网格员的登录用户名，多人用顿号、逗号分隔；须为已有的网格员账号"),
            ("", "一行一个网格。重复导入同一文件不会重复创建；有任何错误时整个文件都不会写入。"))):
        notes.write_string(r, 0, col, bold if r == 0 else None)
        notes.write_string(r, 1, what, bold if r == 0 else None)
    notes.set_column(0, 0, 22)
    notes.set_column(1, 1, 80)
    book.close()
    return buf.getvalue()
