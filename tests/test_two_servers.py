"""Two servers, one database (issue 13): the fault-injection harness with its phones' requests
spread over two ``python -m server serve`` processes at random, as behind a load balancer.

This is the deployment PostgreSQL is for (a city's servers on one database); on SQLite it is two
processes on one file, which SQLite's file locks make one writer at a time. Each request — and
each delivery of a request the proxy duplicates — goes to either server; either is SIGKILLed at
random moments while it serves a request (and restarted in the background, the other serving
meanwhile); requests are dropped, cut, delayed and delivered twice as in ``tests/test_faults.py``.
Every run is checked by the same oracle: nothing lost, nothing applied twice, every replica equal
to its user's scope on the server, every conflict kept with both values; no server logs an error.

Bounded (seeded runs until ``BUDGET_SECONDS``, at least ``MIN_RUNS``); the long version is
``python -m bench.faults --servers 2 --db postgres --runs 200`` (figures in docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults.harness import Harness, Settings

from . import backend

SEED = 20261207
RUNS = 200
MIN_RUNS = 8          # always at least these …
BUDGET_SECONDS = 60   # … and no more started after this long
# Kills are eight times as frequent as in the single-server runs: a kill is what makes the two
# servers differ (one gone mid-push, the other taking the phone's retry), and a few dozen runs
# must meet several of each server's.
SETTINGS = Settings(kill_rate=0.08)


@pytest.mark.slow
def test_two_servers_on_one_database_lose_nothing_and_apply_nothing_twice(tmp_path: Path) -> None:
    with Harness(tmp_path, SEED, SETTINGS, db=backend.new_db(tmp_path), servers=2) as h:
        total = h.runs(0, RUNS, min_runs=MIN_RUNS, max_seconds=BUDGET_SECONDS)
        log = h.log() if total.failed or total.server_errors else ""
    print(f"two servers ({backend.BACKEND}): {total.runs} runs, {total.requests} requests "
          f"{dict(total.served)}, {total.faults_injected} faults ({dict(total.faults)}), kills {dict(total.killed)}, "
          f"{total.mutations} mutations ({dict(total.results)}), losses {total.losses}, duplicates "
          f"{total.duplicates}, {total.seconds:.0f} s")   # shown with pytest -rP
    assert not total.failed, "\n\n".join(total.failed[:3]) + f"\n--- server logs ---\n{log}"
    assert total.losses == 0 and total.duplicates == 0
    assert total.server_errors == 0, log
    # both servers took requests, both were killed mid-request, and the phones went on through the other
    assert min(total.served["server0"], total.served["server1"]) > total.requests / 4, dict(total.served)
    assert total.killed["server0"] > 0 and total.killed["server1"] > 0, dict(total.killed)
    assert total.faults["duplicate"] > 0 and total.faults["drop_response"] > 0 and total.resends > 0
    assert total.results["applied"] > 0 and total.results["conflict"] + total.results["merged"] > 0
