"""Docs are tested (STYLE.md habit 10): the reference must name everything the code has.

``docs/protocol.md`` must document every collection and field of ``sync.schema.COLLECTIONS`` (in
the collection's own table, with its type, flags and labels), every error code of
``sync.errors.CODES`` with its HTTP status, every route of ``server.api.ROUTES``, the
``engine.PERMISSIONS`` table and every transition of ``sync.workflow.TRANSITIONS``. Every field
(subfields included) has a Chinese label (``help_zh``) in the schema, and the docs show exactly
that label. ``docs/operations.md`` must document every setting of ``server.settings.SETTINGS``,
every command of ``server.cli.build_parser()`` and only ``make`` targets the Makefile has. Each
failure says what is missing and where to add it.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.api import ROUTES
from server.cli import build_parser
from server.settings import SETTINGS
from sync import workflow
from sync.engine import PERMISSIONS
from sync.errors import CODES, MUTATION_CODES
from sync.schema import COLLECTIONS, PUSHABLE, ROLES, SERVER_FIELDS, Collection, Field

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PROTOCOL = DOCS / "protocol.md"
OPERATIONS = DOCS / "operations.md"


# -- a small Markdown reader: headings, sections and pipe tables -------------------------------

@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]

    def column(self, *names: str) -> int:
        """Index of the first column whose header starts with one of ``names`` (case-insensitive)."""
        for i, h in enumerate(self.header):
            if any(h.lower().startswith(n.lower()) for n in names):
                return i
        raise AssertionError(f"table with columns {self.header} has no column {' / '.join(names)}")


@dataclass
class Section:
    level: int
    title: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def tables(self) -> list[Table]:
        out: list[Table] = []
        block: list[str] = []
        for line in [*self.lines, ""]:
            if line.lstrip().startswith("|"):
                block.append(line.strip())
                continue
            if len(block) >= 2 and re.fullmatch(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?", block[1]):
                rows = [split_row(b) for b in block[2:]]
                out.append(Table(split_row(block[0]), rows))
            block = []
        return out


def split_row(line: str) -> list[str]:
    """Cells of a pipe-table row; ``\\|`` inside a cell and pipes inside backticks do not split."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells, cur, in_code = [], "", False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    cells.append(cur.strip())
    return cells


def sections(text: str) -> list[Section]:
    out = [Section(0, "")]
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            out.append(Section(len(m.group(1)), m.group(2).strip()))
        else:
            out[-1].lines.append(line)
    return out


def section_with_subsections(secs: list[Section], index: int) -> Section:
    """A section's text including its subsections (until the next heading of the same or higher level)."""
    head = secs[index]
    merged = Section(head.level, head.title, list(head.lines))
    for s in secs[index + 1:]:
        if s.level <= head.level:
            break
        merged.lines.append("#" * s.level + " " + s.title)
        merged.lines.extend(s.lines)
    return merged


def ticks(name: str) -> str:
    return f"`{name}`"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\\|", "|")).strip()


def first_cell_names(table: Table) -> list[str]:
    """The backticked name at the start of each row's first cell."""
    names = []
    for row in table.rows:
        m = re.match(r"^`([^`]+)`", row[0]) if row else None
        if m:
            names.append(m.group(1))
    return names


@pytest.fixture(scope="module")
def protocol() -> str:
    assert PROTOCOL.exists(), "docs/protocol.md is missing"
    return PROTOCOL.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def operations() -> str:
    assert OPERATIONS.exists(), "docs/operations.md is missing"
    return OPERATIONS.read_text(encoding="utf-8")


# -- the data model ------------------------------------------------------------------------------

def collection_section(protocol: str, name: str) -> Section:
    secs = sections(protocol)
    for i, s in enumerate(secs):
        if re.match(rf"^(Collection\s+)?`{re.escape(name)}`", s.title):
            return section_with_subsections(secs, i)
    raise AssertionError(f"docs/protocol.md has no section for collection {name!r}: add a heading like "
                         f"'### `{name}` — …' with its field table under 'Data model'")


