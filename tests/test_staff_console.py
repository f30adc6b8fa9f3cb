"""The staff console's work pages (issue 6): intake, actions through the engine, scope, conflicts,
exports, administration, audit and the language switch — over the real app, in-process."""

from __future__ import annotations

import csv
import glob
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings
from server.staff.i18n import EN
from sync.store import SQLiteStore

from . import backend
from .conftest import Town, build_town, new_id

XSS = "<img src=x onerror=alert(1)>"
ROOT = Path(__file__).resolve().parent.parent


class Console:
    """A signed-in browser session on the console plus the town behind it."""

    def __init__(self, client: Any, town: Town, store: SQLiteStore) -> None:
        self.c = client
        self.town = town
        self.store = store

    def login(self, username: str) -> Any:
        page = self.c.get("/staff/login")
        return self.c.post("/staff/login", data={"username": username, "password": "demo",
                                                 "csrf": csrf(page.text)}, follow_redirects=False)

    def act(self, matter_id: str, **form: Any) -> Any:
        page = self.c.get(f"/staff/matters/{matter_id}")
        assert page.status_code == 200, page.text
        version = re.search(r'name="version" value="(\d+)"', page.text)
        status = re.search(r'name="status" value="(\w+)"', page.text)
        data = {"csrf": csrf(page.text), "version": version.group(1) if version else "",
                "status": status.group(1) if status else "", **form}
        return self.c.post(f"/staff/matters/{matter_id}/act", data=data, follow_redirects=False)

    def matter(self, mid: str) -> dict[str, Any]:
        rec = self.store.get("matters", mid)
        assert rec is not None
        return rec.data

    def events(self, mid: str) -> list[dict[str, Any]]:
        rows = self.store.conn.execute(f"SELECT data FROM matter_events WHERE matter_id = ? ORDER BY {backend.CREATION_ORDER}",
                                       (mid,))
        import json
        return [json.loads(r[0]) for r in rows]


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:2000]
    return m.group(1)


@pytest.fixture
def con(tmp_path: Any) -> Any:
    db = backend.new_db(tmp_path)
    s = backend.open_store(db)
    s.migrate()
    t = build_town(s)
    app = create_app(Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs"),
                                                          pwa_dir=str(tmp_path / "no-pwa"))))
    with TestClient(app, base_url="http://testserver.local") as c:
        yield Console(c, t, s)
    s.close()


def test_intake_triage_accept_and_dispatch_reaches_the_agent(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="村道塌方需要修复", raised_at="2026-11-20T08:00:00+08:00")
    assert con.login("staff1").status_code == 303
    intake = con.c.get("/staff/intake")
    assert mid in intake.text and "村道塌方需要修复" in intake.text
    agent_id = t.actors["agent"].user_id
    r = con.act(mid, action="accept", category="proxy.social_insurance_registration", line="", level="",
                deadline="2026-12-05", urgency="urgent", assignee_id=agent_id, note="请代办员跟进")
    assert r.status_code == 303 and "msg=accepted" in r.headers["location"], r.headers
    d = con.matter(mid)
    assert d["status"] == "assigned" and d["assignee_id"] == agent_id
    assert d["category"] == "proxy.social_insurance_registration"
    assert d["line"] == "shebao" and d["level"] == "town"            # filled from the category
    assert d["deadline"] == "2026-12-05" and d["urgency"] == "urgent"
    evs = con.events(mid)
    staff_id = t.actors["staff"].user_id
    assert [(e["kind"], e.get("from"), e.get("to")) for e in evs] == [
        ("status", "submitted", "accepted"), ("status", "accepted", "assigned"), ("assign", None, None)]
    assert all(e["actor_id"] == staff_id for e in evs) and evs[2]["for_user_id"] == agent_id
    assert all(e["applied"] is not False for e in evs if e["kind"] == "status")
    assert mid not in con.c.get("/staff/intake").text
    # the agent's phone gets it by pull, with its events
    pulled = t.pull_all("agent")
    assert ("matters", mid) in pulled and pulled[("matters", mid)].data["status"] == "assigned"
    assert sum(1 for (coll, _), ch in pulled.items() if coll == "matter_events" and ch.data["matter_id"] == mid) == 3


