"""Retention: deletions and scope exits are forgotten after the retention; older cursors then expire."""

from __future__ import annotations

import pytest

from sync import engine
from sync.errors import SyncError
from sync.store import iso, utcnow

from .conftest import Town


def drain(town: Town, who: str, cursor: str | None = None) -> str:
    page = engine.pull(town.store, town.actors[who], cursor)
    while page.more:
        page = engine.pull(town.store, town.actors[who], page.cursor)
    return page.cursor


def test_purge_forgets_old_deletions_and_expires_older_cursors(town: Town) -> None:
    hid = town.household()
    old_cursor = drain(town, "w1")
    town.push1("staff", town.mut("households", hid, op="delete", base=town.version("households", hid)))
    fresh_cursor = drain(town, "w1")
    keep = town.household()
    out = town.store.purge(iso(utcnow()))  # everything so far counts as past retention
    assert out["tombstones"] == 1 and town.store.get("households", hid) is None
    with pytest.raises(SyncError) as e:
        engine.pull(town.store, town.actors["w1"], old_cursor)
    assert e.value.code == "cursor_expired" and e.value.details == {"reason": "age"}
    del fresh_cursor
    # a fresh snapshot still has everything alive
    seen = town.pull_all("w1")
    assert ("households", keep) in seen and ("households", hid) not in seen


def test_recent_results_are_kept(town: Town) -> None:
    town.household()
    before = town.store.conn.execute("SELECT count(*) FROM mutation_log").fetchone()[0]
    out = town.store.purge("2000-01-01T00:00:00+00:00")
    assert out == {"tombstones": 0, "exits": 0, "results": 0}
    assert town.store.conn.execute("SELECT count(*) FROM mutation_log").fetchone()[0] == before
