"""The benchmark: our protocol against PouchDB's replication, and against the machine, in one run.

    python -m bench.run            # the full run (make bench): minutes; writes bench/results/ and the
                                   # table in docs/benchmarks.md
    python -m bench.run --quick    # the smoke run: tiny scale, same code paths, under a minute

Scenarios (docs/benchmarks.md explains each):
  1. first sync of a grid onto an empty phone (unthrottled, 3G, 2G): time, bytes, requests
  2. a field day's sync (push ~50, pull ~100 changes): the same figures
  3. server write throughput at batches of 100 and 500, against PouchDB and raw SQLite
  4. pull page latency for a grid as the server database grows from 10k to 1M records
  5. 200 devices syncing at once on loopback: throughput, p99 latency, errors
  6. the PWA in headless Chromium: shell bytes, offline open, IndexedDB apply rate
  7. the information floor: the grid's records as compact JSON, gzipped
Every figure of 1–3 is the median of several runs with the min–max spread. Throttled runs of one
scenario go in parallel, each on its own grid, proxy and link (a link is shaped per device, so
parallel runs do not share bandwidth); unthrottled ones go one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gzip
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import msgspec

from sync import accounts
from sync.store import open_store

from . import pg, serverdb, workload
from .ourclient import HEADERS, PAGE, Phone, _body
from .procs import ROOT, LinkProxy, PouchServer, Server, ensure_peer, env_info, pouch_job

RESULTS = ROOT / "bench" / "results"   # --results changes it (the smoke test writes to a temporary folder)
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass
class Config:
    quick: bool
    runs: int                        # runs per figure (and grids in the grid database)
    scale: float                     # of the grid workload
    profiles: tuple[str, ...]
    phone_edits: int
    other_changes: int
    write_batches: dict[int, int]    # batch size -> batches per run
    county: tuple[int, ...]          # checkpoints (records) of the growing server database
    county_syncs: int                # first syncs measured per checkpoint
    devices: int
    device_pushes: int
    pwa_runs: int
    apply_changes: int
    postgres: bool = True            # scenarios 3–5 again on PostgreSQL (bench/pg.py)


FULL = Config(False, 3, 1.0, ("none", "3g", "2g"), 50, 100, {100: 20, 500: 10}, (10_000, 100_000, 1_000_000), 6,
              200, 5, 5, 10_000)
QUICK = Config(True, 2, 0.05, ("none", "3g"), 10, 20, {100: 2, 500: 1}, (1_000, 3_000), 1, 20, 2, 1, 1_000)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def in_parallel(fns: list[Callable[[], dict[str, Any]]], parallel: bool) -> list[dict[str, Any]]:
    if not parallel:
        return [f() for f in fns]
    with ThreadPoolExecutor(len(fns)) as ex:
        return [f.result() for f in [ex.submit(fn) for fn in fns]]


# ------------------------------------------------------------------------------------------------
# the grid database: one grid per run, same content under different ids


def build_grid_db(cfg: Config, work: Path) -> tuple[Path, serverdb.Town, float]:
    path = work / "grids.db"
    town, secs = serverdb.build(str(path), [(f"g{i + 1}", f"grid{i + 1}") for i in range(cfg.runs)], cfg.scale)
    town.store.close()
    return path, town, secs


# ------------------------------------------------------------------------------------------------
# 1. first sync


def our_first_sync(server: Server, username: str, profile: str, page: int = PAGE) -> dict[str, Any]:
    with LinkProxy(server.port, profile) as px:
        phone = Phone(px.url, page=page)
        t0 = time.perf_counter()
        phone.login(username, device=f"first-sync-{profile}")
        changes = phone.pull()
        secs = time.perf_counter() - t0
        phone.close()
        st = px.stats()
    return {"s": secs, "up": st["bytes_up"], "down": st["bytes_down"], "requests": st["requests"],
            "connections": st["connections"], "kinds": st["kinds"], "retries": phone.retries, "records": len(phone.replica),
            "changes": changes}


def pouch_first_sync(pouch: PouchServer, db: str, profile: str, tmp: Path) -> dict[str, Any]:
    with LinkProxy(pouch.port, profile) as px:
        out = pouch_job({"kind": "firstsync", "remote": f"{px.url}/{db}", "local": str(tmp / f"fs-{uuid.uuid4().hex}")})
        st = px.stats()
    return {"s": out["ms"] / 1000, "up": st["bytes_up"], "down": st["bytes_down"], "requests": st["requests"],
            "connections": st["connections"], "kinds": st["kinds"], "retries": out["retries"], "records": out["doc_count"]}


def floor_bytes(changes: list[dict[str, Any]]) -> tuple[int, int]:
    """The grid's records as compact JSON (one array, ids and fields, no versions), gzip -9."""
    recs = []
    for ch in changes:
        if ch.get("removed") or ch.get("deleted"):
            continue
        # the id from the change: a lean page (as the PWA asks) leaves it out of `data`
        d = {k: v for k, v in ch["data"].items() if k not in ("id", "version", "deleted")}
        recs.append({"collection": ch["collection"], "id": ch["id"], **d})
    raw = json.dumps(recs, ensure_ascii=False, separators=(",", ":")).encode()
    return len(raw), len(gzip.compress(raw, 9))