def test_not_accept_needs_a_reason_the_worker_then_sees(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="想申请低保")
    con.login("staff1")
    r = con.act(mid, action="not_accept", note="")
    assert "msg=invalid_note" in r.headers["location"] and con.matter(mid)["status"] == "submitted"
    r = con.act(mid, action="not_accept", note="不符合条件：家庭收入超过标准")
    assert "msg=not_accepted" in r.headers["location"]
    assert con.matter(mid)["status"] == "not_accepted"
    notes = [ch.data.get("note") for (coll, _), ch in t.pull_all("w1").items()
             if coll == "matter_events" and ch.data["matter_id"] == mid]
    assert "不符合条件：家庭收入超过标准" in notes


def test_merge_suggests_and_marks_duplicates(con: Console) -> None:
    t = con.town
    h = t.household("w1")
    first = t.matter("w1", household=h, title="路灯不亮", raised_at="2026-11-01T09:00:00+08:00")
    dup = t.matter("w1", household=h, title="门口路灯坏了", raised_at="2026-11-03T09:00:00+08:00")
    con.login("staff1")
    page = con.c.get(f"/staff/matters/{dup}")
    assert f'name="duplicate_of" value="{first}"' in page.text
    r = con.act(dup, action="merge", duplicate_of=first)
    assert "msg=merged" in r.headers["location"]
    d = con.matter(dup)
    assert d["status"] == "merged_duplicate" and d["duplicate_of"] == first
    assert con.act(first, action="merge", duplicate_of=first).headers["location"].endswith("invalid_duplicate_of")


def test_supervise_escalate_resolve_close_and_reopen(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="山塘渗水")
    con.login("staff1")
    con.act(mid, action="accept", category="", deadline="2026-12-01")
    assert con.matter(mid)["status"] == "accepted"
    assert "msg=invalid_note" in con.act(mid, action="supervise", note="").headers["location"]
    con.act(mid, action="supervise", note="请一周内给出方案")
    d = con.matter(mid)
    assert d["supervised"] is True and d["supervision_note"] == "请一周内给出方案"
    assert con.c.get("/staff/matters?supervised=1").text.count('data-testid="matter-row"') == 1
    con.act(mid, action="move", to="in_progress")
    con.act(mid, action="escalate", level="county", note="需要水利部门")
    assert con.matter(mid)["status"] == "escalated" and con.matter(mid)["level"] == "county"
    con.act(mid, action="move", to="in_progress")
    con.act(mid, action="move", to="resolved", note="已修复")
    assert "invalid_note" in con.act(mid, action="move", to="closed", note="").headers["location"]
    con.act(mid, action="move", to="closed", note="现场核实，群众满意")
    d = con.matter(mid)
    assert d["status"] == "closed" and d["closed_at"]
    con.act(mid, action="move", to="reopened", note="群众反映又渗水了")
    assert con.matter(mid)["status"] == "reopened"
    # a move the table does not have is refused and changes nothing
    r = con.act(mid, action="move", to="closed", note="x")
    assert "invalid_status" in r.headers["location"] and con.matter(mid)["status"] == "reopened"


def test_staff_edit_racing_a_phone_becomes_a_conflict(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="垃圾清运不及时", urgency="normal")
    con.login("staff1")
    page = con.c.get(f"/staff/matters/{mid}")
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    # meanwhile the worker's phone changes the urgency
    base = con.store.get("matters", mid).version  # type: ignore[union-attr]
    assert t.push1("w1", t.mut("matters", mid, {"urgency": "critical"}, base=base)).status == "applied"
    r = con.c.post(f"/staff/matters/{mid}/act", data={"csrf": csrf(page.text), "version": version,
                                                      "status": "submitted", "action": "triage",
                                                      "urgency": "urgent"}, follow_redirects=False)
    assert "msg=conflict" in r.headers["location"]
    conflicts = con.c.get("/staff/conflicts")
    cid = re.search(r'/staff/conflicts/([0-9a-f-]{36})', conflicts.text).group(1)  # type: ignore[union-attr]
    detail = con.c.get(f"/staff/conflicts/{cid}")
    assert "紧急" in detail.text and "特急" in detail.text          # both sides, as labels (issue 14)
    r = con.c.post(f"/staff/conflicts/{cid}/resolve", data={"csrf": csrf(detail.text), "resolution": "value",
                                                            "value.urgency": "urgent"}, follow_redirects=False)
    assert "msg=resolved" in r.headers["location"]
    assert con.matter(mid)["urgency"] == "urgent"
    assert con.store.get("conflicts", cid).data["status"] == "resolved"  # type: ignore[union-attr]


