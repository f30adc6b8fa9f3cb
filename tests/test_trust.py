"""The findings of the December 2026 penetration test (issue 12, "Trust"), one test or more each.

docs/security.md ("Findings of the December 2026 review") maps every finding to its fix and to the
test here that pins it. Each test was written first and seen to fail on the code before the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import shutil
import sqlite3
import stat
import time
import urllib.parse
from typing import Any, Iterator

import httpx
import pytest
from litestar.testing import TestClient

from server.app import create_app
from server.keys import KeyProblem, key_file
from server.settings import Settings

from . import backend
from .conftest import PASSWORD, Town, new_id
from .test_api import API, Template, assert_error, settings_for, town_template  # noqa: F401

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@pytest.fixture
def app_db(town_template: Template, tmp_path: Any) -> str:
    return backend.copy_db(town_template.db, tmp_path)


@pytest.fixture
def client(app_db: str, tmp_path: Any) -> Iterator[TestClient[Any]]:
    """The whole app, the field app's static files included (the API tests leave them out)."""
    with TestClient(create_app(Settings(db=app_db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs")))),
                    base_url="http://testserver.local") as c:
        yield c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:1000]
    return m.group(1)


def sign_in(c: TestClient[Any], username: str, password: str = PASSWORD) -> httpx.Response:
    page = c.get("/staff/login")
    return c.post("/staff/login", data={"username": username, "password": password, "csrf": csrf_of(page.text)},
                  follow_redirects=False)


# -- finding 9: 5xx and log forging from anyone -------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/index.html%00.js",                     # a NUL in a static path was a 500 with a traceback
    "/%0aFORGED%20log%20line",               # a newline, written raw into the log
    "/js/app.js%0d%0aX-Injected:%201",
    "/staff/households?q=%00",
    "/staff/matters?area=%1b%5b31m",         # an ANSI escape for whoever tails the log
    f"{API}/sync/pull?cursor=%0a",
    f"{API}/health%7f",
    "/staff/login%c2%85",                    # C1 control (NEL) in UTF-8
])
def test_control_characters_are_refused_before_routing(client: TestClient[Any], path: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = client.get(path, follow_redirects=False)
    err = assert_error(r, 400, "invalid_request")
    assert "control character" in err["message"], err
    assert r.headers.get("x-content-type-options") == "nosniff"          # the security headers all the same
    assert r.headers.get("cache-control") == "no-store"
    for record in caplog.records:
        assert not CONTROL.search(record.getMessage()), record.getMessage()
        assert "FORGED" not in record.getMessage() or "\n" not in record.getMessage()


def test_overlong_paths_are_a_clean_400_not_a_500(client: TestClient[Any]) -> None:
    # A file name past the file system's limit (255 bytes) was a 500 from the static files.
    assert_error(client.get("/" + "a" * 300), 404, "not_found")
    assert_error(client.get("/" + "a" * 5000), 400, "invalid_request")
    assert_error(client.get(f"{API}/health?" + "x=1&" * 3000), 400, "invalid_request")


def test_the_log_quotes_what_clients_send(client: TestClient[Any], monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """Whatever reaches a log line from a request (its path, an exception's message) is quoted, so
    a client cannot write a line of its own into the log."""
    from server.staff import households

    def boom(*_: Any) -> Any:
        raise RuntimeError("client said:\nERROR forged line")

    monkeypatch.setattr(households, "household_of", boom)
    assert sign_in(client, "staff1").status_code == 303
    caplog.set_level(logging.INFO, logger="gridbook")
    r = client.get("/staff/households/%E2%80%A8FORGED%E2%80%A9")
    assert_error(r, 500, "internal")
    [record] = [r for r in caplog.records if r.name == "gridbook"]
    text = logging.Formatter().format(record)
    assert "\\u2028FORGED\\u2029" in text, text
    assert "'client said:\\nERROR forged line'" in text, text
    assert not any(line.startswith(("ERROR forged", "FORGED")) for line in text.splitlines()), text
    assert "\u2028" not in text and "\u2029" not in text


@pytest.mark.parametrize("query", ["page=100000000000000000000", "page=1e22", "page=-1", "page=0", "page=1.5",
                                   "page=%EF%BC%91", "page=abc", "page=1_0"])
def test_console_numbers_out_of_range_are_a_clear_400(client: TestClient[Any], query: str) -> None:
    assert sign_in(client, "staff1").status_code == 303
    r = client.get(f"/staff/matters?{query}")
    assert r.status_code == 400, (query, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    assert "页码必须是 1 到 100000 之间的整数。" in r.text
    assert client.get("/staff/matters?page=2").status_code == 200


# -- finding 10: a lost phone keeps photos in its HTTP cache ------------------------------------------

def test_blobs_are_never_kept_in_an_http_cache(client: TestClient[Any], town_template: Template) -> None:
    """A wipe (401 device_revoked) clears IndexedDB and the app's caches, not the browser's HTTP
    cache: photos and signatures served with max-age stayed readable on a lost phone."""
    data = b"\xff\xd8\xff a signature"
    sha = hashlib.sha256(data).hexdigest()
    token = {"Authorization": f"Bearer {town_template.town.tokens['w1']}"}
    r = client.patch(f"{API}/blobs/{sha}", content=data, headers={
        **token, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0",
        "Upload-Length": str(len(data))})
    assert r.status_code == 204, r.text
    r = client.get(f"{API}/blobs/{sha}", headers=token)        # its uploader may read it
    assert r.status_code == 200 and r.content == data
    assert r.headers["cache-control"] == "no-store", r.headers
    # The console serves photos of its records with the same header (a shared office computer).
    t = town_template.town
    household = new_id()
    with contextlib.closing(backend.open_store(client.app.state["settings"].db)) as s:
        results = Town(s, dict(t.ids), dict(t.actors)).push("w1", t.mut(
            "households", household, {"grid_id": t.ids["g1"], "address": "上岙1号", "head_name": "王阿公"}),
            t.mut("matters", new_id(), {"household_id": household, "title": "照片", "photos": [sha]}))
    assert all(x.status == "applied" for x in results), results
    assert sign_in(client, "staff1").status_code == 303
    r = client.get(f"/staff/blobs/{sha}")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.headers


# -- finding 7: the console's signing key lived in the database -------------------------------------

def mint_session(key: bytes, user_id: str, issued_ms: int | None = None, expiry: int | None = None) -> str:
    """A console session cookie as server/staff/core.py makes them: ``user.issued.expiry.sig``."""
    now = time.time()
    body = f"{user_id}.{int(now * 1000) if issued_ms is None else issued_ms}.{int(now) + 3600 if expiry is None else expiry}"
    return f"{body}.{hmac.new(key, ('session:' + body).encode(), hashlib.sha256).hexdigest()}"


def console_status(c: TestClient[Any], cookie: str) -> int:
    c.cookies.clear()
    c.cookies.set("gb_staff", cookie, domain="testserver.local", path="/staff")
    try:
        return c.get("/staff/", follow_redirects=False).status_code
    finally:
        c.cookies.clear()


def test_a_copy_of_the_database_cannot_mint_a_console_session(client: TestClient[Any], app_db: str,
                                                              town_template: Template, tmp_path: Any) -> None:
    """A read-only copy of the database (a backup, a stolen disk image) held the key that signs
    console sessions: whoever had it could sign an admin cookie."""
    if backend.POSTGRES:
        # A copy is the same rows; the live database is read instead (PostgreSQL copies only a
        # database nobody is connected to, and the app is).
        with contextlib.closing(backend.connect(app_db)) as db:
            keys = [row[0].encode() for row in db.execute("SELECT value FROM server_meta")]
    else:
        copy = str(tmp_path / "stolen.db")
        shutil.copyfile(app_db, copy)
        with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as db:
            keys = [row[0].encode() for row in db.execute("SELECT value FROM server_meta")]
    admin = town_template.town.actors["admin"].user_id
    assert all(console_status(client, mint_session(k, admin)) == 303 for k in keys)
    # The control: the same cookie signed with the server's key opens the console.
    assert console_status(client, mint_session(client.app.state["console_key"], admin)) == 200


def test_the_console_key_is_a_file_beside_the_database_made_0600_on_first_start(
        app_db: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend.POSTGRES:
        # "Beside" a URL is data/<database name>.key under the working directory: this test's.
        monkeypatch.chdir(tmp_path)
        (tmp_path / "data").mkdir()
        key_file = os.path.join("data", urllib.parse.urlsplit(app_db).path.strip("/") + ".key")
    else:
        key_file = app_db + ".key"
    assert not os.path.exists(key_file)          # an existing database (the template) had none
    settings = Settings(db=app_db, blob_dir=str(tmp_path / "blobs"))
    with TestClient(create_app(settings), base_url="http://testserver.local") as c:
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        key = c.app.state["console_key"]
        with open(key_file, "rb") as fh:
            assert len(key) >= 32 and key == fh.read().strip()
        assert sign_in(c, "staff1").status_code == 303
        cookie = c.cookies.get("gb_staff") or ""
    assert key not in backend.contents(app_db)
    # A restart keeps the key: sessions survive it.
    with TestClient(create_app(settings), base_url="http://testserver.local") as c:
        assert c.app.state["console_key"] == key
        assert console_status(c, cookie) == 200


def test_the_console_key_can_come_from_the_environment(app_db: str, tmp_path: Any) -> None:
    key = "k" * 48
    settings = Settings.load({"db": app_db, "blob_dir": str(tmp_path / "blobs")}, environ={"GRIDBOOK_SECRET_KEY": key})
    with TestClient(create_app(settings), base_url="http://testserver.local") as c:
        assert c.app.state["console_key"] == key.encode()
        assert sign_in(c, "staff1").status_code == 303
    assert not os.path.exists(key_file(settings))
    with pytest.raises(KeyProblem, match="at least 32"):
        create_app(Settings(db=app_db, blob_dir=str(tmp_path / "blobs"), secret_key="short"))


def test_a_key_file_others_may_read_is_refused(app_db: str, tmp_path: Any) -> None:
    key_file = tmp_path / "console.key"
    key_file.write_text("x" * 64)
    key_file.chmod(0o644)
    settings = Settings(db=app_db, blob_dir=str(tmp_path / "blobs"), secret_key_file=str(key_file))
    with pytest.raises(KeyProblem, match="chmod 600"):
        create_app(settings)
    key_file.chmod(0o600)
    app = create_app(settings)
    try:
        assert app.state["console_key"] == b"x" * 64
    finally:
        app.state["stores"].close()


def test_a_session_issued_in_the_future_is_refused(client: TestClient[Any], town_template: Template) -> None:
    """Sign-out ends every session issued before it; a cookie claiming to be issued later than now
    (or to last longer than session_hours) would outlive every sign-out."""
    key = client.app.state["console_key"]
    staff = town_template.town.actors["staff"].user_id
    now = time.time()
    assert console_status(client, mint_session(key, staff)) == 200
    assert console_status(client, mint_session(key, staff, issued_ms=int((now + 86400) * 1000))) == 303
    assert console_status(client, mint_session(key, staff, expiry=int(now) + 30 * 86400)) == 303


def test_gridbook_serve_stops_with_a_clear_error_on_a_bad_key_file(app_db: str, tmp_path: Any,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    key_file = tmp_path / "console.key"
    key_file.write_text("x" * 64)
    key_file.chmod(0o640)
    env = {"GRIDBOOK_SECRET_KEY_FILE": str(key_file)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["serve", "--db", app_db, "--blob-dir", str(tmp_path / "blobs")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"chmod 600 {key_file}" in err, err


# -- finding 6: accounts ---------------------------------------------------------------------------------

# Weak passwords; {user} is the account's own username (worker1 for a reset, newbie for a new user).
WEAK = ["x", "short", "1234567", "12345678", "password", "aaaaaaaaaa", "{user}", "{USER}2026", "a" * 129,
        "tab\there1", "qwertyui"]


def pull_status(c: TestClient[Any], token: str) -> tuple[int, str]:
    r = c.get(f"{API}/sync/pull", headers={"Authorization": f"Bearer {token}"})
    return r.status_code, (r.json().get("error", {}).get("code", "") if r.status_code != 200 else "")


def set_unsent(db: str, device_id: str, depth: int) -> None:
    with contextlib.closing(backend.open_store(db)) as s, s.transaction():
        s.touch_device(device_id, "last_pull_at", "2026-12-01T08:00:00+08:00", outbox_depth=depth)


@pytest.mark.parametrize("password", WEAK)
def test_one_password_policy_for_the_engine_the_console_and_the_cli(app_db: str, client: TestClient[Any],
                                                                    town_template: Template, password: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI took a one-character password; the console had a length check of its own."""
    from server.cli import main
    from sync import accounts
    from sync.errors import SyncError

    t = town_template.town
    w1 = t.actors["w1"].user_id
    reset, new = password.format(user="worker1", USER="WORKER1"), password.format(user="newbie", USER="NEWBIE")
    with contextlib.closing(backend.open_store(app_db)) as s:
        before = s.password_hash(w1)
        with pytest.raises(SyncError) as e:
            accounts.set_password(s, w1, reset, revoke_devices=False)
        assert e.value.code == "invalid_request" and e.value.details.get("reason"), e.value
        with pytest.raises(SyncError):
            accounts.create_user(s, "newbie", new, "grid_worker", [t.ids["g1"]])
    assert main(["user", "passwd", "worker1", "--password", reset, "--keep-devices", "--db", app_db]) == 1
    assert main(["user", "add", "newbie", "--role", "grid_worker", "--password", new, "--db", app_db]) == 1
    assert capsys.readouterr().err.startswith("error: password")
    assert sign_in(client, "admin").status_code == 303
    users = client.get("/staff/admin/users")
    r = client.post(f"/staff/admin/users/{w1}", data={"csrf": csrf_of(users.text), "action": "password",
                                                      "password": reset}, follow_redirects=False)
    assert "invalid_form" in r.headers["location"], r.headers
    why = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)["why"][0]
    assert re.search(r"[\u4e00-\u9fff]", why), why             # said in Chinese on the console
    r = client.post("/staff/admin/users", data={"csrf": csrf_of(users.text), "username": "newbie", "password": new,
                                                "role": "grid_worker", "areas": t.ids["g1"]}, follow_redirects=False)
    assert "invalid_form" in r.headers["location"], r.headers
    with contextlib.closing(backend.open_store(app_db)) as s:
        assert s.password_hash(w1) == before and s.user_by_username("newbie") is None


def test_a_password_reset_on_the_console_revokes_the_devices_when_the_admin_chooses(
        client: TestClient[Any], app_db: str, town_template: Template) -> None:
    """A password change left every device token working, also those of whoever learnt the password."""
    t = town_template.town
    w1, w2 = t.actors["w1"], t.actors["w2"]
    set_unsent(app_db, w1.device_id, 4)
    assert sign_in(client, "admin").status_code == 303
    users = client.get("/staff/admin/users")
    # The admin is warned, on the form, of the records the phones have not sent yet.
    row = next(r for r in users.text.split('data-testid="user-row"')[1:] if ">worker1<" in r)
    assert "同时注销其设备" in row and "4 条记录未上传" in row, row
    r = client.post(f"/staff/admin/users/{w2.user_id}", data={"csrf": csrf_of(users.text), "action": "password",
                                                             "password": "a long passphrase"}, follow_redirects=False)
    assert "msg=password" in r.headers["location"]
    assert pull_status(client, t.tokens["w2"]) == (200, "")           # kept: the admin did not tick the box
    r = client.post(f"/staff/admin/users/{w1.user_id}", data={
        "csrf": csrf_of(users.text), "action": "password", "password": "another long one", "revoke_devices": "yes"},
        follow_redirects=False)
    assert "msg=password_revoked" in r.headers["location"], r.headers
    assert pull_status(client, t.tokens["w1"]) == (401, "device_revoked")
    with contextlib.closing(backend.open_store(app_db)) as s:
        assert {a for (a,) in s.conn.execute("SELECT action FROM audit WHERE record_id = ?", (w1.device_id,))} \
            >= {"device.revoke"}


def test_gridbook_user_passwd_makes_the_admin_choose_about_devices(app_db: str, client: TestClient[Any],
                                                                    town_template: Template,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    t = town_template.town
    set_unsent(app_db, t.actors["w1"].device_id, 2)
    assert main(["user", "passwd", "worker1", "--password", "a long passphrase", "--db", app_db]) == 1
    err = capsys.readouterr().err
    assert "--revoke-devices" in err and "--keep-devices" in err and "worker1's phone" in err and "2 unsent" in err
    assert main(["user", "passwd", "worker1", "--password", "a long passphrase", "--keep-devices",
                 "--db", app_db]) == 0
    assert pull_status(client, t.tokens["w1"]) == (200, "")
    assert main(["user", "passwd", "worker1", "--password", "another passphrase", "--revoke-devices",
                 "--db", app_db]) == 0
    assert "revoked 1 device" in capsys.readouterr().out
    assert pull_status(client, t.tokens["w1"]) == (401, "device_revoked")


def test_gridbook_user_passwd_ends_console_sessions(app_db: str, client: TestClient[Any]) -> None:
    from server.cli import main

    assert sign_in(client, "staff1").status_code == 303
    assert client.get("/staff/", follow_redirects=False).status_code == 200
    assert main(["user", "passwd", "staff1", "--password", "a long passphrase", "--keep-devices",
                 "--db", app_db]) == 0
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_disabling_a_user_revokes_their_devices_so_the_phones_wipe(app_db: str, client: TestClient[Any],
                                                                   town_template: Template,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`user disable` answered 401 unauthorized, on which the app keeps its replica; the app wipes
    on 401 device_revoked."""
    from server.cli import main
    from sync import accounts

    t = town_template.town
    set_unsent(app_db, t.actors["w1"].device_id, 3)
    assert main(["user", "disable", "worker1", "--db", app_db]) == 1          # asks for --yes first
    err = capsys.readouterr().err
    assert "--yes" in err and "worker1's phone" in err and "3 unsent" in err
    assert pull_status(client, t.tokens["w1"]) == (200, "")
    assert main(["user", "disable", "worker1", "--yes", "--db", app_db]) == 0
    assert pull_status(client, t.tokens["w1"]) == (401, "device_revoked")
    # A user disabled some other way (before this fix, or through the engine) is refused alike.
    with contextlib.closing(backend.open_store(app_db)) as s:
        accounts.update_user(s, t.actors["w2"].user_id, active=False)
    assert pull_status(client, t.tokens["w2"]) == (401, "device_revoked")


def test_disabling_on_the_console_asks_for_confirmation_listing_unsent_records(
        client: TestClient[Any], app_db: str, town_template: Template) -> None:
    """停用并注销其设备 acted on one click, with no word about the records the phones had not sent."""
    t = town_template.town
    w1 = t.actors["w1"]
    set_unsent(app_db, w1.device_id, 5)
    assert sign_in(client, "admin").status_code == 303
    users = client.get("/staff/admin/users")
    r = client.post(f"/staff/admin/users/{w1.user_id}", data={"csrf": csrf_of(users.text), "action": "disable"},
                    follow_redirects=False)
    assert r.status_code == 200, r.text[:300]
    assert "worker1&#39;s phone" in r.text and "该设备还有未上传的记录，注销后将无法再上传。" in r.text
    assert 'name="confirm" value="yes"' in r.text
    assert pull_status(client, t.tokens["w1"]) == (200, "")
    with contextlib.closing(backend.open_store(app_db)) as s:
        assert s.get("users", w1.user_id).data["active"] is True  # type: ignore[union-attr]
    r = client.post(f"/staff/admin/users/{w1.user_id}", data={"csrf": csrf_of(r.text), "action": "disable",
                                                             "confirm": "yes"}, follow_redirects=False)
    assert "msg=disabled" in r.headers["location"], r.headers
    assert pull_status(client, t.tokens["w1"]) == (401, "device_revoked")


# -- finding 6 (continued): the login limiter ------------------------------------------------------------

def test_guesses_from_one_address_do_not_lock_the_account_for_anyone_else(app_db: str, tmp_path: Any) -> None:
    """The limiter counted failures per username: anyone could keep any account locked for 15
    minutes, against the right password too, by guessing wrong every few minutes."""
    with TestClient(create_app(settings_for(tmp_path, app_db))) as c:
        limiter = c.app.state["limiter"]
        for _ in range(50):
            limiter.failed("worker1", "203.0.113.9")          # an attacker elsewhere
        assert limiter.retry_after("worker1", "203.0.113.9") > 0
        r = c.post(f"{API}/auth/login", json={"username": "worker1", "password": PASSWORD})
        assert r.status_code == 200, r.text                     # the worker, from their own address


def test_the_wait_grows_with_each_failure_of_a_user_from_an_address(tmp_path: Any) -> None:
    from server.ratelimit import LoginLimiter

    store = backend.open_store(backend.new_db(tmp_path, "limits.db"))   # the counters are in the database (issue 13)
    store.migrate()
    lim = LoginLimiter(store, lambda: store, 5, 30, 900)
    t = 1000.0
    for _ in range(5):                                          # the first five cost nothing
        assert lim.retry_after("worker1", "a", t) == 0
        lim.failed("worker1", "a", t)
    waits = []
    for _ in range(10):
        w = lim.retry_after("worker1", "a", t)
        waits.append(w)
        t += w
        assert lim.retry_after("worker1", "a", t) == 0
        lim.failed("worker1", "a", t)
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900], waits
    assert lim.retry_after("worker1", "b", t) == 0 and lim.retry_after("WORKER1", "a", t) == 900
    lim.succeeded("worker1", "a")
    assert lim.retry_after("worker1", "a", t) == 0
    # After a quiet window, failures are forgotten.
    for _ in range(6):
        lim.failed("worker2", "a", t)
    assert lim.retry_after("worker2", "a", t + 901) == 0
    store.close()


def test_limiters_of_two_processes_on_one_database_enforce_one_limit(tmp_path: Any) -> None:
    """Worker processes (gridbook serve --workers N) each have a limiter: the counts are the
    database's, so failures spread over them add up, and the right password forgets for all."""
    from server.ratelimit import LoginLimiter

    path = backend.new_db(tmp_path, "limits.db")
    a, b = backend.open_store(path), backend.open_store(path)
    a.migrate()
    one, two = LoginLimiter(a, lambda: a, 5, 8, 900), LoginLimiter(b, lambda: b, 5, 8, 900)
    t = 5000.0
    for i in range(5):
        assert (one, two)[i % 2].retry_after("worker1", "a", t) == 0
        (one, two)[i % 2].failed("worker1", "a", t)
    assert one.retry_after("worker1", "a", t) == two.retry_after("worker1", "a", t) == 2
    two.succeeded("worker1", "a")
    assert one.retry_after("worker1", "a", t) == 0
    for i in range(3):                                          # 5 + 3 = 8 from address "a" in the window
        (one, two)[i % 2].failed(f"user{i}", "a", t + i)
    assert one.retry_after("someone", "a", t + 10) == two.retry_after("x", "a", t + 10) == 890
    assert one.retry_after("someone", "b", t + 10) == 0
    a.close()
    b.close()


def test_the_limiter_keeps_a_bounded_number_of_rows(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from server import ratelimit

    monkeypatch.setattr(ratelimit, "MAX_ENTRIES", 20)
    store = backend.open_store(backend.new_db(tmp_path, "limits.db"))
    store.migrate()
    lim = ratelimit.LoginLimiter(store, lambda: store, 5, 8, 900)
    t = 1000.0
    for i in range(100):                                        # one address, many usernames
        lim.failed(f"user{i}", "198.51.100.1", t + i)
    assert lim.retry_after("anyone", "198.51.100.1", t + 100) == 900 - 8   # until the 92nd leaves the window
    with contextlib.closing(backend.connect(store.path)) as db:  # a ring of 8 for the address
        assert db.execute("SELECT count(*) FROM login_address_failures").fetchone()[0] == 8
    for i in range(100):                                        # many addresses
        lim.failed("worker1", f"203.0.113.{i}", t + 100 + i)
    with contextlib.closing(backend.connect(store.path)) as db:
        pairs = db.execute("SELECT count(*) FROM login_failures").fetchone()[0]
        recorded = db.execute("SELECT count(*) FROM login_address_failures").fetchone()[0]
    assert pairs <= 21 and recorded <= 21, (pairs, recorded)
    lim.failed("late", "192.0.2.7", t + 2000)                   # a window later, the old rows expire
    with contextlib.closing(backend.connect(store.path)) as db:
        assert db.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 1
    store.close()


def test_forwarded_headers_count_only_from_a_configured_proxy(app_db: str, tmp_path: Any) -> None:
    """uvicorn believed X-Forwarded-For from 127.0.0.1 by default: a client there (or behind a proxy
    that passes the header on) chose its own address, and so a fresh per-address count each time."""
    import json
    import urllib.error
    import urllib.request

    from .serverproc import Server

    def login(srv: Server, username: str, forwarded_for: str) -> int:
        req = urllib.request.Request(f"{srv.url}{API}/auth/login", method="POST", headers={
            "Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
            data=json.dumps({"username": username, "password": "wrong guess"}).encode())
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            e.close()
            return int(e.code)

    for trusted, last in (("", 429), ("127.0.0.1", 401)):
        srv = Server(app_db, tmp_path / "server.log",
                     env={"GRIDBOOK_LOGIN_MAX_FAILURES_IP": "3", "GRIDBOOK_TRUSTED_PROXIES": trusted})
        srv.start()
        try:
            got = [login(srv, f"nobody{i}", f"198.51.100.{i}") for i in range(4)]
        finally:
            srv.stop()
        assert got == [401, 401, 401, last], (trusted, got, srv.log())


def test_a_bad_trusted_proxies_setting_stops_the_start(app_db: str, tmp_path: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main
    from server.settings import SettingError

    for bad in ("*", "not-an-address", "127.0.0.1, 10.0.0.0/33"):
        with pytest.raises(SettingError):
            Settings(trusted_proxies=bad).proxy_options()
    assert Settings().proxy_options() == {"proxy_headers": False}
    assert Settings(trusted_proxies="127.0.0.1, 10.1.0.0/16").proxy_options() == {
        "proxy_headers": True, "forwarded_allow_ips": ["127.0.0.1", "10.1.0.0/16"]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDBOOK_TRUSTED_PROXIES", "*")
        assert main(["serve", "--db", app_db, "--blob-dir", str(tmp_path / "blobs")]) == 1
    assert "trusted_proxies" in capsys.readouterr().err


# -- the staff console review: ID numbers on the household dossier ---------------------------------------

FULL_ID = "330203196512071234"


def resident_with_id(db: str, town: Any) -> tuple[str, str]:
    household, resident = new_id(), new_id()
    with contextlib.closing(backend.open_store(db)) as s:
        results = Town(s, dict(town.ids), dict(town.actors)).push("w1", town.mut(
            "households", household, {"grid_id": town.ids["g1"], "address": "上岙2号", "head_name": "李阿婆"}),
            town.mut("residents", resident, {"household_id": household, "name": "李阿婆", "id_number": FULL_ID}))
    assert all(x.status == "applied" for x in results), results
    return household, resident


def id_reads(db: str, resident: str) -> list[tuple[str, str]]:
    with contextlib.closing(backend.connect(db)) as c:
        return list(c.execute("SELECT user_id, details FROM audit WHERE action = 'id_number.read' AND record_id = ?",
                              (resident,)))


def test_the_dossier_masks_id_numbers_and_audits_showing_one_in_full(client: TestClient[Any], app_db: str,
                                                                      town_template: Template) -> None:
    """The dossier showed every resident's full 身份证号 to every staff member who opened it."""
    from sync.schema import mask_id_number

    t = town_template.town
    household, resident = resident_with_id(app_db, t)
    assert sign_in(client, "staff1").status_code == 303
    page = client.get(f"/staff/households/{household}")
    assert page.status_code == 200
    assert FULL_ID not in page.text and mask_id_number(FULL_ID) in page.text
    assert "显示完整身份证号" in page.text and id_reads(app_db, resident) == []
    r = client.post(f"/staff/households/{household}/id-number",
                    data={"csrf": csrf_of(page.text), "resident_id": resident})
    assert r.status_code == 200 and FULL_ID in r.text, r.text[:300]
    assert r.headers["cache-control"] == "no-store"
    [(who, details)] = id_reads(app_db, resident)
    assert who == t.actors["staff"].user_id and household in details
    # Without a valid CSRF token, or for a resident of another household, nothing is shown or written.
    assert client.post(f"/staff/households/{household}/id-number",
                       data={"csrf": "0" * 64, "resident_id": resident}).status_code == 403
    other, _ = resident_with_id(app_db, t)
    r = client.post(f"/staff/households/{other}/id-number", data={"csrf": csrf_of(page.text), "resident_id": resident})
    assert r.status_code == 404 and FULL_ID not in r.text
    assert len(id_reads(app_db, resident)) == 1
    # Admins read the row, labelled, in the audit log.
    client.cookies.clear()
    assert sign_in(client, "admin").status_code == 303
    audit = client.get("/staff/audit?action=id_number.read")
    assert "查看完整身份证号" in audit.text and 'data-action="id_number.read"' in audit.text
    client.get("/staff/lang?to=en&next=/staff/audit")
    assert "Full ID number viewed" in client.get("/staff/audit?action=id_number.read").text


# -- found by the console fuzzing (tests/test_fuzz_console.py) ---------------------------------------------

def test_non_ascii_cookies_and_csrf_tokens_are_refused_not_a_500(client: TestClient[Any]) -> None:
    """hmac.compare_digest raises TypeError on two str with non-ASCII text: a 500 from any client."""
    page = client.get("/staff/login")
    r = client.post("/staff/login", data={"username": "staff1", "password": PASSWORD, "csrf": "é" * 64})
    assert r.status_code == 403, r.status_code
    assert "CSRF" in r.text and page.status_code == 200
    client.cookies.clear()
    for cookie in ("gb_staff=someone.1.99999999999.\xe9", "gb_staff=someone.\xb2.99999999999.abc"):
        r = client.get("/staff/", headers={"Cookie": cookie.encode("latin-1")}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff/login", (cookie, r.status_code)


@pytest.mark.parametrize("path", ["/staff/?end=9999-12-31", "/staff/reports/lists?start=9999-12-31",
                                  "/staff/reports/monthly?month=9999-12", "/staff/reports/monthly?month=0001-01",
                                  "/staff/reports/monthly?month=9999-12&format=csv"])
def test_dates_at_the_calendars_edge_are_not_a_500(client: TestClient[Any], path: str) -> None:
    """Found by the console fuzzing: a period or month at Python's date limits overflowed."""
    assert sign_in(client, "staff1").status_code == 303
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])


def test_catalogue_numbers_out_of_range_are_refused_not_a_500(client: TestClient[Any]) -> None:
    assert sign_in(client, "admin").status_code == 303
    code = "proxy.social_insurance_registration"
    page = client.get(f"/staff/admin/catalogue?edit={code}")
    for field, value in (("version", "0001-01-01"), ("version", "1" + "0" * 40), ("deadline_days", "1e3"),
                         ("deadline_days", "99999999999999999999"), ("deadline_days", "-1")):
        r = client.post(f"/staff/admin/catalogue/{code}", data={"csrf": csrf_of(page.text), "name_zh": "社保登记X",
                                                                field: value}, follow_redirects=False)
        assert r.status_code == 303 and "invalid_form" in r.headers["location"], (field, value, r.status_code)
