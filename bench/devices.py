"""Only the "200 devices at one instant" figure of ``bench/run.py``, with 1 and with N worker processes.

    python -m bench.devices                     # the full grid database, 200 devices, 1 and 2 workers
    python -m bench.devices --workers 1 2 4 --quick

It reuses ``bench/run.py``'s scenario (``many_devices``) and database, and writes nothing to
docs/benchmarks.md: the results go to ``bench/results/devices.json`` and the terminal. Each worker
count gets a fresh copy of the same database, so the runs start equal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import run
from .procs import env_info


class CpuWatch:
    """Where the CPU goes while a crowd runs: the server's processes (the one serving ``db`` and its
    children, its workers), this process (the 200 clients), and the whole machine (``/proc/stat``:
    the two cores are shared with other users). Samples every 0.1 s; ``window`` sums over a span."""

    def __init__(self, db: Path) -> None:
        self.db = str(db).encode()
        self.samples: list[tuple[float, float, float, float, float]] = []   # t, server, client, busy, total
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")
        self.seen: dict[int, float] = {}   # pid -> its last CPU seconds (processes that ended keep theirs)

    def _server_cpu(self) -> float:
        parents = set()
        procs: dict[int, tuple[int, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            procs[int(entry)] = (int(stat[1]), (int(stat[11]) + int(stat[12])) / self.tick)
            if b"serve" in cmd and self.db in cmd:
                parents.add(int(entry))
        for pid, (ppid, cpu) in procs.items():
            if pid in parents or ppid in parents:
                self.seen[pid] = cpu
        return sum(self.seen.values())

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            with open("/proc/stat") as fh:
                f = [int(x) for x in fh.readline().split()[1:]]
            total, idle = sum(f) / self.tick, (f[3] + f[4]) / self.tick
            self.samples.append((time.perf_counter(), self._server_cpu(), time.process_time(), total - idle, total))

    def __enter__(self) -> "CpuWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def window(self, t0: float, t1: float) -> dict[str, float]:
        inside = [x for x in self.samples if t0 <= x[0] <= t1]
        if len(inside) < 2:
            return {}
        a, b = inside[0], inside[-1]
        wall = b[0] - a[0]
        return {"wall_s": wall, "server_cpu_s": b[1] - a[1], "client_cpu_s": b[2] - a[2],
                "machine_busy_cores": (b[3] - a[3]) / wall, "machine_cores": (b[4] - a[4]) / wall,
                "others_cores": ((b[3] - a[3]) - (b[1] - a[1]) - (b[2] - a[2])) / wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="the smoke run's scale (20 devices)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per worker count")
    args = ap.parse_args()
    cfg = run.QUICK if args.quick else run.FULL
    work = Path(tempfile.mkdtemp(prefix="gridbook-devices-"))
    out: dict[str, object] = {"machine": env_info(), "devices": cfg.devices, "pushes_per_device": cfg.device_pushes}
    try:
        run.log("building the grid database through the engine")
        db, town, _ = run.build_grid_db(cfg, work)
        for n in args.workers:
            for k in range(args.repeat):
                copy = work / f"devices-{n}-{k}.db"
                shutil.copyfile(db, copy)
                run.log(f"{cfg.devices} devices at once, {n} worker(s), run {k + 1}")
                spans: list[tuple[float, float]] = []
                real_run = asyncio.run

                def timed(coro: Any) -> Any:   # many_devices runs each crowd with asyncio.run
                    t0 = time.perf_counter()
                    try:
                        return real_run(coro)
                    finally:
                        spans.append((t0, time.perf_counter()))
                run.asyncio.run = timed   # type: ignore[assignment]
                try:
                    with CpuWatch(copy) as watch:
                        res = run.many_devices(cfg, copy, town, work, workers=n)
                finally:
                    run.asyncio.run = real_run   # type: ignore[assignment]
                res["cpu"] = watch.window(*spans[0])
                res["spread"]["cpu"] = watch.window(*spans[1])
                out[f"workers_{n}_run_{k + 1}"] = res
                for label, r in (("at once", res), ("spread 5 s", res["spread"])):
                    print(f"workers={n} {label:<10} p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                          f"push p99 {r['push_p99_ms']:7.1f}  pull p99 {r['pull_p99_ms']:7.1f}  "
                          f"sync p99 {r['sync_p99_ms'] or 0:7.1f}  errors {r['errors']}  wall {r['wall_s']:.2f} s",
                          flush=True)
                    c = r["cpu"]
                    if c:
                        print(f"    cpu over {c['wall_s']:.1f} s: server {c['server_cpu_s']:.1f} s, clients "
                              f"{c['client_cpu_s']:.1f} s, other users {c['others_cores'] * c['wall_s']:.1f} s; "
                              f"machine busy {c['machine_busy_cores']:.2f} of {c['machine_cores']:.2f} cores",
                              flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    (run.RESULTS / "devices.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