def test_action_without_csrf_changes_nothing(con: Console) -> None:
    t = con.town
    mid = t.matter("w1")
    con.login("staff1")
    version = con.store.get("matters", mid).version  # type: ignore[union-attr]
    r = con.c.post(f"/staff/matters/{mid}/act", data={"action": "not_accept", "note": "x"}, follow_redirects=False)
    assert r.status_code == 403
    r = con.c.post(f"/staff/matters/{mid}/act", data={"action": "not_accept", "note": "x", "csrf": "ab" * 32},
                   follow_redirects=False)
    assert r.status_code == 403
    assert con.store.get("matters", mid).version == version  # type: ignore[union-attr]


def test_out_of_scope_matter_is_not_found(con: Console, tmp_path: Any) -> None:
    t = con.town
    from sync import accounts
    other_town = new_id()
    assert t.push1("admin", t.mut("areas", other_town, {"level": "town", "name": "别的镇",
                                                          "parent_id": t.ids["county"]})).status == "applied"
    accounts.create_user(con.store, "staff9", "demo", "staff", [other_town],
                         password_hash=con.store.password_hash(t.actors["staff"].user_id))
    mid = t.matter("w1", title="不该被看到")
    assert con.login("staff9").status_code == 303
    assert con.c.get(f"/staff/matters/{mid}").status_code == 404
    assert "不该被看到" not in con.c.get("/staff/matters").text
    assert "不该被看到" not in con.c.get("/staff/intake").text
    page = con.c.get("/staff/matters")
    r = con.c.post(f"/staff/matters/{mid}/act", data={"csrf": csrf(page.text), "action": "not_accept", "note": "x"},
                   follow_redirects=False)
    assert r.status_code == 404 and con.matter(mid)["status"] == "submitted"
    assert con.c.get("/staff/admin/users").status_code == 403


def test_hostile_text_is_inert_on_every_page(con: Console) -> None:
    t = con.town
    h = new_id()
    assert t.push1("w1", t.mut("households", h, {"grid_id": t.ids["g1"], "address": XSS, "head_name": XSS,
                                                 "notes": XSS})).status == "applied"
    mid = t.matter("w1", household=h, title=XSS, description=XSS, raised_at="2026-11-02T10:00:00+08:00")
    t.push1("w1", t.mut("matter_events", new_id(), {"matter_id": mid, "kind": "note", "note": XSS}))
    con.login("staff1")
    pages = ["/staff/intake", "/staff/matters", f"/staff/matters/{mid}", f"/staff/matters/{mid}/print",
             "/staff/households", f"/staff/households/{h}", "/staff/?start=2026-01-01&end=2026-12-31",
             "/staff/reports/lists?start=2026-11-01&end=2026-11-30"]
    for path in pages:
        r = con.c.get(path)
        assert r.status_code == 200, path
        assert XSS not in r.text, path
        assert "<script" not in r.text and " style=" not in r.text, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in con.c.get(f"/staff/matters/{mid}").text
    # a formula-looking cell is neutralised in CSV
    mid2 = t.matter("w1", household=h, title="=HYPERLINK(\"http://x\")", raised_at="2026-11-02T10:00:00+08:00")
    del mid2
    body = con.c.get("/staff/reports/lists?start=2026-11-01&end=2026-11-30&format=csv").content.decode("utf-8-sig")
    assert "'=HYPERLINK" in body