def field_table(sec: Section, coll: str) -> Table:
    for t in sec.tables():
        if t.header and t.header[0].lower().startswith("field"):
            return t
    raise AssertionError(f"the section of collection {coll!r} in docs/protocol.md has no field table "
                         "(a table whose first column is 'Field')")


def field_rows(table: Table) -> dict[str, list[str]]:
    out = {}
    for row in table.rows:
        m = re.match(r"^`([^`.]+)`", row[0]) if row else None
        if m:
            out[m.group(1)] = row
    return out


@pytest.mark.parametrize("name", sorted(COLLECTIONS))
def test_every_field_of_every_collection_is_documented(protocol: str, name: str) -> None:
    coll: Collection = COLLECTIONS[name]
    sec = collection_section(protocol, name)
    table = field_table(sec, name)
    rows = field_rows(table)
    missing = [f.name for f in coll.fields if f.name not in rows]
    assert not missing, (f"docs/protocol.md, collection {name!r}: fields missing from its field table: "
                         f"{', '.join(missing)}")
    unknown = [n for n in rows if n not in coll.by_name]
    assert not unknown, (f"docs/protocol.md, collection {name!r}: the field table documents fields the schema "
                         f"does not have: {', '.join(unknown)}")


@pytest.mark.parametrize("name", sorted(COLLECTIONS))
def test_field_tables_match_the_schema(protocol: str, name: str) -> None:
    """Type, required, writers, flags, enum choices and help texts of each field, row by row."""
    coll = COLLECTIONS[name]
    table = field_table(collection_section(protocol, name), name)
    rows = field_rows(table)
    c_type = table.column("type")
    c_req = table.column("required", "req")
    c_who = table.column("written by", "who")
    c_zh = table.column("中文", "label")
    problems: list[str] = []
    for f in coll.fields:
        row = rows.get(f.name)
        if row is None:
            continue  # reported by the test above
        whole = norm(" ".join(row))
        if ticks(f.type) not in row[c_type]:
            problems.append(f"{f.name}: type should say `{f.type}` (it says {row[c_type]!r})")
        says_required = row[c_req].lower().startswith("yes")
        if says_required != f.required:
            problems.append(f"{f.name}: required should be {'yes' if f.required else '—'} (it says {row[c_req]!r})")
        says_server = "server" in row[c_who].lower()
        if says_server != f.computed:
            problems.append(f"{f.name}: 'written by' should {'' if f.computed else 'not '}say server "
                            f"(computed={f.computed}; it says {row[c_who]!r})")
        for role in f.writers or ():
            if ticks(role) not in row[c_who]:
                problems.append(f"{f.name}: 'written by' should name `{role}` (only {', '.join(f.writers or ())} "
                                f"may set it)")
        for flag, on in (("create-only", f.create_only), ("set-valued", f.set_valued), ("masked", bool(f.masked_for)),
                         ("blob reference", f.blob_ref)):
            if (flag in whole.lower()) != on:
                problems.append(f"{f.name}: the row should {'' if on else 'not '}say {flag!r}")
        for role in f.masked_for:
            if ticks(role) not in whole:
                problems.append(f"{f.name}: the row should say it is masked for `{role}`")
        for choice in f.choices:
            if ticks(choice) not in whole:
                problems.append(f"{f.name}: enum value `{choice}` is not listed")
        for sub in f.subfields:
            if ticks(sub.name) not in whole:
                problems.append(f"{f.name}: subfield `{sub.name}` is not listed")
        if f.help and norm(f.help) not in whole:
            problems.append(f"{f.name}: the help text {f.help!r} should appear in the row")
        if row[c_zh].strip() != f.help_zh:
            problems.append(f"{f.name}: the 中文 cell should be exactly the schema's help_zh {f.help_zh!r} "
                            f"(it says {row[c_zh]!r}); change the one that is wrong")
    assert not problems, f"docs/protocol.md, collection {name!r}:\n  " + "\n  ".join(problems)


