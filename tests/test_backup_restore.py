"""Backups that restore (protocol §5, docs/operations.md §5).

- Under load: a real server applies pushes from two phones without pause while ``gridbook
  backup`` (the real command) copies the database three times. Each copy passes
  ``PRAGMA integrity_check``, holds every push batch whole or not at all (never half a batch),
  has its own cursor epoch, and its change counter is ahead of every version in it. (PostgreSQL:
  a backup is a ``pg_dump`` file; each is restored with ``gridbook restore`` into a new database,
  in one transaction that stops at the first error, and the restored database is checked.)
- Restored and served: the server is stopped, the copy is put in place as the docs say and
  served (PostgreSQL: restored into a new, empty database and served from there). A phone whose cursor is newer than the copy (it synced after the backup) and that has
  edits waiting in its outbox pushes them, gets ``410 cursor_expired`` (``reason: epoch``),
  clears its replica, pulls from scratch and ends equal to the restored server, with every edit
  of its outbox answered and none lost — also the edit it made on a version the restored server
  never had.
- In-process, the minimal reproduction of what the restore test found: versions issued by the
  live server after the backup are issued again by the restored one, so a stale edit based on
  such a version would silently overwrite a change it never saw.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import backend
from .conftest import Town, build_town, new_id
from .serverproc import ROOT, Server
from .simclient import CursorExpired, HttpTransport, Ids, SimClient
from . import test_crash
from .test_crash import batch_state, connect_ro, integrity, make_batch, push
from sync import engine


def gridbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


# ------------------------------------------------------------------------------------------------
# in-process: what a restore does to versions


def test_an_edit_based_on_a_version_lost_in_a_restore_does_not_overwrite_changes_it_never_saw(
        town: Town, tmp_path: Path) -> None:
    """The live server goes on after the backup (versions S+1 … S+3) and worker1's phone edits on
    S+3. The restored server must not issue S+1 … S+3 again: once its versions caught up, the
    phone's base would claim to have seen worker2's change made there after the restore, and
    rule 1 of §6 would let the stale value overwrite it without a conflict."""
    hid = town.household("w1", phone="13800000000")
    backup = backend.backup_restored(town.store, tmp_path)
    seen_by_w1 = 0
    for note in ("门前有狗", "独居", "腿脚不便"):   # the live server goes on; worker1 sees each version
        r = town.push1("w1", town.mut("households", hid, {"notes": note}, base=town.version("households", hid)))
        assert r.status == "applied" and r.version is not None
        seen_by_w1 = r.version
    restored = backend.open_store(backup)      # … and the server is restored from the backup
    restored.migrate()
    try:
        def push(who: str, fields: dict[str, Any], base: int | None = None) -> Any:
            if base is None:
                rec = restored.get("households", hid)
                assert rec is not None
                base = rec.version
            body = json.dumps({"protocol": 1, "mutations": [town.mut("households", hid, fields, base=base)]})
            return engine.push(restored, town.actors[who], body.encode()).results[0]

        # worker2 changes the phone number there, then other fields, until the versions pass worker1's base
        assert push("w2", {"phone": "13900000001"}).status == "applied"
        for n in range(2, 6):
            assert push("w2", {"members_count": n}).status == "applied"
        # worker1's phone, offline all along, changes the phone number on what it saw
        res = push("w1", {"phone": "13700000000"}, base=seen_by_w1)
        # it never saw worker2's number: a conflict with both values, not a silent overwrite
        assert res.status == "conflict", res
        c = restored.get("conflicts", res.conflict_id or "")
        assert c is not None and c.data["kind"] == "field"
        assert c.data["fields"]["phone"]["incoming"] == "13700000000"
        assert c.data["fields"]["phone"]["current"] == "13900000001"
        # and an edit of a field nobody changed after the restore goes through (it is not refused
        # as based on a version the restored server never had)
        res = push("w1", {"head_name": "李大妈"}, base=seen_by_w1)
        assert res.status in ("applied", "merged"), res
    finally:
        restored.close()


# ------------------------------------------------------------------------------------------------
# a real server under load, backed up, restored and served


@pytest.fixture
def prepared(tmp_path: Path) -> Iterator[tuple[Any, Town]]:
    db = tmp_path / "gridbook.db" if not backend.POSTGRES else backend.new_db(tmp_path)
    store = backend.open_store(str(db))
    store.migrate()
    town = build_town(store)
    store.close()
    yield db, town


class Load:
    """Two phones push batches (households, each with a resident) as fast as the server takes them."""

    def __init__(self, url: str, town: Town, grid: str) -> None:
        self.url, self.town, self.grid = url, town, grid
        self.stop = threading.Event()
        self.batches: dict[str, list[list[dict[str, Any]]]] = {"w1": [], "w2": []}
        self.answered: dict[str, int] = {"w1": 0, "w2": 0}
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._loop, args=(n,), daemon=True) for n in self.batches]

    def _loop(self, name: str) -> None:
        while not self.stop.is_set():
            batch = make_batch(self.grid, 40)
            self.batches[name].append(batch)
            try:
                results = push(self.url, self.town.tokens[name], batch)["results"]
                assert all(r["status"] == "applied" for r in results)
                self.answered[name] += 1
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))
                return

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


@pytest.mark.slow
def test_backup_under_load_restores_and_a_phone_ahead_of_it_resyncs_keeping_its_outbox(
        prepared: tuple[Any, Town], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, town = prepared
    grid = town.ids["g1"]
    server = Server(db, tmp_path / "server.log")
    url = {"now": ""}
    net = HttpTransport(lambda: url["now"], lambda c: town.tokens[c.name])
    ids = Ids("restore")
    clock = iter(f"2026-11-20T{h:02d}:{m:02d}:00+08:00" for h in range(8, 20) for m in range(60))
    phone = SimClient("w1", clock=lambda: next(clock), new_id=ids)
    backups = [tmp_path / f"backup-{i}.db" for i in range(3)]
    if backend.POSTGRES:
        # a backup is read through the database it restores into (the real command), with the
        # same checks; a restore that does not load whole fails (psql, one transaction)
        monkeypatch.setattr(test_crash, "connect_ro", backend.connect)
        copies: dict[Path, str] = {}

        def readable(dest: Path) -> str:
            if dest not in copies:
                copies[dest] = backend.new_db(tmp_path)
                out = gridbook("restore", "--db", copies[dest], str(dest))
                assert out.returncode == 0, out.stderr
            return copies[dest]
        live = backend.connect
    else:
        def readable(dest: Path) -> str:
            return str(dest)
        live = connect_ro
    try:
        server.start()
        url["now"] = server.url
        # worker1's phone knows a few households
        kept = [phone.create("households", {"grid_id": grid, "address": f"杖锡村上岙{i}号", "head_name": "王阿公"})["id"]
                for i in range(3)]
        assert phone.sync(net)

        # the server runs under load while the backups are taken
        with Load(server.url, town, grid) as load:
            for dest in backups:
                time.sleep(0.3)
                out = gridbook("backup", str(dest), "--db", str(db))
                assert out.returncode == 0, out.stderr
            assert sum(load.answered.values()) > 0, "no push went through during the backups"
        assert not load.errors, load.errors

        with contextlib.closing(live(db)) as conn:
            live_epoch = conn.execute("SELECT value FROM server_meta WHERE key = 'epoch'").fetchone()[0]
        epochs = set()
        for dest in backups:
            if not backend.POSTGRES:
                assert integrity(dest) == "ok", dest
            conn = test_crash.connect_ro(readable(dest))
            try:
                epochs.add(conn.execute("SELECT value FROM server_meta WHERE key = 'epoch'").fetchone()[0])
                seq = conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]
                top = max(conn.execute(f"SELECT coalesce(max(version), 0) FROM {c}").fetchone()[0]
                          for c in ("households", "residents", "conflicts", "users", "areas"))
                assert seq >= top, f"{dest}: the change counter {seq} is behind a version {top}"
            finally:
                conn.close()
            # every batch is in the copy whole or not at all
            states = []
            for name, batches in load.batches.items():
                user_id = town.actors[name].user_id
                for batch in batches:
                    st = batch_state(readable(dest), user_id, batch)
                    full = {"log": len(batch), "households": len(batch) // 2, "residents": len(batch) // 2,
                            "feed": len(batch) // 2}
                    assert st in (full, {k: 0 for k in full}), f"{dest}: half a batch: {st}"
                    states.append(st == full)
            assert any(states), f"{dest} holds none of the load"
        assert len(epochs) == 3 and live_epoch not in epochs, "each backup has its own cursor epoch"
        restore_from = backups[0]   # the oldest: the load went on after it

        # worker1's phone syncs after the backup: its cursor is newer than the copy
        phone.update("households", kept[0], {"notes": "独居"})
        assert phone.sync(net)
        after_backup = phone.replica[("households", kept[0])]["version"]
        # then, offline, it edits: on a version the copy never had, on one it has, and a new household
        waiting = [phone.update("households", kept[0], {"phone": "13700000000"}),
                   phone.update("households", kept[1], {"members_count": 4}),
                   phone.create("households", {"grid_id": grid, "address": "杖锡村下岙9号", "head_name": "李大妈"})]
        assert waiting[0]["base"] == after_backup

        # restore as docs/operations.md §5 says: stop, move the database aside, copy the backup in, start
        server.stop()
        if backend.POSTGRES:
            # PostgreSQL: restore into a new, empty database and serve that (docs/operations.md)
            db = backend.new_db(tmp_path)
            out = gridbook("restore", "--db", db, str(restore_from))
            assert out.returncode == 0, out.stderr
            server.db = db
        else:
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{db}{suffix}").exists():
                    shutil.move(f"{db}{suffix}", tmp_path / f"before-restore{suffix}")
            shutil.copy(restore_from, db)
        server.start()
        url["now"] = server.url

        expired: list[str] = []
        pull = net.pull

        def watching_pull(client: SimClient, cursor: str | None, limit: int) -> dict[str, Any]:
            try:
                return pull(client, cursor, limit)
            except CursorExpired as e:
                expired.append(str(e))
                raise
        net.pull = watching_pull  # type: ignore[method-assign]
        assert phone.sync(net)
        assert expired == ["epoch"], "the phone's cursor from before the restore is refused (epoch)"
        assert not phone.outbox and not phone.inflight
        for m in waiting:
            r = phone.results[m["mid"]]
            assert r["status"] in ("applied", "merged"), f"an edit of the outbox was not applied: {m} -> {r}"
        # the phone holds exactly what the restored server holds for worker1
        store = backend.open_store(str(db))
        try:
            actor = town.actors["w1"]
            snap: dict[tuple[str, str], Any] = {}
            cursor = None
            while True:
                page = engine.pull(store, actor, cursor, 1000)
                snap.update({(c.collection, c.id): json.loads(json.dumps(c.data)) for c in page.changes})
                if not page.more:
                    break
                cursor = page.cursor
            assert phone.live() == snap
            rec = store.get("households", kept[0])
            assert rec is not None and rec.data["phone"] == "13700000000"
            assert store.logged_result(actor.user_id, waiting[2]["mid"]) is not None
            pushed = sum(len(b) for batches in load.batches.values() for b in batches) + len(phone.sent)
            print(f"backup under load: {sum(load.answered.values())} batches answered, {pushed} mutations "
                  f"sent, 3 backups, restored from the first")   # shown with pytest -rP
        finally:
            store.close()
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- server log ---\n{server.log()}") from None
    finally:
        server.stop()


def test_backup_of_a_database_that_does_not_exist_fails_and_creates_nothing(tmp_path: Path) -> None:
    """A mistyped --db in a nightly cron job must fail loudly, not back up a new empty database."""
    if backend.POSTGRES:
        missing = backend.url_of(f"gb_typo_{uuid.uuid4().hex}")
    else:
        (tmp_path / "typo").mkdir()
        missing = str(tmp_path / "typo" / "gridbook.db")
    out = gridbook("backup", str(tmp_path / "backup.db"), "--db", missing)
    assert out.returncode == 1 and "error:" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "backup.db").exists()
    if backend.POSTGRES:
        with contextlib.closing(backend.connect(backend.admin_url())) as c:
            name = missing.rsplit("/", 1)[1].split("?")[0]
            assert c.execute("SELECT count(*) FROM pg_database WHERE datname = ?", (name,)).fetchone()[0] == 0
    else:
        assert not Path(missing).exists()


def test_backup_refuses_to_overwrite(tmp_path: Path) -> None:
    db = backend.new_db(tmp_path)
    with contextlib.closing(backend.open_store(db)) as s:
        s.migrate()
    dest = tmp_path / "backup.db"
    dest.write_bytes(b"yesterday's backup")
    out = gridbook("backup", str(dest), "--db", str(db))
    assert out.returncode == 1 and "exists" in out.stderr
    assert dest.read_bytes() == b"yesterday's backup"


del new_id