def test_exports_read_back_with_chinese_headers(con: Console) -> None:
    t = con.town
    for i in range(3):
        t.matter("w1", title=f"事项{i}", raised_at=f"2026-10-0{i + 1}T09:00:00+08:00")
    t.matter("w1", title="九月的事项", raised_at="2026-09-15T09:00:00+08:00")
    con.login("staff1")
    r = con.c.get("/staff/reports/lists?start=2026-10-01&end=2026-10-31&format=xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["问题清单", "落实清单", "责任清单"]
    ws = wb["问题清单"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[1][:4] == ("序号", "工单编号", "反映时间", "村 / 网格")
    titles = sorted(row[7] for row in rows[2:])
    assert titles == ["事项0", "事项1", "事项2"]
    assert list(wb["责任清单"].iter_rows(values_only=True))[1][:4] == ("序号", "工单编号", "问题", "归口")
    c = con.c.get("/staff/reports/lists?start=2026-10-01&end=2026-10-31&list=owner&format=csv")
    assert c.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["序号", "工单编号", "问题", "归口"] and len(table) == 4
    m = con.c.get("/staff/reports/monthly?month=2026-10&format=xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(m.content))
    assert wb.sheetnames == ["月报告", "区域排名", "归口统计", "超期事项"]
    summary = {row[0]: row[1] for row in wb["月报告"].iter_rows(min_row=3, values_only=True)}
    assert summary["收集事项"] == 3 and summary["化解率"] == 0.0   # a number, shown with a percent format
    html = con.c.get("/staff/reports/monthly?month=2026-10").text
    assert "月报告" in html and "区域排名" in html


def test_sensitive_reads_are_audited_and_admin_sees_them(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="反映征地补偿问题", category="proxy.petition")
    con.login("staff1")
    con.act(mid, action="triage", line="xinfang")
    assert con.matter(mid)["line"] == "xinfang"
    before = con.store.conn.execute("SELECT count(*) FROM audit WHERE action = 'sensitive.read'").fetchone()[0]
    page = con.c.get(f"/staff/matters/{mid}")
    assert "敏感事项" in page.text
    after = con.store.conn.execute("SELECT count(*) FROM audit WHERE action = 'sensitive.read'").fetchone()[0]
    assert after == before + 1
    assert con.c.get("/staff/audit").status_code == 403
    con.c.cookies.clear()
    con.login("admin")
    audit = con.c.get("/staff/audit")
    assert audit.status_code == 200 and "sensitive.read" in audit.text and "staff.triage" in audit.text


def test_admin_manages_users_and_devices(con: Console) -> None:
    t = con.town
    con.login("admin")
    page = con.c.get("/staff/admin/users")
    r = con.c.post("/staff/admin/users", data={"csrf": csrf(page.text), "username": "worker9", "password": "short",
                                               "role": "grid_worker", "areas": t.ids["g2"]}, follow_redirects=False)
    assert "invalid_form" in r.headers["location"]
    r = con.c.post("/staff/admin/users", data={"csrf": csrf(page.text), "username": "worker9",
                                               "password": "longenough", "role": "grid_worker",
                                               "areas": t.ids["g2"], "display_name": "新网格员"},
                   follow_redirects=False)
    assert "msg=created" in r.headers["location"]
    u = con.store.user_by_username("worker9")
    assert u is not None and u.data["areas"] == [t.ids["g2"]] and u.data["role"] == "grid_worker"
    # disabling worker1 asks for confirmation, then revokes the phone: its token stops working
    w1 = t.actors["w1"].user_id
    r = con.c.post(f"/staff/admin/users/{w1}", data={"csrf": csrf(page.text), "action": "disable"},
                   follow_redirects=False)
    assert r.status_code == 200 and not any(d["revoked_at"] for d in con.store.devices(w1))
    r = con.c.post(f"/staff/admin/users/{w1}", data={"csrf": csrf(page.text), "action": "disable", "confirm": "yes"},
                   follow_redirects=False)
    assert "msg=disabled" in r.headers["location"]
    assert all(d["revoked_at"] for d in con.store.devices(w1))
    # revoking a device needs the confirmation box
    w2_device = t.actors["w2"].device_id
    devices = con.c.get("/staff/admin/devices")
    assert "worker2&#39;s phone" in devices.text
    r = con.c.post(f"/staff/admin/devices/{w2_device}/revoke", data={"csrf": csrf(devices.text)},
                   follow_redirects=False)
    assert "invalid_form" in r.headers["location"] and not con.store.device(w2_device)["revoked_at"]  # type: ignore[index]
    con.c.post(f"/staff/admin/devices/{w2_device}/revoke", data={"csrf": csrf(devices.text), "confirm": "yes"})
    assert con.store.device(w2_device)["revoked_at"]  # type: ignore[index]
    for path in ("/staff/admin/areas", "/staff/admin/catalogue", "/staff/admin/catalogue?edit=proxy.medical_prescription"):
        assert con.c.get(path).status_code == 200, path


def test_admin_edits_the_catalogue_through_the_engine(con: Console) -> None:
    con.login("admin")
    code = "proxy.social_insurance_registration"
    page = con.c.get(f"/staff/admin/catalogue?edit={code}")
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    r = con.c.post(f"/staff/admin/catalogue/{code}", data={
        "csrf": csrf(page.text), "version": version, "name_zh": "社保登记", "name_en": "Social insurance registration",
        "line": "shebao", "lowest_level": "town", "deadline_days": "7", "active": "1",
        "materials": "居民身份证 | 原件\n户口簿 | 原件\n一寸照片"}, follow_redirects=False)
    assert "msg=saved" in r.headers["location"], r.headers
    cat = con.store.conn.execute("SELECT data FROM categories WHERE code = ?", (code,)).fetchone()[0]
    import json
    d = json.loads(cat)
    assert d["deadline_days"] == 7
    assert [(m["name_zh"], m["original"]) for m in d["materials"]] == [
        ("居民身份证", True), ("户口簿", True), ("一寸照片", False)]
    assert d["materials"][0]["code"] == "id_card"            # the shipped code is kept
    # it reaches phones by pull like any record
    pulled = con.town.pull_all("w1")
    assert any(coll == "categories" and ch.data.get("code") == code and ch.data["deadline_days"] == 7
               for (coll, _), ch in pulled.items())


def test_language_switch_and_every_string_translated(con: Console) -> None:
    con.login("staff1")
    r = con.c.get("/staff/lang?to=en&next=/staff/intake", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/intake"
    page = con.c.get("/staff/intake")
    assert "Central intake" in page.text and "统一集中受理" not in page.text and 'lang="en"' in page.text
    assert con.c.get("/staff/lang?to=zh&next=https://evil.example/", follow_redirects=False).headers["location"] \
        == "/staff/"
    assert "统一集中受理" in con.c.get("/staff/intake").text


def test_every_console_string_has_an_english_translation() -> None:
    pattern = re.compile(r"""\b(?:t|translate)\(\s*(["'])(.+?)\1""")
    missing = []
    files = glob.glob(str(ROOT / "server/templates/staff/*.html")) + glob.glob(str(ROOT / "server/staff/*.py"))
    for f in files:
        for m in pattern.finditer(Path(f).read_text()):
            if m.group(2) not in EN and re.search(r"[\u4e00-\u9fff]", m.group(2)):
                missing.append((Path(f).name, m.group(2)))
    assert not missing, missing
    from server.staff.core import MESSAGES
    assert [v for v in MESSAGES.values() if v not in EN] == []


def test_staff_blob_route_respects_scope(con: Console, tmp_path: Any) -> None:
    import hashlib
    t = con.town
    data = b"\xff\xd8\xff" + b"photo" * 100
    sha = hashlib.sha256(data).hexdigest()
    blobs = con.c.app.state["blobs"]
    blobs.patch(con.c.app.state["stores"].writer, t.actors["w1"], sha, 0, len(data), data)
    mid = t.matter("w1", title="有照片", photos=[sha])
    con.login("staff1")
    assert con.c.get(f"/staff/blobs/{sha}").content == data
    assert 'src="/staff/blobs/' + sha in con.c.get(f"/staff/matters/{mid}").text
    assert con.c.get("/staff/blobs/" + "0" * 64).status_code == 404
    assert con.c.get("/staff/blobs/..%2F..%2Fetc%2Fpasswd").status_code == 404
    con.c.cookies.clear()
    assert con.c.get(f"/staff/blobs/{sha}").status_code == 404


def test_matter_list_filters(con: Console) -> None:
    t = con.town
    a = t.matter("w1", title="甲事项", channel="hotline_81890")
    t.matter("w3", household=t.household("w3", "g3"), title="乙事项", channel="visit")
    con.login("staff1")
    page = con.c.get("/staff/matters?channel=hotline_81890")
    assert "甲事项" in page.text and "乙事项" not in page.text
    page = con.c.get(f"/staff/matters?area={t.ids['v2']}")
    assert "乙事项" in page.text and "甲事项" not in page.text
    page = con.c.get("/staff/matters?q=%E4%B9%99")
    assert "乙事项" in page.text and "甲事项" not in page.text
    con.act(a, action="accept", deadline="2020-01-01")
    page = con.c.get("/staff/matters?overdue=1")
    assert "甲事项" in page.text and "乙事项" not in page.text


def test_reassign_moves_the_matter_to_another_agent(con: Console) -> None:
    from sync import accounts
    t = con.town
    agent2 = accounts.create_user(con.store, "agent2", "demo", "proxy_agent", [t.ids["v1"]],
                                  password_hash=con.store.password_hash(t.actors["agent"].user_id))
    mid = t.matter("w1", title="代办社保")
    con.login("staff1")
    con.act(mid, action="accept", assignee_id=t.actors["agent"].user_id)
    assert ("matters", mid) in t.pull_all("agent")
    r = con.act(mid, action="reassign", assignee_id=agent2, note="原代办员请假")
    assert "msg=dispatched" in r.headers["location"]
    d = con.matter(mid)
    assert d["assignee_id"] == agent2 and d["status"] == "assigned"
    assert ("matters", mid) not in t.pull_all("agent")
    ev = con.events(mid)[-1]
    assert ev["kind"] == "assign" and ev["for_user_id"] == agent2 and ev["data"]["from_user_id"] == t.actors["agent"].user_id


def test_dispatch_to_a_department_alone(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="河道垃圾")
    con.login("staff1")
    con.act(mid, action="accept")
    assert "invalid_assignee_id" in con.act(mid, action="dispatch", assignee_id="", line="").headers["location"]
    assert "invalid_assignee_id" in con.act(mid, action="dispatch", assignee_id=new_id(), line="").headers["location"]
    r = con.act(mid, action="dispatch", assignee_id="", line="chengguan", note="城管中队处理")
    assert "msg=dispatched" in r.headers["location"]
    d = con.matter(mid)
    assert d["status"] == "assigned" and d["line"] == "chengguan" and d["assignee_id"] is None
    owner = con.c.get("/staff/reports/lists?list=owner&start=2020-01-01&end=2030-12-31").text
    assert "城管" in owner


def test_sign_out_ends_the_session_everywhere(con: Console) -> None:
    assert con.login("staff1").status_code == 303
    stolen = con.c.cookies.get("gb_staff")
    page = con.c.get("/staff/")
    assert con.c.post("/staff/logout", data={"csrf": csrf(page.text)}, follow_redirects=False).status_code == 303
    con.c.cookies.set("gb_staff", stolen, path="/staff")
    assert con.c.get("/staff/", follow_redirects=False).status_code == 303      # back to sign-in
    con.c.cookies.clear()
    assert con.login("staff1").status_code == 303                              # a new sign-in works at once
    assert con.c.get("/staff/").status_code == 200


def test_password_reset_and_disabling_end_sessions(con: Console) -> None:
    staff = con.c
    assert con.login("staff1").status_code == 303
    staff_cookie = staff.cookies.get("gb_staff")
    staff.cookies.clear()
    assert con.login("admin").status_code == 303
    users = staff.get("/staff/admin/users")
    sid = con.town.actors["staff"].user_id
    staff.post(f"/staff/admin/users/{sid}", data={"csrf": csrf(users.text), "action": "password",
                                                   "password": "a-new-password"})
    admin_cookie = staff.cookies.get("gb_staff")
    staff.cookies.clear()
    staff.cookies.set("gb_staff", staff_cookie, path="/staff")
    assert staff.get("/staff/", follow_redirects=False).status_code == 303
    staff.cookies.set("gb_staff", admin_cookie, path="/staff")
    assert staff.get("/staff/").status_code == 200


def test_admin_with_areas_works_in_those_only(con: Console) -> None:
    from sync import accounts
    t = con.town
    other_town = new_id()
    assert t.push1("admin", t.mut("areas", other_town, {"level": "town", "name": "别的镇",
                                                          "parent_id": t.ids["county"]})).status == "applied"
    accounts.create_user(con.store, "admin2", "demo", "admin", [other_town],
                         password_hash=con.store.password_hash(t.actors["staff"].user_id))
    mid = t.matter("w1", title="章水镇的事")
    assert con.login("admin2").status_code == 303
    assert con.c.get(f"/staff/matters/{mid}").status_code == 404
    dash = con.c.get(f"/staff/?area={t.ids['town']}")
    assert "别的镇" in dash.text and "杖锡村" not in dash.text


def test_an_area_admin_administers_only_their_area(con: Console) -> None:
    from sync import accounts
    t = con.town
    other_town = new_id()
    other_grid = new_id()
    assert t.push("admin", t.mut("areas", other_town, {"level": "town", "name": "别的镇", "parent_id": t.ids["county"]}),
                  t.mut("areas", other_grid, {"level": "grid", "name": "别的镇网格", "parent_id": other_town})
                  )[1].status == "applied"
    pw = con.store.password_hash(t.actors["staff"].user_id)
    accounts.create_user(con.store, "admin2", "demo", "admin", [other_town], password_hash=pw)
    mine = accounts.create_user(con.store, "worker8", "demo", "grid_worker", [other_grid], password_hash=pw)
    assert con.login("admin2").status_code == 303
    users = con.c.get("/staff/admin/users").text
    assert "worker8" in users and "worker1" not in users and "staff1" not in users
    devices = con.c.get("/staff/admin/devices").text
    assert "worker1" not in devices
    w1 = t.actors["w1"].user_id
    r = con.c.post(f"/staff/admin/users/{w1}", data={"csrf": csrf(users), "action": "disable"}, follow_redirects=False)
    assert r.status_code == 404 and con.store.get("users", w1).data["active"] is True  # type: ignore[union-attr]
    r = con.c.post(f"/staff/admin/devices/{t.actors['w1'].device_id}/revoke",
                   data={"csrf": csrf(users), "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 404 and not con.store.device(t.actors["w1"].device_id)["revoked_at"]  # type: ignore[index]
    r = con.c.post("/staff/admin/users", data={"csrf": csrf(users), "username": "spy", "password": "longenough",
                                               "role": "grid_worker", "areas": t.ids["g1"]}, follow_redirects=False)
    assert "invalid_form" in r.headers["location"] and con.store.user_by_username("spy") is None
    r = con.c.post(f"/staff/admin/users/{mine}", data={"csrf": csrf(users), "action": "disable", "confirm": "yes"},
                   follow_redirects=False)
    assert "msg=disabled" in r.headers["location"]
    assert con.c.post("/staff/admin/catalogue/proxy.petition", data={"csrf": csrf(users), "name_zh": "x",
                                                                     "name_en": "x"}).status_code == 403
    audit = con.c.get("/staff/audit").text
    assert 'data-action="staff.login"' in audit and 'data-action="user.create"' not in audit


def test_the_matter_page_shows_the_proxy_chain(con: Console) -> None:
    t = con.town
    agent = t.actors["agent"].user_id
    mid = t.matter("w1", title="代办社保登记", category="proxy.social_insurance_registration", handling_mode="proxy",
                   assignee_id=agent)
    res = t.delegate(mid, who="agent", signature="7" * 64)          # the signature's bytes not uploaded yet
    r = t.push1("agent", t.mut("matter_events", new_id(), {
        "matter_id": mid, "kind": "custody", "for_resident_id": res,
        "data": {"action": "received", "items": [{"code": "id_card", "form": "original"},
                                                 {"code": "photo_1inch", "form": "copy"}]}}))
    assert r.status == "applied", r
    con.login("staff1")
    page = con.c.get(f"/staff/matters/{mid}").text
    section = page[page.index('id="proxy"'):page.index('id="timeline"')]
    assert "王阿婆" in section and "签名上传中" in section                # uploading, never "missing"
    assert "原件尚未归还群众" in section and "居民身份证" in section
    custody = section[section.index('id="custody"'):]
    assert custody.count("<tr>") == 3 and "在代办员处" in custody and "从群众处收取" in custody


def test_staff_decide_an_agents_work_that_arrived_after_reassignment(con: Console) -> None:
    from sync import accounts
    t = con.town
    agent2 = accounts.create_user(con.store, "agent2", "demo", "proxy_agent", [t.ids["v1"]],
                                  password_hash=con.store.password_hash(t.actors["agent"].user_id))
    agent = t.actors["agent"].user_id
    mid = t.matter("w1", title="代办医保", category="proxy.social_insurance_registration", handling_mode="proxy",
                   assignee_id=agent)
    t.delegate(mid)
    assert t.push1("agent", t.mut("matter_events", new_id(), {
        "matter_id": mid, "kind": "step", "step": "accepted", "from": "submitted", "to": "in_progress"})).status == "applied"
    con.login("staff1")
    assert "msg=dispatched" in con.act(mid, action="reassign", assignee_id=agent2).headers["location"]
    r = t.push1("agent", t.mut("matter_events", new_id(), {"matter_id": mid, "kind": "step",
                                                           "step": "submitted_to_window", "note": "已交窗口"}))
    assert r.status == "conflict", r
    listing = con.c.get("/staff/conflicts").text
    assert "改派后收到的代办操作" in listing
    detail = con.c.get(f"/staff/conflicts/{r.conflict_id}")
    assert "agent2" in detail.text and "agent1" in detail.text        # names, not ids, side by side
    res = con.c.post(f"/staff/conflicts/{r.conflict_id}/resolve",
                     data={"csrf": csrf(detail.text), "resolution": "incoming"}, follow_redirects=False)
    assert "msg=resolved" in res.headers["location"]
    assert con.store.get("matter_events", r.id).data["applied"] is True  # type: ignore[union-attr]


def test_village_staff_see_no_petitions_anywhere_and_figures_agree(con: Console) -> None:
    """Issue 12, finding 4: one predicate for "sensitive" and "in scope" in the engine and every console
    page. Village-level staff are not in a 信访 matter's handling chain: the API hides it from them, and so
    does every page, search, count and export; a matter moved to the 信访 line follows."""
    from sync import accounts
    from sync.catalogue import install_catalogue
    t = con.town
    install_catalogue(con.store)
    accounts.create_user(con.store, "vstaff", "demo", "staff", [t.ids["v1"]],
                         password_hash=con.store.password_hash(t.actors["staff"].user_id))
    h = t.household("w1", "g1", head_name="户主甲")
    petition = t.matter("w1", household=h, title="反映征地补偿", category="proxy.petition",
                        raised_at="2026-11-02T10:00:00+08:00")
    moved = t.matter("w1", household=h, title="移交信访的事项", raised_at="2026-11-02T10:00:00+08:00")
    plain = t.matter("w1", household=h, title="村道路灯不亮", raised_at="2026-11-02T10:00:00+08:00")
    assert t.push1("staff", t.mut("matters", moved, {"line": "xinfang"},
                                  base=t.version("matters", moved))).status == "applied"
    assert con.login("vstaff").status_code == 303
    for path in ("/staff/matters", "/staff/intake", "/staff/matters?q=征地", "/staff/matters?q=户主甲",
                 f"/staff/households/{h}", "/staff/reports/lists?start=2026-11-01&end=2026-11-30",
                 "/staff/reports/lists?start=2026-11-01&end=2026-11-30&format=csv",
                 "/staff/reports/monthly?month=2026-11"):
        r = con.c.get(path)
        assert r.status_code == 200, path
        body = r.content.decode("utf-8-sig")
        assert "反映征地补偿" not in body and "移交信访的事项" not in body, path
    assert "村道路灯不亮" in con.c.get("/staff/matters").text
    assert con.c.get(f"/staff/matters/{petition}").status_code == 404
    assert con.c.get(f"/staff/matters/{moved}").status_code == 404
    assert con.c.get(f"/staff/matters/{plain}").status_code == 200
    # the dashboard counts what the list shows
    dash = con.c.get(f"/staff/?area={t.ids['v1']}&start=2026-11-01&end=2026-11-30").text
    m = re.search(r'id="collected"[^>]*>(\d+)<', dash)
    assert m is not None and int(m.group(1)) == 1                       # the ordinary matter only
    listed = re.findall(r'href="/staff/matters/([0-9a-f-]{36})[?"]', con.c.get(f"/staff/matters?area={t.ids['v1']}").text)
    assert set(listed) == {plain}
    # the town's staff see all three, and each 信访 read is audited
    con.c.cookies.clear()
    con.login("staff1")
    page = con.c.get("/staff/matters").text
    assert "反映征地补偿" in page and "移交信访的事项" in page and "村道路灯不亮" in page
    # and the grid's other worker's phone no longer holds either 信访 matter
    seen = set(t.pull_all("w2"))
    assert ("matters", plain) in seen and ("matters", petition) not in seen and ("matters", moved) not in seen