def test_every_field_has_a_chinese_label() -> None:
    """The apps label fields with ``help_zh``: none may be missing, subfields included."""
    missing = [f"{name}.{f.name}" + (f".{sub.name}" if sub is not f else "")
               for name, coll in COLLECTIONS.items() for f in coll.fields for sub in (f, *f.subfields)
               if not sub.help_zh.strip()]
    assert not missing, ("sync/schema.py: give these fields a Chinese label (help_zh=..., the label the apps and "
                         f"docs/protocol.md use): {', '.join(missing)}")


def test_subfield_labels_are_documented(protocol: str) -> None:
    """Subfields are listed as `name` (中文标签) in their field's row or in §11.3."""
    text = norm(protocol)
    missing = sorted({f"`{sub.name}` ({sub.help_zh}" for coll in COLLECTIONS.values() for f in coll.fields
                      for sub in f.subfields if f"`{sub.name}` ({sub.help_zh}" not in text})
    assert not missing, ("docs/protocol.md should list each subfield with its Chinese label, as "
                         f"`name` (标签 …): missing {', '.join(missing)}")


@pytest.mark.parametrize("name", sorted(COLLECTIONS))
def test_collection_flags_are_documented(protocol: str, name: str) -> None:
    coll = COLLECTIONS[name]
    found = collection_section(protocol, name)
    sec = norm(found.title + "\n" + found.text)
    if coll.help:
        assert norm(coll.help) in sec, f"docs/protocol.md, collection {name!r}: include its help text {coll.help!r}"
    if coll.help_zh:
        assert coll.help_zh in sec, f"docs/protocol.md, collection {name!r}: include its Chinese name {coll.help_zh!r}"
    assert ("append-only" in sec.lower()) == coll.append_only, (
        f"docs/protocol.md, collection {name!r}: its section should {'' if coll.append_only else 'not '}"
        f"say 'append-only'")
    if name not in PUSHABLE:
        assert "read-only" in sec.lower(), (f"docs/protocol.md, collection {name!r} cannot be pushed: "
                                            "its section should say it is read-only over sync")


def test_server_fields_are_documented(protocol: str) -> None:
    secs = sections(protocol)
    for i, s in enumerate(secs):
        if "server fields" in s.title.lower():
            names = {n for t in section_with_subsections(secs, i).tables() for n in first_cell_names(t)}
            missing = [n for n in SERVER_FIELDS if n not in names]
            assert not missing, f"docs/protocol.md, '{s.title}': server fields missing from its table: {missing}"
            return
    raise AssertionError("docs/protocol.md needs a section titled '… server fields …' with a table of "
                         f"{', '.join(SERVER_FIELDS)}")


def test_permissions_table_matches_the_engine(protocol: str) -> None:
    """The who-may-create/update/delete table is engine.PERMISSIONS, cell by cell."""
    secs = sections(protocol)
    table = None
    for s in secs:
        for t in s.tables():
            if [h.lower() for h in t.header[:4]] == ["collection", "create", "update", "delete"]:
                table = t
    assert table is not None, ("docs/protocol.md needs the permissions table with the columns "
                               "| Collection | Create | Update | Delete | (from sync/engine.py PERMISSIONS)")
    rows = {m.group(1): r for r in table.rows if (m := re.match(r"^`([^`]+)`", r[0]))}
    problems = []
    for coll, ops in PERMISSIONS.items():
        row = rows.get(coll)
        if row is None:
            problems.append(f"{coll}: no row")
            continue
        for i, op in enumerate(("create", "update", "delete"), start=1):
            said = set(re.findall(r"`([a-z_]+)`", row[i])) & set(ROLES)
            if said != set(ops.get(op, ())):
                problems.append(f"{coll} {op}: the code allows {sorted(ops.get(op, ())) or 'nobody'}, "
                                f"the table says {sorted(said) or 'nobody'}")
    assert not problems, "docs/protocol.md permissions table:\n  " + "\n  ".join(problems)


