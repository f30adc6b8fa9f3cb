"""The console review at demo size (issue 14, "Console defects"): the conflict page says what the record
holds, codes and English never reach a Chinese page, the audit log is readable and pages by date, a
reopened matter starts a new deadline, phones on the matter page, areas sort naturally, duplicate
suggestions are precise. Over the real app, in-process, on both backends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from server import metrics
from server.staff.core import local_today, natural_key
from server.staff.matters import similar_titles
from sync import proxy, workflow
from sync.catalogue import category_id

from .conftest import Town, new_id
from .test_staff_console import Console, con, csrf  # noqa: F401  (con: the fixture)

# English words and codes that must not appear in a Chinese page's text.
LEAKS = ("forbidden", "outside your area", "chengguan", "line:", "staff.accept", "staff.login", '{"', "phone<")


def text_of(html: str) -> str:
    """What a person reads: the page without tags and attribute values."""
    return re.sub(r"<[^>]+>", " ", html)


def cell(html: str, testid: str) -> str:
    m = re.search(rf'data-testid="{testid}">(.*?)</td>', html, re.S)
    assert m, html[:3000]
    return text_of(m.group(1))


def phone_conflict(t: Town, incoming_wins: bool) -> tuple[str, str]:
    """Two workers change one household's phone from the same version; the later edit wins."""
    hid = t.household("w1", phone="13900000000")
    base = t.version("households", hid)
    first_at, second_at = t.at(), t.at()
    w1_at, w2_at = (first_at, second_at) if incoming_wins else (second_at, first_at)
    assert t.push1("w1", t.mut("households", hid, {"phone": "13911111111"}, base=base, at=w1_at)).status == "applied"
    r = t.push1("w2", t.mut("households", hid, {"phone": "13922222222"}, base=base, at=w2_at))
    assert r.status == "conflict" and r.conflict_id
    return hid, r.conflict_id


# -- 1. the conflict page -----------------------------------------------------------------------------

def test_the_conflict_page_shows_what_the_record_holds_and_what_lost(con: Console) -> None:
    t = con.town
    hid, cid = phone_conflict(t, incoming_wins=True)
    assert con.store.get("households", hid).data["phone"] == "13922222222"  # type: ignore[union-attr]
    con.login("staff1")
    page = con.c.get(f"/staff/conflicts/{cid}").text
    # the record holds the submitted (later) value: that is what the page calls saved
    assert "13922222222" in cell(page, "value-now") and "提交的值" in cell(page, "value-now")
    assert "13911111111" in cell(page, "value-lost") and "原有的值" in cell(page, "value-lost")
    assert 'name="value.phone" value="13922222222"' in page      # 改为其他值 starts from the saved value
    assert "联系电话" in page and not any(leak in text_of(page) for leak in LEAKS)
    listed = con.c.get("/staff/conflicts").text
    assert "联系电话" in text_of(listed) and "phone" not in text_of(listed)
    # 采用原有的值 writes the earlier value back
    r = con.c.post(f"/staff/conflicts/{cid}/resolve", data={"csrf": csrf(page), "resolution": "current"},
                   follow_redirects=False)
    assert "msg=resolved" in r.headers["location"]
    assert con.store.get("households", hid).data["phone"] == "13911111111"  # type: ignore[union-attr]
    done = con.c.get(f"/staff/conflicts/{cid}").text
    assert "保留原有的值" in done and ">current<" not in done


def test_when_the_earlier_edit_won_the_page_says_so(con: Console) -> None:
    hid, cid = phone_conflict(con.town, incoming_wins=False)
    assert con.store.get("households", hid).data["phone"] == "13911111111"  # type: ignore[union-attr]
    con.login("staff1")
    page = con.c.get(f"/staff/conflicts/{cid}").text
    assert "13911111111" in cell(page, "value-now") and "原有的值" in cell(page, "value-now")
    assert "13922222222" in cell(page, "value-lost") and "提交的值" in cell(page, "value-lost")
    assert 'name="value.phone" value="13911111111"' in page
    con.c.get(f"/staff/lang?to=en&next=/staff/conflicts/{cid}")
    en = con.c.get(f"/staff/conflicts/{cid}").text
    assert "Phone" in en and "Value the record holds now" in en and "Earlier value" in cell(en, "value-now")