# ------------------------------------------------------------------------------------------------
# 2. field day


def day_for(grid: serverdb.Grid, cfg: Config, k: int, run: int) -> workload.FieldDay:
    moves = cfg.other_changes - int(cfg.other_changes * 0.4) - int(cfg.other_changes * 0.2)
    return workload.field_day(grid.work, grid.workers, "staff1", salt=f"day:{k}:{run}", phone_edits=cfg.phone_edits,
                              other_changes=cfg.other_changes, matter_offset=k * moves)


def push_elsewhere(server: Server, day: workload.FieldDay) -> None:
    by_who: dict[str, list[tuple[str, str, dict[str, Any], bool]]] = {}
    for who, coll, rid, fields, create in day.elsewhere:
        by_who.setdefault(who, []).append((coll, rid, fields, create))
    for who, edits in by_who.items():
        p = Phone(server.url)
        p.login(who, device="elsewhere")
        if any(not c for _, _, _, c in edits):
            p.pull()   # the colleague's phone knows the versions it edits
        for coll, rid, fields, create in edits:
            p.edit(coll, rid, fields, create)
        bad = [r for r in p.push() if r["status"] not in ("applied", "merged")]
        assert not bad, f"elsewhere: {bad[0]}"
        p.close()


def our_field_day_prepare(server: Server, grid: serverdb.Grid, day: workload.FieldDay) -> tuple[Phone, LinkProxy]:
    px = LinkProxy(server.port, "none").__enter__()   # the phone's address, on a good link yesterday
    phone = Phone(px.url)
    phone.login(grid.workers[0], device="field-day")
    phone.pull()                                   # yesterday's sync
    push_elsewhere(server, day)                    # meanwhile, elsewhere
    for coll, rid, fields, create in day.phone:    # the day on the phone, offline
        phone.edit(coll, rid, fields, create)
    return phone, px


def our_field_day_measure(phone: Phone, px: LinkProxy, profile: str) -> dict[str, Any]:
    try:
        phone.http.close()                         # a new day: no connection left open
        phone.http = httpx.Client(base_url=px.url + "/api/v1", headers=HEADERS, timeout=600)
        phone.retries = 0
        px.set_profile(profile)
        px.stats(reset=True)
        t0 = time.perf_counter()
        results, pulled = phone.sync()
        secs = time.perf_counter() - t0
        phone.close()
        st = px.stats()
    finally:
        px.__exit__()
    statuses = sorted({r["status"] for r in results})
    return {"s": secs, "up": st["bytes_up"], "down": st["bytes_down"], "requests": st["requests"],
            "connections": st["connections"], "kinds": st["kinds"], "retries": phone.retries, "pushed": len(results),
            "pulled": len(pulled), "statuses": statuses}


def pouch_edits(edits: list[tuple[str, str, dict[str, Any], bool]]) -> list[dict[str, Any]]:
    return [{"collection": c, "id": i, "fields": f, "create": cr} for c, i, f, cr in edits]


