"""The storage interface holds: SQL lives only in ``sync/store.py``, and ``sync.storage.Store``
declares every public method of ``SQLiteStore`` (mypy --strict checks the signatures, see the end
of ``sync/storage.py`` and ``tests/test_typing.py``).

The last tests pin what a few query methods mean where SQLite does the work (local dates, instants
with offsets, text search, scope keys, the audit filters): what another backend must reproduce.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from sync.engine import area_tree
from sync.scope import user_keys
from sync.storage import MatterFilter, Store
from sync.store import SQLiteStore

from .conftest import Town, new_id

ROOT = Path(__file__).resolve().parent.parent
THE_STORE = ROOT / "sync" / "store.py"
# The same store on PostgreSQL: its dialect, its connection, its migrations and backup (issue 13).
THE_STORES = {THE_STORE, ROOT / "sync" / "store_pg.py"}
# Tests and benchmarks build fixtures and measure plans with SQL of their own.
NOT_SCANNED = {"tests", "e2e", "bench", "node_modules", "build", "dist"}
SQL = re.compile("|".join([
    r"\.execute(many|script)?\(", r"\bSELECT\s", r"\bINSERT\s+(OR\s+\w+\s+)?INTO\b", r"\bUPDATE\s+\w+\s+SET\b",
    r"\bDELETE\s+FROM\b", r"\b(CREATE|DROP|ALTER)\s+(TABLE|INDEX|VIEW)\b", r"\bPRAGMA\b", r"\bjson_(extract|each|set)\b",
    r"\bjulianday\(", r"\bimport\s+sqlite3\b", r"\.conn\b", r"\bkeys_meet_sql\b",
]))


def _python_files() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in NOT_SCANNED or any(p.startswith(".") for p in parts) or path in THE_STORES:
            continue
        out.append(path)
    return out


def test_no_sql_outside_the_store() -> None:
    files = _python_files()
    assert any(p.name == "metrics.py" for p in files) and any(p.name == "matters.py" for p in files)
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
             for p in files for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if SQL.search(line)]
    assert not found, ("SQL outside sync/store.py: move it into a named method of SQLiteStore (the section "
                       "'read models and queries'), declare it in sync.storage.Store, and call that:\n"
                       + "\n".join(found))


def _public_methods(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if not n.startswith("_") and callable(v)}


def test_the_interface_declares_every_public_method_of_the_sqlite_store() -> None:
    missing = _public_methods(SQLiteStore) - set(vars(Store))
    assert not missing, f"declare these in sync.storage.Store, typed, with a docstring: {sorted(missing)}"
    store = SQLiteStore(":memory:")
    try:
        absent = [n for n in vars(Store) if not n.startswith("_") and not hasattr(store, n)]
    finally:
        store.close()
    assert not absent, f"SQLiteStore lacks {absent}"


def test_every_method_of_the_interface_says_what_it_returns() -> None:
    members = {n: v for n, v in vars(Store).items() if not n.startswith("_")}
    assert len(members) > 60
    for name, member in members.items():
        doc = inspect.getdoc(member.fget if isinstance(member, property) else member)
        assert doc and doc.strip(), f"Store.{name} has no docstring"
        assert "SELECT" not in doc and "json_" not in doc, f"Store.{name}: say it without SQL"


def test_mypy_checks_that_the_sqlite_store_is_a_store() -> None:
    # tests/test_typing.py runs mypy --strict over sync/; this is the assignment it checks.
    text = (ROOT / "sync" / "storage.py").read_text(encoding="utf-8")
    assert re.search(r"if TYPE_CHECKING:\n    def _sqlite_store_is_a_store\(store: SQLiteStore\) -> Store:\n"
                     r"(.*\n)*?        return store\n", text)


# -- what the query methods mean --------------------------------------------------------------

def test_local_dates_are_china_standard_time(town: Town) -> None:
    s = town.store
    hid = town.household()
    late = town.matter(household=hid, raised_at="2026-10-31T17:00:00+00:00")    # 01:00 on 1 Nov in China
    early = town.matter(household=hid, raised_at="2026-11-01T07:59:00+08:00")
    town.matter(household=hid, raised_at="2026-10-31T15:59:00Z")                  # 23:59 on 31 Oct
    rows = s.dashboard_matters([town.ids["g1"]], "2026-11-01", "2026-11-02", None)
    assert {r.id: r.raised_on for r in rows} == {late: "2026-11-01", early: "2026-11-01"}


def test_visits_compare_as_instants_whatever_their_offsets(town: Town) -> None:
    s = town.store
    a, b, c = town.household(), town.household(), town.household()
    for hid, at in ((a, "2026-11-02T06:00:00+08:00"),   # 2026-11-01T22:00Z: recent
                    (b, "2026-11-01T23:00:00-03:00"),   # 2026-11-02T02:00Z: recent, string sorts before a's
                    (c, "2026-11-01T05:00:00+08:00")):  # 2026-10-31T21:00Z: in the period, not recent
        r = town.push1("w1", town.mut("visits", new_id(), {"household_id": hid, "visited_at": at}))
        assert r.status == "applied", r
    got = s.visited_households("2026-10-31T16:00:00+00:00", "2026-11-02T16:00:00+00:00",
                               "2026-11-01T16:00:00+00:00")
    assert got == {a: True, b: True, c: False}
    assert s.visited_households("2026-11-02T03:00:00+00:00", "2026-11-03T00:00:00+00:00",
                                "2026-11-02T03:00:00+00:00") == {}


def test_text_search_takes_wildcards_literally_and_ascii_without_case(town: Town) -> None:
    s = town.store
    under = town.household(head_name="Wang_A")
    town.household(head_name="WangXA")
    town.household(head_name="Wang%A")
    grids = [town.ids["g1"]]
    assert [hid for hid, _ in s.household_search(grids, "wang_a", "", 50)[0]] == [under]
    assert s.household_search(grids, "_", "", 50)[1] == 1
    assert s.household_search(grids, "", "", 1)[1] == 3
    keys = user_keys(town.actors["w1"], area_tree(s))
    town.matter(household=under, title="Roof_leak")
    town.matter(household=under, title="RoofXleak")
    rows, total = s.matters_page(grids, keys, MatterFilter(text="roof_LEAK"), "raised", 10)
    assert total == 1 and rows[0].data["title"] == "Roof_leak" and rows[0].household["head_name"] == "Wang_A"


def test_scope_is_the_callers_keys(town: Town) -> None:
    s = town.store
    hid = town.household()
    mid = town.matter(household=hid)
    tree = area_tree(s)
    mine, other = user_keys(town.actors["w1"], tree), user_keys(town.actors["w3"], tree)
    grids = [town.ids["g1"]]
    assert [r.id for r in s.matters_page(grids, mine, MatterFilter(), "raised", None)[0]] == [mid]
    assert s.matters_page(grids, other, MatterFilter(), "raised", None) == ([], 0)
    assert [i for i, _ in s.household_matters(hid, mine)] == [mid]
    assert s.household_matters(hid, other) == []
    assert [r.id for r in s.dashboard_matters(grids, "2000-01-01", "2100-01-01", mine)] == [mid]
    assert s.dashboard_matters(grids, "2000-01-01", "2100-01-01", other) == []


def test_audit_entries_filter_and_come_newest_first(town: Town) -> None:
    s = town.store
    w1, w3 = town.actors["w1"].user_id, town.actors["w3"].user_id
    with s.transaction():
        s.audit(w1, "sensitive.read", "matters", "m1", {"via": "pull"})
        s.audit(w3, "sensitive.read", "matters", "m2")
        s.audit(w1, "staff.export", None, None)
        s.audit(None, "Sensitive_x", None, None)
    reads = s.audit_entries(action="sensitive.read")
    assert [(e.record_id, e.username) for e in reads] == [("m2", "worker3"), ("m1", "worker1")]
    assert reads[1].details == '{"via":"pull"}'
    assert [e.record_id for e in s.audit_entries(action="sensitive.read", record_id="m1")] == ["m1"]
    # as LIKE did: ASCII letters without case, '_' any one character
    assert [e.action for e in s.audit_entries(action_prefix="SENSITIVE_")] == ["Sensitive_x", "sensitive.read",
                                                                                "sensitive.read"]
    assert [e.action for e in s.audit_entries(action_prefix="sensitive.")] == ["sensitive.read", "sensitive.read"]
    assert [e.action for e in s.audit_entries(user_ids=[w1], limit=1)] == ["staff.export"]
    assert s.audit_entries(user_ids=[]) == []
    assert {"Sensitive_x", "sensitive.read", "staff.export"} <= set(s.audit_actions())