def test_a_rejected_change_says_why_in_chinese(con: Console) -> None:
    t = con.town
    other = t.household("w3", grid="g3", phone="13900000000")   # another village: outside worker1's grid
    r = t.push1("w1", t.mut("households", other, {"phone": "13933333333"}, base=1))
    assert r.status == "rejected" and r.conflict_id
    con.login("staff1")
    page = con.c.get(f"/staff/conflicts/{r.conflict_id}").text
    assert "无权进行此操作，或记录不在您的管辖范围内。" in page and "联系电话" in page
    assert not any(leak in text_of(page) for leak in LEAKS), text_of(page)
    con.c.get(f"/staff/lang?to=en&next=/staff/conflicts/{r.conflict_id}")
    assert "You may not do this" in con.c.get(f"/staff/conflicts/{r.conflict_id}").text


# -- 2. codes in timelines ----------------------------------------------------------------------------

def test_the_timeline_labels_what_an_event_carries(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="占道经营")
    con.login("staff1")
    con.act(mid, action="accept", category="")
    con.act(mid, action="dispatch", line="chengguan", assignee_id="")
    assert [e.get("data") for e in con.events(mid) if e["kind"] == "assign"] == [{"line": "chengguan"}]
    page = con.c.get(f"/staff/matters/{mid}").text
    assert "归口部门：城管" in page and not any(leak in text_of(page) for leak in LEAKS)
    con.c.get(f"/staff/lang?to=en&next=/staff/matters/{mid}")
    assert "Department: Urban management" in con.c.get(f"/staff/matters/{mid}").text


def test_an_engine_refusal_reaches_the_console_in_chinese(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="山塘渗水")
    con.login("staff1")
    page = con.c.get(f"/staff/matters/{mid}").text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    # a merge into a matter of another town's household, posted by hand: the engine refuses it
    r = con.c.post(f"/staff/matters/{mid}/act", data={"csrf": csrf(page), "version": version, "status": "submitted",
                                                      "action": "merge", "duplicate_of": new_id()},
                   follow_redirects=True)
    assert con.matter(mid)["status"] == "submitted"
    flash = re.search(r'id="flash">(.*?)</p>', r.text, re.S)
    assert flash and not re.search(r"[a-z]{4,}", flash.group(1)), flash.group(1) if flash else r.text[:2000]


# -- 3. the audit page --------------------------------------------------------------------------------

def test_the_audit_log_reads_as_labels_with_links(con: Console) -> None:
    t = con.town
    mid = t.matter("w1", title="路面破损")
    con.login("staff1")
    con.act(mid, action="accept", category="", note="受理")
    con.c.cookies.clear()
    con.login("admin")
    page = con.c.get("/staff/audit").text
    assert 'data-action="staff.accept"' in page and "受理事项" in page and "登录管理后台" in page
    assert f'href="/staff/matters/{mid}"' in page
    assert "说明：受理" in page and "结果：已生效" in page
    assert not any(leak in text_of(page) for leak in LEAKS), text_of(page)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text_of(page))       # no ids in what a person reads
    # the action filter, by the labels' codes
    only = con.c.get("/staff/audit?action=staff.accept").text
    assert only.count('data-testid="audit-row"') == 1
    con.c.get("/staff/lang?to=en&next=/staff/audit")
    en = con.c.get("/staff/audit").text
    assert "Matter accepted" in en and "Result: applied" in en


