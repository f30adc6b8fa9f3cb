"""A county's area tree from the national code list (统计用区划代码), docs/onboarding.md §1.

The file is a CSV of 12-digit codes and names: 2+2+2 digits the county, +3 the town or street,
+3 the village or community (a town's row ends in 000, the county's in 000000). The tree is built
from the codes alone, so the rows may come in any order. Each area keeps its code, the short name
people use (杜岙村 for 杜岙村村委会) as ``name`` and the official one as ``official_name``.

Matching an area already in the database: by code; else by name (short or official) under the same
parent, among the areas whose code is none of the file's (no code: made by hand before the import;
or a code made up), whose code the import then sets. A second run
of the same file writes nothing; a renamed area is an update through the engine. Any problem in the
file (a malformed code, a missing parent, a duplicate, a code of another county) is reported by row
and nothing is written.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sync import engine
from sync.engine import area_tree, uuid7
from sync.errors import MutationRejected
from sync.protocol import MutationIn, PushRequest
from sync.schema import COLLECTIONS, check_value
from sync.scope import Actor
from sync.storage import Store
from sync.store import iso, utcnow

from .report import Problem

# The engine's own system administrator (as the shipped catalogue is installed): the CLI's writes.
SYSTEM = Actor("system", "admin", (), "system", "system")
MAX_BYTES = 5 * 1024 * 1024
CODE_HEADERS = ("统计用区划代码", "区划代码", "代码", "code")
NAME_HEADERS = ("名称", "name")
CODE_RE = re.compile(r"[0-9]{12}")
BATCH = 400
# The levels an area found by name may have for a row of each level (a town typed in by hand as a
# street is still that town; a grid or 片 of the same name is not).
KINDS = {"county": ("county", "district", "city"), "town": ("town", "street"), "street": ("town", "street"),
         "village": ("village", "community"), "community": ("village", "community")}


class ImportRefused(Exception):
    """A write the engine refused while applying an import: everything of the import is undone."""


@dataclass
class Row:
    row: int              # the line in the file (the header is 1)
    code: str
    official: str
    name: str             # the short name
    level: str
    parent_code: str | None
    code_column: str = "统计用区划代码"   # the headers as the file writes them, for its problems
    name_column: str = "名称"


@dataclass
class Outcome:
    """What an import found and did (or, on a dry run, would do)."""

    problems: list[Problem] = field(default_factory=list)
    created: list[str] = field(default_factory=list)      # names, as shown
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    applied: bool = False
    levels: Counter[str] = field(default_factory=Counter)  # the file's areas by level

    @property
    def ok(self) -> bool:
        return not self.problems


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (what Excel in Chinese saves a CSV as)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def short_name(official: str) -> str:
    """The name people use: 杜岙村村委会 → 杜岙村, 秋实社区居委会 → 秋实社区; a 村委会 of a name
    without 村 keeps 村 (大路村委会 → 大路村); any other name (凤岙居委会, 章水镇) as it is."""
    for suffix, keep in (("村民委员会", "村"), ("村委会", "村"), ("社区居民委员会", "社区"), ("社区居委会", "社区")):
        if official.endswith(suffix) and len(official) > len(suffix):
            base = official[: -len(suffix)]
            return base if base.endswith(keep) else base + keep
    return official


def level_of(code: str, official: str) -> str:
    """The level from the name (街道, 镇/乡, 居委会/社区, 村委会/村), else from the code: towns
    001–099 are streets (街道), villages 001–199 are communities (居委会), by the code rules."""
    if code[6:] == "000000":
        return "county"
    if code[9:] == "000":
        if official.endswith("街道") or official.endswith("街道办事处"):
            return "street"
        if official.endswith("镇") or official.endswith("乡"):
            return "town"
        return "street" if code[6] == "0" else "town"
    if official.endswith(("居委会", "居民委员会", "社区")):
        return "community"
    if official.endswith(("村委会", "村民委员会", "村")):
        return "village"
    return "community" if int(code[9:]) < 200 else "village"


def valid_name(name: str) -> bool:
    """Whether the engine takes ``name`` as an area's name (the schema's rule: length, control
    characters): a name it would refuse is a problem of the file, found before anything is written."""
    try:
        check_value("name", COLLECTIONS["areas"].by_name["name"], name)
    except MutationRejected:
        return False
    return True


def parent_code(code: str) -> str | None:
    if code[6:] == "000000":
        return None
    if code[9:] == "000":
        return code[:6] + "000000"
    return code[:9] + "000"


def read_rows(data: bytes) -> tuple[list[Row], list[Problem]]:
    """The file's rows, checked on their own (codes, names, duplicates, one county)."""
    problems: list[Problem] = []
    if len(data) > MAX_BYTES:
        return [], [Problem(0, "", "", f"文件过大（超过 {MAX_BYTES // 1024 // 1024} MB），请检查是否选错了文件。")]
    try:
        text = decode(data)
    except UnicodeDecodeError:
        return [], [Problem(0, "", "", "无法识别文件编码：请保存为 UTF-8 或 GB18030（GBK）编码的 CSV 文件。")]
    lines = list(csv.reader(io.StringIO(text, newline="")))
    first = next((i for i, r in enumerate(lines) if any(c.strip() for c in r)), None)
    if first is None:
        return [], [Problem(0, "", "", "文件是空的。")]
    header = [c.strip().lstrip("\ufeff") for c in lines[first]]
    lowered = [h.lower() for h in header]
    c_code = next((lowered.index(h) for h in CODE_HEADERS if h in lowered), None)
    c_name = next((lowered.index(h) for h in NAME_HEADERS if h in lowered), None)
    if c_code is None or c_name is None:
        missing = "、".join(n for n, c in (("统计用区划代码", c_code), ("名称", c_name)) if c is None)
        return [], [Problem(first + 1, "", ",".join(header)[:200],
                            f"表头缺少“{missing}”列（可用：统计用区划代码/区划代码/代码/code，名称/name）。")]
    h_code, h_name = header[c_code], header[c_name]
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for i, cells in enumerate(lines[first + 1:], first + 2):
        if not any(c.strip() for c in cells):
            continue
        code = cells[c_code].strip() if c_code < len(cells) else ""
        official = cells[c_name].strip() if c_name < len(cells) else ""
        bad = False
        if not CODE_RE.fullmatch(code):
            problems.append(Problem(i, h_code, code[:60], "区划代码应为12位数字。"))
            bad = True
        elif code[6:9] == "000" and code[9:] != "000":
            problems.append(Problem(i, h_code, code, "区划代码有误：乡镇（街道）段为000时，村（社区）段也应为000。"))
            bad = True
        elif code[4:6] == "00":
            problems.append(Problem(i, h_code, code, "不是区县的区划代码（第5–6位为00，是地市级代码）。"))
            bad = True
        if not official:
            problems.append(Problem(i, h_name, "", "名称不能为空。"))
            bad = True
        elif not valid_name(official):
            problems.append(Problem(i, h_name, official[:60], "名称过长（最多100字）或含有控制字符。"))
            bad = True
        if bad:
            continue
        if code in seen:
            problems.append(Problem(i, h_code, code, f"区划代码重复（与第 {seen[code]} 行相同）。"))
            continue
        seen[code] = i
        rows.append(Row(i, code, official, short_name(official), level_of(code, official), parent_code(code),
                        h_code, h_name))
    # One county per file: its own row's, else the first row's.
    counties = [r for r in rows if r.level == "county"]
    county = counties[0].code[:6] if counties else (rows[0].code[:6] if rows else "")
    kept = []
    for r in rows:
        if r.code[:6] != county:
            problems.append(Problem(r.row, h_code, r.code, f"不属于本文件的区县（{county}），一个文件只能导入一个区县。"))
        else:
            kept.append(r)
    if not kept and not problems:
        problems.append(Problem(0, "", "", "文件中没有区划数据。"))
    return kept, problems


