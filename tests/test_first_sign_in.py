"""One-time passwords (issue 14): an initial password from an import, or an admin's reset, opens
nothing until the user chooses their own, on the console and on the field app's login alike."""

from __future__ import annotations

import re
from typing import Any

from sync import accounts
from sync.store import SQLiteStore

from .test_api import Api, api, assert_error, town_template  # noqa: F401
from .test_staff_console import Console, con, csrf  # noqa: F401


def one_time_user(store: SQLiteStore, username: str, role: str, area: str) -> str:
    password = accounts.one_time_password(username)
    accounts.create_user(store, username, password, role, [area], must_change=True)
    return password


def test_one_time_passwords_are_readable_and_meet_the_policy() -> None:
    seen = set()
    for _ in range(200):
        p = accounts.one_time_password("abc")
        assert len(p) == accounts.ONE_TIME_LENGTH and accounts.password_problem(p, "abc") is None
        assert not set(p) & set("0Oo1lI")
        seen.add(p)
    assert len(seen) == 200


# -- the field app's login ------------------------------------------------------------------------

def test_api_login_with_a_one_time_password_needs_a_new_one(api: Api) -> None:
    with api.store() as s:
        initial = one_time_user(s, "newworker", "grid_worker", api.town.ids["g1"])
        devices_before = len(s.devices())
    err = assert_error(api.login("newworker", initial), 403, "password_change_required")
    assert "new_password" in err["message"]
    with api.store() as s:
        assert len(s.devices()) == devices_before       # no device, no token
    # A weak new password is refused with its reason; the one-time password still stands.
    err = assert_error(api.login("newworker", initial, new_password="12345678"), 400, "invalid_request")
    assert err["details"]["reason"] == "common"
    err = assert_error(api.login("newworker", initial, new_password=initial), 400, "invalid_request")
    assert err["details"]["reason"] == "reused"
    # A wrong initial password with a new one changes nothing either.
    assert_error(api.login("newworker", "not the password", new_password="my own passphrase"), 401,
                 "invalid_credentials")
    r = api.login("newworker", initial, new_password="my own passphrase")
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert api.client.get("/api/v1/sync/pull", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # The initial password is gone; the new one signs in like any password.
    assert_error(api.login("newworker", initial), 401, "invalid_credentials")
    assert api.login("newworker", "my own passphrase").status_code == 200
    with api.store() as s:
        uid = s.user_by_username("newworker").id  # type: ignore[union-attr]
        assert not s.password_must_change(uid)


def test_an_ordinary_password_ignores_new_password(api: Api) -> None:
    """new_password only replaces a one-time password: it is not a way to change one's password."""
    r = api.login("worker1", new_password="another passphrase")
    assert r.status_code == 200, r.text
    assert api.login("worker1").status_code == 200


# -- the staff console ----------------------------------------------------------------------------

def _sign_in(con: Console, username: str, password: str) -> Any:
    page = con.c.get("/staff/login")
    return con.c.post("/staff/login", data={"username": username, "password": password, "csrf": csrf(page.text)},
                      follow_redirects=False)


def _fields(html: str) -> dict[str, str]:
    form = html.split('id="first-password"', 1)[1].split("</form>", 1)[0]
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))