def test_the_audit_log_pages_and_filters_by_date(con: Console) -> None:
    writer = con.store
    with writer.transaction():
        for i in range(120):
            writer.audit(None, "user.update", "users", None, {"display_name": f"第{i}号"})
    con.login("admin")
    first = con.c.get("/staff/audit?action=user.update").text
    assert first.count('data-testid="audit-row"') == 50 and 'rel="next"' in first and 'rel="prev"' not in first
    assert "第119号" in first and "第69号" not in first                    # newest first
    third = con.c.get("/staff/audit?action=user.update&page=3").text
    assert third.count('data-testid="audit-row"') == 20 and 'rel="next"' not in third and "第0号" in third
    today = local_today()
    assert con.c.get(f"/staff/audit?action=user.update&from={today}&to={today}").text \
        .count('data-testid="audit-row"') == 50
    later = (today + timedelta(days=1)).isoformat()
    assert 'data-testid="audit-row"' not in con.c.get(f"/staff/audit?from={later}").text
    earlier = (today - timedelta(days=1)).isoformat()
    assert 'data-testid="audit-row"' not in con.c.get(f"/staff/audit?to={earlier}").text
    # bad input: a clear refusal, never a 500 or everything
    for q, why in (("from=2026-13-01", "日期格式不正确"), (f"from={today}&to={earlier}", "开始日期不能晚于结束日期"),
                   ("action=nothing.such", "没有这种操作"), ("page=0", "页码")):
        r = con.c.get(f"/staff/audit?{q}")
        assert r.status_code == 400 and why in r.text, (q, r.status_code)


# -- 4. a reopened matter -----------------------------------------------------------------------------

def _category(t: Town, code: str, days: int | None) -> None:
    fields: dict[str, Any] = {"code": code, "name_zh": "路灯维修", "name_en": "Street lights", "line": "jianshe"}
    if days is not None:
        fields["deadline_days"] = days
    assert t.push1("admin", t.mut("categories", category_id(code), fields)).status == "applied"


def _closed_matter(t: Town, code: str) -> str:
    mid = t.matter("w1", title="路灯不亮")
    base = t.version("matters", mid)
    assert t.push1("staff", t.mut("matters", mid, {"category": code, "deadline": "2026-11-03"}, base=base)).status \
        == "applied"
    for frm, to in (("submitted", "accepted"), ("accepted", "in_progress"), ("in_progress", "resolved"),
                    ("resolved", "closed")):
        assert t.move("staff", mid, frm, to).status == "applied"
    return mid


def test_a_reopened_matter_gets_a_new_deadline_and_loses_its_closing(con: Console) -> None:
    t = con.town
    _category(t, "test.lights", 5)
    mid = _closed_matter(t, "test.lights")
    closed = con.matter(mid)
    assert closed["closed_at"] and closed["resolved_at"] and closed["deadline"] == "2026-11-03"
    t.clock += 60 * 24 * 30                      # a month later the resident says it is broken again
    at = t.at()
    r = t.push1("staff", t.mut("matter_events", new_id(), {"matter_id": mid, "kind": "status", "from": "closed",
                                                            "to": "reopened", "note": "又坏了"}, at=at))
    assert r.status == "applied"
    d = con.matter(mid)
    reopened_on = proxy.local_date(at)
    assert d["status"] == "reopened" and d["deadline"] == proxy.add_workdays(reopened_on, 5).isoformat()
    assert d["effective_deadline"] == d["deadline"] and d["closed_at"] is None and d["resolved_at"] is None
    # not overdue on the day it was reopened, by the one rule and by the store's SQL alike
    today = reopened_on.isoformat()
    assert not workflow.is_overdue(d, today, metrics.FINISHED)
    grids = [t.ids["g1"], t.ids["g2"], t.ids["g3"]]
    assert con.store.matters_now(grids, today, metrics.FINISHED, None)[0] == 0
    late = (proxy.add_workdays(reopened_on, 6)).isoformat()
    assert con.store.matters_now(grids, late, metrics.FINISHED, None)[0] == 1
    # the phone receives the new deadline as an ordinary change
    pulled = t.pull_all("w1")[("matters", mid)].data
    assert pulled["deadline"] == d["deadline"] and pulled["closed_at"] is None
    con.login("staff1")
    page = con.c.get(f"/staff/matters/{mid}").text
    assert "销号时间" not in page and "办结时间" not in page and 'id="overdue-badge"' not in page
    assert "已销号" in page                                  # the closing stays in the timeline