@dataclass
class _Existing:
    id: str
    version: int
    data: dict[str, Any]


def plan(store: Store, rows: list[Row], allowed: set[str] | None = None,
         problems: list[Problem] | None = None) -> tuple[list[dict[str, Any]], Outcome]:
    """The mutations that bring the database to the file: creates and updates, parents first.

    ``allowed``: the areas the importing admin administers (None: everything); an area outside
    them may be neither created under nor changed.
    """
    out = Outcome(problems=list(problems or []))
    tree = area_tree(store)
    records = store.get_many("areas", list(tree.parent))
    by_code: dict[str, _Existing] = {}
    for aid, rec in records.items():
        code = rec.data.get("code")
        if isinstance(code, str) and CODE_RE.fullmatch(code):
            by_code.setdefault(code, _Existing(aid, rec.version, rec.data))
    in_file = {r.code: r for r in rows}
    ids: dict[str, str] = {}          # code -> area id (existing or new)
    claimed: set[str] = set()
    mutations: list[dict[str, Any]] = []
    # Parents before children: the county, then towns, then villages.
    for r in sorted(rows, key=lambda r: (r.code[9:] != "000", r.code[6:] != "000000", r.code)):
        out.levels[r.level] += 1
        parent_id: str | None = None
        if r.parent_code is not None:
            if r.parent_code in ids:
                parent_id = ids[r.parent_code]
            elif r.parent_code in by_code and r.parent_code not in in_file:
                parent_id = by_code[r.parent_code].id
            else:
                where = "有问题（见该行）" if r.parent_code in in_file else "不在文件中，也不在数据库中"
                out.problems.append(Problem(r.row, r.code_column, r.code, f"上级区划 {r.parent_code} {where}。"))
                continue
        existing = by_code.get(r.code)
        if existing is None:
            found = _by_name(tree, records, parent_id, r, claimed, in_file)
            if len(found) > 1:
                out.problems.append(Problem(r.row, r.name_column, r.official,
                                            f"数据库中同一上级下有 {len(found)} 个同名且无区划代码的区域，无法确定对应哪一个。"))
                continue
            existing = found[0] if found else None
        # (the county may hang under a city or province of the database: the list does not say)
        if existing is not None and r.parent_code is not None and tree.parent.get(existing.id) != parent_id:
            out.problems.append(Problem(r.row, r.code_column, r.code,
                                        "数据库中该代码的区域位于另一个上级区域之下，区域的上级不能更改。"))
            continue
        if existing is None:
            if not _may(allowed, parent_id):
                out.problems.append(Problem(r.row, r.code_column, r.code, "超出您管辖的区域，不能在其下新增区域。"))
                continue
            aid = uuid7()
            fields: dict[str, Any] = {"level": r.level, "name": r.name, "official_name": r.official, "code": r.code,
                                      "sort": int(r.code[6:9] if r.code[9:] == "000" else r.code[9:])}
            if parent_id:
                fields["parent_id"] = parent_id
            mutations.append({"id": aid, "base": 0, "fields": fields})
            out.created.append(r.name)
        else:
            aid = existing.id
            claimed.add(aid)
            want = {"name": r.name, "official_name": r.official, "code": r.code}
            changed = {k: v for k, v in want.items() if existing.data.get(k) != v}
            if changed:
                if not _may(allowed, aid):
                    out.problems.append(Problem(r.row, r.name_column, r.official, "超出您管辖的区域，不能修改该区域。"))
                    continue
                mutations.append({"id": aid, "base": existing.version, "fields": changed})
                old = existing.data.get("name")
                out.updated.append(r.name if old == r.name else f"{old} → {r.name}")
            else:
                out.unchanged += 1
        ids[r.code] = aid
    return mutations, out