def test_console_first_sign_in_asks_for_a_new_password_before_anything(con: Console) -> None:
    initial = one_time_user(con.store, "clerk", "staff", con.town.ids["town"])
    r = _sign_in(con, "clerk", initial)
    assert r.status_code == 200 and "设置新密码" in r.text and "gb_staff=" not in r.headers.get("set-cookie", "")
    assert con.c.get("/staff/", follow_redirects=False).status_code == 303      # still no session
    form = _fields(r.text)
    # Two different entries, a weak one, the initial one again: refused with the reason, in Chinese.
    for new, again, why in (("my own passphrase", "my own passphras", "两次输入的新密码不一致"),
                            ("12345678", "12345678", "密码过于常见"),
                            ("clerk-passphrase", "clerk-passphrase", "密码不能包含用户名"),
                            (initial, initial, "新密码不能与初始密码相同")):
        bad = con.c.post("/staff/login/password", data={**form, "new_password": new, "new_password2": again},
                         follow_redirects=False)
        assert bad.status_code == 400 and why in bad.text, (new, bad.text[-800:])
        assert con.c.get("/staff/", follow_redirects=False).status_code == 303
    # A forged or altered grant opens nothing.
    for forged in ({"grant": "0" * 64}, {"user_id": con.town.actors["staff"].user_id},
                   {"expiry": str(int(form["expiry"]) + 3600)}):
        r = con.c.post("/staff/login/password", data={**form, **forged, "new_password": "my own passphrase",
                                                      "new_password2": "my own passphrase"}, follow_redirects=False)
        assert r.status_code == 403, forged
    ok = con.c.post("/staff/login/password", data={**form, "new_password": "my own passphrase",
                                                   "new_password2": "my own passphrase"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/staff/"
    assert con.c.get("/staff/").status_code == 200
    # The grant was for the one-time password: used once, it is void.
    again = con.c.post("/staff/login/password", data={**form, "new_password": "a third passphrase",
                                                      "new_password2": "a third passphrase"}, follow_redirects=False)
    assert again.status_code == 403
    con.c.cookies.clear()
    assert _sign_in(con, "clerk", initial).status_code == 401
    assert _sign_in(con, "clerk", "my own passphrase").status_code == 303


def test_an_admins_reset_is_a_one_time_password(con: Console) -> None:
    assert con.login("admin").status_code == 303
    users = con.c.get("/staff/admin/users")
    sid = con.town.actors["staff"].user_id
    r = con.c.post(f"/staff/admin/users/{sid}", data={"csrf": csrf(users.text), "action": "password",
                                                      "password": "reset by admin"}, follow_redirects=False)
    assert "msg=password" in r.headers["location"]
    assert con.store.password_must_change(sid)
    # The users page says who has not replaced a one-time password yet.
    rows = con.c.get("/staff/admin/users").text.split('data-testid="user-row"')[1:]
    assert [">staff1<" in row for row in rows if 'data-testid="one-time"' in row] == [True]
    con.c.cookies.clear()
    r = _sign_in(con, "staff1", "reset by admin")
    assert r.status_code == 200 and 'id="first-password"' in r.text


def test_gridbook_user_passwd_one_time_generates_a_password_shown_once(api: Api, capsys: Any) -> None:
    from server.cli import main

    assert main(["user", "passwd", "staff1", "--one-time", "--keep-devices", "--db", api.db]) == 0
    out = capsys.readouterr().out
    m = re.search(r"one-time password (\S+) \(shown once", out)
    assert m, out
    assert_error(api.login("staff1", m.group(1)), 403, "password_change_required")
    assert api.login("staff1", m.group(1), new_password="no more one-time").status_code == 200
    assert main(["user", "add", "temp1", "--role", "grid_worker", "--areas", api.town.ids["g1"], "--one-time",
                 "--db", api.db]) == 0
    m = re.search(r"one-time password (\S+)", capsys.readouterr().out)
    assert m and api.login("temp1", m.group(1)).json()["error"]["code"] == "password_change_required"


def test_the_first_password_form_dies_with_the_account_or_a_new_reset(con: Console) -> None:
    initial = one_time_user(con.store, "clerk2", "staff", con.town.ids["town"])
    uid = con.store.user_by_username("clerk2").id  # type: ignore[union-attr]
    form = _fields(_sign_in(con, "clerk2", initial).text)
    # An admin resets the password meanwhile: the form given for the old one-time password is void.
    accounts.set_password(con.store, uid, accounts.one_time_password("clerk2"), revoke_devices=False, must_change=True)
    new = {"new_password": "my own passphrase", "new_password2": "my own passphrase"}
    assert con.c.post("/staff/login/password", data={**form, **new}, follow_redirects=False).status_code == 403
    reset = accounts.one_time_password("clerk2")
    accounts.set_password(con.store, uid, reset, revoke_devices=False, must_change=True)
    form = _fields(_sign_in(con, "clerk2", reset).text)
    accounts.disable_user(con.store, uid)
    assert con.c.post("/staff/login/password", data={**form, **new}, follow_redirects=False).status_code == 403
    assert con.store.password_must_change(uid)