def test_a_reopened_matter_without_a_category_deadline_keeps_the_one_staff_set(con: Console) -> None:
    t = con.town
    _category(t, "test.nodays", None)
    mid = _closed_matter(t, "test.nodays")
    assert t.move("staff", mid, "closed", "reopened", "再办").status == "applied"
    d = con.matter(mid)
    assert d["deadline"] == d["effective_deadline"] == "2026-11-03" and d["closed_at"] is None
    # staff hand it out again with a new deadline: the dispatch form offers to set one
    con.login("staff1")
    con.act(mid, action="dispatch", assignee_id=t.actors["w1"].user_id, deadline="2026-12-18")
    d = con.matter(mid)
    assert d["status"] == "assigned" and d["deadline"] == "2026-12-18"
    assert not workflow.is_overdue(d, "2026-12-18", metrics.FINISHED)


# -- 5. phones, natural order, duplicates -------------------------------------------------------------

def test_the_matter_page_shows_the_residents_and_the_households_phone(con: Console) -> None:
    t = con.town
    hid = t.household("w1", phone="057488881234")
    rid = new_id()
    assert t.push1("w1", t.mut("residents", rid, {"household_id": hid, "name": "王阿婆", "phone": "13812345678"})) \
        .status == "applied"
    mid = t.matter("w1", household=hid, resident_id=rid)
    con.login("staff1")
    page = con.c.get(f"/staff/matters/{mid}").text
    assert 'href="tel:13812345678"' in page and 'href="tel:057488881234"' in page and "王阿婆" in page


def test_area_names_sort_naturally() -> None:
    names = ["第十网格", "第二网格", "第一网格", "第三网格", "第十一网格", "第二十网格", "第九网格"]
    assert sorted(names, key=natural_key) == ["第一网格", "第二网格", "第三网格", "第九网格", "第十网格", "第十一网格",
                                              "第二十网格"]
    assert sorted(["第10组", "第9组", "第1组", "第100组"], key=natural_key) == ["第1组", "第9组", "第10组", "第100组"]
    assert sorted(["9号楼", "第10组", "第九组"], key=natural_key) == ["9号楼", "第九组", "第10组"]
    assert sorted(["杖锡村第三网格", "杖锡村第一网格", "杖锡村第二网格"], key=natural_key) == \
        ["杖锡村第一网格", "杖锡村第二网格", "杖锡村第三网格"]


def test_every_list_of_areas_sorts_naturally(con: Console) -> None:
    t = con.town
    for name in ("杖锡村第十网格", "杖锡村第三网格", "杖锡村第九网格"):
        assert t.push1("admin", t.mut("areas", new_id(), {"level": "grid", "name": name,
                                                          "parent_id": t.ids["v1"]})).status == "applied"
    want = ["杖锡村第一网格", "杖锡村第二网格", "杖锡村第三网格", "杖锡村第九网格", "杖锡村第十网格"]

    def order(html: str) -> list[str]:
        return [n for n in re.findall(r"(杖锡村第.网格)", html) if n in want]

    con.login("admin")
    for path in ("/staff/households", "/staff/matters", "/staff/admin/areas", "/staff/admin/users"):
        got = order(con.c.get(path).text)
        assert list(dict.fromkeys(got)) == want, (path, got)


def test_duplicate_suggestions_are_precise(con: Console) -> None:
    t = con.town
    h = t.household("w1")
    _category(t, "test.lights", 5)
    unrelated = t.matter("w1", household=h, title="咨询养老金调整", raised_at="2026-11-01T09:00:00+08:00")
    other_home = t.matter("w1", title="门口路灯坏了", raised_at="2026-11-02T09:00:00+08:00")
    similar = t.matter("w1", household=h, title="门口路灯坏了", raised_at="2026-11-02T09:00:00+08:00")
    same_cat = t.matter("w1", household=h, title="灯杆歪斜", category="test.lights",
                        raised_at="2026-11-04T09:00:00+08:00")
    too_old = t.matter("w1", household=h, title="路灯不亮了", raised_at="2026-07-01T09:00:00+08:00")
    new = t.matter("w1", household=h, title="路灯不亮", category="test.lights", raised_at="2026-11-05T09:00:00+08:00")
    con.login("staff1")
    page = con.c.get(f"/staff/matters/{new}").text
    offered = re.findall(r'name="duplicate_of" value="([0-9a-f-]{36})"', page)
    assert set(offered) == {similar, same_cat}, offered
    assert unrelated not in offered and other_home not in offered and too_old not in offered
    # an open matter comes before a finished one
    for frm, to in (("submitted", "accepted"), ("accepted", "in_progress"), ("in_progress", "resolved")):
        assert t.move("staff", same_cat, frm, to).status == "applied"
    page = con.c.get(f"/staff/matters/{new}").text
    assert re.findall(r'name="duplicate_of" value="([0-9a-f-]{36})"', page) == [similar, same_cat]
    assert similar_titles("路灯不亮", "门口路灯坏了") and not similar_titles("代办社保卡换领", "代办医保缴费")