def pouch_field_day(pouch: PouchServer, db: str, day: workload.FieldDay, profile: str, tmp: Path) -> dict[str, Any]:
    with LinkProxy(pouch.port, "none") as px:      # the job switches it to `profile` after yesterday's sync
        out = pouch_job({"kind": "fieldday", "direct": f"{pouch.url}/{db}", "remote": f"{px.url}/{db}",
                         "control": px.control, "profile": profile,
                         "local": str(tmp / f"fd-{uuid.uuid4().hex}"), "phone": pouch_edits(day.phone),
                         "elsewhere": pouch_edits([(c, i, f, cr) for _, c, i, f, cr in day.elsewhere])})
        st = px.stats()
    return {"s": out["ms"] / 1000, "up": st["bytes_up"], "down": st["bytes_down"], "requests": st["requests"],
            "connections": st["connections"], "kinds": st["kinds"], "retries": out["retries"], "pushed": out["pushed"],
            "pulled": out["pulled"]}


# ------------------------------------------------------------------------------------------------
# 3. writes


def our_writes(server: Server, grid: serverdb.Grid, batch: int, batches: int, run: int,
               salt: str = "ours") -> dict[str, Any]:
    recs = workload.write_batch(grid.work.households, batch * batches, salt=f"{salt}:{batch}:{run}")
    phone = Phone(server.url)
    phone.login(grid.workers[0], device="writes")
    times = []
    for i in range(0, len(recs), batch):
        for coll, rid, fields in recs[i:i + batch]:
            phone.edit(coll, rid, fields, True)
        n0 = len(phone.latencies)
        res = phone.push()
        times.append(sum(phone.latencies[n0:]))
        assert all(r["status"] == "applied" for r in res), res[:1]
    phone.close()
    return {"rate": len(recs) / sum(times), "times": times}


def pouch_writes(pouch: PouchServer, grid: serverdb.Grid, batch: int, batches: int, run: int) -> dict[str, Any]:
    recs = workload.write_batch(grid.work.households, batch * batches, salt=f"pouch:{batch}:{run}")
    out = pouch_job({"kind": "bulk", "url": f"{pouch.url}/writes_{batch}_{run}", "batch": batch,
                     "records": [{"collection": c, "id": i, "fields": f} for c, i, f in recs]})
    return {"rate": len(recs) / (sum(out["times_ms"]) / 1000), "times": [t / 1000 for t in out["times_ms"]]}


def raw_sqlite_writes(work: Path, grid: serverdb.Grid, n: int, run: int) -> dict[str, Any]:
    """The machine's limit: the same rows into SQLite (WAL, synchronous FULL, as ours) in one transaction."""
    recs = workload.write_batch(grid.work.households, n, salt=f"raw:{run}")
    path = work / f"raw-{run}.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("CREATE TABLE records (id TEXT PRIMARY KEY, collection TEXT NOT NULL, data TEXT NOT NULL)")
    rows = [(rid, coll, json.dumps(fields, ensure_ascii=False)) for coll, rid, fields in recs]
    t0 = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    con.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
    con.execute("COMMIT")
    secs = time.perf_counter() - t0
    con.close()
    return {"rate": n / secs}


# ------------------------------------------------------------------------------------------------
# 4. a growing server database


def county_db(cfg: Config, checkpoint: int) -> Path:
    return RESULTS / f"county-v{workload.GENERATOR_VERSION}-s{cfg.scale}-{checkpoint}.db"


