"""Fault-injection runs: simulated phones sync with a real server through a faulty proxy.

A *run* is one seeded scenario. The server's database is reset to a small town (the one of
``tests/conftest.build_town``: two grids of one village, two grid workers, the village's proxy
agent, the town's staff); K phones (3–8: those users' phones, some users with two unlinked
phones) make random offline edits on the same few records — field edits that clash, tag adds
and removes, creates, deletes, visits and re-sent visits, matter status moves, dispatches,
households moved between grids, invalid values, conflict resolutions, a user's areas changed —
and sync through :class:`~bench.faults.proxy.FaultProxy`, which drops requests, cuts them
mid-body, drops or cuts answers after the server handled them, delays, delivers twice, and now
and then kills the server with SIGKILL mid-request (it is restarted at once); some runs also
begin with a graceful restart. At the end the phones sync, with the faults still on, until a
whole round goes through with nothing left to push (quiescent).

The oracle is the model of ``tests/test_convergence.py`` (protocol §4/§6 written from the
text, not from the engine), fed with every push the server committed, in server order — read
from the database after each push whose answer was lost, since the phone cannot know. It
checks every result as it is first recorded, then at the end: every replica equals its user's
scope on the server record by record; every mutation has exactly one ``mutation_log`` row and
the phone holds the result recorded first, a replay of everyone's history changes nothing;
append-only records exist once; every rejection is a ``conflicts`` record on its author's
phone; every conflict names its fields with both values and reaches everyone involved.
Besides, the figures count losses and duplicates straight from the database.

The server processes live for a whole batch of runs (starting one costs more than a run). There
may be several on the one database (``servers``: what a city runs on PostgreSQL, or several
processes on one SQLite file); the proxy then sends each request, and each delivery of a
duplicated one, to one of them at random, as a load balancer would, and a kill takes down the
one serving the request while the others go on serving (it is restarted in the background, and
requests go to the living ones meanwhile). The database is a SQLite path or a ``postgresql://``
URL of an empty database (``db``); the harness builds the town in it and writes the town back
over it before each run (:class:`Snapshot`).
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sync.catalogue import install_catalogue
from sync.scope import Actor
from sync.store import SQLiteStore, is_postgres, loads, open_store
from tests.serverproc import Server
from tests.simclient import CursorExpired, HttpTransport, LostResponse, SimClient
from tests.test_convergence import KINDS, Template, World, build_template
from tests.test_convergence import run as run_program

from .proxy import Fault, FaultProxy

# the phones a run picks from: K of them, the first three always (the staff phone dispatches)
PHONES = ("w1", "w2", "staff", "agent", "w1b", "w2b", "staff2", "agent2")
# what the proxy does to a request that it faults (kill is decided apart: it costs a restart)
FAULTS = ("delay", "drop_request", "cut_request", "drop_response", "cut_response", "duplicate")
MAX_ROUNDS = 60   # rounds of everyone syncing before a run is declared not quiescent


@dataclass
class Settings:
    fault_rate: float = 0.3      # share of requests that get one of FAULTS
    kill_rate: float = 0.01      # share of pushes (a quarter of that of pulls) during which the server is killed
    restart_rate: float = 0.01   # share of runs that begin with a graceful restart
    min_steps: int = 6
    max_steps: int = 16


@dataclass
class Figures:
    runs: int = 0
    failed: list[str] = field(default_factory=list)
    phones: int = 0
    steps: int = 0
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restarts: int = 0
    results: Counter[str] = field(default_factory=Counter)   # applied / merged / conflict / rejected
    conflicts: Counter[str] = field(default_factory=Counter)  # kind -> conflicts recorded and checked
    both_values: int = 0          # field conflicts whose record held both values, checked with the model
    rejections_seen: int = 0      # rejections found on their author's phone
    resends: int = 0              # batches a phone sent again after losing the answer
    cursor_expired: int = 0
    rounds_to_quiescence: int = 0
    served: Counter[str] = field(default_factory=Counter)     # server -> requests delivered to it
    killed: Counter[str] = field(default_factory=Counter)     # server -> times it was SIGKILLed
    losses: int = 0               # mutations with no recorded result at the end
    duplicates: int = 0           # mutations with more than one effect (log rows, conflict records, replays)
    server_errors: int = 0        # ERROR lines and tracebacks in the server's log (a 500 is a defect)
    seconds: float = 0.0

    def add(self, other: "Figures") -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(value, Counter):
                mine.update(value)
            elif isinstance(value, list):
                mine.extend(value)
            else:
                setattr(self, name, mine + value)

    @property
    def mutations(self) -> int:
        return sum(self.results.values())

    @property
    def faults_injected(self) -> int:
        return sum(n for k, n in self.faults.items() if k in (*FAULTS, "kill")) + self.restarts


class FaultWorld(World):
    """The convergence test's world, with its server a real process behind the faulty proxy."""

    def __init__(self, t: Template, store: SQLiteStore, devices: tuple[str, ...], net: HttpTransport,
                 salt: str) -> None:
        super().__init__(t, store, devices, salt)
        self.net = net
        self.expired = 0

    def send_push(self, actor: Actor, client: SimClient, mutations: list[dict[str, Any]],
                  lo: int) -> list[dict[str, Any]]:
        try:
            return self.net.push(client, mutations)
        except LostResponse:
            # The phone cannot tell whether the server applied it; the oracle can, from the log,
            # once no write transaction is left in flight (a killed server's, on PostgreSQL).
            settle(self.store)
            logged = [self.store.logged_result(actor.user_id, m["mid"]) for m in mutations]
            done = [r is not None for r in logged]
            assert all(done) or not any(done), f"part of a batch is in mutation_log: {done}"
            if all(done):
                self.record(actor, client.name, mutations, logged, lo)   # type: ignore[arg-type]
                self.trace.append("  (answer lost after the server committed)")
            else:
                self.trace.append("  (lost before the server committed)")
            raise

    def fetch_page(self, client: SimClient, cursor: str | None, limit: int) -> dict[str, Any]:
        try:
            return self.net.pull(client, cursor, limit)
        except CursorExpired:
            self.expired += 1
            raise

    def close(self) -> None:
        pass   # the store belongs to the harness

    def finish(self) -> None:
        # sync through the faults until one whole round goes through with nothing left to push
        for rounds in range(1, MAX_ROUNDS + 1):
            idle = all(not self.clients[n].pending() for n in self.devices)
            if all([self.sync(n) for n in self.devices]) and idle:
                break
        else:
            raise AssertionError(f"not quiescent after {MAX_ROUNDS} rounds")
        self.rounds = rounds
        super().finish()