# -- 6. labels for assistive technology ----------------------------------------------------------------

def test_every_area_box_on_the_users_page_has_a_label(con: Console) -> None:
    con.login("admin")
    page = con.c.get("/staff/admin/users").text
    selects = re.findall(r"<select[^>]*>", page)
    boxes = [s for s in selects if 'name="areas"' in s]
    assert len(boxes) >= 6
    # in a row: an aria-label; in the create form: the enclosing <label>
    assert sum('aria-label="工作区域：' in s for s in boxes) == len(boxes) - 1


def test_the_conflict_page_never_shows_a_record_that_left_the_users_area(con: Console) -> None:
    """What a record holds now is read from the record: when it moved out of the user's area since, the
    page does not show it (the conflict itself may still be theirs to dismiss)."""
    from sync import accounts

    from .conftest import PASSWORD, password_hash
    t = con.town
    accounts.create_user(con.store, "staffv1", PASSWORD, "staff", [t.ids["v1"]], password_hash=password_hash())
    hid, cid = phone_conflict(t, incoming_wins=True)
    base = t.version("households", hid)
    assert t.push1("staff", t.mut("households", hid, {"grid_id": t.ids["g3"], "phone": "13977777777"},
                                  base=base)).status == "applied"
    con.login("staffv1")
    r = con.c.get(f"/staff/conflicts/{cid}")
    assert r.status_code == 200 and "13977777777" not in r.text
    assert "记录已不在您的管辖范围内" in cell(r.text, "value-now")
    con.c.cookies.clear()
    con.login("staff1")                                      # the town's staff still see it whole
    assert "13977777777" in cell(con.c.get(f"/staff/conflicts/{cid}").text, "value-now")


def test_a_rejected_change_names_records_instead_of_ids(con: Console) -> None:
    t = con.town
    hid = t.household("w1", head_name="王阿公")
    rid = new_id()
    # a resident whose household is in another village: refused, and shown by names
    far = t.household("w3", grid="g3", head_name="李阿婆")
    r = t.push1("w1", t.mut("residents", rid, {"household_id": far, "name": "王小二"}))
    assert r.status == "rejected" and r.conflict_id
    con.login("staff1")
    page = con.c.get(f"/staff/conflicts/{r.conflict_id}").text
    assert "王小二" in page and "李阿婆" in page and far not in text_of(page)
    assert hid not in page


def test_field_names_are_labels_in_both_languages() -> None:
    from server.staff.labels import field_label, value_text
    assert field_label("households", "phone") == "联系电话" and field_label("households", "phone", "en") == "Phone"
    # a contested status move is about the matter_events record; its field is the matter's status
    assert field_label("matter_events", "status") == "状态" and field_label("matter_events", "status", "en") == "Status"
    assert value_text("matters", "status", "reopened") == "重新办理"
    assert value_text("matters", "urgency", "critical", "en") == "Critical"
    assert value_text("matters", "supervised", False) == "否"
    assert value_text("residents", "household_id", "4c1f0000-0000-4000-8000-000000000000", "zh", {}) == "—"


def test_every_engine_refusal_has_a_label_in_both_languages() -> None:
    from server.staff.labels import LABELS, error_text
    from sync.errors import MUTATION_CODES
    assert set(MUTATION_CODES) <= set(LABELS["error"])
    for code in MUTATION_CODES:
        zh, en = error_text(code), error_text(code, "en")
        assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en), code
