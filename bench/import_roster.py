"""The household roster import at a town's scale (issue 14: 10,000 households, dry run < 20 s, apply < 60 s).

    .venv/bin/python -m bench.import_roster [--households 10000] [--db postgresql://…] [--profile]

Writes a realistic roster into a temporary directory — ``--households`` households of one to six
people (about 2.5 on average, as the rural census gives), each row with a valid 18-digit ID number
(GB 11643 check character), a phone for most adults, tags, residence — in the template's columns,
spread over 60 grids of 20 villages of one town. Then, against a fresh database (SQLite in the
temporary directory, or the PostgreSQL database ``--db`` names, which must be empty) with that area
tree and a town staff account, it times:

1. the dry run (``server.imports.households.check``): reading the .xlsx, every check, the plan;
2. the apply (``apply``): the same, then every household and resident pushed through the engine as
   the staff user, in one transaction;
3. the re-import of the same file (a dry run that must find nothing to change).

For each it prints the wall time, this process's CPU time (the steadier figure on a shared
machine), on PostgreSQL the CPU time of the server's backend (from ``/proc``), and for the apply
records per second. With ``--profile``, the cProfile top 15 of the
apply by cumulative time. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from typing import Any

from sync import accounts, engine
from sync.catalogue import install_catalogue
from sync.protocol import MutationIn, PushRequest
from sync.store import is_postgres, open_store

from server.imports import households as roster
from server.staff.core import console_actor

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN_M = ("建国", "建军", "志明", "海波", "国强", "伟", "军", "斌", "杰", "磊", "阿公", "永康", "德明", "小龙")
GIVEN_F = ("秀英", "桂英", "玉兰", "丽", "芳", "敏", "静", "海燕", "美华", "阿婆", "素珍", "雅琴", "小红")
VILLAGES = 20
GRIDS_PER_VILLAGE = 3
CN = "一二三"


def id_number(rng: random.Random, year: int, male: bool, used: set[str]) -> str:
    while True:
        born = date(year, 1, 1) + timedelta(days=rng.randint(0, 364))
        seq = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
        body = f"330203{born:%Y%m%d}{seq:03d}"
        number = body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS)) % 11]
        if number not in used:
            used.add(number)
            return number


def mobile(rng: random.Random) -> str:
    return rng.choice(("138", "139", "137", "158", "159", "188", "189")) + f"{rng.randint(0, 99_999_999):08d}"


def write_roster(path: str, households: int, seed: int = 20261123) -> int:
    """The roster file, in the template's columns; returns the number of rows (residents)."""
    import xlsxwriter

    rng = random.Random(seed)
    used: set[str] = set()
    wb = xlsxwriter.Workbook(path, {"constant_memory": True})
    ws = wb.add_worksheet(roster.SHEET)
    ws.write_row(0, 0, [roster.HEADER_OF[k] for k in roster.TEMPLATE_KEYS])
    row = 1
    for n in range(households):
        v, g = n % VILLAGES, (n // VILLAGES) % GRIDS_PER_VILLAGE
        grid = f"章水镇/第{v + 1}村/第{CN[g]}网格"
        surname = SURNAMES[rng.randrange(len(SURNAMES))]
        address = f"第{v + 1}村{rng.choice('上下前后东西')}岙{n // VILLAGES + 1}号"
        head_year = rng.randint(1935, 1985)
        head = surname + rng.choice(GIVEN_M)
        size = rng.choices((1, 2, 3, 4, 5, 6), weights=(22, 36, 20, 13, 7, 2))[0]
        people: list[tuple[str, str, bool, int]] = [(head, "户主", True, head_year)]
        if size >= 2:
            people.append((rng.choice(SURNAMES) + rng.choice(GIVEN_F), "配偶", False, head_year + rng.randint(-3, 3)))
        for k in range(size - len(people)):
            male = rng.random() < 0.5
            people.append((surname + rng.choice(GIVEN_M if male else GIVEN_F), "子" if male else "女", male,
                           min(head_year + rng.randint(20, 32), 2024)))
        htags = "、".join(t for t, p in (("独居老人", 0.08 if size == 1 else 0), ("低保户", 0.05), ("山区农户", 0.4),
                                         ("党员中心户", 0.03)) if rng.random() < p)
        for name, relation, male, year in people:
            age = 2026 - year
            away = 18 <= age <= 50 and rng.random() < 0.3
            tags = "、".join(t for t, p in (("党员", 0.08), ("慢性病", 0.2 if age >= 60 else 0.02),
                                            ("高龄", 1.0 if age >= 80 else 0), ("外出务工", 1.0 if away else 0))
                            if rng.random() < p)
            ws.write_row(row, 0, [str(n + 1), grid, address, head, name, relation, "男" if male else "女",
                                  id_number(rng, year, male, used), year, mobile(rng) if age >= 16 and rng.random() < 0.7 else "",
                                  "外出" if away else "在家居住", tags, "", htags if relation == "户主" else "", ""])
            row += 1
    wb.close()
    return row - 1


def build_town(db: str) -> Any:
    """A fresh database: 海曙区 → 章水镇 → 20 villages → 60 grids, pushed by an admin; a town staff."""
    store = open_store(db)
    store.migrate()
    install_catalogue(store)
    hashed = accounts.hash_password("bench-password")
    accounts.create_user(store, "admin", "bench-password", "admin", [], password_hash=hashed)
    admin = store.user_by_username("admin")
    assert admin is not None
    actor = console_actor(admin.id, "admin", [])
    at = "2026-11-01T09:00:00+08:00"
    county, town = engine.uuid7(), engine.uuid7()
    muts = [MutationIn(mid=engine.uuid7(), collection="areas", id=county, op="upsert", base=0, at=at,
                       fields={"level": "county", "name": "海曙区", "code": "330203"}),
            MutationIn(mid=engine.uuid7(), collection="areas", id=town, op="upsert", base=0, at=at,
                       fields={"parent_id": county, "level": "town", "name": "章水镇", "code": "330203108"})]
    for v in range(VILLAGES):
        vid = engine.uuid7()
        muts.append(MutationIn(mid=engine.uuid7(), collection="areas", id=vid, op="upsert", base=0, at=at,
                               fields={"parent_id": town, "level": "village", "name": f"第{v + 1}村"}))
        for g in range(GRIDS_PER_VILLAGE):
            muts.append(MutationIn(mid=engine.uuid7(), collection="areas", id=engine.uuid7(), op="upsert", base=0,
                                   at=at, fields={"parent_id": vid, "level": "grid", "name": f"第{CN[g]}网格"}))
    results = engine.push(store, actor, PushRequest(protocol=1, mutations=muts)).results
    assert all(r.status == "applied" for r in results), results
    accounts.create_user(store, "staff1", "bench-password", "staff", [town], password_hash=hashed)
    staff = store.user_by_username("staff1")
    assert staff is not None
    return store, console_actor(staff.id, "staff", [town])


def server_cpu(store: Any) -> float | None:
    """CPU seconds the PostgreSQL backend serving ``store`` has used (``/proc``: the server is on
    this machine), or None on SQLite (it runs inside this process, in its CPU time)."""
    if not is_postgres(store.path):
        return None
    pid = store.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def timed(what: str, fn: Any, store: Any = None) -> tuple[Any, float, float]:
    s0 = server_cpu(store) if store is not None else None
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    s1 = server_cpu(store) if store is not None else None
    server = f"  {s1 - s0:7.2f} s CPU of the PostgreSQL backend" if s0 is not None and s1 is not None else ""
    print(f"{what:<28} {wall:7.2f} s wall  {cpu:7.2f} s CPU{server}", flush=True)
    return out, wall, cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--households", type=int, default=10_000)
    p.add_argument("--db", default="", help="an empty PostgreSQL database (default: SQLite in a temp dir)")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gridbook-roster-") as tmp:
        path = os.path.join(tmp, "roster.xlsx")
        rows, _, _ = timed("write the roster (.xlsx)", lambda: write_roster(path, args.households))
        print(f"  {args.households} households, {rows} residents, {os.path.getsize(path) / 1e6:.1f} MB")
        store, staff = build_town(args.db or os.path.join(tmp, "bench.db"))
        print(f"  database: {'PostgreSQL' if args.db else 'SQLite'}; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
        dry, _, _ = timed("dry run (check)", lambda: roster.check(store, staff, path), store)
        assert dry.ok, dry.problems[:5]
        assert (dry.households_new, dry.residents_new) == (args.households, rows), dry.counts()
        prof = cProfile.Profile() if args.profile else None
        if prof:
            prof.enable()
        done, wall, cpu = timed("apply (one transaction)", lambda: roster.apply(store, staff, path), store)
        if prof:
            prof.disable()
        n = len(done.mutations)
        print(f"  {n} records pushed through the engine: {n / wall:,.0f}/s wall, {n / cpu:,.0f}/s CPU")
        assert store.live_count("households") == args.households and store.live_count("residents") == rows
        again, _, _ = timed("re-import (dry run)", lambda: roster.check(store, staff, path), store)
        assert again.mutations == [] and again.households_unchanged == args.households
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(15)
            print(out.getvalue())
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