# -- errors, routes, state machine ---------------------------------------------------------------

def test_every_error_code_is_documented_with_its_status(protocol: str) -> None:
    tables = [t for s in sections(protocol) for t in s.tables()
              if t.header and t.header[0].lower().startswith("code") and any(h.lower().startswith("http")
                                                                              for h in t.header)]
    assert tables, "docs/protocol.md needs the error code table: | Code | HTTP | Where | When |"
    rows = {m.group(1): r for t in tables for r in t.rows if (m := re.match(r"^`([a-z_]+)`", r[0]))}
    problems = []
    for code, (status, _) in CODES.items():
        row = rows.get(code)
        if row is None:
            problems.append(f"`{code}` ({status}) has no row")
            continue
        t = next(t for t in tables if row in t.rows)
        if str(status) not in row[t.column("http")]:
            problems.append(f"`{code}`: the HTTP column should say {status}")
        where = row[t.column("where")].lower()
        if code in MUTATION_CODES and "per mutation" not in where:
            problems.append(f"`{code}` is a per-mutation code: its 'Where' cell should say 'per mutation'")
    unknown = [c for c in rows if c not in CODES]
    assert not unknown, f"docs/protocol.md documents error codes the code does not have: {unknown}"
    assert not problems, "docs/protocol.md error codes:\n  " + "\n  ".join(problems)


def route_signatures() -> list[str]:
    out = []
    for handler in ROUTES:
        for path in handler.paths:
            clean = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)
            for method in sorted(handler.http_methods):
                out.append(f"{method} {clean}")
    return out


def test_every_route_is_documented(protocol: str) -> None:
    missing = [sig for sig in route_signatures() if f"`{sig}" not in protocol]
    assert not missing, ("docs/protocol.md does not document these routes (write them as `METHOD /path`, "
                         f"e.g. in the route table): {missing}")
    assert "/schema/openapi.json" in protocol, "docs/protocol.md should point to the OpenAPI document"


def test_state_machine_table_has_every_transition(protocol: str) -> None:
    tables = [t for s in sections(protocol) for t in s.tables()
              if len(t.header) >= 3 and t.header[0].lower().startswith("from") and t.header[1].lower().startswith("to")]
    assert tables, "docs/protocol.md needs the state machine table: | From | To | Who may | …"
    documented: dict[tuple[str, str], str] = {}
    for t in tables:
        who = t.column("who")
        for r in t.rows:
            a, b = re.match(r"^`([a-z_]+)`", r[0]), re.match(r"^`([a-z_]+)`", r[1])
            if a and b:
                documented[(a.group(1), b.group(1))] = r[who].lower()
    problems = []
    for (frm, to), allowed in workflow.TRANSITIONS.items():
        cell = documented.get((frm, to))
        if cell is None:
            problems.append(f"`{frm}` → `{to}` is missing")
            continue
        for role in ("staff", "admin"):
            if (role in allowed) != (ticks(role) in cell):
                problems.append(f"`{frm}` → `{to}`: the code {'allows' if role in allowed else 'does not allow'} "
                                f"`{role}`")
        if (workflow.ASSIGNEE in allowed) != ("assignee" in cell):
            problems.append(f"`{frm}` → `{to}`: the code {'allows' if workflow.ASSIGNEE in allowed else 'does not allow'}"
                            " the matter's assignee")
    extra = [f"`{a}` → `{b}`" for (a, b) in documented if (a, b) not in workflow.TRANSITIONS]
    if extra:
        problems.append(f"the table has moves the code does not allow: {', '.join(extra)}")
    assert not problems, "docs/protocol.md state machine table:\n  " + "\n  ".join(problems)


