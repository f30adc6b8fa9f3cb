"""Protocol v1 over HTTP: every endpoint and its errors, against a database holding the conftest town.

Each error case checks the one error shape (``{"error": {"code", "message", "details"?}}``, no
internals) and that nothing of the refused request was applied (no feed position, no
``mutation_log`` row, no conflict record, no device).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import json
import os
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from . import backend
from .conftest import PASSWORD, Town, build_town, new_id
from server.app import create_app
from server.settings import Settings
from sync import accounts
from sync.store import SQLiteStore

API = "/api/v1"
LEAKS = ("Traceback", 'File "', "site-packages", "sqlite3.", "psycopg", "Exception", "litestar.")


# -- fixtures and helpers ---------------------------------------------------------------------------

@dataclasses.dataclass
class Template:
    db: str
    town: Town


@pytest.fixture(scope="session")
def town_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The conftest town built once (logins verify scrypt hashes, which is slow on purpose);
    every test gets its own copy of the database (``backend.copy_db``; closed before: PostgreSQL
    copies only a database nobody is connected to)."""
    db = backend.new_db(tmp_path_factory.mktemp("template"), keep=True)
    store = backend.open_store(db)
    try:
        store.migrate()
        town = build_town(store)
    finally:
        store.close()
    return Template(db, town)


def settings_for(tmp_path: Any, db: str, blobs: str = "blobs", **extra: Any) -> Settings:
    # pwa_dir points nowhere: these tests are about the API, not whatever the PWA ships today.
    return Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / blobs),
                                               pwa_dir=str(tmp_path / "no-pwa"), **extra))


