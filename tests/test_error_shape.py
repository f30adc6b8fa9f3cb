"""One error shape for every whole-request error code reachable over HTTP, and for internal errors."""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import httpx
import pytest
from litestar.testing import TestClient

from server.app import create_app
from sync import accounts
from sync.errors import CODES, MUTATION_CODES

from . import backend
from .test_api import API, LEAKS, Api, Template, api, assert_error, settings_for, town_template  # noqa: F401

OCTETS = "application/offset+octet-stream"


def _revoked(api: Api) -> httpx.Response:
    with api.store() as s:
        accounts.revoke_device(s, api.town.actors["w2"].device_id)
    return api.pull("w2")


def _offset_mismatch(api: Api) -> httpx.Response:
    digest = hashlib.sha256(b"hello world").hexdigest()
    return api.client.patch(f"{API}/blobs/{digest}", content=b"world", headers={
        **api.auth("w1"), "Content-Type": OCTETS, "Upload-Offset": "6", "Upload-Length": "11"})


def _hash_mismatch(api: Api) -> httpx.Response:
    digest = hashlib.sha256(b"hello world").hexdigest()
    return api.client.patch(f"{API}/blobs/{digest}", content=b"hello WORLD", headers={
        **api.auth("w1"), "Content-Type": OCTETS, "Upload-Offset": "0", "Upload-Length": "11"})


def _cursor_expired(api: Api) -> httpx.Response:
    cursor = api.pull_ok("w1")["cursor"]
    with api.store() as s:
        accounts.update_user(s, api.user_id("w1"), areas=[api.town.ids["g2"]])
    return api.pull("w1", cursor)


def _rate_limited(api: Api) -> httpx.Response:
    for _ in range(5):
        api.login("worker3", "wrong")
    return api.login("worker3", "wrong")


def _password_change_required(api: Api) -> httpx.Response:
    with api.store() as s:
        accounts.create_user(s, "firsttimer", "initial-pass-7", "grid_worker", [api.town.ids["g1"]], must_change=True)
    return api.login("firsttimer", "initial-pass-7")


def _too_large(api: Api) -> httpx.Response:
    return api.client.post(f"{API}/sync/push", content=b" " * (3 * 1024 * 1024), headers=api.auth("w1"))


# code -> (status, how to provoke it, headers the answer must carry)
CASES: dict[str, tuple[int, Callable[[Api], httpx.Response], tuple[str, ...]]] = {
    "invalid_request": (400, lambda api: api.pull("w1", limit="abc"), ()),
    "invalid_credentials": (401, lambda api: api.login("worker1", "wrong"), ()),
    "unauthorized": (401, lambda api: api.client.get(f"{API}/sync/pull"), ()),
    "device_revoked": (401, _revoked, ()),
    "password_change_required": (403, _password_change_required, ()),
    "not_found": (404, lambda api: api.client.get(f"{API}/no/such/thing"), ()),
    "method_not_allowed": (405, lambda api: api.client.delete(f"{API}/sync/push"), ("allow",)),
    "offset_mismatch": (409, _offset_mismatch, ("upload-offset",)),
    "cursor_expired": (410, _cursor_expired, ()),
    "too_large": (413, _too_large, ()),
    "hash_mismatch": (422, _hash_mismatch, ()),
    "rate_limited": (429, _rate_limited, ("retry-after",)),
}

# Codes no HTTP request can produce as a whole-request error in protocol v1 (forbidden and the
# workflow codes are per-mutation results; the shell never answers 415 or 503), and "internal",
# which has its own test below.
NOT_WHOLE_REQUEST = (set(MUTATION_CODES) - set(CASES)) | {"unsupported_media_type", "unavailable"}


def test_every_code_is_either_provoked_or_accounted_for() -> None:
    assert set(CASES) | NOT_WHOLE_REQUEST | {"internal"} == set(CODES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_error_shape(api: Api, code: str) -> None:
    status, provoke, headers = CASES[code]
    assert CODES[code][0] == status
    before = api.counts()
    r = provoke(api)
    err = assert_error(r, status, code)
    for h in headers:
        assert r.headers.get(h), (code, h, r.headers)
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert set(err) <= {"code", "message", "details"}
    after = api.counts()
    # Nothing was applied by the refused request (a revocation or a role change done to provoke
    # the error is the test's own doing and changes no synced record the refused call could have).
    assert after["mutation_log"] == before["mutation_log"]
    assert after["households"] == before["households"]
    assert after["blobs"] == before["blobs"]


@pytest.fixture
def broken(town_template: Template, tmp_path: Any) -> Any:
    db = backend.copy_db(town_template.db, tmp_path)
    app = create_app(settings_for(tmp_path, db))
    with TestClient(app) as client:
        writer = app.state["stores"].writer
        if backend.POSTGRES:
            # A closed connection is opened again there (the database may drop one): a read-only
            # session instead, where every write transaction fails at its first statement.
            writer.conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        else:
            writer.conn.close()  # every write now fails deep inside the engine
        yield client, town_template.town


def test_an_internal_error_is_500_internal_without_internals(broken: Any) -> None:
    client, town = broken
    auth = {"Authorization": f"Bearer {town.tokens['w1']}"}
    mutation = town.mut("households", "0193a1b0-0000-7000-8000-000000000001",
                        {"grid_id": town.ids["g1"], "address": "上岙1号", "head_name": "王"})
    responses = [
        client.post(f"{API}/sync/push", json={"protocol": 1, "mutations": [mutation]}, headers=auth),
        client.post(f"{API}/auth/login", json={"username": "worker1", "password": "demo", "device_name": "x"}),
    ]
    for r in responses:
        assert r.status_code == 500, r.text
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "details"}
        assert body["error"]["code"] == "internal"
        assert body["error"]["message"] == CODES["internal"][1]
        for leak in (*LEAKS, "closed database", "ProgrammingError", "Cannot operate"):
            assert leak not in r.text, r.text
    # The server is still up for what does not need the broken connection.
    assert client.get(f"{API}/health").status_code == 200