def test_every_matter_status_is_documented(protocol: str) -> None:
    missing = [s for s in workflow.STATUSES if ticks(s) not in protocol]
    assert not missing, f"docs/protocol.md does not mention these matter statuses: {missing}"
    for s in workflow.TERMINAL:
        assert ticks(s) in protocol


def test_json_examples_parse(protocol: str) -> None:
    """Every ```json block is real JSON, so a client developer can paste it."""
    bad = []
    for i, block in enumerate(re.findall(r"```json\n(.*?)```", protocol, flags=re.S)):
        try:
            json.loads(block)
        except ValueError as e:
            bad.append(f"block {i + 1} ({block[:60]!r}…): {e}")
    assert not bad, "docs/protocol.md has JSON examples that do not parse:\n  " + "\n  ".join(bad)


# -- operations ---------------------------------------------------------------------------------

def test_every_setting_is_documented(operations: str) -> None:
    tables = [t for s in sections(operations) for t in s.tables()
              if t.header and t.header[0].lower().startswith("setting")]
    assert tables, "docs/operations.md needs the settings table: | Setting | Environment variable | Default | Meaning |"
    rows = {m.group(1): r for t in tables for r in t.rows if (m := re.match(r"^`([a-z0-9_]+)`", r[0]))}
    problems = []
    for name, default, help_text in SETTINGS:
        row = rows.get(name)
        if row is None:
            problems.append(f"`{name}` has no row")
            continue
        whole = " ".join(row)
        if f"GRIDBOOK_{name.upper()}" not in whole:
            problems.append(f"`{name}`: name its environment variable GRIDBOOK_{name.upper()}")
        if isinstance(default, bool):
            if str(default).lower() not in whole.lower():
                problems.append(f"`{name}`: the default is {str(default).lower()}")
        elif isinstance(default, int):
            if str(default) not in whole.replace(",", "").replace("_", ""):
                problems.append(f"`{name}`: the default is {default}")
        elif default and not str(default).startswith("/") and str(default) not in whole:
            problems.append(f"`{name}`: the default is {default!r}")
        if norm(help_text).lower() not in norm(whole).lower():
            problems.append(f"`{name}`: include its help text {help_text!r}")
    unknown = [n for n in rows if n not in {s[0] for s in SETTINGS}]
    if unknown:
        problems.append(f"settings the code does not have: {unknown}")
    assert not problems, "docs/operations.md settings:\n  " + "\n  ".join(problems)


def cli_commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command as 'user add', with its parser."""
    out: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and prefix:
            out.append((prefix, parser))
        for a in subs:
            for name, sp in a.choices.items():
                walk(f"{prefix} {name}".strip(), sp)

    walk("", build_parser())
    return out


def test_every_cli_command_is_documented(operations: str) -> None:
    problems = []
    for cmd, parser in cli_commands():
        if not re.search(rf"gridbook {re.escape(cmd)}(?![\w-])", operations):
            problems.append(f"`gridbook {cmd}` (no example or heading)")
        for action in parser._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help" and not re.search(rf"{re.escape(opt)}(?![\w-])", operations):
                    problems.append(f"`gridbook {cmd}` option {opt}")
    assert not problems, "docs/operations.md does not document:\n  " + "\n  ".join(problems)


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.M))


def test_make_targets_are_documented(operations: str) -> None:
    for target in ("make run", "make test"):
        assert target in operations, f"docs/operations.md should explain `{target}`"
    targets = makefile_targets()
    assert {"run", "test"} <= targets, f"the Makefile's targets were not found: {sorted(targets)}"
    named = set(re.findall(r"(?:`|^)make ([a-z][\w-]*)", operations, flags=re.M))  # `make x` or a shell line
    unknown = sorted(named - targets)
    assert not unknown, (f"docs/operations.md names make targets the Makefile does not have: {unknown} "
                         f"(it has {sorted(targets)})")
