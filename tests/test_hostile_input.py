"""Hostile input everywhere (issue 7): every field of every collection, the push envelope, login,
pull parameters, headers and blob names.

Each payload is either refused with the protocol's error shape and a message that names what is
wrong, or stored exactly as sent (modulo the documented normalisation) and given back as data. No
payload may cause a 5xx, half-apply a batch, or change the database's structure. The browser side
(the same payloads rendered inert in the PWA and the staff pages) is ``e2e/test_hostile_render.py``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from sync.schema import COLLECTIONS, Field

from . import backend
from .conftest import new_id
from .test_api import API, Api, api, assert_error, town_template  # noqa: F401

# -- the payloads ----------------------------------------------------------------------------------

SQL = ["'; DROP TABLE households; --", "1 OR 1=1", "\" OR \"\"=\"", "x'); DELETE FROM feed; --",
       "Robert'); UPDATE users SET data = json_set(data, '$.role', 'admin'); --"]
HTML = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\"><svg onload=alert(1)>",
        "javascript:alert(1)", "{{ 7*7 }}${7*7}<%= 7*7 %>", "</textarea><b>bold</b>", "&lt;&amp;&#x3c;"]
CONTROL = ["a\x00b", "bell\x07", "\x1b[31mred", "del\x7f", "line\nbreak", "cr\rreturn", "tab\there",
           "rtl\u202eoverride", "zero\u200bwidth", "nel\u0085x", "ls\u2028ps\u2029"]
NUMBERS = [10 ** 30, -(10 ** 30), 2 ** 63, -(2 ** 63) - 1, 1e308, -1e308, 5e-324, -0.0, 2 ** 53 + 1]
OTHER = [[], {}, True, "", " ", "长" * 5000, "x" * 100_001, "../../../etc/passwd", "..\\..\\boot.ini",
         "%00", "\u0000" * 3, "𠜎𠜱𠝹", "Ω≈ç√∫˜µ≤≥÷"]
BLOB_NAMES = ["../../../etc/passwd", "../" * 21 + "x", "a" * 63 + "/", "A" * 64, "a" * 65, "/" + "a" * 63,
              "a" * 62 + "..", "%2e%2e%2f" + "a" * 55, "a" * 63 + "\x00", "ａ" * 64]


def deep(n: int) -> Any:
    v: Any = "bottom"
    for i in range(n):
        v = [v] if i % 2 else {"k": v}
    return v


PAYLOADS: list[Any] = [*SQL, *HTML, *CONTROL, *NUMBERS, *OTHER, deep(8), deep(60), *BLOB_NAMES]


# -- a valid record of each collection, to put one hostile value into ----------------------------

def base_records(api: Api) -> dict[str, tuple[str, dict[str, Any]]]:
    """(who pushes, valid create fields) per pushable collection; parents created first."""
    t = api.town
    hid, _ = api.household("w1")
    rid, mid, vid = new_id(), new_id(), new_id()
    sha = "ab" * 32
    [r1, r2, r3] = api.push_ok("w1", t.mut("residents", rid, {"household_id": hid, "name": "王小明"}),
                               t.mut("matters", mid, {"household_id": hid, "title": "路灯坏了"}),
                               t.mut("visits", vid, {"household_id": hid, "visited_at": t.at()}))
    assert (r1["status"], r2["status"], r3["status"]) == ("applied",) * 3
    return {
        "areas": ("admin", {"level": "village", "name": "新村", "parent_id": t.ids["town"]}),
        "categories": ("admin", {"code": "x." + new_id()[:8], "name_zh": "测试", "name_en": "Test"}),
        "households": ("staff", {"grid_id": t.ids["g1"], "address": "上岙1号", "head_name": "王阿公"}),
        "residents": ("staff", {"household_id": hid, "name": "王小红"}),
        "visits": ("staff", {"household_id": hid, "visited_at": "2026-11-01T09:00:00+08:00"}),
        "matters": ("staff", {"household_id": hid, "title": "屋顶漏雨"}),
        "matter_events": ("staff", {"matter_id": mid, "kind": "note"}),
        "attachments": ("staff", {"record_collection": "households", "record_id": hid, "sha256": sha}),
    }


def acceptable(f: Field, sent: Any, stored: Any) -> bool:
    """Is ``stored`` what the documented normalisation makes of ``sent``?"""
    if f.type == "str":
        return isinstance(sent, str) and stored == (sent.strip().upper() if f.name == "id_number" else sent.strip())
    if f.type in ("text", "enum", "bool", "date", "json", "sha256"):
        return stored == sent and type(stored) is type(sent) or (f.type == "json" and stored == sent)
    if f.type in ("int", "float"):
        return isinstance(stored, (int, float)) and stored == sent and f.min <= stored <= f.max  # type: ignore[operator]
    if f.type == "uuid":
        return isinstance(sent, str) and stored == sent.lower()
    if f.type in ("set", "strlist", "sha256list"):
        return isinstance(stored, list) and stored == (sorted({s.strip() for s in sent}) if f.type == "set" else sent)
    if f.type == "object":
        return isinstance(stored, dict) and stored == sent
    if f.type == "datetime":
        return isinstance(stored, str)
    return False


def _db_is_intact(db: str) -> None:
    with contextlib.closing(backend.connect(db)) as c:
        if backend.POSTGRES:
            # No PRAGMA integrity_check: SQL cannot break PostgreSQL's pages, only drop or empty tables.
            tables = {r[0] for r in c.execute("SELECT table_name FROM information_schema.tables "
                                              "WHERE table_schema = 'public'")}
        else:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"households", "feed", "users", "devices", "mutation_log", "conflicts"} <= tables
        roles = {json.loads(r[0])["role"] for r in c.execute("SELECT data FROM users")}
        assert roles == {"admin", "grid_worker", "proxy_agent", "staff"}


FIELDS = [(c.name, f.name) for c in COLLECTIONS.values() if c.name not in ("users", "conflicts")
          for f in c.writable()]


@pytest.mark.parametrize("coll,field", FIELDS, ids=[f"{c}.{f}" for c, f in FIELDS])
def test_every_hostile_value_in_every_field_is_refused_clearly_or_stored_as_sent(api: Api, coll: str,
                                                                                 field: str) -> None:
    who, valid = base_records(api)[coll]
    f = COLLECTIONS[coll].by_name[field]
    t = api.town
    sent: list[tuple[dict[str, Any], Any]] = []
    for value in PAYLOADS:
        fields = dict(valid)
        if coll == "categories":
            fields["code"] = "x." + new_id()[:8]
        fields[field] = value
        sent.append((t.mut(coll, new_id(), fields), value))
    # One batch per field: the refusals reject their own mutation only.
    r = api.push(who, *[m for m, _ in sent])
    assert r.status_code == 200, r.text[:500]
    results = r.json()["results"]
    assert len(results) == len(sent)
    stored_ok = 0
    for (m, value), res in zip(sent, results):
        assert res["status"] in ("applied", "rejected"), (value, res)
        if res["status"] == "rejected":
            err = res["error"]
            assert err["code"] == "invalid_request", (field, value, err)
            # The message names the field (or, for a create missing what it replaced, a required one).
            assert err["message"].startswith("fields."), err
            assert len(err["message"]) < 400, err["message"][:500]
            assert api.record(coll, m["id"]) is None
        else:
            stored = api.record(coll, m["id"]).data.get(field)
            assert acceptable(f, value, stored), (field, repr(value)[:100], repr(stored)[:100])
            stored_ok += 1
    # Control characters never reach a single-line field.
    if f.type == "str":
        for (m, value), res in zip(sent, results):
            if isinstance(value, str) and any(c in value for c in "\x00\x07\x1b\x7f\n\r"):
                assert res["status"] == "rejected", (field, repr(value))
    _db_is_intact(api.db)


def test_hostile_text_comes_back_from_pull_byte_for_byte(api: Api) -> None:
    """What is stored is data: a pull returns it literally, JSON-escaped, never interpreted."""
    t = api.town
    texts = {f"n{i}": s for i, s in enumerate([*SQL, *HTML, "多行\n文本\t制表", "rtl\u202eoverride", "长" * 4000])}
    ids = {}
    muts = []
    for key, s in texts.items():
        ids[key] = new_id()
        muts.append(t.mut("households", ids[key], {"grid_id": t.ids["g1"], "address": "上岙1号",
                                                    "head_name": "王", "notes": s}))
    results = api.push_ok("w1", *muts)
    assert all(r["status"] == "applied" for r in results), results
    r = api.pull("w1")
    assert r.headers["content-type"].startswith("application/json")
    replica, _ = api.pull_all("w1")
    for key, s in texts.items():
        assert replica[("households", ids[key])]["data"]["notes"] == s
    _db_is_intact(api.db)


# -- the push envelope: regressions for defects the fuzzing found ---------------------------------

DEEP_BODY = b'{"protocol":1,"mutations":[{"mid":"x","fields":' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
NOT_UTF8 = b'{"protocol":1,"mutations":[{"mid":"\xff\xfe"}]}'


@pytest.mark.parametrize("body,needle", [
    (DEEP_BODY, "nested too deeply"),
    (b'{"protocol":1,"junk":' + b"{\"a\":" * 50_000 + b"1" + b"}" * 50_000 + b',"mutations":[]}', "nested too deeply"),
    (NOT_UTF8, "UTF-8"),
    (b'{"protocol":1,"mutations":[{"mid":"\\ud800"}]}', "not JSON"),
])
def test_unreadable_push_bodies_are_invalid_request_not_500(api: Api, body: bytes, needle: str) -> None:
    """Regression: invalid UTF-8 and deep nesting escaped the decoder as UnicodeDecodeError and
    RecursionError, i.e. 500 internal."""
    before = api.counts()
    r = api.client.post(f"{API}/sync/push", content=body, headers={**api.auth("w1"), "Content-Type": "application/json"})
    err = assert_error(r, 400, "invalid_request")
    assert needle in err["message"], err
    assert api.counts() == before


@pytest.mark.parametrize("body", [
    b'{"username":"\xff","password":"x"}',
    b'{"username":"a","password":"b","x":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    b'{"username":"\\udfff","password":"\\ud800"}',
])
def test_unreadable_login_bodies_are_invalid_request_not_500(api: Api, body: bytes) -> None:
    """Regression: invalid UTF-8 in a login body was a 500."""
    before = api.counts()
    r = api.client.post(f"{API}/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_request")
    assert api.counts()["devices"] == before["devices"]


@pytest.mark.parametrize("depth", [10 ** 30, -(10 ** 30), 2 ** 63, -5, 10 ** 9 + 1])
def test_an_outbox_depth_no_outbox_can_have_is_ignored(api: Api, depth: int) -> None:
    """Regression: a 30-digit outbox_depth overflowed the SQLite integer (500 on every push)."""
    hid = new_id()
    m = api.town.mut("households", hid, {"grid_id": api.town.ids["g1"], "address": "上岙1号", "head_name": "王"})
    r = api.client.post(f"{API}/sync/push", content=json.dumps({"protocol": 1, "outbox_depth": depth,
                                                                "mutations": [m]}).encode(),
                        headers={**api.auth("w1"), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "applied"
    with contextlib.closing(backend.connect(api.db)) as c:
        stored = c.execute("SELECT outbox_depth FROM devices WHERE id = ?",
                           (api.town.actors["w1"].device_id,)).fetchone()[0]
    assert stored is None


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
                                "0001-01-01T00:00:00+00:01"])
def test_a_time_with_no_utc_equivalent_is_rejected_not_500(api: Api, at: str) -> None:
    """Regression: a valid ISO string whose UTC time is out of range raised OverflowError (500)."""
    t = api.town
    hid, _ = api.household("w1")
    ok = t.mut("households", new_id(), {"grid_id": t.ids["g1"], "address": "上岙2号", "head_name": "李"})
    bad_at = t.mut("households", new_id(), {"grid_id": t.ids["g1"], "address": "上岙3号", "head_name": "张"}, at=at)
    bad_field = t.mut("visits", new_id(), {"household_id": hid, "visited_at": at})
    results = api.push_ok("w1", ok, bad_at, bad_field)
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected"], results
    assert results[1]["error"]["message"].startswith("at:"), results[1]
    assert results[2]["error"]["message"].startswith("fields.visited_at:"), results[2]


@pytest.mark.parametrize("limit", ["1\n", " 1", "１", "1_0", "+5", "0x10", "٣"])
def test_pull_limit_must_be_plain_ascii_digits(api: Api, limit: str) -> None:
    """Regression: int() accepted whitespace, full-width and underscore forms the docs call invalid."""
    err = assert_error(api.pull("w1", limit=limit), 400, "invalid_request")
    assert err["details"] == {"parameter": "limit"}


@pytest.mark.parametrize("value", [10 ** 30, 1e400, -(10 ** 30)])
def test_huge_numbers_in_mutation_members_are_refused(api: Api, value: Any) -> None:
    body = ('{"protocol":1,"mutations":[{"mid":"%s","collection":"households","id":"%s","op":"upsert",'
            '"base":%s,"at":"2026-11-01T08:00:00+08:00","fields":{}}]}' % (new_id(), new_id(), value)).encode()
    r = api.client.post(f"{API}/sync/push", content=body, headers={**api.auth("w1"), "Content-Type": "application/json"})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        [res] = r.json()["results"]
        assert res["status"] == "rejected" and res["error"]["code"] in ("invalid_request", "invalid_base"), res
    else:
        assert_error(r, 400, "invalid_request")


def test_hostile_mutation_members_are_rejected_per_mutation(api: Api) -> None:
    t = api.town
    good = t.mut("households", new_id(), {"grid_id": t.ids["g1"], "address": "上岙1号", "head_name": "王"})
    hostile = [
        {**good, "mid": new_id(), "id": "'; DROP TABLE households; --"},
        {**good, "mid": new_id(), "collection": "households; DROP TABLE feed"},
        {**good, "mid": new_id(), "collection": "../../etc/passwd"},
        {**good, "mid": new_id(), "collection": {"$gt": ""}},
        {**good, "mid": new_id(), "op": "<script>alert(1)</script>"},
        {**good, "mid": new_id(), "base": "1 OR 1=1"},
        {**good, "mid": new_id(), "at": "<img src=x onerror=alert(1)>"},
        {**good, "mid": new_id(), "fields": "'; DROP TABLE users; --"},
        {**good, "mid": "'; DROP TABLE mutation_log; --"},
        {**good, "mid": new_id(), "id": new_id(), "fields": {"<script>": 1}},
        {**good, "mid": new_id(), "id": new_id(), "fields": {"__proto__": {"admin": True}}},
    ]
    results = api.push_ok("w1", good, *hostile)
    assert results[0]["status"] == "applied"
    for m, r in zip(hostile, results[1:]):
        assert r["status"] == "rejected" and r["error"]["code"] == "invalid_request", (m, r)
    _db_is_intact(api.db)


# -- headers, tokens and blob names -----------------------------------------------------------------

@pytest.mark.parametrize("value", ["Bearer ' OR 1=1 --", "Bearer " + "A" * 8000, "Bearer \t", "bearer",
                                   "Basic d29ya2VyMTpkZW1v", "Bearer <script>alert(1)</script>",
                                   "Bearer ../../etc/passwd"])
def test_hostile_authorization_headers_are_unauthorized(api: Api, value: str) -> None:
    err = assert_error(api.client.get(f"{API}/sync/pull", headers={"Authorization": value}), 401, "unauthorized")
    assert "<script>" not in err["message"]


def test_non_ascii_bytes_in_the_authorization_header_are_unauthorized(api: Api) -> None:
    r = api.client.get(f"{API}/sync/pull", headers=[(b"Authorization", b"Bearer \xff\xfe\x00")])
    assert_error(r, 401, "unauthorized")


@pytest.mark.parametrize("name", [n for n in BLOB_NAMES if "\x00" not in n and "/" not in n]
                         + ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "a" * 63 + "%00", "%FF" * 32])
@pytest.mark.parametrize("method", ["GET", "HEAD", "PATCH"])
def test_path_traversal_in_blob_names_never_reaches_the_disk(api: Api, method: str, name: str) -> None:
    before = sorted(p.name for p in api.tmp.rglob("*"))
    r = api.client.request(method, f"{API}/blobs/{name}", content=b"x", headers={
        **api.auth("w1"), "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0",
        "Upload-Length": "1"})
    assert r.status_code in (400, 404), (name, r.status_code, r.text)
    if method != "HEAD":
        assert_error(r, r.status_code, "invalid_request" if r.status_code == 400 else "not_found")
    assert sorted(p.name for p in api.tmp.rglob("*")) == before


@pytest.mark.parametrize("headers", [
    {"Upload-Offset": "0", "Upload-Length": "9" * 30},
    {"Upload-Offset": "9" * 30, "Upload-Length": "1"},
    {"Upload-Offset": "-1", "Upload-Length": "1"},
    {"Upload-Offset": "０".encode(), "Upload-Length": "1"},
    {"Upload-Offset": "0", "Upload-Length": "1e3"},
    {"Upload-Offset": "0; DROP TABLE blobs", "Upload-Length": "1"},
])
def test_hostile_upload_headers_are_refused(api: Api, headers: dict[str, Any]) -> None:
    before = api.counts()
    r = api.client.patch(f"{API}/blobs/{'ab' * 32}", content=b"x", headers={
        **api.auth("w1"), "Content-Type": "application/offset+octet-stream", **headers})
    assert r.status_code in (400, 413), r.text
    assert_error(r, r.status_code, "invalid_request" if r.status_code == 400 else "too_large")
    assert api.counts()["blobs"] == before["blobs"]


def test_hostile_sync_health_headers_are_stored_bounded_or_ignored(api: Api) -> None:
    r = api.client.get(f"{API}/sync/pull", headers={**api.auth("w1"), "X-Outbox-Depth": "9" * 40,
                                                   "X-App-Version": "<script>alert(1)</script>" + "v" * 500})
    assert r.status_code == 200
    with contextlib.closing(backend.connect(api.db)) as c:
        depth, version = c.execute("SELECT outbox_depth, app_version FROM devices WHERE id = ?",
                                   (api.town.actors["w1"].device_id,)).fetchone()
    assert depth is None and len(version) <= 100