def build_county(cfg: Config, work: Path) -> dict[str, Any]:
    """Build (or reuse) the county database at each checkpoint; the build goes through the engine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta_path = RESULTS / f"county-v{workload.GENERATOR_VERSION}-s{cfg.scale}.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if all(county_db(cfg, c).exists() for c in cfg.county) and meta.get("checkpoints"):
        meta["cached"] = True
        return meta
    path = work / "county.db"
    t0 = time.perf_counter()
    town = serverdb.Town.create(str(path))
    town.add_grid("g1", "grid1", cfg.scale)          # the grid we measure, the oldest records
    count = serverdb.record_count(town.store)
    per_grid = town.grids[0].work.count()
    checkpoints = []
    n = 1
    for c in cfg.county:
        while count < c:
            n += 1
            town.add_grid(f"f{n}", f"filler{n}", cfg.scale)
            count += per_grid
        count = serverdb.record_count(town.store)
        town.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(path, county_db(cfg, c))
        checkpoints.append({"target": c, "records": count, "grids": n, "build_s": time.perf_counter() - t0,
                            "bytes": county_db(cfg, c).stat().st_size})
        log(f"county database: {count:,} records in {n} grids after {time.perf_counter() - t0:.0f} s")
    town.store.close()
    meta = {"checkpoints": checkpoints, "build_s": time.perf_counter() - t0, "cached": False}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def county_latency(cfg: Config, checkpoint: int, work: Path, db: Path | str | None = None) -> dict[str, Any]:
    db = db or county_db(cfg, checkpoint)
    with Server(db, work / f"server-county-{checkpoint}.log") as server:
        warm = Phone(server.url)
        warm.login("g1w1", device="warm-up")
        warm.pull()
        warm.close()
        lat: list[float] = []
        tail: list[float] = []
        for i in range(cfg.county_syncs):
            p = Phone(server.url)
            p.login("g1w1", device=f"scale-{i}")
            n0 = len(p.latencies)
            p.pull()
            lat += p.latencies[n0:]
            for _ in range(10):          # an up-to-date phone asking again: the tail of the feed
                n1 = len(p.latencies)
                p.pull()
                tail += p.latencies[n1:]
            p.close()
    return {"pages": len(lat), "p50_ms": pct(lat, 50) * 1000, "p95_ms": pct(lat, 95) * 1000,
            "tail_p50_ms": pct(tail, 50) * 1000, "tail_p95_ms": pct(tail, 95) * 1000}


# ------------------------------------------------------------------------------------------------
# 5. many devices at once


class _Page(msgspec.Struct):
    """What a device of the crowd needs from a pull page: msgspec skips the rest fast, so the client
    (in the same process as 200 connections) takes little of the two cores from the server."""

    cursor: str
    more: bool


async def _device(url: str, token: str, cursor: str, muts: list[dict[str, Any]], start: asyncio.Event, delay: float,
                  lat: dict[str, list[float]], errors: list[str], totals: list[float]) -> None:
    h = {**HEADERS, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url + "/api/v1", headers=h, timeout=120) as c:
        await start.wait()
        await asyncio.sleep(delay)
        t_start = time.perf_counter()
        try:
            content, bh = _body({"protocol": 1, "mutations": muts, "outbox_depth": len(muts)})
            t0 = time.perf_counter()
            r = await c.post("/sync/push", content=content, headers=bh)
            lat["push"].append(time.perf_counter() - t0)
            if r.status_code != 200 or any(x["status"] != "applied" for x in msgspec.json.decode(r.content)["results"]):
                errors.append(f"push {r.status_code} {r.text[:200]}")
                return
            while True:
                t0 = time.perf_counter()
                r = await c.get("/sync/pull", params={"cursor": cursor, "limit": 500})
                lat["pull"].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"pull {r.status_code} {r.text[:200]}")
                    return
                page = msgspec.json.decode(r.content, type=_Page)
                cursor = page.cursor
                if not page.more:
                    break
        except httpx.HTTPError as e:
            errors.append(f"{type(e).__name__}: {e}")
            return
        totals.append(time.perf_counter() - t_start)


def many_devices(cfg: Config, db: Path | str, town: serverdb.Town, work: Path, servers: int = 1,
                 workers: int = 1) -> dict[str, Any]:
    """All devices released at one instant; then again with arrivals spread evenly over five seconds.
    With ``servers`` > 1 (PostgreSQL), that many server processes share the database and device i
    talks to server i mod ``servers``, as behind a load balancer. ``workers``: each server's worker
    processes (``bench/devices.py`` compares 1 and 2)."""
    users = [w for g in town.grids for w in g.workers]
    store = open_store(str(db))
    tokens = []
    for i in range(cfg.devices):
        user = store.user_by_username(users[i % len(users)])
        assert user is not None
        tokens.append((users[i % len(users)], accounts.register_device(store, user, f"crowd-{i}").token))
    store.close()
    grid_of = {w: g for g in town.grids for w in g.workers}

    def batches(salt: str) -> list[list[dict[str, Any]]]:
        out = []
        for i, (u, _) in enumerate(tokens):
            hh = grid_of[u].work.households
            at = datetime.now(timezone.utc).isoformat()
            out.append([{"mid": str(uuid.uuid4()), "collection": "visits", "id": str(uuid.uuid4()), "op": "upsert",
                         "base": 0, "at": at,
                         "fields": {"household_id": hh[(i * 7 + k) % len(hh)], "visited_at": at,
                                    "narrative": "入户走访，老人身体尚可，反映村道路灯不亮，已登记。",
                                    "checklist": {"left_phone": True, "took_situation": True}}}
                        for k in range(cfg.device_pushes)])
        return out

    async def crowd(urls: list[str], cursors: dict[str, str], muts: list[list[dict[str, Any]]],
                    spread: float) -> dict[str, Any]:
        start = asyncio.Event()
        lat: dict[str, list[float]] = {"push": [], "pull": []}
        errors: list[str] = []
        totals: list[float] = []
        n = len(tokens)
        tasks = [asyncio.create_task(_device(urls[i % len(urls)], tok, cursors[u], muts[i], start, spread * i / n, lat,
                                             errors, totals)) for i, (u, tok) in enumerate(tokens)]
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
        every = lat["push"] + lat["pull"]
        return {"devices": n, "servers": len(urls), "workers": workers, "spread_s": spread, "wall_s": wall, "requests": len(every), "errors": len(errors),
                "error_samples": errors[:3], "req_per_s": len(every) / wall,
                "mutations_per_s": n * cfg.device_pushes / wall,
                "p50_ms": pct(every, 50) * 1000, "p99_ms": pct(every, 99) * 1000,
                "push_p50_ms": pct(lat["push"], 50) * 1000, "push_p99_ms": pct(lat["push"], 99) * 1000,
                "pull_p50_ms": pct(lat["pull"], 50) * 1000, "pull_p99_ms": pct(lat["pull"], 99) * 1000,
                "sync_p50_ms": pct(totals, 50) * 1000 if totals else None,
                "sync_p99_ms": pct(totals, 99) * 1000 if totals else None}

    with contextlib.ExitStack() as stack:
        # one after the other: the first start makes the console key file the others then read
        urls = [stack.enter_context(Server(db, work / f"server-devices-{k}.log", workers)).url
                for k in range(servers)]

        def up_to_date() -> dict[str, str]:
            cursors = {}
            for u in users:                # every phone is up to date before the crowd arrives
                p = Phone(urls[0])
                p.login(u, device="crowd-cursor")
                p.pull()
                cursors[u] = p.cursor or ""
                p.close()
            return cursors

        at_once = asyncio.run(crowd(urls, up_to_date(), batches("once"), 0.0))
        spread = asyncio.run(crowd(urls, up_to_date(), batches("spread"), 5.0))
    return {**at_once, "spread": spread}


# ------------------------------------------------------------------------------------------------
# the schema's own limit, and the same figures on PostgreSQL


def schema_limits(cfg: Config, work: Path, grid_db: Path, grid: serverdb.Grid, n: int) -> list[dict[str, Any]]:
    """SQLite: the engine's rows for ``n`` records (pushed into a scratch copy) inserted by SQL alone
    into a copy of the database as it was."""
    out = []
    for r in range(cfg.runs):
        scratch, before = work / f"limit-scratch-{r}.db", work / f"limit-{r}.db"
        shutil.copyfile(grid_db, scratch)
        shutil.copyfile(grid_db, before)
        rows = pg.engine_rows(str(scratch), grid, n, salt=f"limit:{r}")
        out.append(pg.schema_limit(str(before), rows, n))
    return out


def postgres_part(cfg: Config, work: Path, grid_db: Path, town: serverdb.Town, n_limit: int) -> dict[str, Any]:
    """Scenarios 3, 4 and 5 on PostgreSQL (a cluster of its own, fsync on), on copies of the same
    databases: writes at batch 500 and the schema's limit, 200 devices through two servers, pulls
    at the smallest and the largest county database."""
    out: dict[str, Any] = {}
    grid = town.grids[0]
    with pg.Cluster() as cluster:
        import psycopg
        with psycopg.connect(cluster.url()) as c:
            out["version"] = str(c.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        log("PostgreSQL: writes, batch 500")
        url = pg.copy_from_sqlite(grid_db, cluster, "grids")
        with Server(url, work / "server-pg.log") as server:
            out["writes_500"] = [our_writes(server, grid, 500, cfg.write_batches[500], r, "pg")["rate"]
                                 for r in range(cfg.runs)]
        log("PostgreSQL: the schema's limit")
        out["schema_limit"] = []
        for r in range(cfg.runs):
            scratch = pg.copy_from_sqlite(grid_db, cluster, f"scratch{r}")
            before = pg.copy_from_sqlite(grid_db, cluster, f"limit{r}")
            rows = pg.engine_rows(scratch, grid, n_limit, salt=f"pglimit:{r}")
            out["schema_limit"].append(pg.schema_limit(before, rows, n_limit))
        log(f"PostgreSQL: {cfg.devices} devices at once through 2 servers")
        out["devices"] = many_devices(cfg, pg.copy_from_sqlite(grid_db, cluster, "crowd"), town, work, servers=2)
        out["county"] = {}
        for c in (cfg.county[0], cfg.county[-1]):
            log(f"PostgreSQL: pull latency at {c:,} records (copied from the SQLite county database)")
            t0 = time.perf_counter()
            url = pg.copy_from_sqlite(county_db(cfg, c), cluster, f"county{c}")
            copy_s = time.perf_counter() - t0
            out["county"][str(c)] = {**county_latency(cfg, c, work, url), "copy_s": copy_s}
    return out


# ------------------------------------------------------------------------------------------------
# the run


def run(cfg: Config) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gridbook-bench-"))
    out: dict[str, Any] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": cfg.quick,
                           "machine": env_info(), "config": cfg.__dict__}
    import os
    out["loadavg_start"] = os.getloadavg()
    out["peer"] = ensure_peer()
    t_all = time.perf_counter()
    log("building the grid database through the engine")
    grid_db, town, secs = build_grid_db(cfg, work)
    out["grid_db"] = {"grids": cfg.runs, "records_per_grid": town.grids[0].work.count(), "build_s": secs}
    grids = town.grids
    s1: dict[str, Any] = {"ours": {}, "pouch": {}}
    s2: dict[str, Any] = {"ours": {}, "pouch": {}}
    with Server(grid_db, work / "server.log") as server, PouchServer(work / "pouch", work / "pouch.log") as pouch:
        # 1 and 7: first sync; the first run's records load the PouchDB databases (one per grid)
        for profile in cfg.profiles:
            log(f"first sync, ours, {profile}")
            # the runs (pages of 1,000, as the PWA asks), and one more with pages of 500 for comparison
            runs = in_parallel([partial(our_first_sync, server, g.workers[0], profile) for g in grids]
                               + [partial(our_first_sync, server, grids[0].workers[0], profile, page=500)],
                               parallel=profile != "none")
            s1.setdefault("ours_page500", {})[profile] = [runs.pop()]
            s1["ours_page500"][profile][0].pop("changes")
            if profile == "none":
                for g, r in zip(grids, runs):
                    recs = [{"collection": c["collection"], "id": c["id"], "data": c["data"]} for c in r["changes"]]
                    loaded = pouch_job({"kind": "load", "url": f"{pouch.url}/grid_{g.workers[0]}", "records": recs})
                    assert loaded["docs"] == r["records"], (loaded, r["records"])
                raw, gz = floor_bytes(runs[0]["changes"])
                out["floor"] = {"records": runs[0]["records"], "json_bytes": raw, "gzip_bytes": gz}
            for r in runs:
                r.pop("changes")
            s1["ours"][profile] = runs
            log(f"first sync, PouchDB, {profile}")
            s1["pouch"][profile] = in_parallel(
                [partial(pouch_first_sync, pouch, f"grid_{g.workers[0]}", profile, work) for g in grids],
                parallel=profile != "none")
            for a, b in zip(s1["ours"][profile], s1["pouch"][profile]):
                assert a["records"] == b["records"], (a["records"], b["records"])
        # 2: field day, a new day per profile
        for k, profile in enumerate(cfg.profiles):
            log(f"field day, ours, {profile}")
            days = [day_for(g, cfg, k, i) for i, g in enumerate(grids)]
            phones = [our_field_day_prepare(server, g, d) for g, d in zip(grids, days)]
            s2["ours"][profile] = in_parallel([partial(our_field_day_measure, ph, px, profile) for ph, px in phones],
                                              parallel=profile != "none")
            log(f"field day, PouchDB, {profile}")
            days = [day_for(g, cfg, k + len(cfg.profiles), i) for i, g in enumerate(grids)]
            s2["pouch"][profile] = in_parallel(
                [partial(pouch_field_day, pouch, f"grid_{g.workers[0]}", d, profile, work)
                 for g, d in zip(grids, days)], parallel=profile != "none")
        out["first_sync"], out["field_day"] = s1, s2
        # 3: writes
        s3: dict[str, Any] = {}
        for batch, batches in cfg.write_batches.items():
            log(f"writes, batch {batch}")
            s3[str(batch)] = {
                "ours": [our_writes(server, grids[0], batch, batches, r)["rate"] for r in range(cfg.runs)],
                "pouch": [pouch_writes(pouch, grids[0], batch, batches, r)["rate"] for r in range(cfg.runs)]}
        n_raw = max(b * n for b, n in cfg.write_batches.items())
        s3["raw_sqlite"] = [raw_sqlite_writes(work, grids[0], n_raw, r)["rate"] for r in range(cfg.runs)]
        s3["raw_rows"] = n_raw
        out["writes"] = s3
    log("the schema's own limit (SQLite)")
    s3["schema_limit"] = schema_limits(cfg, work, grid_db, grids[0], n_raw)
    # 5: many devices (its own server on the same database)
    log(f"{cfg.devices} devices at once")
    out["devices"] = many_devices(cfg, grid_db, town, work, workers=2)   # the figure: 2 worker processes
    # 6: the PWA
    log("the PWA in headless Chromium")
    from . import pwa_bench
    with Server(grid_db, work / "server-pwa.log") as server:
        out["pwa"] = pwa_bench.measure(server.url, "g1w1", cfg.pwa_runs, cfg.apply_changes)
    # 4: the growing database
    log("county-scale database")
    out["county"] = build_county(cfg, work)
    out["county"]["latency"] = {}
    for c in cfg.county:
        log(f"pull latency at {c:,} records")
        out["county"]["latency"][str(c)] = county_latency(cfg, c, work)
    # 3–5 on PostgreSQL
    if cfg.postgres:
        out["postgres"] = postgres_part(cfg, work, grid_db, town, n_raw)
    out["total_s"] = time.perf_counter() - t_all
    out["loadavg_end"] = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny scale, same code paths (the smoke run)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite the table in docs/benchmarks.md")
    ap.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL part (scenarios 3–5 again)")
    ap.add_argument("--results", type=Path, help="where results and the cached county database go "
                                                 "(default bench/results/)")
    args = ap.parse_args()
    global RESULTS
    if args.results:
        RESULTS = args.results
    cfg = QUICK if args.quick else FULL
    if args.no_postgres:
        cfg = dataclasses.replace(cfg, postgres=False)
    out = run(cfg)
    from . import report
    name = "quick" if cfg.quick else "latest"
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    table = report.table(out)
    (RESULTS / f"{name}.md").write_text(table)
    print(table)
    if not cfg.quick and not args.no_docs:
        report.write_docs(DOC, table)
        log(f"table written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
