"""海曙区 at county scale, built through the engine: the dataset of the console benchmark (issue 14).

    python -m bench.county                   # build (or reuse) the full county: hours on a small machine
    python -m bench.county --scale 0.1       # a tenth of the households, residents, visits and matters
    python -m bench.county --towns 2 --scale 0.01   # the first two towns only (the smoke test)

What it builds (``FULL`` at scale 1):

- the real area tree from ``docs/samples/haishu-330203.csv`` (统计用区划代码 2023): 1 district,
  17 towns/streets, 280 villages/communities with their codes and short names;
- 1,409 grids spread over the villages (a community gets more than a village), each with a grid
  worker (``g<n>``, the phone); town staff per town (``<town code>s1``, ``<town code>s2``),
  county staff (``county1``) and ``admin``; every password is ``demo``;
- about 430,000 households (GPS on each) and 1.1 million residents, six months of visits (one per
  household on average, most with GPS), 100,000 matters with their events: statuses across the
  workflow (受理, 派单, 办理, 待补材料, 上报, 办结, 销号, 不予受理, reopened after an unsatisfied
  回访), deadlines from the category, some overdue, some supervised (督办), proxy matters and a few
  信访 (sensitive: the handling chain only).

Everything is pushed by the users who would have made it (``engine.push``, batches of 500), as
``bench/serverdb.py`` and ``server/demo.py`` do, so the database is what a county would hold after six
months, change feed and all. The grids are filled in an order that cycles through the towns, so a
build stopped early still spans the county.

The database is cached in ``bench/results/`` under a name made of its parameters (``path``); a
second call reuses it. ``<name>.json`` beside it records the build time and the counts; a build in
progress writes ``<name>.building.db`` and logs its progress (``<name>.log``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sync import accounts, engine
from sync.catalogue import install_catalogue, load_catalogue
from sync.protocol import MutationIn, PushRequest
from sync.proxy import add_workdays
from sync.scope import Actor
from sync.store import SQLiteStore, open_store

from . import workload
from .procs import ROOT

VERSION = 1                    # bump whenever the output changes: cached databases are keyed by it
SEED = 20261207
PASSWORD = "demo"
BATCH = 500
CST = timezone(timedelta(hours=8))
AREAS_CSV = ROOT / "docs" / "samples" / "haishu-330203.csv"
RESULTS = ROOT / "bench" / "results"

# The county at scale 1 (the issue; 海曙区's population and the grids of seed 004).
FULL = {"grids": 1409, "households": 430_000, "residents": 1_100_000, "visits": 430_000, "matters": 100_000}
START = datetime(2026, 6, 1, 8, 30, tzinfo=CST)     # six months of visits and matters …
END = datetime(2026, 11, 30, 17, 30, tzinfo=CST)    # … to the dataset's "yesterday"

# The matters' final statuses (a county's mix: most struck off, an open tail, a few refused).
FINALS = (("closed", 0.56), ("resolved", 0.08), ("in_progress", 0.11), ("waiting_materials", 0.03),
          ("escalated", 0.02), ("assigned", 0.04), ("accepted", 0.03), ("submitted", 0.06),
          ("not_accepted", 0.03), ("reopened", 0.04))
OPEN = ("submitted", "accepted", "assigned", "in_progress", "waiting_materials", "escalated")
SUPERVISED = 0.06          # 督办: of the matters accepted and still open, more of the late ones
SENSITIVE = 0.004          # 信访 (proxy.petition): the handling chain only
PROXY = 0.8                # 代办 (handling_mode proxy): of the proxy.* categories
# Towns' centres (lat, lng) spread over the district: the urban streets east, the mountain towns west.
LAT0, LNG0 = 29.78, 121.20

SHORT_SUFFIXES = ("村民委员会", "居民委员会", "村委会", "居委会")


def short_name(name: str) -> str:
    """杜岙村 for 杜岙村村委会, 海馨社区 for 海馨社区居委会."""
    for s in SHORT_SUFFIXES:
        if name.endswith(s) and len(name) > len(s):
            return name[: -len(s)]
    return name


@dataclass
class Village:
    code: str
    name: str
    official: str
    town: str                  # town code
    community: bool
    id: str = ""
    grids: list[str] = field(default_factory=list)
    centre: tuple[float, float] = (0.0, 0.0)


@dataclass
class Town:
    code: str
    name: str
    id: str = ""
    staff: tuple[str, str] = ("", "")
    villages: list[Village] = field(default_factory=list)


def read_areas(path: Path = AREAS_CSV) -> tuple[tuple[str, str], list[Town]]:
    """The county (code, name) and its towns with their villages, in code order."""
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.reader(f):
            if row and row[0].isdigit() and len(row[0]) == 12:
                rows.append((row[0], row[1].strip()))
    rows.sort()
    county = next((c[:6], n) for c, n in rows if c[6:] == "000000")
    towns: dict[str, Town] = {}
    for c, n in rows:
        if c[6:] != "000000" and c[9:] == "000":
            towns[c[:9]] = Town(c[:9], n)
    for c, n in rows:
        if c[9:] != "000":
            towns[c[:9]].villages.append(Village(c, short_name(n), n, c[:9], "社区" in n))
    return county, list(towns.values())


def spread(total: int, weights: list[float]) -> list[int]:
    """``total`` split by ``weights`` (largest remainders), every share at least one when it can be."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[: total - sum(out)]:
        out[i] += 1
    return out


