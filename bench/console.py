"""The staff console at county scale (issue 14): the figures of its benchmark table, measured against
a real server process on 海曙区 (``bench/county.py``), with the load reported.

    python -m bench.console                  # the full county (built first when missing: hours)
    python -m bench.console --scale 0.1      # a tenth of it (quick)
    python -m bench.console --no-docs        # do not write the section of docs/benchmarks.md

Every figure is the time of a whole HTTP request, read to its last byte, by a client on the same
machine (so the client's own work is in the load, as it would be on a county's small server):

- the dashboard (``/staff/``, its default period: this year) for the whole county as county staff
  and for one town as that town's staff, p95 of ``--runs`` requests each;
- the matters list (``/staff/matters``) as county staff under every filter of ``FILTERS`` × every
  sort × the first, a middle and the last page, p95 over all of them (and the slowest named);
- household search by name (``/staff/households?q=``) for names that exist, p95;
- 三张清单 for a town and a month (``/staff/reports/lists``), each list, p95;
- the .xlsx export of every matter of the county (三张清单 of the whole period: 100,000 matters at
  scale 1), its time and the server's memory growth (RSS of the server process and its children,
  sampled every 20 ms, peak minus the RSS before);
- a grid worker's first-sync pull pages, p95, on the county and on the demo town (``server/demo.py``),
  and their ratio.

The load average and the server's CPU seconds (from ``/proc``) are recorded for each figure. The
county database is copied to a scratch file (the run signs in, registers devices and audits) and
migrated there before the server starts, so a new index is built once, timed, outside the figures.
Results: ``bench/results/console[-s<scale>].json`` and ``.md``; with the full county, the section
"County console (issue 14)" at the end of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

from sync.store import open_store

from . import county
from .ourclient import Phone
from .procs import ROOT, Server, env_info

DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## County console (issue 14)"
TARGETS = {"dashboard_county": 300, "dashboard_town": 150, "matters": 200, "search": 200, "lists": 300,
           "export_s": 15, "export_mb": 200, "pull_ratio": 1.2}
SORTS = ("raised", "raised_asc", "deadline", "updated")
CST = timezone(timedelta(hours=8))


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# -- the server process, seen from /proc -----------------------------------------------------------

def _tree(pid: int) -> list[int]:
    """The process and its descendants (a server with workers forks them)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_bytes(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Console:
    """A staff user's browser: signed in, cookies kept, every request timed to its last byte."""

    def __init__(self, url: str, username: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=600, follow_redirects=False)
        form = self.http.get("/staff/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, "no CSRF token on the login page"
        r = self.http.post("/staff/login", data={"username": username, "password": county.PASSWORD,
                                                  "csrf": csrf.group(1), "next": "/staff/"})
        if r.status_code != 303:
            raise RuntimeError(f"sign-in as {username}: {r.status_code} {r.text[:300]}")

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[float, httpx.Response]:
        t0 = time.perf_counter()
        r = self.http.get(path, params=params)
        secs = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {r.status_code} {r.text[:300]}")
        return secs, r

    def close(self) -> None:
        self.http.close()


class Figure:
    """Times of one figure, with the load and the server's CPU while it was measured."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.load0 = os.getloadavg()
        self.cpu0 = cpu_seconds(pid)
        self.t0 = time.perf_counter()
        self.times: list[float] = []

    def done(self, **more: Any) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        ms = [t * 1000 for t in self.times]
        return {"n": len(ms), "p50_ms": round(pct(ms, 50), 1) if ms else None,
                "p95_ms": round(pct(ms, 95), 1) if ms else None, "max_ms": round(max(ms), 1) if ms else None,
                "server_cpu_s": round(cpu_seconds(self.pid) - self.cpu0, 2), "wall_s": round(wall, 2),
                "loadavg": [round(x, 2) for x in os.getloadavg()], "loadavg_before": [round(x, 2) for x in self.load0],
                **more}


# -- the database: what the figures ask for ---------------------------------------------------------

def facts(db: Path) -> dict[str, Any]:
    """Ids, names and counts read from the database itself (read-only) before the server starts."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    areas = {r[0]: (r[1], r[2], r[3]) for r in c.execute(
        "SELECT id, json_extract(data, '$.level'), json_extract(data, '$.name'), json_extract(data, '$.parent_id') "
        "FROM areas WHERE deleted = 0")}
    county_id = next(a for a, (lvl, _, _) in areas.items() if lvl == "county")
    towns = sorted((a for a, (lvl, _, _) in areas.items() if lvl == "town"), key=lambda a: areas[a][1])
    users = {r[0]: (r[1], json.loads(r[2] or "[]")) for r in c.execute(
        "SELECT json_extract(data, '$.username'), json_extract(data, '$.role'), json_extract(data, '$.areas') "
        "FROM users WHERE deleted = 0")}
    # the town with the most matters is the one measured (its staff's figures are the heaviest)
    town_of_grid: dict[str, str] = {}
    for a, (lvl, _, parent) in areas.items():
        if lvl == "grid":
            village = parent
            town_of_grid[a] = areas[village][2] if village in areas else ""
    per_town: dict[str, int] = {}
    for (grid,) in c.execute("SELECT h.grid_id FROM matters m JOIN households h ON h.id = m.household_id "
                             "WHERE m.deleted = 0"):
        t = town_of_grid.get(grid, "")
        per_town[t] = per_town.get(t, 0) + 1
    town = max(towns, key=lambda t: per_town.get(t, 0))
    staff = next(u for u, (role, ars) in sorted(users.items()) if role == "staff" and ars == [town])
    county_staff = next(u for u, (role, ars) in sorted(users.items()) if role == "staff" and ars == [county_id])
    step = max(1, c.execute("SELECT max(rowid) FROM households").fetchone()[0] // 40)
    names = [r[0] for r in c.execute(
        "SELECT json_extract(data, '$.head_name') FROM households WHERE deleted = 0 AND rowid % ? = 0 LIMIT 40",
        (step,))]
    cats = [r[0] for r in c.execute(
        "SELECT json_extract(data, '$.category') AS k FROM matters WHERE k IS NOT NULL GROUP BY k "
        "ORDER BY count(*) DESC LIMIT 2")]
    lines = [r[0] for r in c.execute(
        "SELECT json_extract(data, '$.line') AS k FROM matters WHERE k IS NOT NULL GROUP BY k "
        "ORDER BY count(*) DESC LIMIT 1")]
    # a month with matters in it: the dataset's last full month
    last = c.execute("SELECT max(json_extract(data, '$.raised_at')) FROM matters").fetchone()[0] or "2026-11-30"
    month = date.fromisoformat(last[:7] + "-01")
    out = {"county": county_id, "town": town, "town_name": areas[town][1], "town_staff": staff,
           "county_staff": county_staff, "names": names, "categories": cats, "lines": lines,
           "month": month.isoformat(), "matters": c.execute("SELECT count(*) FROM matters WHERE deleted = 0").fetchone()[0],
           "households": c.execute("SELECT count(*) FROM households WHERE deleted = 0").fetchone()[0],
           "residents": c.execute("SELECT count(*) FROM residents WHERE deleted = 0").fetchone()[0],
           "town_matters": per_town.get(town, 0)}
    c.close()
    return out


def filters(f: dict[str, Any]) -> list[dict[str, str]]:
    """The matters list's filters measured: none, each filter alone, and two combined."""
    out: list[dict[str, str]] = [{}, {"status": "open"}, {"status": "closed"}, {"overdue": "1"}, {"supervised": "1"},
                                 {"handling": "proxy"}, {"area": f["town"]}, {"q": f["names"][0][:2]},
                                 {"status": "open", "area": f["town"]}]
    out += [{"category": c} for c in f["categories"][:1]]
    out += [{"line": x} for x in f["lines"][:1]]
    return out


# -- the figures -------------------------------------------------------------------------------------

def measure(url: str, pid: int, f: dict[str, Any], runs: int, export: bool = True,
            sample: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    today = datetime.now(CST).date()
    county_c = Console(url, f["county_staff"])
    town_c = Console(url, f["town_staff"])
    county_c.get("/staff/")           # warm: the first request of a process loads templates and the tree
    town_c.get("/staff/")
    log("dashboard")
    for key, c, area in (("dashboard_county", county_c, f["county"]), ("dashboard_town", town_c, f["town"])):
        fig = Figure(pid)
        for _ in range(runs):
            secs, _ = c.get("/staff/", {"area": area})
            fig.times.append(secs)
        out[key] = fig.done()
        log(f"  {key}: p95 {out[key]['p95_ms']} ms")
    log("matters list")
    fig = Figure(pid)
    slowest: tuple[float, str] = (0.0, "")
    per: list[dict[str, Any]] = []
    combos = [(flt, sort) for flt in filters(f) for sort in SORTS]
    if sample and sample < len(combos):   # evenly spread (filter, sort) pairs: a shorter run on a loaded machine
        combos = [combos[i * len(combos) // sample] for i in range(sample)]
    for flt in dict.fromkeys(json.dumps(c[0], sort_keys=True) for c in combos):
        flt = json.loads(flt)
        secs, r = county_c.get("/staff/matters", {**flt, "page": 1})
        m = re.search(r'id="total">\s*([\d,]+)', r.text) or re.search(r'data-total="(\d+)"', r.text)
        total = int(m.group(1).replace(",", "")) if m else None
        if total is None:
            log(f"  no total on the matters page for {flt}: its first page only")
        last = max(1, ((total or 0) + 49) // 50)
        for sort in [so for fl, so in combos if fl == flt]:
            for page in sorted({1, (last + 1) // 2, last}):
                secs, _ = county_c.get("/staff/matters", {**flt, "sort": sort, "page": page})
                fig.times.append(secs)
                per.append({"filter": flt, "sort": sort, "page": page, "ms": round(secs * 1000, 1)})
                if secs > slowest[0]:
                    slowest = (secs, f"{flt or 'none'} sort={sort} page={page}")
    out["matters"] = fig.done(slowest=slowest[1], requests=per)
    log(f"  matters: p95 {out['matters']['p95_ms']} ms, slowest {slowest[1]} {slowest[0] * 1000:.0f} ms")
    log("household search")
    fig = Figure(pid)
    for name in f["names"][:runs]:
        secs, _ = county_c.get("/staff/households", {"q": name})
        fig.times.append(secs)
    out["search"] = fig.done()
    log(f"  search: p95 {out['search']['p95_ms']} ms")
    log("三张清单 for a town and a month")
    month = date.fromisoformat(f["month"])
    end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    fig = Figure(pid)
    sizes = []
    for _ in range(max(1, runs // 3)):
        for which in ("problem", "measure", "owner"):
            secs, r = town_c.get("/staff/reports/lists", {"area": f["town"], "start": month.isoformat(),
                                                            "end": end.isoformat(), "list": which, "page": 1})
            fig.times.append(secs)
            sizes.append(len(r.content))
    out["lists"] = fig.done(bytes=max(sizes), month=f["month"])
    log(f"  lists: p95 {out['lists']['p95_ms']} ms, {max(sizes):,} bytes")
    if export:
        log("the .xlsx export of the county's matters")
        out["export"] = export_xlsx(county_c, pid, f["county"], today)
        log(f"  export: {out['export']['s']:.1f} s, {out['export']['rows']:,} rows, "
            f"RSS +{out['export']['rss_growth_mb']:.0f} MB")
    county_c.close()
    town_c.close()
    return out


def export_xlsx(c: Console, pid: int, area: str, today: date) -> dict[str, Any]:
    """The whole period's 三张清单 of the county as .xlsx; the server's RSS sampled meanwhile."""
    rss0 = rss_bytes(pid)
    peak = [rss0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes(pid))
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    fig = Figure(pid)
    th.start()
    try:
        secs, r = c.get("/staff/reports/lists", {"area": area, "start": "2000-01-01", "end": today.isoformat(),
                                                  "format": "xlsx"})
    finally:
        stop.set()
        th.join()
    fig.times.append(secs)
    rows = xlsx_rows(r.content)
    return fig.done(s=round(secs, 2), bytes=len(r.content), rows=rows, rss_before_mb=round(rss0 / 2**20, 1),
                    rss_peak_mb=round(peak[0] / 2**20, 1), rss_growth_mb=round((peak[0] - rss0) / 2**20, 1))


def xlsx_rows(data: bytes) -> int:
    """Data rows of the workbook's first sheet (its title and header rows not counted)."""
    import io

    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    ws = wb.worksheets[0]
    n = sum(1 for row in ws.iter_rows(values_only=True) if row and isinstance(row[0], (int, float)))
    wb.close()
    return n


def pull_pages(url: str, username: str, syncs: int) -> list[float]:
    """Page latencies (s) of ``syncs`` first syncs of one grid worker, after one to warm up."""
    warm = Phone(url)
    warm.login(username, device="console-warm")
    warm.pull()
    warm.close()
    lat: list[float] = []
    for i in range(syncs):
        p = Phone(url)
        p.login(username, device=f"console-{i}")
        n0 = len(p.latencies)
        p.pull()
        lat += p.latencies[n0:]
        p.close()
    return lat


def demo_db(results: Path) -> Path:
    """The demo town (server/demo.py), cached beside the county."""
    path = results / "demo-town.db"
    if path.exists():
        return path
    from server.demo import seed
    tmp = results / "demo-town.building.db"
    tmp.unlink(missing_ok=True)
    store = open_store(str(tmp))
    store.migrate()
    seed(store, blob_dir=str(results / "demo-town.blobs"))
    store.checkpoint()
    store.close()
    shutil.move(tmp, path)
    return path


def scratch_copy(src: Path, work: Path) -> tuple[Path, float]:
    """A copy of the cached database to measure on, migrated (new indexes built here, timed)."""
    dst = work / src.name
    shutil.copyfile(src, dst)
    t0 = time.perf_counter()
    store = open_store(str(dst))
    store.migrate()
    store.checkpoint()
    store.close()
    return dst, time.perf_counter() - t0


def partial_meta(db: Path) -> dict[str, Any]:
    """What a database not built to the end (a stopped build: ``--db``) holds, for the report."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    n = {k: c.execute(f"SELECT count(*) FROM {k}").fetchone()[0] for k in
         ("households", "residents", "visits", "matters", "matter_events")}
    grids = c.execute("SELECT count(*) FROM areas WHERE json_extract(data, '$.level') = 'grid'").fetchone()[0]
    filled = c.execute("SELECT count(DISTINCT grid_id) FROM households").fetchone()[0]
    towns = c.execute("SELECT count(*) FROM areas WHERE json_extract(data, '$.level') = 'town'").fetchone()[0]
    villages = c.execute("SELECT count(*) FROM areas WHERE json_extract(data, '$.level') = 'village'").fetchone()[0]
    c.close()
    return {"partial": True, "towns": towns, "villages": villages, "grids": grids, "grids_filled": filled,
            "counts": {**n, "mutations": 0}, "build_s": 0.0}


def run(scale: float, towns: int | None, runs: int, syncs: int, results: Path, export: bool = True,
        db_path: Path | None = None, sample: int | None = None) -> dict[str, Any]:
    t_all = time.perf_counter()
    if db_path:
        src, meta = db_path, partial_meta(db_path)
    else:
        src, meta = county.ensure(scale, towns, results=results, log=log)
    out: dict[str, Any] = {"scale": scale, "towns": meta["towns"], "dataset": meta, "env": env_info(),
                           "loadavg_start": os.getloadavg(), "date": datetime.now(CST).date().isoformat()}
    with tempfile.TemporaryDirectory(dir=results) as tmp:
        work = Path(tmp)
        db, out["migrate_s"] = scratch_copy(src, work)
        f = facts(db)
        out["facts"] = {k: v for k, v in f.items() if k not in ("names",)}
        log(f"county: {f['households']:,} households, {f['matters']:,} matters; town {f['town_name']} "
            f"({f['town_matters']:,} matters)")
        with Server(db, work / "server-console.log") as server:
            assert server.proc is not None
            pid = server.proc.pid
            out["figures"] = measure(server.url, pid, f, runs, export, sample)
            log("pull pages: county")
            fig = Figure(pid)
            fig.times = pull_pages(server.url, "g1", syncs)
            out["figures"]["pull_county"] = fig.done()
        demo = demo_db(results)
        with Server(demo, work / "server-demo.log") as server:
            assert server.proc is not None
            log("pull pages: demo town")
            fig = Figure(server.proc.pid)
            fig.times = pull_pages(server.url, "worker1", syncs)
            out["figures"]["pull_demo"] = fig.done()
    figs = out["figures"]
    figs["pull_ratio"] = round(figs["pull_county"]["p95_ms"] / figs["pull_demo"]["p95_ms"], 2)
    out["total_s"] = round(time.perf_counter() - t_all, 1)
    out["loadavg_end"] = os.getloadavg()
    return out


# -- the report ---------------------------------------------------------------------------------------

def _mark(value: float | None, target: float) -> str:
    if value is None:
        return "–"
    return "met" if value < target or (value == target) else "**missed**"


def table(out: dict[str, Any]) -> str:
    f, d = out["figures"], out["dataset"]
    c = d["counts"]
    fx = out["facts"]
    built = (f"a build stopped after {d['grids_filled']:,} of its grids were filled" if d.get("partial") else
             f"{c['mutations']:,} mutations pushed through the engine in {d['build_s'] / 60:.0f} min, "
             f"{c['mutations'] / d['build_s']:,.0f}/s")
    where = "海曙区, a part of the full build" if d.get("partial") else f"海曙区 at scale {out['scale']:g}"
    lines = [
        f"{where}: {d['towns']} towns, {d['villages']} villages, {d['grids']} grids; "
        f"{c['households']:,} households, {c['residents']:,} residents, {c['visits']:,} visits, "
        f"{c['matters']:,} matters, {c['matter_events']:,} matter events "
        f"({built}). Measured {out['date']}; {out['env']['cpu']}, "
        f"{out['env']['cores']} cores; load average {out['loadavg_start'][0]:.1f} at the start, "
        f"{out['loadavg_end'][0]:.1f} at the end. Migration of the copy: {out['migrate_s']:.1f} s.",
        "",
        "| figure | target | measured (p95) | p50 | server CPU per request | load | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]

    def row(name: str, key: str, target: str, limit: float) -> None:
        x = f.get(key)
        if not x:
            return
        lines.append(f"| {name} | {target} | {x['p95_ms']:,.0f} ms | {x['p50_ms']:,.0f} ms "
                     f"| {x['server_cpu_s'] * 1000 / max(1, x['n']):,.0f} ms "
                     f"| {x['loadavg'][0]:.1f} | {_mark(x['p95_ms'], limit)} |")

    row(f"dashboard, whole county ({fx['matters']:,} matters), p95", "dashboard_county", "< 300 ms", 300)
    row(f"dashboard, one town ({fx['town_name']}, {fx['town_matters']:,} matters), p95", "dashboard_town",
        "< 150 ms", 150)
    row(f"matters list, {f['matters']['n']} requests (filters × sorts × first/middle/last page), p95", "matters",
        "< 200 ms", 200)
    row("household search by name, p95", "search", "< 200 ms", 200)
    row(f"三张清单, one town, {f['lists']['month'][:7]}, each list, p95 ({f['lists']['bytes'] / 1000:,.0f} kB)", "lists",
        "< 300 ms", 300)
    e = f.get("export")
    if e:
        ok = _mark(e["s"], 15) == "met" and _mark(e["rss_growth_mb"], 200) == "met"
        lines.append(f"| .xlsx export, {e['rows']:,} matters (三张清单, whole county) | < 15 s, < 200 MB | {e['s']:.1f} s, "
                     f"+{e['rss_growth_mb']:.0f} MB RSS | | {e['server_cpu_s']:.1f} s | {e['loadavg'][0]:.1f} | "
                     f"{'met' if ok else '**missed**'} |")
    pc, pd = f["pull_county"], f["pull_demo"]
    lines.append(f"| a grid worker's pull page p95, county ÷ demo town | ≤ 1.2× | {f['pull_ratio']:.2f}× "
                 f"({pc['p95_ms']:.0f} ms ÷ {pd['p95_ms']:.0f} ms) | | | {pc['loadavg'][0]:.1f} | "
                 f"{_mark(f['pull_ratio'], 1.2 + 1e-9)} |")
    lines.append("")
    lines.append(f"Slowest matters list request: {f['matters']['slowest']} ({f['matters']['max_ms']:,.0f} ms).")
    return "\n".join(lines) + "\n"


def write_docs(doc: Path, text: str) -> None:
    """The section at the end of docs/benchmarks.md: its table replaced between the markers."""
    start, end = "<!-- console:table:start -->", "<!-- console:table:end -->"
    body = doc.read_text()
    if start in body and end in body:
        a, b = body.index(start) + len(start), body.index(end)
        body = body[:a] + "\n" + text + body[b:]
    else:
        body = body.rstrip("\n") + f"\n\n{SECTION}\n\n{start}\n{text}{end}\n"
    doc.write_text(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--towns", type=int, help="only the first N towns (bench/county.py)")
    ap.add_argument("--runs", type=int, default=20, help="requests per figure")
    ap.add_argument("--syncs", type=int, default=5, help="first syncs per database for the pull figure")
    ap.add_argument("--results", type=Path, default=county.RESULTS)
    ap.add_argument("--no-export", action="store_true", help="skip the .xlsx export")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--db", type=Path, help="measure this database instead (e.g. a build stopped early: "
                                            "county-….building.db); copied first, never changed")
    ap.add_argument("--matters-sample", type=int, help="measure about N (filter, sort) pairs of the matters "
                                                       "list instead of all (each at its first, middle, last page)")
    args = ap.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    out = run(args.scale, args.towns, args.runs, args.syncs, args.results, not args.no_export, args.db,
              args.matters_sample)
    name = "console" if args.scale == 1 and not args.towns else f"console-s{args.scale:g}" + (
        f"-t{args.towns}" if args.towns else "")
    (args.results / f"{name}.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    text = table(out)
    (args.results / f"{name}.md").write_text(text)
    print(text)
    if not args.no_docs and args.scale == 1 and not args.towns:
        write_docs(DOC, text)
        log(f"table written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