@dataclasses.dataclass
class Api:
    client: TestClient[Litestar]
    app: Litestar
    town: Town
    db: str
    tmp: Any

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.town.tokens[who]}"}

    def user_id(self, who: str) -> str:
        return self.town.actors[who].user_id

    # -- HTTP
    def push(self, who: str | None, *mutations: dict[str, Any], token: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        elif who is not None:
            h.update(self.auth(who))
        return self.client.post(f"{API}/sync/push", json={"protocol": 1, "mutations": list(mutations)}, headers=h)

    def push_ok(self, who: str, *mutations: dict[str, Any], token: str | None = None) -> list[dict[str, Any]]:
        r = self.push(who, *mutations, token=token)
        assert r.status_code == 200, r.text
        results: list[dict[str, Any]] = r.json()["results"]
        assert [x["mid"] for x in results] == [m["mid"] for m in mutations]
        return results

    def pull(self, who: str, cursor: str | None = None, limit: Any = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        params = {}
        if cursor is not None:
            params["cursor"] = cursor
        if limit is not None:
            params["limit"] = str(limit)
        return self.client.get(f"{API}/sync/pull", params=params, headers={**self.auth(who), **(headers or {})})

    def pull_ok(self, who: str, cursor: str | None = None, limit: Any = None) -> dict[str, Any]:
        r = self.pull(who, cursor, limit)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def pull_all(self, who: str, limit: int = 500) -> tuple[dict[tuple[str, str], dict[str, Any]], str]:
        """The replica a phone would hold after pulling everything, and the last cursor."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        cursor = None
        while True:
            page = self.pull_ok(who, cursor, limit)
            for c in page["changes"]:
                if c.get("removed"):
                    out.pop((c["collection"], c["id"]), None)
                else:
                    out[(c["collection"], c["id"])] = c
            cursor = page["cursor"]
            if not page["more"]:
                return out, cursor

    def login(self, username: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
        return self.client.post(f"{API}/auth/login", json={"username": username, "password": password,
                                                            "device_name": "test phone", **extra})

    def household(self, who: str = "w1", grid: str = "g1", **fields: Any) -> tuple[str, int]:
        hid = new_id()
        data = {"grid_id": self.town.ids[grid], "address": "杖锡村上岙12号", "head_name": "王阿公", **fields}
        [r] = self.push_ok(who, self.town.mut("households", hid, data))
        assert r["status"] == "applied", r
        return hid, r["version"]

    # -- the database, read behind the server's back
    def counts(self) -> dict[str, int]:
        with contextlib.closing(backend.connect(self.db)) as c:
            out = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("mutation_log", "conflicts", "devices", "blobs", "feed", "households", "audit")}
            out["seq"] = c.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]
            out["revoked"] = c.execute("SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL").fetchone()[0]
        return out

    @contextlib.contextmanager
    def store(self) -> Iterator[SQLiteStore]:
        s = backend.open_store(self.db)
        try:
            yield s
        finally:
            s.close()

    def record(self, coll: str, rid: str) -> Any:
        with self.store() as s:
            return s.get(coll, rid)


@pytest.fixture
def api(town_template: Template, tmp_path: Any) -> Iterator[Api]:
    db = backend.copy_db(town_template.db, tmp_path)
    town = dataclasses.replace(town_template.town, clock=0)
    app = create_app(settings_for(tmp_path, db))
    with TestClient(app) as client:
        yield Api(client, app, town, db, tmp_path)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape of the protocol, with a message a person can act on and no internals."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message"} <= set(err) <= {"code", "message", "details"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and len(err["message"]) >= 10, err
    if "details" in err:
        assert isinstance(err["details"], dict), err
    for leak in LEAKS:
        assert leak not in resp.text, resp.text
    return err  # type: ignore[no-any-return]


def assert_security_headers(resp: httpx.Response) -> None:
    assert resp.headers.get("x-content-type-options") == "nosniff"
    csp = resp.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, csp


def by_mid(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["mid"]: r for r in results}


# -- health, routing, schema, headers ------------------------------------------------------------

def test_health_needs_no_token(api: Api) -> None:
    r = api.client.get(f"{API}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["protocol"] == 1
    assert isinstance(body["version"], str) and body["version"]
    assert_security_headers(r)


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/nope", "/api/v1/sync", "/api/v1/blobs",
                                  "/api/v1/blobs/a/b", "/nope", "/schema/nope", "/schema/swagger"])
def test_unknown_route_is_not_found(api: Api, path: str) -> None:
    err = assert_error(api.client.get(path, headers=api.auth("w1")), 404, "not_found")
    assert path in err["message"]


def test_unknown_api_route_stays_json_when_the_pwa_has_a_404_page(town_template: Template, tmp_path: Any) -> None:
    """The PWA is served at / in html mode; its 404 page must not answer for the API."""
    db = backend.copy_db(town_template.db, tmp_path)
    pwa = tmp_path / "pwa"
    pwa.mkdir()
    (pwa / "index.html").write_text("<!doctype html><title>app</title>")
    (pwa / "404.html").write_text("<!doctype html><title>lost</title>")
    with TestClient(create_app(Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs"),
                                                                       pwa_dir=str(pwa))))) as client:
        for path in ("/api/v1/nope", "/api/v1/sync/nope", "/api/v1/blobs/a/b"):
            assert_error(client.get(path), 404, "not_found")
        assert client.get("/").status_code == 200


@pytest.mark.parametrize("method,path", [
    ("PUT", "/api/v1/health"), ("DELETE", "/api/v1/sync/pull"), ("GET", "/api/v1/sync/push"),
    ("GET", "/api/v1/auth/login"), ("PUT", "/api/v1/blobs/" + "a" * 64), ("POST", "/api/v1/blobs/" + "a" * 64),
    ("DELETE", "/api/v1/blobs/" + "a" * 64),
])
def test_wrong_method_is_method_not_allowed(api: Api, method: str, path: str) -> None:
    before = api.counts()
    err = assert_error(api.client.request(method, path, headers=api.auth("w1")), 405, "method_not_allowed")
    assert method in err["message"]
    assert api.counts() == before


def test_openapi_lists_every_route_with_request_bodies(api: Api) -> None:
    r = api.client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "json" in r.headers["content-type"]
    doc = r.json()
    paths = doc["paths"]
    served = {(route.path_format, m.lower())
              for route in api.app.routes if route.path.startswith(API)
              for m in getattr(route, "methods", ()) if m != "OPTIONS"}
    assert served >= {(f"{API}/health", "get"), (f"{API}/auth/login", "post"), (f"{API}/sync/push", "post"),
                      (f"{API}/sync/pull", "get"), (f"{API}/blobs/{{sha256}}", "head"),
                      (f"{API}/blobs/{{sha256}}", "patch"), (f"{API}/blobs/{{sha256}}", "get")}
    for path, method in served:
        assert method in paths.get(path, {}), (path, method)
    schemas = doc["components"]["schemas"]
    for path, struct, props in ((f"{API}/sync/push", "PushRequest", {"protocol", "mutations"}),
                                (f"{API}/auth/login", "LoginRequest", {"username", "password"})):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{struct}"}
        assert props <= set(schemas[struct]["properties"])
    pull = paths[f"{API}/sync/pull"]["get"]
    assert {(p["name"], p["in"]) for p in pull["parameters"]} >= {("cursor", "query"), ("limit", "query")}
    assert set(pull["responses"]) >= {"200", "400", "401", "410"}
    assert "ErrorResponse" in schemas


@pytest.mark.parametrize("path", ["/schema", "/schema/", "/schema/swagger", "/schema/redoc", "/schema/elements",
                                  "/schema/rapidoc", "/schema/scalar", "/schema/stoplight", "/schema/openapi.yaml",
                                  "/schema/openapi.yml", "/schema/oauth2-redirect.html"])
def test_no_api_viewer_loads_assets_from_a_cdn(api: Api, path: str) -> None:
    r = api.client.get(path)
    assert not r.headers.get("content-type", "").startswith("text/html"), (path, r.text[:300])
    text = r.text.lower()
    for cdn in ("cdn", "unpkg", "jsdelivr", "<script", "googleapis"):
        assert cdn not in text, (path, cdn)
    if r.status_code >= 400:
        assert_error(r, 404, "not_found")


def test_security_headers_on_every_kind_of_response(api: Api) -> None:
    responses = [api.client.get(f"{API}/health"), api.client.get(f"{API}/sync/pull"),
                 api.client.get(f"{API}/nope"), api.client.put(f"{API}/health"),
                 api.pull("w1"), api.push("w1"), api.client.get("/schema/openapi.json"),
                 api.client.post(f"{API}/auth/login", content=b"{")]
    for r in responses:
        assert_security_headers(r)
    # API answers are never cached by an intermediary (tokens and personal data).
    assert api.pull("w1").headers.get("cache-control") == "no-store"


# -- login ---------------------------------------------------------------------------------------

def _iso_with_offset(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert dt.utcoffset() is not None, text
    return dt


def test_login_returns_token_device_and_user(api: Api) -> None:
    before = api.counts()
    r = api.login("worker1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "device_id", "user", "server_time"}
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    assert uuid.UUID(body["device_id"])
    assert body["user"] == {"id": api.user_id("w1"), "username": "worker1", "display_name": "worker1",
                            "role": "grid_worker", "areas": [api.town.ids["g1"]]}
    assert abs(_iso_with_offset(body["server_time"]) - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert api.counts()["devices"] == before["devices"] + 1
    # The token works for the sync calls.
    r = api.client.get(f"{API}/sync/pull", headers={"Authorization": f"Bearer {body['token']}"})
    assert r.status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(api: Api) -> None:
    before = api.counts()
    wrong = api.login("worker1", "not the password")
    unknown = api.login("nobody-here", "not the password")
    e1 = assert_error(wrong, 401, "invalid_credentials")
    e2 = assert_error(unknown, 401, "invalid_credentials")
    assert e1 == e2
    assert wrong.content == unknown.content
    assert api.counts()["devices"] == before["devices"]


def test_disabled_user_cannot_sign_in_nor_use_their_token(api: Api) -> None:
    with api.store() as s:
        accounts.update_user(s, api.user_id("w2"), active=False)
    assert_error(api.login("worker2"), 401, "invalid_credentials")
    # device_revoked, on which the app wipes its replica: a disabled person keeps no residents' data
    # (issue 12; the answer was unauthorized, on which the app keeps everything).
    assert_error(api.pull("w2"), 401, "device_revoked")


def test_repeated_login_failures_are_rate_limited(api: Api) -> None:
    for _ in range(5):
        assert_error(api.login("worker1", "guess"), 401, "invalid_credentials")
    before = api.counts()
    r = api.login("worker1", "guess")
    err = assert_error(r, 429, "rate_limited")
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 900
    assert err["details"]["retry_after"] == wait
    assert str(wait) in err["message"]
    # Even the right password waits: the limit is checked before the password.
    assert_error(api.login("worker1"), 429, "rate_limited")
    assert api.counts()["devices"] == before["devices"]
    # Other users are not locked out by somebody guessing worker1's password.
    assert api.login("worker2").status_code == 200


def test_login_failures_from_one_address_are_rate_limited(town_template: Template, tmp_path: Any) -> None:
    """Spraying passwords over many usernames from one address is limited too."""
    db = backend.copy_db(town_template.db, tmp_path)
    with TestClient(create_app(settings_for(tmp_path, db, login_max_failures_ip=3))) as client:
        def login(username: str, password: str) -> httpx.Response:
            return client.post(f"{API}/auth/login", json={"username": username, "password": password})
        for name in ("worker1", "worker2", "nobody"):
            assert_error(login(name, "guess"), 401, "invalid_credentials")
        r = login("worker3", PASSWORD)
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("body,needle", [
    (b"{", "JSON"),
    (b"not json at all", "JSON"),
    (b"[]", "object"),
    (b'"worker1"', "object"),
    (json.dumps({"username": 1, "password": "demo"}).encode(), "$.username"),
    (json.dumps({"username": "worker1"}).encode(), "password"),
    (json.dumps({"username": "worker1", "password": ["demo"]}).encode(), "$.password"),
    (json.dumps({"username": "worker1", "password": "demo", "previous_device_id": 5}).encode(),
     "$.previous_device_id"),
    (json.dumps({"username": "worker1", "password": "demo", "device_name": None}).encode(), "$.device_name"),
])
def test_login_with_an_unreadable_body_is_invalid_request(api: Api, body: bytes, needle: str) -> None:
    before = api.counts()
    r = api.client.post(f"{API}/auth/login", content=body, headers={"Content-Type": "application/json"})
    err = assert_error(r, 400, "invalid_request")
    assert needle in err["message"]
    assert api.counts() == before


def test_login_body_too_large(api: Api) -> None:
    body = json.dumps({"username": "worker1", "password": "x" * (100 * 1024)}).encode()
    before = api.counts()
    assert_error(api.client.post(f"{API}/auth/login", content=body), 413, "too_large")
    bomb = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    packed = bomb.compress(b'{"username": "worker1", "password": "' + b"x" * (5 * 1024 * 1024)) + bomb.flush()
    assert_error(api.client.post(f"{API}/auth/login", content=packed, headers={"Content-Encoding": "gzip"}),
                 413, "too_large")
    assert api.counts() == before


def test_previous_device_id_makes_retries_of_the_old_device_exactly_once(api: Api) -> None:
    old = api.town.actors["w1"]
    r = api.login("worker1", previous_device_id=old.device_id)
    assert r.status_code == 200
    new_token = r.json()["token"]
    assert r.json()["device_id"] != old.device_id
    hid = new_id()
    m = api.town.mut("households", hid, {"grid_id": api.town.ids["g1"], "address": "上岙1号", "head_name": "李"})
    first = api.push_ok("w1", m)
    assert first[0]["status"] == "applied"
    before = api.counts()
    again = api.push_ok("w1", m, token=new_token)
    assert again == first
    assert api.counts() == before


def test_linked_devices_never_conflict_with_themselves(api: Api) -> None:
    """Rule 1 of §6 across previous_device_id: edit a field from A, then from B with A's old base."""
    hid, v1 = api.household("w1")
    old = api.town.actors["w1"]
    linked = api.login("worker1", previous_device_id=old.device_id).json()["token"]
    unlinked = api.login("worker1").json()["token"]

    [a] = api.push_ok("w1", api.town.mut("households", hid, {"phone": "13800000001"}, base=v1))
    assert a["status"] == "applied"
    [b] = api.push_ok("w1", api.town.mut("households", hid, {"phone": "13800000002"}, base=v1), token=linked)
    assert b["status"] == "applied", b
    assert "conflict_id" not in b
    assert api.record("households", hid).data["phone"] == "13800000002"

    # Control: a device of the same user that was not linked is another device (a conflict), and so is
    # another user's device that names worker1's device as its "previous" one (never linked across users).
    [c] = api.push_ok("w1", api.town.mut("households", hid, {"phone": "13800000003"}, base=v1), token=unlinked)
    assert c["status"] == "conflict", c
    sneaky = api.login("worker2", previous_device_id=old.device_id).json()["token"]
    [d] = api.push_ok("w2", api.town.mut("households", hid, {"phone": "13800000004"}, base=v1), token=sneaky)
    assert d["status"] == "conflict", d


# -- authentication on every other endpoint -----------------------------------------------------

SHA = "ab" * 32


def _calls(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    hid = new_id()
    push_body = {"protocol": 1, "mutations": [api.town.mut(
        "households", hid, {"grid_id": api.town.ids["g1"], "address": "上岙9号", "head_name": "张"})]}
    return [
        ("POST", f"{API}/sync/push", {"json": push_body}),
        ("GET", f"{API}/sync/pull", {}),
        ("GET", f"{API}/sync/pull?limit=5", {}),
        ("HEAD", f"{API}/blobs/{SHA}", {}),
        ("PATCH", f"{API}/blobs/{SHA}", {"content": b"abc", "headers": {
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0", "Upload-Length": "3"}}),
        ("GET", f"{API}/blobs/{SHA}", {}),
    ]


def _call(api: Api, method: str, path: str, kw: dict[str, Any], auth: dict[str, str]) -> httpx.Response:
    kw = dict(kw)
    kw["headers"] = {**kw.get("headers", {}), **auth}
    return api.client.request(method, path, **kw)


def _assert_refused(r: httpx.Response, method: str, code: str) -> None:
    if method == "HEAD":  # no body on HEAD, but the status and the JSON type still say why
        assert r.status_code == 401 and r.content == b""
        assert r.headers["content-type"].startswith("application/json")
    else:
        assert_error(r, 401, code)


@pytest.mark.parametrize("auth", [
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "},
    {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic d29ya2VyMTpkZW1v"},
    {"Authorization": "Token x"}, {"Authorization": "Bearer " + "A" * 5000},
], ids=["none", "empty", "scheme-only", "blank", "garbage", "basic", "other-scheme", "huge"])
def test_missing_or_bad_token_is_unauthorized(api: Api, auth: dict[str, str]) -> None:
    before = api.counts()
    for method, path, kw in _calls(api):
        _assert_refused(_call(api, method, path, kw, auth), method, "unauthorized")
    assert api.counts() == before
    assert not os.listdir(api.tmp / "blobs" / "partial")


def test_revoked_device_is_device_revoked(api: Api) -> None:
    with api.store() as s:
        assert accounts.revoke_device(s, api.town.actors["w1"].device_id)
    before = api.counts()
    for method, path, kw in _calls(api):
        _assert_refused(_call(api, method, path, kw, api.auth("w1")), method, "device_revoked")
    assert api.counts() == before
    assert not os.listdir(api.tmp / "blobs" / "partial")
    # Only that device: the same user's other devices and other users carry on.
    assert api.pull("w2").status_code == 200
    token = api.login("worker1").json()["token"]
    assert api.client.get(f"{API}/sync/pull", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# -- push: the envelope --------------------------------------------------------------------------

def _good(api: Api) -> dict[str, Any]:
    return api.town.mut("households", new_id(), {"grid_id": api.town.ids["g1"], "address": "上岙3号",
                                                 "head_name": "陈"})


@pytest.mark.parametrize("case", [
    "not-json", "truncated-json", "array", "string", "null", "protocol-2", "protocol-string", "no-protocol",
    "mutations-object", "mutations-null", "no-mutations", "mutation-not-object", "no-mid", "mid-number",
    "mid-null", "bad-mid-after-good",
])
def test_unreadable_push_envelope_is_invalid_request_and_applies_nothing(api: Api, case: str) -> None:
    good = _good(api)
    bad = dict(_good(api))
    bodies: dict[str, tuple[Any, str]] = {
        "not-json": (b"hello", "JSON"),
        "truncated-json": (json.dumps({"protocol": 1, "mutations": [good]}).encode()[:-3], "JSON"),
        "array": ([good], "object"),
        "string": ("push", "object"),
        "null": (None, "object"),
        "protocol-2": ({"protocol": 2, "mutations": [good]}, "$.protocol"),
        "protocol-string": ({"protocol": "1", "mutations": [good]}, "$.protocol"),
        "no-protocol": ({"mutations": [good]}, "protocol"),
        "mutations-object": ({"protocol": 1, "mutations": {"0": good}}, "$.mutations"),
        "mutations-null": ({"protocol": 1, "mutations": None}, "$.mutations"),
        "no-mutations": ({"protocol": 1}, "mutations"),
        "mutation-not-object": ({"protocol": 1, "mutations": [good, 7]}, "$.mutations[1]"),
        "no-mid": ({"protocol": 1, "mutations": [good, {k: v for k, v in bad.items() if k != "mid"}]},
                   "$.mutations[1]"),
        "mid-number": ({"protocol": 1, "mutations": [good, dict(bad, mid=12)]}, "$.mutations[1].mid"),
        "mid-null": ({"protocol": 1, "mutations": [good, dict(bad, mid=None)]}, "$.mutations[1].mid"),
        "bad-mid-after-good": ({"protocol": 1, "mutations": [good, good, dict(bad, mid=["x"])]},
                               "$.mutations[2].mid"),
    }
    body, needle = bodies[case]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    before = api.counts()
    r = api.client.post(f"{API}/sync/push", content=content,
                        headers={**api.auth("w1"), "Content-Type": "application/json"})
    err = assert_error(r, 400, "invalid_request")
    assert needle in err["message"], err
    assert api.counts() == before
    assert api.record("households", good["id"]) is None


def test_too_many_mutations_is_too_large(api: Api) -> None:
    mutations = [_good(api) for _ in range(501)]
    before = api.counts()
    err = assert_error(api.push("w1", *mutations), 413, "too_large")
    assert "500" in err["message"]
    assert api.counts() == before
    # 500 is fine.
    results = api.push_ok("w1", *mutations[:500])
    assert {r["status"] for r in results} == {"applied"}


@pytest.mark.parametrize("size", [2 * 1024 * 1024 + 1, 3 * 1024 * 1024], ids=["just-over", "far-over"])
def test_push_body_over_2_mib_is_too_large(api: Api, size: int) -> None:
    m = _good(api)
    m["fields"]["notes"] = "x"
    body = json.dumps({"protocol": 1, "mutations": [m]}).encode()
    body = body[:-1] + b" " * (size - len(body)) + body[-1:]
    assert len(body) == size and json.loads(body)
    before = api.counts()
    assert_error(api.client.post(f"{API}/sync/push", content=body, headers=api.auth("w1")), 413, "too_large")
    assert api.counts() == before
    assert api.record("households", m["id"]) is None


def test_gzip_push_body_is_accepted(api: Api) -> None:
    m = _good(api)
    body = gzip.compress(json.dumps({"protocol": 1, "mutations": [m]}).encode())
    r = api.client.post(f"{API}/sync/push", content=body,
                        headers={**api.auth("w1"), "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "applied"
    replica, _ = api.pull_all("w1")
    assert ("households", m["id"]) in replica


def _gzip_bomb(megabytes: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(z.compress(block) for _ in range(megabytes)) + z.flush()


def test_gzip_bomb_is_too_large_and_the_server_stays_healthy(api: Api) -> None:
    bomb = _gzip_bomb(50)
    assert len(bomb) < 100 * 1024
    before = api.counts()
    r = api.client.post(f"{API}/sync/push", content=bomb,
                        headers={**api.auth("w1"), "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert_error(r, 413, "too_large")
    assert api.counts() == before
    assert api.client.get(f"{API}/health").json()["ok"] is True
    assert api.push_ok("w1", _good(api))[0]["status"] == "applied"


_EMPTY_PUSH = b'{"protocol": 1, "mutations": []}'


@pytest.mark.parametrize("body,encoding", [
    (b"\x1f\x8b\x08\x00garbage-not-deflate", "gzip"),
    (b"plain text, not gzip", "gzip"),
    # A gzip stream cut short (a dropped upload) is not a body, even when the JSON inside looks whole.
    (gzip.compress(_EMPTY_PUSH)[:-8], "gzip"),
    (gzip.compress(_EMPTY_PUSH)[:-1], "gzip"),
    (gzip.compress(_EMPTY_PUSH) + b"trailing junk", "gzip"),
    (_EMPTY_PUSH, "br"),
], ids=["bad-deflate", "not-gzip", "no-trailer", "cut-trailer", "trailing-junk", "brotli"])
def test_bad_content_encoding_is_invalid_request(api: Api, body: bytes, encoding: str) -> None:
    before = api.counts()
    r = api.client.post(f"{API}/sync/push", content=body, headers={**api.auth("w1"), "Content-Encoding": encoding})
    assert_error(r, 400, "invalid_request")
    assert api.counts() == before


def test_empty_push_is_fine(api: Api) -> None:
    r = api.push("w1")
    assert r.status_code == 200
    assert r.json()["results"] == []
    _iso_with_offset(r.json()["server_time"])


# -- push: per-mutation outcomes -----------------------------------------------------------------

def _conflicts_of(api: Api, who: str) -> dict[str, dict[str, Any]]:
    replica, _ = api.pull_all(who)
    return {rid: c["data"] for (coll, rid), c in replica.items() if coll == "conflicts"}


def test_defective_mutations_are_rejected_and_the_rest_of_the_batch_is_applied(api: Api) -> None:
    t = api.town
    g1 = t.ids["g1"]
    h0, v0 = api.household("w1")
    base_counts = api.counts()
    ok1, ok2 = new_id(), new_id()
    bad_ids = {name: new_id() for name in ("field", "type", "at")}
    batch = [
        t.mut("households", ok1, {"grid_id": g1, "address": "上岙20号", "head_name": "甲"}),
        t.mut("nonsense", new_id(), {"x": 1}),
        t.mut("households", bad_ids["field"], {"grid_id": g1, "address": "a", "head_name": "b", "colour": "red"}),
        t.mut("households", bad_ids["type"], {"grid_id": g1, "address": "a", "head_name": "b",
                                              "members_count": "three"}),
        t.mut("households", "not-a-uuid", {"grid_id": g1, "address": "a", "head_name": "b"}),
        t.mut("households", bad_ids["at"], {"grid_id": g1, "address": "a", "head_name": "b"},
              at="2026-11-20T09:12:00"),
        t.mut("households", h0, {"notes": "from the future"}, base=v0 + 100),
        t.mut("households", ok2, {"grid_id": g1, "address": "上岙21号", "head_name": "乙"}),
        t.mut("households", h0, {"phone": "13900000000"}, base=v0),
        t.mut("households", new_id(), {"grid_id": g1, "address": "a", "head_name": "b"}, op="replace"),
        t.mut("households", h0, {"phone": "13900000001"}, base=-1),
    ]
    expected = ["applied", ("invalid_request", "collection"), ("invalid_request", "colour"),
                ("invalid_request", "members_count"), ("invalid_request", "id"), ("invalid_request", "at"),
                ("invalid_base", "base"), "applied", "applied", ("invalid_request", "op"),
                ("invalid_request", "base")]
    results = api.push_ok("w1", *batch)
    assert [r["mid"] for r in results] == [m["mid"] for m in batch]
    rejected = {}
    for m, r, exp in zip(batch, results, expected):
        if exp == "applied":
            assert r["status"] == "applied", r
            continue
        code, where = exp
        assert r["status"] == "rejected", (m, r)
        assert r["error"]["code"] == code, r
        assert where in r["error"]["message"], r
        assert "version" not in r
        rejected[m["mid"]] = r
    # The good ones are there, the bad ones are not, and h0 got only the good edit.
    replica, _ = api.pull_all("w1")
    assert ("households", ok1) in replica and ("households", ok2) in replica
    for rid in bad_ids.values():
        assert ("households", rid) not in replica and api.record("households", rid) is None
    assert replica[("households", h0)]["data"]["phone"] == "13900000000"
    assert replica[("households", h0)]["data"]["notes"] is None
    # Every rejection is stored as a conflict of kind "rejected", visible to its author.
    conflicts = _conflicts_of(api, "w1")
    for mid, r in rejected.items():
        assert r.get("conflict_id") in conflicts, r
        c = conflicts[r["conflict_id"]]
        assert c["kind"] == "rejected" and c["author_id"] == api.user_id("w1")
        assert c["mutation"]["mid"] == mid
        assert c["error"]["code"] == r["error"]["code"]
    # ...and to staff of the area, but not to other workers, even of the same grid.
    ids = {r["conflict_id"] for r in rejected.values()}
    assert ids <= set(_conflicts_of(api, "staff"))
    assert not set(_conflicts_of(api, "w2")) & ids
    assert not set(_conflicts_of(api, "w3")) & ids
    after = api.counts()
    assert after["mutation_log"] == base_counts["mutation_log"] + len(batch)
    assert after["households"] == base_counts["households"] + 2


def test_mid_repeated_in_a_batch_is_rejected_and_recorded(api: Api) -> None:
    """Protocol §4: a mid repeated inside the batch makes that mutation rejected (the rest goes on),
    and §4 "every rejection is also stored as a record in conflicts"; a retry creates nothing new."""
    first = _good(api)
    second = dict(_good(api), mid=first["mid"])
    third = _good(api)
    results = api.push_ok("w1", first, second, third)
    assert [r["status"] for r in results] == ["applied", "rejected", "applied"]
    assert results[1]["error"]["code"] == "invalid_request"
    assert "mid" in results[1]["error"]["message"]
    assert api.record("households", second["id"]) is None
    # The first mutation's result is the one kept under the mid.
    before = api.counts()
    again = api.push_ok("w1", first)
    assert again[0] == results[0]
    conflicts = _conflicts_of(api, "w1")
    rejected = [c for c in conflicts.values() if c["kind"] == "rejected" and c["mutation"]["id"] == second["id"]]
    assert len(rejected) == 1, "the repeated mid's rejection is not stored in conflicts"
    assert results[1].get("conflict_id") in conflicts
    # Retrying the whole batch gives the same answers and stores nothing new.
    assert api.push_ok("w1", first, second, third) == results
    assert api.counts() == before


def test_outside_scope_is_rejected_forbidden(api: Api) -> None:
    hid, v = api.household("w1")
    before = api.counts()
    [r] = api.push_ok("w3", api.town.mut("households", hid, {"phone": "13700000000"}, base=v))
    assert r["status"] == "rejected" and r["error"]["code"] == "forbidden", r
    rec = api.record("households", hid)
    assert rec.version == v and rec.data["phone"] is None
    # w3 never receives the household, but sees its own rejection.
    replica, _ = api.pull_all("w3")
    assert ("households", hid) not in replica
    conflict = replica[("conflicts", r["conflict_id"])]["data"]
    assert conflict["kind"] == "rejected" and conflict["error"]["code"] == "forbidden"
    after = api.counts()
    assert after["mutation_log"] == before["mutation_log"] + 1
    assert after["households"] == before["households"]
    # A grid worker cannot create in another grid either, nor delete a household at all.
    [c] = api.push_ok("w3", api.town.mut("households", new_id(), {"grid_id": api.town.ids["g1"],
                                                                  "address": "x", "head_name": "y"}))
    assert c["status"] == "rejected" and c["error"]["code"] == "forbidden", c
    [d] = api.push_ok("w1", api.town.mut("households", hid, op="delete", base=v))
    assert d["status"] == "rejected" and d["error"]["code"] == "forbidden", d
    assert not api.record("households", hid).deleted


def test_role_that_may_not_is_rejected_forbidden(api: Api) -> None:
    aid = new_id()
    before = api.counts()
    [r] = api.push_ok("w1", api.town.mut("areas", aid, {"level": "grid", "name": "私设网格",
                                                        "parent_id": api.town.ids["v1"]}))
    assert r["status"] == "rejected" and r["error"]["code"] == "forbidden", r
    assert api.record("areas", aid) is None
    assert api.counts()["mutation_log"] == before["mutation_log"] + 1
    # Staff may not change the area tree either; admin may.
    [s] = api.push_ok("staff", api.town.mut("areas", aid, {"level": "grid", "name": "网格",
                                                           "parent_id": api.town.ids["v1"]}))
    assert s["status"] == "rejected" and s["error"]["code"] == "forbidden"
    [a] = api.push_ok("admin", api.town.mut("areas", aid, {"level": "grid", "name": "网格",
                                                           "parent_id": api.town.ids["v1"]}))
    assert a["status"] == "applied"


def test_exactly_once_retry_returns_the_recorded_results(api: Api) -> None:
    t = api.town
    hid, v = api.household("w1")
    mid_new = new_id()
    batch = [
        t.mut("households", hid, {"phone": "13811112222"}, base=v),
        t.mut("households", mid_new, {"grid_id": t.ids["g1"], "address": "上岙5号", "head_name": "丙"}),
        t.mut("households", new_id(), {"grid_id": t.ids["g1"], "address": "x", "head_name": "y", "bad": 1}),
        t.mut("residents", new_id(), {"household_id": hid, "name": "王小明"}),
    ]
    r1 = api.push("w1", *batch)
    assert r1.status_code == 200
    first = r1.json()["results"]
    assert [r["status"] for r in first] == ["applied", "applied", "rejected", "applied"]
    before = api.counts()
    r2 = api.push("w1", *batch)
    assert r2.json()["results"] == first
    assert api.counts() == before
    # Another device of the same user (not linked) gets the recorded answers too: mid is per user.
    token = api.login("worker1").json()["token"]
    before = api.counts()
    assert api.push_ok("w1", *batch, token=token) == first
    assert api.counts() == before
    # The same mid from another user is that user's own mutation.
    [other] = api.push_ok("w2", dict(batch[0], base=api.record("households", hid).version, fields={"notes": "w2"}))
    assert other["status"] == "applied"


def test_results_are_in_request_order(api: Api) -> None:
    t = api.town
    hid, v = api.household("w1")
    mutations = []
    for i in range(30):
        if i % 3 == 0:
            mutations.append(t.mut("households", hid, {"members_count": i}, base=v))
        elif i % 3 == 1:
            mutations.append(t.mut("nowhere", new_id(), {}))
        else:
            mutations.append(t.mut("residents", new_id(), {"household_id": hid, "name": f"居民{i}"}))
    results = api.push_ok("w1", *mutations)
    assert [r["mid"] for r in results] == [m["mid"] for m in mutations]
    assert [r["status"] for r in results] == [["applied", "rejected", "applied"][i % 3] for i in range(30)]
    # Applied in order: the last edit of members_count is the one that stays.
    assert api.record("households", hid).data["members_count"] == 27


def test_at_in_the_future_is_clamped_to_server_time(api: Api) -> None:
    hid, _ = api.household("w1")
    matter = new_id()
    r = api.push("w1", api.town.mut("matters", matter, {"household_id": hid, "title": "路灯坏了"},
                                    at="2099-01-01T00:00:00+08:00"))
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "applied", r.text
    server_time = _iso_with_offset(r.json()["server_time"])
    replica, _ = api.pull_all("w1")
    raised = _iso_with_offset(replica[("matters", matter)]["data"]["raised_at"])
    assert raised <= server_time
    assert server_time - raised < timedelta(minutes=1)
    event = new_id()
    api.push_ok("w1", api.town.mut("matter_events", event, {"matter_id": matter, "kind": "note", "note": "补充"},
                                   at="2999-12-31T23:59:59Z"))
    replica, _ = api.pull_all("w1")
    assert _iso_with_offset(replica[("matter_events", event)]["data"]["at"]) <= datetime.now(timezone.utc)


# -- pull ----------------------------------------------------------------------------------------

def test_pull_without_cursor_is_a_snapshot_of_the_scope(api: Api) -> None:
    h1, _ = api.household("w1", "g1")
    h3, _ = api.household("w3", "g3")
    replica, cursor = api.pull_all("w1")
    assert ("households", h1) in replica and ("households", h3) not in replica
    change = replica[("households", h1)]
    assert change["deleted"] is False
    data = change["data"]
    assert data["id"] == h1 and data["version"] == change["version"]
    assert {"grid_id", "address", "head_name", "updated_at", "created_at", "created_by"} <= set(data)
    assert ("areas", api.town.ids["g1"]) in replica
    assert ("users", api.user_id("w1")) in replica
    w3, _ = api.pull_all("w3")
    assert ("households", h3) in w3 and ("households", h1) not in w3
    staff, _ = api.pull_all("staff")
    assert {("households", h1), ("households", h3)} <= set(staff)
    # Nothing new: an empty page with the same or a later cursor.
    page = api.pull_ok("w1", cursor)
    assert page["changes"] == [] and page["more"] is False
    # A change after the cursor arrives, once, at its latest version.
    hv = api.record("households", h1).version
    api.push_ok("w2", api.town.mut("households", h1, {"phone": "13512345678"}, base=hv))
    api.push_ok("w2", api.town.mut("households", h1, {"notes": "第二次"}, base=hv))
    page = api.pull_ok("w1", cursor)
    assert [(c["collection"], c["id"]) for c in page["changes"]] == [("households", h1)]
    assert page["changes"][0]["data"]["phone"] == "13512345678"
    assert page["changes"][0]["data"]["notes"] == "第二次"


def test_pull_pages_with_limit(api: Api) -> None:
    for _ in range(7):
        api.household("w1")
    full, _ = api.pull_all("w1", limit=1000)
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    cursor = None
    pages = 0
    while True:
        page = api.pull_ok("w1", cursor, 3)
        pages += 1
        keys = [(c["collection"], c["id"]) for c in page["changes"]]
        assert len(keys) <= 3 and len(set(keys)) == len(keys)
        for c in page["changes"]:
            seen[(c["collection"], c["id"])] = c
        cursor = page["cursor"]
        if not page["more"]:
            break
        assert pages < 100
    assert pages >= len(full) // 3
    assert set(seen) == set(full)
    assert {k: c["version"] for k, c in seen.items()} == {k: c["version"] for k, c in full.items()}


@pytest.mark.parametrize("cursor", ["garbage", "djEuYWJjLjEuMC5zY29wZS5tYWM", "x" * 300, "%%%", "v1.a.1.0.b.c"])
def test_a_cursor_the_server_did_not_issue_is_invalid_request(api: Api, cursor: str) -> None:
    err = assert_error(api.pull("w1", cursor), 400, "invalid_request")
    assert err.get("details", {}).get("parameter") == "cursor"


def test_a_tampered_cursor_is_invalid_request(api: Api) -> None:
    cursor = api.pull_ok("w1")["cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    parts = raw.split(".")
    parts[2] = "0"  # rewind the position without knowing the key
    forged = base64.urlsafe_b64encode(".".join(parts).encode()).decode().rstrip("=")
    assert_error(api.pull("w1", forged), 400, "invalid_request")
    # Another user's cursor is not a way into their scope either.
    w3_cursor = api.pull_ok("w3")["cursor"]
    assert_error(api.pull("w1", w3_cursor), 410, "cursor_expired")


def test_cursor_from_another_database_epoch_is_expired(api: Api) -> None:
    hid, _ = api.household("w1")
    _, cursor = api.pull_all("w1")
    with api.store() as s:
        restored = backend.backup_restored(s, api.tmp)
    assert api.pull("w1", cursor).status_code == 200  # the live server still serves it
    with TestClient(create_app(settings_for(api.tmp, restored, blobs="blobs2"))) as client:
        r = client.get(f"{API}/sync/pull", params={"cursor": cursor}, headers=api.auth("w1"))
        err = assert_error(r, 410, "cursor_expired")
        assert err["details"]["reason"] == "epoch"
        r = client.get(f"{API}/sync/pull", headers=api.auth("w1"))
        assert r.status_code == 200
        assert hid in {c["id"] for c in r.json()["changes"]}


def test_cursor_after_the_users_areas_changed_is_expired(api: Api) -> None:
    _, cursor = api.pull_all("w1")
    with api.store() as s:
        accounts.update_user(s, api.user_id("w1"), areas=[api.town.ids["g1"], api.town.ids["g2"]])
    err = assert_error(api.pull("w1", cursor), 410, "cursor_expired")
    assert err["details"]["reason"] == "scope"
    replica, _ = api.pull_all("w1")
    assert ("areas", api.town.ids["g2"]) in replica
    # Role changes too.
    _, cursor = api.pull_all("w2")
    with api.store() as s:
        accounts.update_user(s, api.user_id("w2"), role="staff", areas=[api.town.ids["town"]])
    assert_error(api.pull("w2", cursor), 410, "cursor_expired")


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "1.5", "", " ", "1e3", "99999999999999999999999"])
def test_pull_limit_out_of_range_is_invalid_request(api: Api, limit: str) -> None:
    err = assert_error(api.pull("w1", limit=limit), 400, "invalid_request")
    assert "limit" in err["message"]


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_pull_limit_bounds_are_accepted(api: Api, limit: str) -> None:
    page = api.pull_ok("w1", limit=limit)
    assert len(page["changes"]) <= int(limit)


def test_pull_is_gzipped_when_the_client_accepts_it(api: Api) -> None:
    for _ in range(3):
        api.household("w1")
    r = api.pull("w1", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers.get("content-encoding") == "gzip"
    assert r.json()["changes"]
    plain = api.pull("w1", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert len(plain.json()["changes"]) == len(r.json()["changes"])


@pytest.mark.parametrize("depth", ["12", "²", "99999999999999999999999999", "-3", "lots", "¹²"])
def test_odd_sync_health_headers_never_break_a_pull(api: Api, depth: str) -> None:
    """X-Outbox-Depth and X-App-Version are hints for the sync-health screen, never a reason to fail."""
    r = api.client.get(f"{API}/sync/pull", headers={**api.auth("w1"), "X-Outbox-Depth": depth.encode("latin-1"),
                                                     "X-App-Version": "v" * 5000})
    assert r.status_code == 200, r.text
    with api.store() as s:
        dev = s.device(api.town.actors["w1"].device_id)
    assert dev is not None and dev["last_pull_at"]
    assert dev["outbox_depth"] in (None, 12)
    assert len(dev["app_version"] or "") <= 100


def test_lean_pull_leaves_out_what_the_change_carries(api: Api) -> None:
    """Extension (docs/protocol.md §6): lean=1 drops id, version and deleted from `data`, and a
    tombstone's data; nothing else differs from the full page."""
    auth = api.auth("w1")
    full = api.client.get(f"{API}/sync/pull", params={"limit": "1000"}, headers=auth).json()
    lean = api.client.get(f"{API}/sync/pull", params={"limit": "1000", "lean": "1"}, headers=auth).json()
    assert [(c["collection"], c["id"], c.get("version")) for c in full["changes"]] == \
        [(c["collection"], c["id"], c.get("version")) for c in lean["changes"]]
    for f, lc in zip(full["changes"], lean["changes"]):
        if f.get("data") and not f.get("deleted"):
            assert {k: v for k, v in f["data"].items() if k not in ("id", "version", "deleted")} == lc["data"]
    for bad in ("2", "true", "", " 1"):
        err = assert_error(api.client.get(f"{API}/sync/pull", params={"lean": bad}, headers=auth), 400,
                           "invalid_request")
        assert "lean" in err["message"]