def _by_name(tree: Any, records: dict[str, Any], parent_id: str | None, r: Row, claimed: set[str],
             in_file: dict[str, Row]) -> list[_Existing]:
    """The areas under the same parent, of the same kind, named as the row (short or official
    name), whose code is none of the file's (none at all, or one made up by hand)."""
    # the county: wherever it is (a root, or under a city or province a city's database holds)
    siblings = tree.children.get(parent_id, []) if r.parent_code else list(tree.parent)
    found = []
    for aid in siblings:
        d = records[aid].data
        if aid in claimed or d.get("code") in in_file or tree.level.get(aid) not in KINDS[r.level]:
            continue
        if d.get("name") in (r.name, r.official) or d.get("official_name") == r.official:
            found.append(_Existing(aid, records[aid].version, d))
    return found


def _may(allowed: set[str] | None, area_id: str | None) -> bool:
    return allowed is None or (area_id is not None and area_id in allowed)


def push_all(store: Store, actor: Actor, collection: str, mutations: list[dict[str, Any]]) -> None:
    """Push ``mutations`` through the engine in batches; the caller holds the transaction, so a
    refusal (``ImportRefused``) undoes every batch."""
    at = iso(utcnow())
    for i in range(0, len(mutations), BATCH):
        chunk = [MutationIn(mid=uuid7(), collection=collection, id=m["id"], op="upsert", base=m["base"],
                            fields=m["fields"], at=at) for m in mutations[i:i + BATCH]]
        results = engine.push(store, actor, PushRequest(protocol=1, mutations=chunk)).results
        bad = next((r for r in results if r.status != "applied"), None)
        if bad is not None:
            raise ImportRefused(f"{collection} {bad.id}: {bad.error.message if bad.error else bad.status}")


def import_areas(store: Store, data: bytes, actor: Actor = SYSTEM, dry_run: bool = False,
                 allowed: set[str] | None = None) -> Outcome:
    """Read, check and (unless ``dry_run`` or anything is wrong) apply a code list in one
    transaction: all of it or nothing. ``store`` is the writer."""
    rows, problems = read_rows(data)
    with store.transaction():
        mutations, out = plan(store, rows, allowed, problems)
        out.problems.sort(key=lambda p: p.row)
        if out.problems or dry_run or not mutations:
            return out
        push_all(store, actor, "areas", mutations)
        out.applied = True
    return out