def id_number(region: str, born: date, seq: int, female: bool) -> str:
    """A 公民身份号码 with its GB 11643 check digit."""
    seq = seq % 500 * 2 + (0 if female else 1)
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(a) * b for a, b in zip(body, w)) % 11]


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def path_for(scale: float, towns: int | None = None, seed: int = SEED, results: Path | None = None) -> Path:
    """The cached database of these parameters."""
    part = f"-t{towns}" if towns else ""
    return (results or RESULTS) / f"county-haishu-v{VERSION}-w{workload.GENERATOR_VERSION}-seed{seed}-s{scale:g}{part}.db"


class Builder:
    """Pushes the county into a fresh database, grid after grid, as the users who would have."""

    def __init__(self, path: Path, scale: float, towns: int | None, seed: int, log: Any = None) -> None:
        self.path, self.scale, self.seed = path, scale, seed
        self.rng = random.Random(seed)
        self.gen = workload._Gen(seed, f"county:{seed}")
        self.ids = workload.Ids(f"county:{seed}:ids")
        self.mids = workload.Ids(f"county:{seed}:mids")
        self.log = log or (lambda msg: None)
        (self.county_code, self.county_name), all_towns = read_areas()
        self.towns = all_towns[:towns] if towns else all_towns
        self.actors: dict[str, Actor] = {}
        self.user_ids: dict[str, str] = {}
        self.cats = {c["code"]: c for c in load_catalogue() if c.get("parent_code")}
        self.counts = {"households": 0, "residents": 0, "visits": 0, "matters": 0, "matter_events": 0,
                       "supervised": 0, "sensitive": 0, "proxy": 0, "pushes": 0, "mutations": 0}
        self.finals: dict[str, int] = {}
        self.store: SQLiteStore = open_store(str(path))
        self.store.migrate()
        # A fixture, not a measurement: no fsync per push (the figures are read from the copy later).
        self.store.conn.execute("PRAGMA synchronous = OFF")
        install_catalogue(self.store)
        self._hash = accounts.hash_password(PASSWORD)

    # -- accounts and pushes ---------------------------------------------------------------------
    def user(self, username: str, display: str, role: str, areas: list[str]) -> None:
        uid = accounts.create_user(self.store, username, PASSWORD, role, areas, display_name=display,
                                   phone=self.gen.phone(), user_id=self.ids(), password_hash=self._hash)
        user = self.store.user_by_username(username)
        assert user is not None
        login = accounts.register_device(self.store, user, "seed")
        self.actors[username] = accounts.authenticate(self.store, login.token)
        self.user_ids[username] = uid

    def m(self, coll: str, rid: str, fields: dict[str, Any], at: datetime, base: int = 0) -> dict[str, Any]:
        return {"mid": self.mids(), "collection": coll, "id": rid, "op": "upsert", "base": base, "fields": fields,
                "at": _iso(at)}

    def push(self, who: str, mutations: list[dict[str, Any]]) -> None:
        for i in range(0, len(mutations), BATCH):
            chunk = [MutationIn(**m) for m in mutations[i:i + BATCH]]
            resp = engine.push(self.store, self.actors[who], PushRequest(protocol=1, mutations=chunk))
            bad = [r for r in resp.results if r.status not in ("applied", "merged")]
            if bad:
                raise RuntimeError(f"county seed: {who}: {bad[0].status} {bad[0].error}")
            self.counts["pushes"] += 1
            self.counts["mutations"] += len(chunk)

    # -- the tree, the grids and the people --------------------------------------------------------
    def build_tree(self) -> list[tuple[Town, Village, str, str]]:
        """Areas and accounts; returns the grids as (town, village, grid id, worker) in build order."""
        at = datetime(2026, 5, 6, 9, 0, tzinfo=CST)
        self.user("admin", "系统管理员", "admin", [])
        self.county_id = self.ids()
        muts = [self.m("areas", self.county_id, {"level": "county", "name": self.county_name,
                                                 "code": self.county_code, "sort": 1}, at)]
        villages = [v for t in self.towns for v in t.villages]
        weights = [1.4 if v.community else 1.0 for v in villages]
        n_grids = FULL["grids"] if self.scale >= 1 else max(len(villages), round(FULL["grids"] * self.scale))
        if len(self.towns) < 17:   # a part of the county: its share of the grids
            n_grids = max(len(villages), round(n_grids * len(villages) / 280))
        per_village = spread(n_grids, weights)
        r = self.rng
        for ti, t in enumerate(self.towns):
            t.id = self.ids()
            muts.append(self.m("areas", t.id, {"parent_id": self.county_id, "level": "town", "name": t.name,
                                               "code": t.code, "sort": int(t.code[6:])}, at))
            tlat, tlng = LAT0 + 0.2 * r.random(), LNG0 + 0.35 * (ti / max(1, len(self.towns) - 1))
            for v in t.villages:
                v.id = self.ids()
                v.centre = (round(tlat + r.uniform(-0.03, 0.03), 6), round(tlng + r.uniform(-0.03, 0.03), 6))
                fields = {"parent_id": t.id, "level": "village", "name": v.name, "code": v.code,
                          "mountain": not v.community and tlng < 121.35, "sort": int(v.code[9:])}
                muts.append(self.m("areas", v.id, fields, at))
        order: list[tuple[Town, Village, str, str]] = []
        k = 0
        for v, n in zip(villages, per_village):
            for i in range(1, n + 1):
                gid = self.ids()
                muts.append(self.m("areas", gid, {"parent_id": v.id, "level": "grid",
                                                  "name": f"{v.name}第{_cn(i)}网格", "code": f"{v.code}{i:02d}",
                                                  "sort": i}, at))
                v.grids.append(gid)
        self.push("admin", muts)
        self.user("county1", "区社会治理中心", "staff", [self.county_id])
        for t in self.towns:
            t.staff = (f"t{t.code[6:]}s1", f"t{t.code[6:]}s2")
            for j, u in enumerate(t.staff):
                self.user(u, f"{t.name}{'综治中心' if j == 0 else '便民服务中心'}", "staff", [t.id])
        # grid workers; the build order cycles through the towns so that a part of it spans the county
        queues = [[(t, v, g) for v in t.villages for g in v.grids] for t in self.towns]
        while any(queues):
            for q in queues:
                if q:
                    t, v, g = q.pop(0)
                    k += 1
                    worker = f"g{k}"
                    name = self.gen.name()[0]
                    self.user(worker, f"{name}（{v.name}）", "grid_worker", [g])
                    order.append((t, v, g, worker))
        return order

    # -- one grid's six months ---------------------------------------------------------------------
    def fill_grid(self, town: Town, village: Village, gid: str, worker: str, households: int, matters: int) -> None:
        r, g = self.rng, self.gen
        staff = town.staff[0]
        houses: list[tuple[str, datetime, list[str]]] = []
        rows: list[dict[str, Any]] = []
        for i in range(households):
            hid = self.ids()
            reg = START - timedelta(days=r.randint(5, 30), minutes=r.randint(0, 600))
            surname = r.choice(workload.SURNAMES)
            head, _ = g.name(surname, "male" if r.random() < 0.7 else "female")
            members = r.choice((1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 5)) if r.random() < 0.97 else r.randint(7, 9)
            lat, lng = village.centre
            loc = {"lat": round(lat + r.uniform(-0.006, 0.006), 6), "lng": round(lng + r.uniform(-0.006, 0.006), 6)}
            notes = "".join(g.fill(c) for c in r.sample(workload.CARD, r.randint(1, 2)))
            street = f"{village.name}{r.choice(workload.HAMLETS)}{r.randint(1, 300)}号" if not village.community \
                else f"{village.name}{r.randint(1, 60)}幢{r.randint(1, 6)}单元{r.randint(1, 18)}0{r.randint(1, 4)}室"
            rows.append(self.m("households", hid, {
                "grid_id": gid, "address": street, "head_name": head, "members_count": members,
                "phone": g.phone() if r.random() < 0.85 else None,
                "tags": sorted(r.sample(workload.HOUSE_TAGS, r.choice((0, 0, 1, 1, 2)))), "notes": notes,
                "location": loc}, reg))
            residents = []
            for k in range(members):
                rid = self.ids()
                nm, gender = (head, "male") if k == 0 else g.name(surname if r.random() < 0.6 else None)
                born = date(r.randint(1936, 2024), r.randint(1, 12), r.randint(1, 28))
                rows.append(self.m("residents", rid, {
                    "household_id": hid, "name": nm, "gender": gender, "birth_year": born.year,
                    "id_number": id_number(self.county_code, born, r.randint(0, 999), gender == "female"),
                    "phone": g.phone() if r.random() < 0.5 else None,
                    "relation": "户主" if k == 0 else r.choice(workload.RELATIONS),
                    "residence": "away" if r.random() < 0.15 else "resident",
                    "tags": sorted(r.sample(workload.PERSON_TAGS, r.choice((0, 0, 0, 1, 1, 2))))},
                    reg + timedelta(minutes=2 * (k + 1))))
                residents.append(rid)
            houses.append((hid, reg, residents))
            self.counts["residents"] += members
        self.counts["households"] += households
        self.push(worker, rows)
        # visits: six months, about one per household
        n_visits = max(1, round(households * FULL["visits"] / FULL["households"]))
        visits: list[tuple[datetime, dict[str, Any], str, str]] = []
        for _ in range(n_visits):
            hid = r.choice(houses)[0]
            t = START + timedelta(seconds=r.uniform(0, (END - START).total_seconds()))
            vid = self.ids()
            lat, lng = village.centre
            vf = {"household_id": hid, "visited_at": _iso(t), "narrative": g.narrative(),
                  "checklist": {k: r.random() < 0.85 for k in ("left_phone", "took_situation", "took_difficulties")},
                  "needs": [g.fill(r.choice(workload.MATTER_TITLES))] if r.random() < 0.15 else [],
                  "gps": {"lat": round(lat + r.uniform(-0.006, 0.006), 6), "lng": round(lng + r.uniform(-0.006, 0.006), 6),
                          "accuracy": round(r.uniform(5, 60), 1)} if r.random() < 0.8 else None}
            visits.append((t, self.m("visits", vid, vf, t), vid, hid))
        visits.sort(key=lambda x: x[0])
        self.push(worker, [v[1] for v in visits])
        self.counts["visits"] += n_visits
        self.matters(town, gid, worker, staff, houses, visits, matters)

    def matters(self, town: Town, gid: str, worker: str, staff: str, houses: list[tuple[str, datetime, list[str]]],
                visits: list[tuple[datetime, dict[str, Any], str, str]], n: int) -> None:
        r, g = self.rng, self.gen
        finals = [f for f, _ in FINALS]
        weights = [w for _, w in FINALS]
        codes = sorted(c for c in self.cats if c != "proxy.petition")
        plans = []
        created: list[dict[str, Any]] = []
        for _ in range(n):
            mid = self.ids()
            final = r.choices(finals, weights)[0]
            t, _, vid, hid = r.choice(visits)
            t += timedelta(minutes=r.randint(10, 50))
            if final in OPEN and r.random() < 0.7:     # an open matter is mostly a recent one
                t = END - timedelta(days=r.uniform(1, 25))
            if t > END - timedelta(days=1):
                t = END - timedelta(days=1, hours=r.uniform(0, 8))
            sensitive = r.random() < SENSITIVE
            cat = "proxy.petition" if sensitive else r.choice(codes)
            proxy = sensitive or (cat.startswith("proxy.") and r.random() < PROXY)
            residents = next(h[2] for h in houses if h[0] == hid)
            fields = {"household_id": hid, "resident_id": r.choice(residents),
                      "title": g.fill(r.choice(workload.MATTER_TITLES)),
                      "description": g.fill(r.choice(workload.MATTER_DESC)),
                      "channel": "proxy" if proxy else r.choice(("visit", "visit", "village_hotline", "hotline_81890")),
                      "urgency": "urgent" if r.random() < 0.12 else "normal",
                      "handling_mode": "proxy" if proxy else "direct", "visit_id": vid, "raised_at": _iso(t),
                      "category": None if final == "not_accepted" or (r.random() < 0.3 and not sensitive) else cat}
            created.append(self.m("matters", mid, fields, t))
            plans.append((mid, final, cat, t, sensitive, proxy))
            self.finals[final] = self.finals.get(final, 0) + 1
            self.counts["sensitive"] += sensitive
            self.counts["proxy"] += proxy
        created.sort(key=lambda m: m["at"])
        self.push(worker, created)
        self.counts["matters"] += n
        versions = {rid: rec.version for rid, rec in self.store.get_many("matters", [p[0] for p in plans]).items()}
        staff_rows: list[dict[str, Any]] = []
        feedback_rows: list[dict[str, Any]] = []
        worker_uid, staff_uid = self.user_ids[worker], self.user_ids[staff]
        for mid, final, code, t, sensitive, proxy in plans:
            cat = self.cats[code]
            ev: list[dict[str, Any]] = []
            status = "submitted"

            def move(to: str, at: datetime, note: str, **more: Any) -> datetime:
                nonlocal status
                ev.append(self.m("matter_events", self.ids(), {"matter_id": mid, "kind": "status", "from": status,
                                                               "to": to, "note": note, **more}, at))
                status = to
                return at

            def after(at: datetime, lo: float, hi: float) -> datetime:
                x = at + timedelta(hours=r.uniform(lo, hi))
                return min(x, END - timedelta(minutes=r.randint(1, 600)))

            if final == "submitted":
                continue
            if final == "not_accepted":
                move("not_accepted", after(t, 2, 30), "经核实不属于受理范围，已向群众解释。")
                staff_rows += ev
                continue
            t = after(t, 1, 40)
            deadline = add_workdays(t.date(), int(cat["deadline_days"]))
            move("accepted", t, f"已受理，时限{cat['deadline_days']}个工作日。")
            triage = {"category": code, "line": cat["line"], "level": cat["lowest_level"], "deadline": deadline.isoformat()}
            going = final not in ("accepted",)
            if going:
                triage["assignee_id"] = worker_uid if cat["lowest_level"] == "village" and not sensitive else staff_uid
            supervised = r.random() < SUPERVISED * (3 if final in ("in_progress", "escalated", "waiting_materials") else 1)
            if supervised and final not in ("closed", "resolved", "reopened"):
                triage.update(supervised=True, supervision_note="请加快办理进度，按时限办结并及时反馈。")
                self.counts["supervised"] += 1
            ev.append(self.m("matters", mid, triage, t + timedelta(seconds=30), base=versions[mid]))
            if triage.get("supervised"):
                ev.append(self.m("matter_events", self.ids(), {"matter_id": mid, "kind": "supervise",
                                                               "note": triage["supervision_note"]}, t + timedelta(seconds=40)))
            if final == "accepted":
                staff_rows += ev
                continue
            t = move("assigned", after(t, 0.5, 24), f"派单办理，请于{deadline:%m月%d日}前办结。",
                     for_user_id=triage["assignee_id"])
            if final == "assigned":
                staff_rows += ev
                continue
            t = move("in_progress", after(t, 1, 30), "已接单，马上联系群众了解情况。")
            waits = final == "waiting_materials" or (final in ("closed", "resolved") and proxy and r.random() < 0.2)
            if waits:
                t = move("waiting_materials", after(t, 4, 48), "材料不齐，已告知家属尽快补交。")
                if final == "waiting_materials":
                    staff_rows += ev
                    continue
                t = move("in_progress", after(t, 48, 200), "材料已补齐，继续办理。")
            if final == "in_progress":
                staff_rows += ev
                continue
            if final == "escalated":
                move("escalated", after(t, 24, 120), "村里协调不了，申请上报镇里。")
                staff_rows += ev
                continue
            days = int(cat["deadline_days"]) * (1.0 if r.random() < 0.85 else 2.0)   # some late
            t = move("resolved", after(t, 4, 24 * days), r.choice(workload.NOTES))
            if final == "resolved":
                staff_rows += ev
                continue
            if final == "reopened":
                staff_rows += ev
                who = worker if not sensitive else staff
                fb = self.m("matter_events", self.ids(), {
                    "matter_id": mid, "kind": "feedback", "note": "回访：群众对处理结果不满意。",
                    "data": {"satisfaction": "dissatisfied", "comment": "问题没有解决"}}, after(t, 2, 72))
                (feedback_rows if who == worker else staff_rows).append(fb)
                continue
            t = after(t, 2, 72)
            fb = self.m("matter_events", self.ids(), {
                "matter_id": mid, "kind": "feedback", "note": "电话回访。",
                "data": {"satisfaction": r.choice(("satisfied", "satisfied", "satisfied", "basically_satisfied")),
                         "comment": "办得及时"}}, t)
            move("closed", after(t, 1, 48), "经回访核实，群众满意，予以销号。")
            if sensitive:
                ev.insert(len(ev) - 1, fb)
                staff_rows += ev
            else:
                staff_rows += ev
                feedback_rows.append(fb)
        self.push(staff, staff_rows)
        self.counts["matter_events"] += sum(1 for e in staff_rows if e["collection"] == "matter_events")
        if feedback_rows:
            self.push(worker, sorted(feedback_rows, key=lambda m: m["at"]))
            self.counts["matter_events"] += len(feedback_rows)

    # -- the whole ---------------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        order = self.build_tree()
        self.log(f"tree: {len(self.towns)} towns, {sum(len(t.villages) for t in self.towns)} villages, "
                 f"{len(order)} grids, {len(self.actors)} accounts in {time.perf_counter() - t0:.0f} s")
        n_grids = len(order)
        part = sum(len(t.villages) for t in self.towns) / 280     # the share of the county built
        weights = [self.rng.uniform(0.7, 1.3) for _ in order]
        homes = spread(max(n_grids, round(FULL["households"] * self.scale * part)), weights)
        total_h = sum(homes)
        cases = spread(max(1, round(FULL["matters"] * total_h / FULL["households"])), [float(h) for h in homes])
        for i, ((t, v, gid, worker), h, c) in enumerate(zip(order, homes, cases)):
            self.fill_grid(t, v, gid, worker, h, c)
            if (i + 1) % 20 == 0 or i + 1 == n_grids:
                el = time.perf_counter() - t0
                self.log(f"grid {i + 1}/{n_grids}: {self.counts['households']:,} households, "
                         f"{self.counts['residents']:,} residents, {self.counts['matters']:,} matters, "
                         f"{self.counts['mutations']:,} mutations in {el:.0f} s "
                         f"({self.counts['mutations'] / el:,.0f}/s), load {os.getloadavg()[0]:.1f}")
        self.store.conn.execute("PRAGMA synchronous = FULL")
        self.store.checkpoint()
        secs = time.perf_counter() - t0
        return {"version": VERSION, "scale": self.scale, "towns": len(self.towns), "seed": self.seed,
                "grids": n_grids, "villages": sum(len(t.villages) for t in self.towns), "counts": self.counts,
                "finals": self.finals, "build_s": round(secs, 1), "accounts": len(self.actors),
                "loadavg_end": os.getloadavg(), "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "sample": {"town_staff": self.towns[0].staff[0], "town": self.towns[0].name,
                           "grid_worker": order[0][3], "county_staff": "county1", "password": PASSWORD}}


