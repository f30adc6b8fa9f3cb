"""The benchmark's code works (not its numbers: those belong in docs/benchmarks.md, never in asserts).

- the link proxy's request counter understands keep-alive, Content-Length and chunked bodies
  however the bytes are split;
- the workload generator is deterministic, and the same content comes under other ids per salt;
- ``python -m bench.run --quick`` runs every scenario end to end at a tiny scale — our server and
  client, the PouchDB peer, the link proxy, the growing database, the crowd of devices, the PWA in
  Chromium — and what it reports holds together (same records on both sides, no errors).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import workload
from bench.linkproxy import HttpRequestCounter
from bench.serverdb import Town, record_count

ROOT = Path(__file__).resolve().parent.parent

STREAM = (b"POST /api/v1/sync/push HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"a\":\r\n\r\n1}\r\n"
          b"GET /api/v1/sync/pull?limit=500 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"POST /db/_bulk_docs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"5\r\nhello\r\n3;ext=1\r\n\r\n\r\r\n0\r\n\r\n"
          b"GET /db/_changes HTTP/1.1\r\n\r\n")


@pytest.mark.parametrize("step", [1, 2, 7, len(STREAM)])
def test_request_counter_counts_each_request_once(step: int) -> None:
    c = HttpRequestCounter()
    for i in range(0, len(STREAM), step):
        c.feed(STREAM[i:i + step])
    assert c.count == 4
    assert c.state == "head" and c.buf == b""


def test_workload_is_deterministic_and_salted() -> None:
    a1 = workload.grid_mutations("g", ("w1", "w2"), "s", salt="a", scale=0.02)
    a2 = workload.grid_mutations("g", ("w1", "w2"), "s", salt="a", scale=0.02)
    b = workload.grid_mutations("g", ("w1", "w2"), "s", salt="b", scale=0.02)
    assert a1.pushes == a2.pushes
    fields = lambda w: [[m["fields"].get("narrative") or m["fields"].get("notes") for m in ms] for _, ms in w.pushes]
    assert fields(a1) == fields(b)                       # the same text …
    assert set(a1.households).isdisjoint(b.households)   # … under other ids


def test_workload_pushes_cleanly_through_the_engine(tmp_path: Path) -> None:
    town = Town.create(str(tmp_path / "t.db"))
    grid = town.add_grid("g1", "a", scale=0.02)          # raises unless every mutation is applied
    day = workload.field_day(grid.work, grid.workers, "staff1", phone_edits=6, other_changes=10)
    assert len(day.phone) == 6 and len(day.elsewhere) == 10
    assert record_count(town.store) >= grid.work.count()
    town.store.close()


def test_quick_bench_runs_every_scenario(tmp_path: Path) -> None:
    # make test installs node and npm (the Makefile's node target): the PouchDB peer is never skipped
    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed: run make test (or make node)"
    r = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--no-docs", "--results", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads((tmp_path / "quick.json").read_text())
    fs, fd = out["first_sync"], out["field_day"]
    for profile in ("none", "3g"):
        for ours, pouch in zip(fs["ours"][profile], fs["pouch"][profile]):
            assert ours["records"] == pouch["records"] == out["floor"]["records"] > 0
            assert ours["requests"] >= 2 and pouch["requests"] > 0 and ours["down"] > 0
        for run in fd["ours"][profile]:
            assert run["statuses"] == ["applied"] and run["pushed"] == out["config"]["phone_edits"]
            assert run["requests"] <= 3                  # one push, one pull page: nothing conflicts
        for run in fd["pouch"][profile]:
            assert run["pulled"] > 0 and run["pushed"] > 0
    assert 0 < out["floor"]["gzip_bytes"] < out["floor"]["json_bytes"]
    assert all(len(v["ours"]) == len(v["pouch"]) == 2 for k, v in out["writes"].items() if k.isdigit())
    assert out["devices"]["errors"] == 0 and out["devices"]["requests"] >= out["devices"]["devices"] * 2
    assert out["pwa"]["replica"]["households"] > 0 and out["pwa"]["shell"]["gzip_bytes"] > 0
    assert out["pwa"]["apply"]["changes"] == 1000
    cps = out["county"]["checkpoints"]
    assert [c["target"] for c in cps] == [1000, 3000] and all(c["records"] >= c["target"] for c in cps)
    table = (tmp_path / "quick.md").read_text()
    assert "**Targets**" in table and "PouchDB" in table


def test_county_dataset_builds_through_the_engine(tmp_path: Path) -> None:
    """bench/county.py at a tiny scale: the real area tree, every mutation applied (it raises
    otherwise), the workflow's statuses, cached by its parameters."""
    import sqlite3
    from datetime import date

    from bench import county
    (code, name), towns = county.read_areas()
    assert (code, name) == ("330203", "海曙区") and len(towns) == 17
    assert sum(len(t.villages) for t in towns) == 280
    assert "杖锡村" in {v.name for t in towns for v in t.villages}
    assert county.id_number("110105", date(1949, 12, 31), 1, True) == "11010519491231002X"   # GB 11643's example
    path, meta = county.ensure(scale=0.01, towns=1, results=tmp_path, log=lambda m: None)
    assert not meta["cached"] and path.exists()
    c = sqlite3.connect(path)
    levels = dict(c.execute("SELECT json_extract(data, '$.level'), count(*) FROM areas GROUP BY 1").fetchall())
    assert levels["county"] == 1 and levels["town"] == 1 and levels["grid"] >= levels["village"] == len(towns[0].villages)
    assert c.execute("SELECT count(*) FROM households").fetchone()[0] == meta["counts"]["households"] > 0
    statuses = {r[0] for r in c.execute("SELECT json_extract(data, '$.status') FROM matters")}
    assert {"submitted", "closed", "in_progress"} <= statuses
    assert c.execute("SELECT count(*) FROM matters WHERE json_extract(data, '$.deadline') IS NOT NULL").fetchone()[0]
    c.close()
    again, meta2 = county.ensure(scale=0.01, towns=1, results=tmp_path, log=lambda m: None)
    assert again == path and meta2["cached"]