def _seed(seed: int, i: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big")


def settle(store: SQLiteStore) -> None:
    """Wait until no write transaction is in flight. On PostgreSQL a killed server's transaction
    lives on in its backend until the backend notices the dead client; every write transaction
    locks the clock row first, so taking that lock waits for it to commit or roll back. (On SQLite
    the dead process's transaction is gone with it: there is nothing to wait for.)"""
    if is_postgres(store.path):
        with store.transaction():
            pass   # PostgresStore._begin_write locks the clock row


class Snapshot:
    """The database as a run begins (the town, signed in), written back over the live database
    before each run. SQLite: a copy in memory and the backup API. PostgreSQL: every table's rows
    (the generated columns left to the database), written back in one transaction that holds the
    clock row like any writer; the identity column of ``audit`` is set past its rows."""

    def __init__(self, store: SQLiteStore) -> None:
        self.postgres = is_postgres(store.path)
        if not self.postgres:
            self.copy = SQLiteStore(":memory:")
            store.conn.backup(self.copy.conn)
            return
        c = store.conn
        tables = [r[0] for r in c.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name")]
        self.tables: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
        self.identities: list[tuple[str, str]] = []
        for t in tables:
            cols = [(r[0], r[1]) for r in c.execute(
                "SELECT column_name, is_identity FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position", (t,))]
            names = [n for n, _ in cols]
            rows = [tuple(r) for r in c.execute(f"SELECT {', '.join(names)} FROM {t}")]
            self.tables.append((t, names, rows))
            self.identities += [(t, n) for n, ident in cols if ident == "YES"]

    def restore(self, store: SQLiteStore) -> None:
        if not self.postgres:
            self.copy.conn.backup(store.conn)
            return
        c = store.conn
        with store.transaction():
            for t, names, rows in self.tables:
                c.execute(f"DELETE FROM {t}")
                if rows:
                    c.executemany(f"INSERT INTO {t} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                  rows)
            for t, col in self.identities:
                c.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), coalesce((SELECT max({col}) FROM {t}), 0) + 1, "
                          "false)", (t, col))

    def close(self) -> None:
        if not self.postgres:
            self.copy.close()


class Servers:
    """N ``python -m server serve`` processes on one database, as behind a load balancer.

    ``pick`` chooses one for a request (at random from the run's generator when there are several;
    a server being restarted is passed over for the next one up, so the draws, and with them the
    run, stay the same whichever is down). ``kill`` SIGKILLs the one that served the last request
    and restarts it: at once when it is the only one, in the background otherwise."""

    def __init__(self, db: str, workdir: Path, n: int) -> None:
        # Servers of one deployment share the console key and the blob directory (server/keys.py).
        env = {"GRIDBOOK_SECRET_KEY": secrets.token_hex(32), "GRIDBOOK_BLOB_DIR": str(workdir / "blobs")}
        self.all = [Server(db, workdir / (f"server{i}.log" if n > 1 else "server.log"), env) for i in range(n)]
        self.up = [False] * n
        self.last = 0
        self.served: Counter[str] = Counter()   # "server0" -> deliveries, over the batch of runs
        self.killed: Counter[str] = Counter()
        self.kills = 0
        self.restarts = 0
        self._cv = threading.Condition()
        self._restarting: list[threading.Thread] = []

    def start(self) -> None:
        for i, s in enumerate(self.all):
            s.start()
            self.up[i] = True

    def stop(self) -> None:
        for t in self._restarting:
            t.join(timeout=60)
        for s in self.all:
            s.stop()

    def pick(self, r: random.Random) -> Server:
        n = len(self.all)
        i = r.randrange(n) if n > 1 else 0
        with self._cv:
            assert self._cv.wait_for(lambda: any(self.up), timeout=60), "no server came back up"
            while not self.up[i]:
                i = (i + 1) % n
            self.last = i
            self.served[f"server{i}"] += 1
            return self.all[i]

    def kill(self) -> None:
        i = self.last
        with self._cv:
            self.up[i] = False
        self.all[i].kill9()
        self.kills += 1
        self.killed[f"server{i}"] += 1
        if len(self.all) == 1:
            self._start(i)
            return
        self._restarting = [t for t in self._restarting if t.is_alive()]
        t = threading.Thread(target=self._start, args=(i,), name=f"restart-server{i}", daemon=True)
        self._restarting.append(t)
        t.start()

    def _start(self, i: int) -> None:
        self.all[i].start()
        with self._cv:
            self.up[i] = True
            self._cv.notify_all()

    def restart(self, i: int) -> None:
        """A graceful restart (SIGTERM) of server ``i``, as in a deployment."""
        with self._cv:
            assert self._cv.wait_for(lambda: self.up[i], timeout=60)
            self.up[i] = False
        self.all[i].stop()
        self.restarts += 1
        self._start(i)

    def settle(self) -> None:
        """Wait for the restarts in the background (a run's end: every server up again)."""
        for t in self._restarting:
            t.join(timeout=60)
        self._restarting = []

    def log_sizes(self) -> list[int]:
        return [s.log_path.stat().st_size if s.log_path.exists() else 0 for s in self.all]

    def log(self) -> str:
        if len(self.all) == 1:
            return self.all[0].log()
        return "\n".join(f"--- server{i} ---\n{s.log()}" for i, s in enumerate(self.all))


class Harness:
    """Server processes and one proxy for a batch of runs (``with Harness(...) as h: h.run(i)``).

    ``db``: an empty database, a SQLite path or a ``postgresql://`` URL (default: ``gridbook.db``
    in ``workdir``); ``servers``: how many server processes share it."""

    def __init__(self, workdir: Path, seed: int, settings: Settings | None = None, db: str | None = None,
                 servers: int = 1) -> None:
        self.workdir = workdir
        self.seed = seed
        self.settings = settings or Settings()
        self.rng = random.Random(seed)
        if db is None:
            db = str(workdir / "gridbook.db")
        if not is_postgres(db):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        self.db = db
        self.store = open_store(db)
        self.store.migrate()
        self.template = build_template(self.store)
        # the server installs the shipped catalogue into a database without one when it starts: a
        # restart in the middle of a run would add records between a pull and the oracle's check
        install_catalogue(self.store)
        self.snapshot = Snapshot(self.store)
        self.servers = Servers(db, workdir, servers)
        self.proxy = FaultProxy(lambda: self.servers.pick(self.rng).port, self._plan, on_kill=self.servers.kill)
        self.killing = True

    @property
    def server(self) -> Server:
        """The first server (the only one, unless ``servers`` > 1)."""
        return self.servers.all[0]

    def log(self) -> str:
        return self.servers.log()

    def __enter__(self) -> "Harness":
        self.servers.start()
        self.proxy.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.proxy.__exit__()
        self.servers.stop()
        self.store.close()
        self.snapshot.close()

    # -- the network's fate for each request, from the run's seed ------------------------------
    def _plan(self, method: str, path: str) -> Fault:
        r = self.rng
        # kills go mostly to pushes (a killed pull is just a lost page); a push takes a few
        # milliseconds here, so most kills land before or inside its transaction, some after
        rate = self.settings.kill_rate * (1 if path.startswith("/api/v1/sync/push") else 0.25)
        if self.killing and r.random() < rate:
            return Fault("kill", delay=r.choice((0.0, 0.0, 0.0002, 0.0005, 0.001, 0.002, 0.004)))
        if r.random() >= self.settings.fault_rate:
            return Fault()
        return Fault(r.choice(FAULTS), delay=r.uniform(0.001, 0.03), cut=r.random())

    def runs(self, first: int, count: int, min_runs: int = 0, max_seconds: float = 0,
             progress: Callable[[Figures, float], None] | None = None) -> Figures:
        """Runs ``first`` … ``first + count - 1``, their figures added up. With ``max_seconds`` no run
        is started after that long, once ``min_runs`` have run (a busy machine takes longer; it
        never checks less). ``progress(total, seconds)`` is called after each run."""
        total = Figures()
        t0 = time.perf_counter()
        for i in range(first, first + count):
            total.add(self.run(i))
            elapsed = time.perf_counter() - t0
            if progress:
                progress(total, elapsed)
            if max_seconds and total.runs >= min_runs and elapsed > max_seconds:
                break
        total.seconds = time.perf_counter() - t0
        return total

    # -- one run -----------------------------------------------------------------------------
    def run(self, i: int) -> Figures:
        """Run number ``i`` of this seed; its figures (a failed run is listed in ``failed``)."""
        t0 = time.perf_counter()
        self.rng = r = random.Random(_seed(self.seed, i))
        k = r.randint(3, len(PHONES))
        devices = PHONES[:3] + tuple(r.sample(PHONES[3:], k - 3))
        program = [(r.choice(KINDS), r.choice(devices), r.randrange(8), r.randrange(8), r.randrange(8),
                    r.randrange(8)) for _ in range(r.randint(self.settings.min_steps, self.settings.max_steps))]
        f = Figures(runs=1, phones=k, steps=len(program))
        restarts0, kills0 = self.servers.restarts, self.servers.kills
        served0, killed0 = Counter(self.servers.served), Counter(self.servers.killed)
        if r.random() < self.settings.restart_rate:
            self.servers.restart(r.randrange(len(self.servers.all)) if len(self.servers.all) > 1 else 0)
        # a fresh town: the template written over the live database (the servers hold no state of it)
        self.servers.settle()
        self.snapshot.restore(self.store)
        stats0 = dict(self.proxy.stats)
        log0 = self.servers.log_sizes()
        tokens = self.template.tokens
        world: FaultWorld | None = None

        def token(client: SimClient) -> str:
            assert world is not None
            return tokens[world.actors[client.name].device_id]

        net = HttpTransport(lambda: self.proxy.url, token)
        world = FaultWorld(self.template, self.store, devices, net, salt=f"{self.seed}:{i}")
        try:
            run_program(self.template, program, world)
            self._count(world, f)
        except Exception as e:   # noqa: BLE001 - a failed run is a finding, reported with its seed
            detail = "".join(traceback.format_exception_only(type(e), e))
            detail = detail if len(detail) < 4000 else f"{detail[:1200]} … {detail[-2800:]}"
            f.failed.append(f"seed {self.seed} run {i}: {detail}")
        f.requests = self.proxy.stats["requests"] - stats0.get("requests", 0)
        f.faults = Counter({k_: n - stats0.get(k_, 0) for k_, n in self.proxy.stats.items()
                            if k_ != "requests" and n - stats0.get(k_, 0)})
        f.duplicates += f.faults["duplicate_mismatch"]   # a delivered-twice push answered differently
        self.servers.settle()
        f.kills = self.servers.kills - kills0
        f.restarts = self.servers.restarts - restarts0
        f.served = self.servers.served - served0
        f.killed = self.servers.killed - killed0
        f.resends = sum(c.resends for c in world.clients.values())
        f.cursor_expired = world.expired
        f.server_errors = self._errors_since(log0)
        f.seconds = time.perf_counter() - t0
        return f

    def _errors_since(self, offsets: list[int]) -> int:
        n = 0
        for server, offset in zip(self.servers.all, offsets):
            with open(server.log_path, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
            n += sum(1 for line in text.splitlines() if " ERROR " in f" {line} " or line.startswith("Traceback"))
        return n

    def _count(self, w: FaultWorld, f: Figures) -> None:
        """Figures of a run that passed the oracle, counted again straight from the database."""
        f.rounds_to_quiescence = w.rounds
        for r in w.first.values():
            f.results[r["status"]] += 1
        for c in w.model.conflicts.values():
            f.conflicts[c.kind] += 1
            if c.kind == "field":
                f.both_values += 1
        conn = self.store.conn
        sent = {(w.actors[name].user_id, m["mid"]) for name, c in w.clients.items() for m in c.sent}
        logged = Counter(tuple(row) for row in conn.execute("SELECT user_id, mid FROM mutation_log"))
        f.losses = sum(1 for key in sent if key not in logged)
        f.duplicates = sum(n - 1 for n in logged.values() if n > 1)
        per_mid = Counter((d.get("author_id"), (d.get("mutation") or {}).get("mid"))
                          for d in (loads(row[0]) for row in conn.execute("SELECT data FROM conflicts")))
        f.duplicates += sum(n - 1 for n in per_mid.values() if n > 1)
        for (user, mid), r in w.first.items():
            if r["status"] == "rejected":
                seen = any(("conflicts", r["conflict_id"]) in w.clients[n].replica
                           for n in w.devices if w.actors[n].user_id == user)
                f.rejections_seen += seen