_CN = "一二三四五六七八九十"


def _cn(n: int) -> str:
    """第一 … 第十九 (the grids' names as counties write them)."""
    if n <= 10:
        return _CN[n - 1]
    if n < 20:
        return "十" + _CN[n - 11]
    return _CN[n // 10 - 1] + "十" + (_CN[n % 10 - 1] if n % 10 else "")


def ensure(scale: float = 1.0, towns: int | None = None, seed: int = SEED, results: Path | None = None,
           rebuild: bool = False, log: Any = print) -> tuple[Path, dict[str, Any]]:
    """The cached county database of these parameters (built when missing) and its build record."""
    path = path_for(scale, towns, seed, results)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not rebuild:
        meta = json.loads(meta_path.read_text())
        meta["cached"] = True
        return path, meta
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building.db")
    for p in (building, Path(str(building) + "-wal"), Path(str(building) + "-shm")):
        p.unlink(missing_ok=True)
    b = Builder(building, scale, towns, seed, log)
    meta = b.build()
    b.store.close()
    meta["bytes"] = building.stat().st_size
    shutil.move(building, path)
    meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    meta["cached"] = False
    return path, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="of the households, residents, visits and matters")
    ap.add_argument("--towns", type=int, help="only the first N towns (a part of the county, for quick runs)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--results", type=Path, help="where the database goes (default bench/results/)")
    ap.add_argument("--rebuild", action="store_true", help="build again even if cached")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)

    path, meta = ensure(args.scale, args.towns, args.seed, args.results, args.rebuild, log)
    log(f"{path} ({'cached' if meta.get('cached') else 'built'} in {meta['build_s']:.0f} s): "
        + json.dumps(meta["counts"], ensure_ascii=False))


if __name__ == "__main__":
    main()
