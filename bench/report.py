"""The results of ``bench.run`` as the Markdown table of docs/benchmarks.md, with the targets checked."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"
LINK = {"none": "loopback", "3g": "3G (1 Mbit/s, 100 ms)", "2g": "2G (64 kbit/s, 200 ms)"}


def med(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def spread(runs: list[dict[str, Any]], key: str, fmt: str = "{:.2f}") -> str:
    vals = [r[key] for r in runs]
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def kb(n: float) -> str:
    return f"{n / 1000:,.0f} kB" if n >= 10_000 else f"{n / 1000:,.1f} kB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "–"


def ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def _sync_table(title: str, data: dict[str, Any], extra: list[str]) -> list[str]:
    ours, pouch = data["ours"], data["pouch"]
    lines = [f"**{title}**", "", "| figure | ours | PouchDB | ours ÷ PouchDB |", "|---|---:|---:|---:|"]
    for p in ours:
        lines.append(f"| wall time, {LINK[p]} (s) | {spread(ours[p], 's')} | {spread(pouch[p], 's')} | "
                     f"{ratio(med(ours[p], 's'), med(pouch[p], 's'))} |")
    p0 = next(iter(ours))
    for key, label in (("down", "bytes down"), ("up", "bytes up")):
        a, b = med(ours[p0], key), med(pouch[p0], key)
        lines.append(f"| {label} | {kb(a)} | {kb(b)} | {ratio(a, b)} |")
    a = med(ours[p0], "down") + med(ours[p0], "up")
    b = med(pouch[p0], "down") + med(pouch[p0], "up")
    lines.append(f"| bytes on the wire, both ways | {kb(a)} | {kb(b)} | {ratio(a, b)} |")
    a, b = med(ours[p0], "requests"), med(pouch[p0], "requests")
    lines.append(f"| HTTP requests | {a:.0f} | {b:.0f} | {ratio(a, b)} |")
    def kinds(run: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(run.get("kinds", {}).items(), key=lambda kv: -kv[1]))
    lines.append(f"| requests by kind (first run) | {kinds(ours[p0][0])} | {kinds(pouch[p0][0])} | |")
    for p in ours:
        a, b = med(ours[p], "connections"), med(pouch[p], "connections")
        ra, rb = med(ours[p], "retries"), med(pouch[p], "retries")
        lines.append(f"| TCP connections, {LINK[p].split(' ')[0]} (requests sent again after the server closed "
                     f"an idle kept-alive connection) | {a:.0f} ({ra:.0f}) | {b:.0f} ({rb:.0f}) | |")
    return lines + extra + [""]


def table(r: dict[str, Any]) -> str:
    m = r["machine"]
    L: list[str] = []
    L.append(f"Run of {r['date']}{' (quick mode: tiny scale, not a result)' if r['quick'] else ''}; "
             f"{r['total_s'] / 60:.1f} min in all. Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
             f"Linux {m['kernel']}, Python {m['python']}, SQLite {m['sqlite']}, {m['chromium']}; peer: {r['peer']}. "
             f"Load average {r['loadavg_start'][0]:.1f} at the start, {r['loadavg_end'][0]:.1f} at the end "
             f"(the machine is shared). Figures: median (min–max) of {r['config']['runs']} runs.")
    L.append("")
    fl = r["floor"]
    fs, fd = r["first_sync"], r["field_day"]
    g = r["grid_db"]
    p0 = next(iter(fs["ours"]))
    ours_bytes = med(fs["ours"][p0], "down") + med(fs["ours"][p0], "up")
    pouch_bytes = med(fs["pouch"][p0], "down") + med(fs["pouch"][p0], "up")
    extra = [f"| gzip floor (scenario 7) | {kb(fl['gzip_bytes'])} | | ours ÷ floor {ratio(ours_bytes, fl['gzip_bytes'])}, "
             f"PouchDB ÷ floor {ratio(pouch_bytes, fl['gzip_bytes'])} |"]
    v = fs.get("ours_page500")
    if v:
        vb = v[p0][0]["down"] + v[p0][0]["up"]
        times = ", ".join(f"{LINK[p].split(' ')[0]} {v[p][0]['s']:.2f} s" for p in v)
        extra.append(f"| ours with pages of 500, as before (one run): bytes, requests, time | {kb(vb)} "
                     f"({ratio(vb, fl['gzip_bytes'])} of the floor), {v[p0][0]['requests']} requests; {times} | | |")
    L += _sync_table(f"1. First sync of a grid onto an empty phone ({fl['records']:,} records)",
                     {"ours": fs["ours"], "pouch": fs["pouch"]}, extra)
    day = r["config"]
    L += _sync_table(f"2. A field day's sync (push {day['phone_edits']} edits made on the phone, pull the "
                     f"{day['other_changes']} changes made elsewhere)", fd, [
        f"| records pushed / pulled | {fd['ours'][p0][0]['pushed']} / {fd['ours'][p0][0]['pulled']} | "
        f"{fd['pouch'][p0][0]['pushed']} / {fd['pouch'][p0][0]['pulled']} docs | |"])
    w = r["writes"]
    raw = statistics.median(w["raw_sqlite"])
    L += ["**3. Server writes** (new records over loopback HTTP; ours: push with idempotency log, merge "
          "metadata, scope keys and change feed, gzip; PouchDB: `_bulk_docs`)", "",
          "| batch | ours (records/s) | PouchDB (records/s) | ours ÷ PouchDB | raw SQLite ÷ ours |", "|---:|---:|---:|---:|---:|"]
    for b in [k for k in w if k.isdigit()]:
        o, p = w[b]["ours"], w[b]["pouch"]
        L.append(f"| {b} | {statistics.median(o):,.0f} ({min(o):,.0f}–{max(o):,.0f}) | "
                 f"{statistics.median(p):,.0f} ({min(p):,.0f}–{max(p):,.0f}) | "
                 f"{ratio(statistics.median(o), statistics.median(p))} | {raw / statistics.median(o):.1f}× |")
    L += [f"| raw SQLite (the old limit row, kept for comparison) | {raw:,.0f} records/s: the same {w['raw_rows']:,} "
          f"rows (id, collection, JSON) into an empty three-column table in one transaction, WAL, synchronous FULL "
          f"| | | |"]
    lim = w.get("schema_limit")
    o500 = statistics.median(w.get("500", w[[k for k in w if k.isdigit()][-1]])["ours"])
    if lim:
        lr = [x["rate"] for x in lim]
        L.append(f"| the schema's limit, SQLite | {statistics.median(lr):,.0f} records/s ({min(lr):,.0f}–{max(lr):,.0f}): "
                 f"the rows the engine itself wrote for {lim[0]['records']:,} records (record, {lim[0]['feed_rows']:,} "
                 f"change-feed rows, push results, counter), prebuilt, inserted by SQL alone in transactions of 500; "
                 f"ours at batch 500 ÷ this = {o500 / statistics.median(lr):.2f}× | | | |")
    pgr = r.get("postgres")
    if pgr:
        po = pgr["writes_500"]
        pouch500 = statistics.median(w.get("500", w[[k for k in w if k.isdigit()][-1]])["pouch"])
        pl = [x["rate"] for x in pgr["schema_limit"]]
        L.append(f"| 500, PostgreSQL {pgr['version']} | {statistics.median(po):,.0f} ({min(po):,.0f}–{max(po):,.0f}) | "
                 f"(above) | {ratio(statistics.median(po), pouch500)} | |")
        L.append(f"| the schema's limit, PostgreSQL | {statistics.median(pl):,.0f} records/s ({min(pl):,.0f}–{max(pl):,.0f}); "
                 f"ours on PostgreSQL ÷ this = {statistics.median(po) / statistics.median(pl):.2f}× | | | |")
    L.append("")
    c = r["county"]
    L += ["**4. Pull page latency for one grid as the server database grows** (a grid worker's first sync, "
          "pages of 500, loopback; \"tail\" = an up-to-date phone pulling again)", "",
          "| server records | grids | p50 page (ms) | p95 page (ms) | tail p50 (ms) | tail p95 (ms) | built after (s) |",
          "|---:|---:|---:|---:|---:|---:|---:|"]
    cps = {str(x["target"]): x for x in c["checkpoints"]}
    for k, v in c["latency"].items():
        cp = cps.get(k, {})
        L.append(f"| {cp.get('records', int(k)):,} | {cp.get('grids', '?')} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} | "
                 f"{v['tail_p50_ms']:.1f} | {v['tail_p95_ms']:.1f} | {cp.get('build_s', 0):.0f} |")
    keys = list(c["latency"])
    p95_lo, p95_hi = c["latency"][keys[0]]["p95_ms"], c["latency"][keys[-1]]["p95_ms"]
    L += [f"| p95 ratio, largest ÷ smallest | | | {p95_hi / p95_lo:.2f}× | | | "
          f"{'(database reused from bench/results/)' if c.get('cached') else ''} |"]
    pg_c = (r.get("postgres") or {}).get("county") or {}
    for k, v in pg_c.items():
        cp = cps.get(k, {})
        L.append(f"| {cp.get('records', int(k)):,}, PostgreSQL | {cp.get('grids', '?')} | {v['p50_ms']:.1f} | "
                 f"{v['p95_ms']:.1f} | {v['tail_p50_ms']:.1f} | {v['tail_p95_ms']:.1f} | copied in {v['copy_s']:.0f} |")
    if len(pg_c) > 1:
        pk = list(pg_c)
        L.append(f"| p95 ratio on PostgreSQL, largest ÷ smallest | | | "
                 f"{pg_c[pk[-1]]['p95_ms'] / pg_c[pk[0]]['p95_ms']:.2f}× | | | |")
    L.append("")
    d = r["devices"]
    L += [f"**5. {d['devices']} devices syncing on loopback** (each up to date; pushes "
          f"{r['config']['device_pushes']} new visits, then pulls what the others pushed)", "",
          "| arrivals | requests | wall (s) | requests/s | mutations/s | p50 / p99 request (ms) | p50 / p99 push (ms) | "
          "p50 / p99 pull page (ms) | p99 whole sync (ms) | errors |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pd = (r.get("postgres") or {}).get("devices")
    wk = f"SQLite, {d.get('workers', 1)} worker{'s' if d.get('workers', 1) > 1 else ''}: "
    crowds = [(wk + "all at one instant", d), (wk + f"spread evenly over {d.get('spread', {}).get('spread_s', 0):.0f} s",
                                               d.get("spread"))]
    if pd:
        crowds += [(f"PostgreSQL, {pd.get('servers', 1)} servers: all at one instant", pd),
                   ("PostgreSQL, spread", pd.get("spread"))]
    for label, x in crowds:
        if not x:
            continue
        L.append(f"| {label} | {x['requests']} | {x['wall_s']:.2f} | {x['req_per_s']:.0f} | {x['mutations_per_s']:.0f} | "
                 f"{x['p50_ms']:.0f} / {x['p99_ms']:.0f} | {x.get('push_p50_ms', 0):.0f} / {x.get('push_p99_ms', 0):.0f} | "
                 f"{x.get('pull_p50_ms', 0):.0f} / {x.get('pull_p99_ms', 0):.0f} | {x['sync_p99_ms'] or 0:.0f} | "
                 f"{x['errors']} |")
    L.append("")
    pw = r["pwa"]
    o1, o4, ap = pw["open_offline_ms_cpu1x"], pw["open_offline_ms_cpu4x"], pw["apply"]
    L += ["**6. The PWA in headless Chromium**", "", "| figure | value |", "|---|---:|",
          f"| app shell, as sent gzipped ({pw['shell']['files']} files; {kb(pw['shell']['raw_bytes'])} raw) | "
          f"{kb(pw['shell']['gzip_bytes'])} |",
          f"| open offline to the first household row, browser restarted (ms) | {o1['median']:.0f} ({o1['min']:.0f}–{o1['max']:.0f}) |",
          f"| the same, CPU slowed 4× (ms) | {o4['median']:.0f} ({o4['min']:.0f}–{o4['max']:.0f}) |",
          f"| `applyPage` into IndexedDB, {ap['changes']:,} changes in {ap['pages']} pages (changes/s) | "
          f"{ap['per_s']['median']:,.0f} ({ap['per_s']['min']:,.0f}–{ap['per_s']['max']:,.0f}) |", ""]
    L += ["**7. The information floor**", "", f"The grid's {fl['records']:,} records as one compact JSON array "
          f"(ids and fields, no versions): {kb(fl['json_bytes'])}; gzip -9: **{kb(fl['gzip_bytes'])}**. "
          f"Ours sends {ratio(ours_bytes, fl['gzip_bytes'])} of it, PouchDB {ratio(pouch_bytes, fl['gzip_bytes'])}.", ""]
    # targets
    has2g = "2g" in fs["ours"]
    slow = "2g" if has2g else list(fs["ours"])[-1]
    t_fs = med(fs["ours"][slow], "s") / med(fs["pouch"][slow], "s")
    t_fd = med(fd["ours"][slow], "s") / med(fd["pouch"][slow], "s")
    req_fs = med(fs["ours"][p0], "requests") / med(fs["pouch"][p0], "requests")
    w500 = w.get("500", w[[k for k in w if k.isdigit()][-1]])
    wr = statistics.median(w500["ours"]) / statistics.median(w500["pouch"])
    rawr = raw / statistics.median(w500["ours"])
    L += ["**Targets**", "", "| target | measured | |", "|---|---:|---|",
          f"| first sync bytes within 1.15× of the gzip floor | {ratio(ours_bytes, fl['gzip_bytes'])} | "
          f"{ok(ours_bytes <= 1.15 * fl['gzip_bytes'])} |",
          f"| first sync bytes at most 1/3 of PouchDB's | {ratio(ours_bytes, pouch_bytes)} | {ok(ours_bytes * 3 <= pouch_bytes)} |",
          f"| first sync requests at most 1/10 of PouchDB's | {req_fs:.3f}× | {ok(req_fs <= 0.1)} |",
          f"| first sync on {slow.upper()} at most 1/4 of PouchDB's time | {t_fs:.2f}× | {ok(t_fs <= 0.25)} |",
          f"| field day on {slow.upper()} at most 1/3 of PouchDB's time | {t_fd:.2f}× | {ok(t_fd <= 1 / 3)} |",
          f"| field day in at most 3 requests | {med(fd['ours'][p0], 'requests'):.0f} | "
          f"{ok(med(fd['ours'][p0], 'requests') <= 3)} |",
          f"| writes at batch 500, SQLite, at least 1.5× PouchDB's (aim 3×) | {wr:.2f}× | {ok(wr >= 1.5)} |",
          *([f"| writes at batch 500, PostgreSQL, at least 0.5× PouchDB's | {pgw:.2f}× | {ok(pgw >= 0.5)} |"]
            if (pgw := _pg_writes(r, w500)) is not None else []),
          *([f"| writes at least 0.5× the schema's own limit (SQLite) | {lim_r:.2f}× | {ok(lim_r >= 0.5)} |"]
            if (lim_r := _limit_ratio(w, w500)) is not None else []),
          f"| writes within 8× of raw SQLite (the old aim) | raw is {rawr:.1f}× ours | {ok(rawr <= 8)} |",
          f"| pull p95 at the largest database within 1.2× of the smallest, SQLite | {p95_hi / p95_lo:.2f}× | "
          f"{ok(p95_hi <= 1.2 * p95_lo)} |",
          *([f"| the same on PostgreSQL | {pgc_r:.2f}× | {ok(pgc_r <= 1.2)} |"]
            if (pgc_r := _pg_pull_ratio(r)) is not None else []),
          f"| {d['devices']} devices at one instant, SQLite, {d.get('workers', 1)} worker(s): zero errors, p99 under 1 s | "
          f"{d['errors']} errors, p99 {d['p99_ms']:.0f} ms | "
          f"{ok(d['errors'] == 0 and d['p99_ms'] < 1000)} |",
          *([f"| the same on PostgreSQL with {pd.get('servers', 1)} servers: zero errors, p99 under 1.5 s | "
             f"{pd['errors']} errors, p99 {pd['p99_ms']:.0f} ms | {ok(pd['errors'] == 0 and pd['p99_ms'] < 1500)} |"]
            if pd else []),
          f"| shell under 150 KB gzipped | {kb(pw['shell']['gzip_bytes'])} | {ok(pw['shell']['gzip_bytes'] < 150_000)} |",
          f"| opens offline in under 1 s | {o1['median']:.0f} ms | {ok(o1['median'] < 1000)} |",
          f"| applies at least 5,000 changes/s into IndexedDB | {ap['per_s']['median']:,.0f}/s | "
          f"{ok(ap['per_s']['median'] >= 5000)} |", ""]
    L.append(f"Grid database: {g['grids']} grids of {g['records_per_grid']:,} records, built through the engine in "
             f"{g['build_s']:.1f} s.")
    return "\n".join(L) + "\n"


def _pg_writes(r: dict[str, Any], w500: dict[str, Any]) -> float | None:
    pgr = r.get("postgres")
    if not pgr:
        return None
    return float(statistics.median(pgr["writes_500"]) / statistics.median(w500["pouch"]))


def _pg_pull_ratio(r: dict[str, Any]) -> float | None:
    c = (r.get("postgres") or {}).get("county") or {}
    if len(c) < 2:
        return None
    k = list(c)
    return float(c[k[-1]]["p95_ms"] / c[k[0]]["p95_ms"])


def _limit_ratio(w: dict[str, Any], w500: dict[str, Any]) -> float | None:
    lim = w.get("schema_limit")
    if not lim:
        return None
    return float(statistics.median(w500["ours"]) / statistics.median(x["rate"] for x in lim))


def write_docs(doc: Path, tbl: str) -> None:
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{tbl}{END}{tail}")
