"""Quick push and pull rates on the demo town, through a real server process over loopback.

    .venv/bin/python bench/quick_rates.py [--batches 10] [--batch-size 500]

Seeds the demo town into a temporary database, starts `python -m server serve` on a free port,
then measures (gzip on, as the PWA does):
  - pull: worker1's first sync of the whole grid from no cursor, in pages of 500 (records/s, bytes);
  - push: batches of new visits and household edits by worker1 (mutations/s, per batch).
It is not the full benchmark (that is `make bench`); it prints one line each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=500)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gridbook-rates-")
    db = os.path.join(tmp, "demo.db")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "server", "demo", "--db", db], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    seed_s = time.perf_counter() - t0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--db", db, "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            for _ in range(100):
                try:
                    if c.get("/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            tok = c.post("/api/v1/auth/login", json={"username": "worker1", "password": "demo",
                                                     "device_name": "bench"}).json()["token"]
            h = {"Authorization": f"Bearer {tok}", "Accept-Encoding": "gzip"}
            # pull: first sync of the grid
            t0 = time.perf_counter()
            cursor, records, pages, wire = None, 0, 0, 0
            households = []
            while True:
                r = c.get("/api/v1/sync/pull", params={"cursor": cursor, "limit": 500} if cursor else {"limit": 500},
                          headers=h)
                wire += int(r.headers.get("content-length") or len(r.content))
                body = r.json()
                records += len(body["changes"])
                households += [(x["id"], x["version"]) for x in body["changes"] if x["collection"] == "households"]
                pages += 1
                cursor = body["cursor"]
                if not body["more"]:
                    break
            pull_s = time.perf_counter() - t0
            # push: batches of visits and household edits
            now = "2026-11-23T09:00:00+08:00"
            times = []
            for b in range(args.batches):
                muts = []
                for i in range(args.batch_size):
                    hid, ver = households[(b * args.batch_size + i) % len(households)]
                    if i % 2:
                        muts.append({"mid": str(uuid.uuid4()), "collection": "visits", "id": str(uuid.uuid4()),
                                     "op": "upsert", "base": 0, "at": now,
                                     "fields": {"household_id": hid, "visited_at": now,
                                                "narrative": "入户走访，老人身体尚可，反映村道路灯不亮。" * 2,
                                                "checklist": {"left_phone": True, "took_situation": True}}})
                    else:
                        muts.append({"mid": str(uuid.uuid4()), "collection": "households", "id": hid,
                                     "op": "upsert", "base": ver, "at": now,
                                     "fields": {"notes": f"批次{b}走访备注{i}"}})
                payload = gzip.compress(json.dumps({"protocol": 1, "mutations": muts}).encode())
                t1 = time.perf_counter()
                r = c.post("/api/v1/sync/push", content=payload,
                           headers={**h, "Content-Encoding": "gzip", "Content-Type": "application/json"})
                times.append(time.perf_counter() - t1)
                assert r.status_code == 200, r.text
                statuses = {x["status"] for x in r.json()["results"]}
                assert statuses <= {"applied", "merged", "conflict"}, statuses
        total = args.batches * args.batch_size
        print(f"seed: demo town in {seed_s:.1f} s")
        print(f"pull: worker1 first sync {records} records in {pages} pages, {pull_s:.2f} s "
              f"= {records / pull_s:,.0f} records/s, {wire / 1024:,.0f} KiB on the wire (gzip)")
        print(f"push: {total} mutations in {args.batches} batches of {args.batch_size}, {sum(times):.2f} s "
              f"= {total / sum(times):,.0f} mutations/s (median batch {sorted(times)[len(times) // 2] * 1000:.0f} ms)")
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
