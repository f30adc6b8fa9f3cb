"""The .xlsx export of the matters list at county scale (issue 14 target: 100,000 matters in < 15 s,
memory < 200 MB).

    python -m bench.export_bench --matters 100000            # builds bench/results/export-<n>.db once
    python -m bench.export_bench --matters 100000 --measure  # (run by the line above in a fresh process)

The database is the demo town plus ``--matters`` matters on its households, created through the
engine as the households' grid workers (500 to a push, as a phone's outbox). The export is measured
in a fresh process, through the console as ``staff1`` (in-process test client, the whole list, no
filter): wall time, the workbook's size and rows, and the process's peak resident memory
(``ru_maxrss``), which includes the interpreter, the app and the response bytes the client holds.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def build(db: Path, matters: int) -> None:
    from server.demo import PASSWORD, seed
    from sync import accounts, engine
    from sync.store import open_store

    store = open_store(str(db))
    store.migrate()
    seed(store)
    homes: dict[str, list[str]] = {}
    for hid, d in store.live_records("households"):
        homes.setdefault(d["grid_id"], []).append(hid)
    workers = [(rid, d) for rid, d in store.live_users() if d.get("role") == "grid_worker"]
    actors = {}
    for rid, d in workers:
        for g in d.get("areas") or []:
            if g in homes and g not in actors:
                actors[g] = accounts.authenticate(store, accounts.login(store, d["username"], PASSWORD, "bench").token)
    grids = sorted(actors)
    made, k = store.live_count("matters"), 0
    t0 = time.perf_counter()
    while made < matters:
        g = grids[k % len(grids)]
        n = min(500, matters - made)
        muts = [{"mid": str(uuid.uuid4()), "collection": "matters", "id": str(uuid.uuid4()), "op": "upsert", "base": 0,
                 "at": "2026-11-20T09:00:00+08:00",
                 "fields": {"household_id": homes[g][(k * 7 + i) % len(homes[g])], "title": f"县域压测事项{made + i}",
                            "description": "群众反映村道路灯不亮，夜间出行不便，希望尽快修复。", "channel": "visit",
                            "raised_at": f"2026-{1 + (made + i) % 11:02d}-{1 + (made + i) % 28:02d}T09:00:00+08:00"}}
                for i in range(n)]
        res = engine.push(store, actors[g], json.dumps({"protocol": 1, "mutations": muts}).encode()).results
        assert all(r.status == "applied" for r in res), res[:2]
        made += n
        k += 1
    print(f"built {db}: {made} matters ({time.perf_counter() - t0:.0f} s for the added ones)", flush=True)
    store.close()


def measure(db: Path) -> dict[str, float]:
    import openpyxl
    from litestar.testing import TestClient

    from server.app import create_app
    from server.settings import Settings

    app = create_app(Settings(db=str(db), blob_dir=str(db) + ".blobs", pwa_dir=str(db) + ".no-pwa"))
    with TestClient(app, base_url="http://bench.local") as c:
        page = c.get("/staff/login")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token
        c.post("/staff/login", data={"username": "staff1", "password": "demo", "csrf": token.group(1)})
        t0 = time.perf_counter()
        r = c.get("/staff/matters/export?format=xlsx")
        seconds = time.perf_counter() - t0
        assert r.status_code == 200, r.text[:300]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ws = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
        rows = sum(1 for _ in ws.iter_rows()) - 2
    return {"rows": rows, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1),
            "xlsx_mb": round(len(r.content) / 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--matters", type=int, default=100_000)
    ap.add_argument("--measure", action="store_true", help="measure only (in this process)")
    args = ap.parse_args()
    db = RESULTS / f"export-{args.matters}.db"
    if args.measure:
        print(json.dumps(measure(db)))
        return
    RESULTS.mkdir(exist_ok=True)
    if not db.exists():
        build(db, args.matters)
    out = subprocess.run([sys.executable, "-m", "bench.export_bench", "--matters", str(args.matters), "--measure"],
                         check=True, capture_output=True, text=True)
    print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
