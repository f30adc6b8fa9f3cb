"""The benchmark's workload: deterministic, at the scale of DOMAIN.md §2, in Chinese.

- ``grid_mutations(...)``: one grid as a grid worker's phone holds it — about 300 households,
  900 residents, 3,000 visits (two years of 民情日记 at the Lin'an cadence), 400 matters and
  1,200 matter events (staff moving matters along the W5 loop, notes, feedback), with Chinese
  text of the lengths field workers write.
- ``field_day(...)``: a day in the field — about 50 edits made on the phone (new visits, household
  and resident card edits, new matters) and 100 changes made elsewhere (the other worker of the
  grid and town staff).
- ``write_batch(...)``: new records for the server write throughput scenario.

Everything is a function of (seed, salt): the text comes from ``random.Random(seed)`` alone, the
record ids from the salt, so the grids ``a`` and ``b`` have the same content under different ids —
parallel runs of a scenario on different grids move the same bytes.

Bump ``GENERATOR_VERSION`` whenever the output changes: cached databases are keyed by it.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

GENERATOR_VERSION = 1
CST = timezone(timedelta(hours=8))
START = datetime(2024, 11, 4, 9, 0, tzinfo=CST)      # the baseline survey (入户调查)
END = datetime(2026, 11, 20, 17, 0, tzinfo=CST)      # "today" of the workload
DAY = datetime(2026, 11, 21, 8, 30, tzinfo=CST)       # the field day

# Full scale (DOMAIN.md §2 and the issue): per grid.
FULL = {"households": 300, "residents": 900, "visits": 3000, "matters": 400, "events": 1200}


class Ids:
    """Deterministic UUIDs (v4 layout) from a salt and a counter."""

    def __init__(self, salt: str) -> None:
        self.salt = salt
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        digest = hashlib.sha256(f"{self.salt}:{self.n}".encode()).digest()[:16]
        return str(uuid.UUID(bytes=digest, version=4))


# -- words ---------------------------------------------------------------------------------------

SURNAMES = "王陈张李周徐胡应林毛黄史俞邵杨邬蒋竺孙朱吴郑戴范"
GIVEN_M = ("阿根 根法 水根 德明 忠良 国良 善庆 永康 金海 福生 兴发 荣华 志祥 宝林 建国 国平 伟国 志明 海良 建华 "
           "立新 卫东 国庆 永明 利民 海军 伟 斌 波 海波 建军 晓东 峰 杰 浩 磊 超 鹏 俊杰 宇 子轩 浩然 一鸣").split()
GIVEN_F = ("秀英 桂英 彩娥 月娥 阿香 杏花 凤英 爱娣 菊英 雪娟 美娟 红英 亚萍 雅芬 丽华 秀芬 月芬 惠芬 玉芳 飞燕 "
           "丽萍 海燕 燕 静 丹 萍 琳 慧 婷 霞 芳 敏 佳佳 婷婷 倩 雪 欣怡 梓涵 一诺 诗涵").split()
HAMLETS = ("杖锡", "上岙", "下岙", "大坪", "黄泥浆", "岭脚", "溪口头", "里坑", "岩下", "岭头")
RELATIONS = ("配偶", "子", "女", "儿媳", "孙子", "孙女", "母亲", "父亲")
HOUSE_TAGS = ("独居老人", "低保户", "残疾人", "留守儿童", "党员中心户", "山区农户", "困难家庭")
PERSON_TAGS = ("慢性病", "高龄", "外出务工", "党员", "残疾人", "留守儿童")
ILLNESS = (("高血压", "氨氯地平片"), ("糖尿病", "二甲双胍片"), ("慢阻肺", "沙美特罗替卡松吸入剂"),
           ("冠心病", "阿司匹林肠溶片"), ("关节炎", "塞来昔布胶囊"), ("白内障", "吡诺克辛滴眼液"))
AWAY = ("在宁波市区打工", "在鄞州一家厂里上班", "在杭州上班", "在上海做生意", "在余姚做装修", "在外地读大学")
CARD = ("老人独居，儿子在宁波市区上班，每月回来一两次。", "老两口一起生活，子女都在外地。", "孩子父母在外打工，孩子由爷爷奶奶照看，在章水镇中心小学读书。",
        "子女在家照顾年迈的老人，家里主要靠打零工和种茶收入。", "户主有高血压，需定期配药。", "{y}年起享受低保，每年复核一次。",
        "户主是老党员，为本片党员中心户，联系周边{n}户。", "家里种茶叶和高山蔬菜。", "家里有毛竹山，春天挖笋、晒笋干。",
        "屋后是山坡，雨季注意地质灾害隐患。", "冬天用炭火取暖，已提醒注意通风防火。", "家里开了民宿，节假日游客较多。",
        "户内有残疾人一名，已办残疾证。", "住在樟村新村安置小区。")
OPENINGS = ("上午入户走访{who}家，", "今天到{hamlet}走访，先去了{who}家，", "按计划对{who}进行定期走访，",
            "下午顺路看望{who}，", "电话预约后上门走访{who}，", "结合民情分析会安排，走访{who}家，")
BODIES = ("老人身体状况尚可，血压控制得还行，按时在吃{drug}。", "{who}说最近腿脚不太方便，上下山不方便，希望代办员帮忙配药。",
          "反映村道路灯不亮已有一个多星期，晚上出门不安全。", "家里屋顶漏雨，想申请危房改造，询问需要准备哪些材料。",
          "孩子在镇中心小学读书，成绩不错，爷爷奶奶照顾得很细心。", "询问今年城乡居民医保的缴费时间和标准，已当场解答。",
          "反映山上引水管冬天容易冻裂，希望村里统一更换保温管。", "{kin}在外打工，过年才回来，平时家里只有老人一个人。",
          "提到去年申请的残疾人补贴还没有到账，答应帮忙去镇里问一问。", "对村里新修的机耕路很满意，说以后运茶叶方便多了。",
          "反映隔壁养狗经常跑出来，吓到了孙子，希望村里协调一下。", "家里燃气灶用了很多年，已提醒更换软管并装报警器。",
          "询问高龄补贴的申领条件，已告知满八十周岁可以申请，材料由代办员帮忙递交。", "最近雨水多，屋后山坡有小面积滑塌，已拍照上报。")
CLOSINGS = ("已留下联系电话，有事随时联系。", "已登记需求，下次走访时反馈办理情况。", "叮嘱注意保暖，按时吃药。",
            "已告知可通过代办员办理，不用下山跑。", "情况已记入民情日记，提交村民情分析会研究。", "")
MATTER_TITLES = ("代配{drug}", "申请高龄补贴", "路灯不亮需维修", "屋顶漏雨申请危房改造", "引水管冻裂需更换", "残疾人补贴未到账",
                 "邻里因养狗发生纠纷", "山坡滑塌隐患排查", "医保缴费咨询及代缴", "低保年度复核材料代交", "村道破损需修补",
                 "独居老人家中燃气安全隐患")
MATTER_DESC = ("{who}年纪大了，下山不方便，委托代办员到镇卫生院代为配药，每月一次，需带医保卡和病历本。",
               "{hamlet}自然村路口的路灯已坏了一个多星期，村民晚上出行不便，存在安全隐患，请村里尽快安排维修。",
               "户主反映房屋年久失修，雨天屋顶多处漏水，家庭经济困难，申请纳入危房改造，已拍照留存。",
               "{who}今年满八十周岁，符合高龄补贴申领条件，需提供户口本、身份证复印件和银行卡，材料由代办员收齐后统一递交。",
               "入冬后山上引水管多处冻裂，影响{n}户村民日常用水，建议村里统一更换保温管并落实管护责任人。",
               "邻里双方因养狗问题多次发生口角，经网格员初步调解未果，请村调解委员会介入。")
NOTES = ("已电话联系当事人，约定本周内上门核实情况。", "材料已收齐，代办员明天下山递交。", "已转镇社会事务办处理，等待答复。",
         "现场查看后确认情况属实，已拍照留存。", "已协调村里安排人员维修，预计三天内完成。", "当事人对处理结果表示满意。",
         "已按规定时限办结，回访群众满意。", "还需补充户口本复印件，已告知家属。")


@dataclass
class Workload:
    """What one call of ``grid_mutations`` made: the pushes, in order, and what the field day needs."""

    pushes: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)  # (who, mutations)
    households: list[str] = field(default_factory=list)
    residents: list[str] = field(default_factory=list)
    matters: list[tuple[str, str]] = field(default_factory=list)   # (id, status after the seed)

    def count(self) -> int:
        return sum(len(m) for _, m in self.pushes)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


class _Gen:
    def __init__(self, seed: int, salt: str) -> None:
        self.rng = random.Random(seed)
        self.ids = Ids(salt)
        self.mids = Ids(salt + ":mid")

    def name(self, surname: str | None = None, gender: str | None = None) -> tuple[str, str]:
        r = self.rng
        g = gender or r.choice(("male", "female"))
        return (surname or r.choice(SURNAMES)) + r.choice(GIVEN_M if g == "male" else GIVEN_F), g

    def phone(self) -> str:
        return "1" + self.rng.choice("3578") + "".join(self.rng.choice("0123456789") for _ in range(9))

    def fill(self, text: str, **kw: Any) -> str:
        r = self.rng
        ill, drug = r.choice(ILLNESS)
        values = dict(who=r.choice(SURNAMES) + r.choice(("大伯", "阿婆", "阿公", "大妈")), hamlet=r.choice(HAMLETS),
                      drug=drug, illness=ill, kin=r.choice(("儿子", "女儿", "儿媳")), n=r.randint(3, 12),
                      y=r.randint(2016, 2024))
        values.update(kw)
        return text.format(**values)

    def narrative(self) -> str:
        r = self.rng
        parts = [self.fill(r.choice(OPENINGS))]
        parts += [self.fill(b) for b in r.sample(BODIES, r.choice((1, 2, 2, 3)))]
        parts.append(r.choice(CLOSINGS))
        return "".join(parts)

    def mutation(self, coll: str, rid: str, fields: dict[str, Any], at: datetime, base: int = 0) -> dict[str, Any]:
        return {"mid": self.mids(), "collection": coll, "id": rid, "op": "upsert", "base": base, "fields": fields,
                "at": _iso(at)}

    def when(self) -> datetime:
        span = (END - START).total_seconds()
        return START + timedelta(seconds=self.rng.uniform(0, span))


def grid_mutations(grid_id: str, workers: tuple[str, str], staff: str, seed: int = 20261123, salt: str = "a",
                   scale: float = 1.0) -> Workload:
    """The pushes that build one grid, as (username, mutations) in push order.

    ``workers`` are the two grid workers' usernames (the first is the phone we measure), ``staff``
    the town staff who move matters along. ``scale`` shrinks every count (for the quick mode).
    """
    g = _Gen(seed, salt)
    r = g.rng
    n = {k: max(1, int(v * scale)) for k, v in FULL.items()}
    w = Workload()
    by_worker: dict[str, list[tuple[datetime, dict[str, Any]]]] = {workers[0]: [], workers[1]: []}
    houses: list[tuple[str, str, datetime]] = []   # (id, worker, registered)
    # households and residents: the baseline survey, then the cards
    res_left = n["residents"]
    for i in range(n["households"]):
        hid = g.ids()
        worker = workers[i % 2]
        reg = START + timedelta(days=r.randint(0, 25), hours=r.randint(0, 7), minutes=r.randint(0, 59))
        surname = r.choice(SURNAMES)
        head, _ = g.name(surname, "male" if r.random() < 0.7 else "female")
        members = res_left // (n["households"] - i) if i < n["households"] - 1 else res_left
        members = max(1, min(members + r.choice((-1, 0, 0, 1)), res_left)) if i < n["households"] - 1 else res_left
        res_left -= members
        notes = "".join(g.fill(c) for c in r.sample(CARD, r.randint(1, 3)))
        fields = {"grid_id": grid_id, "address": f"杖锡村{r.choice(HAMLETS)}{r.randint(1, 160)}号", "head_name": head,
                  "members_count": members, "phone": g.phone() if r.random() < 0.8 else None,
                  "tags": sorted(r.sample(HOUSE_TAGS, r.choice((0, 1, 1, 2)))), "notes": notes,
                  "location": {"lat": round(29.74 + r.uniform(0, 0.02), 6), "lng": round(121.16 + r.uniform(0, 0.03), 6)}}
        by_worker[worker].append((reg, g.mutation("households", hid, fields, reg)))
        w.households.append(hid)
        houses.append((hid, worker, reg))
        for k in range(members):
            rid = g.ids()
            nm, gender = (head, "male") if k == 0 else g.name(surname if r.random() < 0.6 else None)
            by = r.randint(1938, 2022)
            pf = {"household_id": hid, "name": nm, "gender": gender, "birth_year": by,
                  "id_number": f"330227{by}{r.randint(1, 12):02d}{r.randint(1, 28):02d}{r.randint(100, 999)}{r.choice('0123456789X')}",
                  "phone": g.phone() if r.random() < 0.5 else None, "relation": "户主" if k == 0 else r.choice(RELATIONS),
                  "residence": "away" if r.random() < 0.2 else "resident",
                  "tags": sorted(r.sample(PERSON_TAGS, r.choice((0, 0, 1, 1, 2)))),
                  "notes": (lambda ill: f"患{ill[0]}，长期服用{ill[1]}。")(r.choice(ILLNESS)) if r.random() < 0.35
                  else r.choice(AWAY) if r.random() < 0.2 else None}
            at = reg + timedelta(minutes=2 * (k + 1))
            by_worker[worker].append((at, g.mutation("residents", rid, pf, at)))
            w.residents.append(rid)
    for worker in workers:
        rows = sorted(by_worker[worker], key=lambda x: x[0])
        w.pushes.append((worker, [m for _, m in rows]))
        by_worker[worker] = []
    # visits: the diary, two years of it
    visit_ids: list[tuple[str, str]] = []
    for _ in range(n["visits"]):
        hid, worker, reg = r.choice(houses)
        if r.random() < 0.15:
            worker = workers[1] if worker == workers[0] else workers[0]
        t = g.when()
        vid = g.ids()
        ck = {k: r.random() < 0.85 for k in ("left_phone", "left_help_intention", "left_commitment", "took_situation",
                                              "took_difficulties", "took_suggestions")}
        vf = {"household_id": hid, "visited_at": _iso(t), "narrative": g.narrative(), "checklist": ck,
              "needs": [g.fill(r.choice(MATTER_TITLES))] if r.random() < 0.2 else [],
              "gps": {"lat": round(29.74 + r.uniform(0, 0.02), 6), "lng": round(121.16 + r.uniform(0, 0.03), 6),
                      "accuracy": round(r.uniform(5, 60), 1)} if r.random() < 0.7 else None}
        by_worker[worker].append((t, g.mutation("visits", vid, vf, t)))
        visit_ids.append((vid, hid))
    for worker in workers:
        rows = sorted(by_worker[worker], key=lambda x: x[0])
        w.pushes.append((worker, [m for _, m in rows]))
    # matters, raised by the workers on their visits
    matters: list[tuple[str, datetime]] = []
    mrows: dict[str, list[dict[str, Any]]] = {workers[0]: [], workers[1]: []}
    for i in range(n["matters"]):
        vid, hid = r.choice(visit_ids)
        t = g.when()
        mid_ = g.ids()
        mf = {"household_id": hid, "title": g.fill(r.choice(MATTER_TITLES)), "description": g.fill(r.choice(MATTER_DESC)),
              "channel": r.choice(("visit", "visit", "proxy", "village_hotline")), "urgency": r.choice(("normal",) * 5 + ("urgent",)),
              "handling_mode": r.choice(("direct", "proxy")), "visit_id": vid, "raised_at": _iso(t),
              "category": None}
        mrows[workers[i % 2]].append(g.mutation("matters", mid_, mf, t))
        matters.append((mid_, t))
    for worker in workers:
        w.pushes.append((worker, mrows[worker]))
    # events: staff move matters along (受理, 办理, 办结, 销号); workers add notes and feedback
    chain = ("accepted", "in_progress", "resolved", "closed")
    staff_rows: list[tuple[datetime, dict[str, Any]]] = []
    note_rows: dict[str, list[tuple[datetime, dict[str, Any]]]] = {workers[0]: [], workers[1]: []}
    left = n["events"]
    for i, (mid_, t) in enumerate(matters):
        per = left // (len(matters) - i)
        left -= per
        moves = min(len(chain), max(0, per - r.randint(0, 1)))
        status, at = "submitted", t
        for k in range(moves):
            at = at + timedelta(hours=r.uniform(2, 72))
            ef = {"matter_id": mid_, "kind": "status", "from": status, "to": chain[k], "note": r.choice(NOTES)}
            staff_rows.append((at, g.mutation("matter_events", g.ids(), ef, at)))
            status = chain[k]
        for _ in range(per - moves):
            at = at + timedelta(hours=r.uniform(1, 48))
            ef = {"matter_id": mid_, "kind": r.choice(("note", "feedback")), "note": r.choice(NOTES)}
            if ef["kind"] == "feedback":  # 回访: the resident's rating, as the engine checks it (docs/proxy.md)
                ef["data"] = {"satisfaction": r.choice(("satisfied", "satisfied", "basically_satisfied")),
                              "comment": r.choice(NOTES)[:40]}
            note_rows[workers[i % 2]].append((at, g.mutation("matter_events", g.ids(), ef, at)))
        w.matters.append((mid_, status))
    # staff events go in time order per matter (the chain is already ordered per matter)
    w.pushes.append((staff, [m for _, m in staff_rows]))
    for worker in workers:
        w.pushes.append((worker, [m for _, m in sorted(note_rows[worker], key=lambda x: x[0])]))
    return w


@dataclass
class FieldDay:
    """A field day: the phone's edits (made offline) and the changes made elsewhere meanwhile.

    Each edit is ``(who, collection, id, fields, create)``; ``fields`` of an update is what changed.
    For status events the matter's own change is implied (the server moves the matter).
    """

    phone: list[tuple[str, str, dict[str, Any], bool]]
    elsewhere: list[tuple[str, str, str, dict[str, Any], bool]]


def field_day(w: Workload, workers: tuple[str, str], staff: str, seed: int = 7, salt: str = "day",
              phone_edits: int = 50, other_changes: int = 100, matter_offset: int = 0) -> FieldDay:
    """About 50 edits on the phone and 100 changes elsewhere, on distinct records (nothing conflicts).

    Staff move matters one step along; ``matter_offset`` picks other matters for another day on
    the same database (a matter moved once must not be moved again from the same status)."""
    g = _Gen(seed, salt)
    r = g.rng
    t = DAY
    houses = list(w.households)
    r.shuffle(houses)
    mine, theirs = houses[: len(houses) // 2], houses[len(houses) // 2:]
    phone: list[tuple[str, str, dict[str, Any], bool]] = []
    n_visits, n_house, n_res = int(phone_edits * 0.6), int(phone_edits * 0.24), int(phone_edits * 0.1)
    for i in range(n_visits):
        hid = mine[i % len(mine)]
        t += timedelta(minutes=9)
        phone.append(("visits", g.ids(), {"household_id": hid, "visited_at": _iso(t), "narrative": g.narrative(),
                                          "checklist": {"left_phone": True, "took_situation": True}, "needs": [],
                                          "gps": None}, True))
    for i in range(n_house):
        hid = mine[(i * 7) % len(mine)]
        phone.append(("households", hid, {"notes": g.fill(r.choice(CARD)) + g.fill(r.choice(CARD)),
                                          "phone": g.phone()}, False))
    residents = list(w.residents)
    for i in range(n_res):
        phone.append(("residents", residents[(i * 13) % len(residents)], {"notes": g.fill(r.choice(BODIES))}, False))
    visits_for_matters = mine[: max(0, phone_edits - len(phone))]
    for hid in visits_for_matters:
        phone.append(("matters", g.ids(), {"household_id": hid, "title": g.fill(r.choice(MATTER_TITLES)),
                                           "description": g.fill(r.choice(MATTER_DESC)), "channel": "visit",
                                           "urgency": "normal", "handling_mode": "proxy", "raised_at": _iso(t)}, True))
    elsewhere: list[tuple[str, str, str, dict[str, Any], bool]] = []
    n_ovisits, n_ohouse = int(other_changes * 0.4), int(other_changes * 0.2)
    for i in range(n_ovisits):
        hid = theirs[i % len(theirs)]
        t += timedelta(minutes=7)
        elsewhere.append((workers[1], "visits", g.ids(), {"household_id": hid, "visited_at": _iso(t),
                                                          "narrative": g.narrative(), "checklist": {"left_phone": True},
                                                          "needs": [], "gps": None}, True))
    for i in range(n_ohouse):
        hid = theirs[(i * 5) % len(theirs)]
        elsewhere.append((workers[1], "households", hid, {"notes": g.fill(r.choice(CARD)), "phone": g.phone()}, False))
    nxt = {"submitted": "accepted", "accepted": "in_progress", "in_progress": "resolved", "resolved": "closed"}
    movable = [(m, s) for m, s in w.matters if s in nxt]
    for m, s in movable[matter_offset: matter_offset + other_changes - len(elsewhere)]:
        elsewhere.append((staff, "matter_events", g.ids(), {"matter_id": m, "kind": "status", "from": s, "to": nxt[s],
                                                            "note": r.choice(NOTES)}, True))
    return FieldDay(phone, elsewhere)


def write_batch(households: list[str], n: int, seed: int = 11, salt: str = "writes") -> list[tuple[str, str, dict[str, Any]]]:
    """``n`` new records for the write-throughput scenario: visits (70%), residents (20%), matters (10%)."""
    g = _Gen(seed, salt)
    r = g.rng
    out: list[tuple[str, str, dict[str, Any]]] = []
    t = DAY
    for i in range(n):
        hid = households[i % len(households)]
        t += timedelta(seconds=30)
        x = r.random()
        if x < 0.7:
            out.append(("visits", g.ids(), {"household_id": hid, "visited_at": _iso(t), "narrative": g.narrative(),
                                            "checklist": {"left_phone": True, "took_situation": True}, "needs": []}))
        elif x < 0.9:
            nm, gender = g.name()
            out.append(("residents", g.ids(), {"household_id": hid, "name": nm, "gender": gender,
                                               "birth_year": r.randint(1940, 2020), "relation": r.choice(RELATIONS),
                                               "residence": "resident", "tags": [], "notes": g.fill(r.choice(BODIES))}))
        else:
            out.append(("matters", g.ids(), {"household_id": hid, "title": g.fill(r.choice(MATTER_TITLES)),
                                             "description": g.fill(r.choice(MATTER_DESC)), "channel": "visit",
                                             "urgency": "normal", "handling_mode": "direct"}))
    return out
