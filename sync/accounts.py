"""Users, passwords, devices and tokens: identity (protocol §2), with no web framework in it.

Passwords are hashed with scrypt (memory-hard, in the standard library). Device tokens are
random; only their SHA-256 is stored, so a copy of the database does not let anyone sign in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .engine import _Ctx, _keys_for, _write_new, area_tree, uuid7
from .errors import SyncError
from .schema import ROLES, is_uuid
from .scope import Actor
from .storage import Store
from .store import StoredRecord, iso, utcnow

# scrypt: N=2^14, r=8 -> 16 MiB of memory per hash; about 50 ms on a small server.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1

# The one password policy, for every way a password is set (CLI, staff console, the engine's API).
MIN_PASSWORD, MAX_PASSWORD = 8, 128
# The passwords guessed first, as published lists of leaked passwords have them (Chinese sites
# included); each is also at least 8 characters, so the length rule alone would let it through.
COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "passw0rd", "12345678", "123456789", "1234567890", "87654321",
    "11223344", "12341234", "123123123", "147258369", "123qweasd", "qwertyui", "qwerty123", "qwertyuiop",
    "1qaz2wsx", "1q2w3e4r", "q1w2e3r4", "abc12345", "abcd1234", "a1234567", "a12345678", "aa123456",
    "iloveyou", "woaini1314", "woaini520", "5201314520", "admin123", "admin888", "administrator",
    "gridbook", "gridbook1", "changeme", "welcome1", "zxcvbnm1", "asdfghjk", "00000000",
})
# Why a password is refused: a stable reason code (details.reason), and its message.
PASSWORD_RULES = {
    "too_short": f"password: at least {MIN_PASSWORD} characters",
    "too_long": f"password: at most {MAX_PASSWORD} characters",
    "control": "password: no control characters (tabs, line breaks …)",
    "username": "password: must not contain the username",
    "repeated": "password: must not be one character repeated",
    "common": "password: too common (it is among the first passwords anyone tries)",
    "reused": "password: must differ from the one-time password",
}
# One-time passwords (an import's initial ones, an admin's reset) are read off a sheet and typed on
# a phone: no letters and digits people confuse (0 O o, 1 l I), 10 characters (about 58 bits).
ONE_TIME_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
ONE_TIME_LENGTH = 10


def hash_password(password: str, n: int | None = None) -> str:
    n = n or SCRYPT_N
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, dk = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=len(base64.b64decode(dk)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(dk))


# A fixed hash to verify against when the user does not exist, so both answers take as long.
_DUMMY_HASH = hash_password("not a real password")


def password_problem(password: str, username: str = "") -> str | None:
    """The reason code (a key of ``PASSWORD_RULES``) a new password is refused for, else None."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        return "too_short"
    if len(password) > MAX_PASSWORD:
        return "too_long"
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in password):
        return "control"
    if username and username.lower() in password.lower():
        return "username"
    if len(set(password)) == 1:
        return "repeated"
    if password.lower() in COMMON_PASSWORDS:
        return "common"
    return None


def one_time_password(username: str = "") -> str:
    """A random, readable one-time password that meets the policy (for this username too)."""
    while True:
        password = "".join(secrets.choice(ONE_TIME_ALPHABET) for _ in range(ONE_TIME_LENGTH))
        if password_problem(password, username) is None:
            return password


def username_problem(username: str) -> str | None:
    """Why a username cannot be used (letters, digits, . _ - only, at most 50), else None."""
    if not username or len(username) > 50 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return "username: letters, digits, . _ - only, at most 50"
    return None


def check_new_password(password: str, username: str = "") -> None:
    """``invalid_request`` (with ``details.reason``) unless the password meets the policy."""
    reason = password_problem(password, username)
    if reason is not None:
        raise SyncError("invalid_request", PASSWORD_RULES[reason], {"reason": reason})


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class LoginResult:
    token: str
    device_id: str
    user: StoredRecord


def _system_ctx(store: Store, by: str = "system") -> _Ctx:
    tree = area_tree(store)
    now = utcnow()
    actor = Actor(by, "admin", (), "system", "system")
    return _Ctx(store, actor, tree, frozenset(), now, iso(now))


def create_user(store: Store, username: str, password: str, role: str, areas: list[str],
                display_name: str | None = None, phone: str | None = None, user_id: str | None = None,
                password_hash: str | None = None, must_change: bool = False) -> str:
    """Add a user (an admin's act, not a sync mutation). Returns the user id.

    ``password`` must meet the policy (``check_new_password``); a ready ``password_hash`` (seeding
    the demo town and the tests' fixtures, an import that hashed before its transaction) skips it.
    ``must_change`` makes it a one-time password, replaced at the first sign-in.
    """
    if role not in ROLES:
        raise SyncError("invalid_request", f"role must be one of {', '.join(ROLES)}")
    bad_name = username_problem(username)
    if bad_name:
        raise SyncError("invalid_request", bad_name)
    if password_hash is None:
        check_new_password(password, username)
    with store.transaction():
        if store.user_by_username(username):
            raise SyncError("invalid_request", f"username {username!r} is taken")
        tree = area_tree(store)
        for a in areas:
            if a not in tree:
                raise SyncError("invalid_request", f"no such area {a}")
        uid = user_id or uuid7()
        ctx = _system_ctx(store)
        data = {"username": username, "display_name": display_name or username, "role": role, "areas": list(areas),
                "phone": phone, "active": True}
        _write_new(ctx, "users", uid, data, _keys_for(ctx, "users", uid, data))
        store.set_password_hash(uid, password_hash or hash_password(password), must_change)
        store.audit(None, "user.create", "users", uid, {"username": username, "role": role})
    return uid


def update_user(store: Store, user_id: str, by: str | None = None, **changes: Any) -> StoredRecord:
    """Change a user's role, areas, display name, phone or active flag (a new version of the record)."""
    allowed = {"display_name", "role", "areas", "phone", "active"}
    if set(changes) - allowed:
        raise SyncError("invalid_request", f"only {', '.join(sorted(allowed))} can be changed")
    with store.transaction():
        rec = store.get("users", user_id)
        if rec is None:
            raise SyncError("not_found", "no such user")
        tree = area_tree(store)
        if "role" in changes and changes["role"] not in ROLES:
            raise SyncError("invalid_request", f"role must be one of {', '.join(ROLES)}")
        for a in changes.get("areas") or []:
            if a not in tree:
                raise SyncError("invalid_request", f"no such area {a}")
        ctx = _system_ctx(store, by or "system")
        seq = store.next_seq()
        data = dict(rec.data, **changes)
        meta = dict(rec.meta)
        for k in changes:
            meta[k] = {"v": seq, "at": ctx.now_iso, "u": by or "system", "o": "system"}
        keys = _keys_for(ctx, "users", user_id, data)
        store.put(StoredRecord("users", user_id, seq, False, data, meta, sorted(keys), rec.created_at, ctx.now_iso,
                               rec.created_by, by), rec.keys, seq)
        store.audit(by, "user.update", "users", user_id, {k: v for k, v in changes.items()})
        return store.get("users", user_id)  # type: ignore[return-value]


def set_password(store: Store, user_id: str, password: str, by: str | None = None, *,
                 revoke_devices: bool, must_change: bool = False) -> list[dict[str, Any]]:
    """A new password (the policy applies), ending the user's console sessions; with
    ``revoke_devices`` also revoking every device of the user, since whoever learnt the old
    password may have signed one in. Returns the devices revoked (their ``outbox_depth`` says what
    they had not sent). The caller chooses: revoking wipes the phones at their next contact.
    ``must_change``: a one-time password (an admin's reset), replaced at the next sign-in."""
    user = store.get("users", user_id)
    if user is None:
        raise SyncError("not_found", "no such user")
    check_new_password(password, str(user.data.get("username") or ""))
    digest = hash_password(password)
    with store.transaction():
        store.set_password_hash(user_id, digest, must_change)
        store.audit(by, "user.password", "users", user_id, {"revoke_devices": revoke_devices,
                                                             "one_time": must_change})
        end_sessions(store, user_id)
        return revoke_user_devices(store, user_id, by) if revoke_devices else []


def disable_user(store: Store, user_id: str, by: str | None = None) -> list[dict[str, Any]]:
    """Stop a person: the account cannot sign in, its console sessions end and every device is
    revoked, so each phone wipes its replica (and its unsent outbox) at its next contact, as for a
    lost phone. Returns the devices revoked."""
    with store.transaction():
        update_user(store, user_id, by=by, active=False)
        end_sessions(store, user_id)
        return revoke_user_devices(store, user_id, by)


def active_devices(store: Store, user_id: str) -> list[dict[str, Any]]:
    """The user's devices not revoked, each with ``outbox_depth``: the records it said (at its last
    pull) it had not sent yet, which revoking them would lose."""
    return [d for d in store.devices(user_id) if not d.get("revoked_at")]


def revoke_user_devices(store: Store, user_id: str, by: str | None = None) -> list[dict[str, Any]]:
    with store.transaction():
        devices = active_devices(store, user_id)
        for d in devices:
            revoke_device(store, d["id"], by)
    return devices


def session_floor_key(user_id: str) -> str:
    """The ``server_meta`` key of the time (ms) before which every console session of the user is void."""
    return f"staff_sessions_valid_after:{user_id}"


def end_sessions(store: Store, user_id: str) -> None:
    """End every staff console session of the user issued until now (sign-out, a new password,
    disabling), wherever a copy of the cookie is."""
    with store.transaction():
        store.set_meta(session_floor_key(user_id), str(int(time.time() * 1000)))


def check_password(store: Store, username: str, password: str) -> StoredRecord:
    """The active user with this username and password, else ``invalid_credentials``.

    Unknown user and wrong password take as long and answer alike. Only reads: a server runs it
    on a reader connection, outside the write lock, since scrypt is slow on purpose.
    """
    return _check(store, username, password)[0]


def _check(store: Store, username: str, password: str) -> tuple[StoredRecord, str]:
    """``check_password``, and the hash the password was verified against."""
    user = store.user_by_username(username) if isinstance(username, str) else None
    stored = store.password_hash(user.id) if user else None
    ok = verify_password(password, stored or _DUMMY_HASH) and stored is not None
    if not ok or user is None or stored is None or user.data.get("active") is False:
        raise SyncError("invalid_credentials", "Wrong username or password.")
    return user, stored


def password_change_required(username: str) -> SyncError:
    return SyncError("password_change_required",
                     f"{username}: this is a one-time password; choose a new password to sign in "
                     "(send it as new_password).")


def sign_in(reader: Store, writer: Store, username: str, password: str,
            new_password: str | None = None) -> StoredRecord:
    """``check_password`` with the one-time rule: while the user's password is one-time (an
    initial password, an admin's reset), signing in needs ``new_password``, which replaces it
    (the policy applies, and it must differ), else ``password_change_required``. The password is
    verified on ``reader`` (scrypt outside the write lock); only a replacement writes."""
    user, verified = _check(reader, username, password)
    if not reader.password_must_change(user.id):
        return user
    if new_password is None:
        raise password_change_required(username)
    replace_one_time_password(writer, user, verified, password, new_password)
    return user


def replace_one_time_password(store: Store, user: StoredRecord, verified_hash: str, old_password: str,
                              new_password: str) -> None:
    """Replace a one-time password the user just proved they know (``verified_hash``: the hash it
    was checked against; if the password changed meanwhile, or is no longer one-time, nothing
    changes and the answer is ``invalid_credentials``)."""
    username = str(user.data.get("username") or "")
    check_new_password(new_password, username)
    if new_password == old_password:
        raise SyncError("invalid_request", PASSWORD_RULES["reused"], {"reason": "reused"})
    digest = hash_password(new_password)
    with store.transaction():
        if store.password_hash(user.id) != verified_hash or not store.password_must_change(user.id):
            raise SyncError("invalid_credentials", "Wrong username or password.")
        store.set_password_hash(user.id, digest, False)
        store.audit(user.id, "user.password", "users", user.id, {"first_sign_in": True})


def register_device(store: Store, user: StoredRecord, device_name: str,
                    previous_device_id: str | None = None) -> LoginResult:
    """A new device with a new token for a signed-in user."""
    token = secrets.token_urlsafe(32)
    device_id = uuid7()
    lineage = device_id
    with store.transaction():
        if previous_device_id and is_uuid(previous_device_id):
            prev = store.device(previous_device_id)
            # Only the same user's devices are linked: idempotency and "a device never conflicts
            # with itself" then treat the old and the new device as one.
            if prev and prev["user_id"] == user.id:
                lineage = prev["lineage_id"]
        now = iso(utcnow())
        store.add_device({"id": device_id, "user_id": user.id, "name": (device_name or "device")[:100],
                          "token_hash": token_hash(token), "lineage_id": lineage, "created_at": now})
        store.audit(user.id, "device.login", "devices", device_id, {"name": device_name})
    return LoginResult(token, device_id, user)


def login(store: Store, username: str, password: str, device_name: str,
          previous_device_id: str | None = None) -> LoginResult:
    """Check the password and register a device with a new token. Wrong user or password: one answer.
    A one-time password signs nothing in (``sign_in`` replaces it)."""
    user = check_password(store, username, password)
    if store.password_must_change(user.id):
        raise password_change_required(username)
    return register_device(store, user, device_name, previous_device_id)


def authenticate(store: Store, token: str | None) -> Actor:
    """The actor behind a bearer token, or ``unauthorized`` / ``device_revoked``."""
    if not token:
        raise SyncError("unauthorized", "Sign in first: send Authorization: Bearer <token>.")
    dev = store.device_by_token_hash(token_hash(token))
    if dev is None:
        raise SyncError("unauthorized", "This token is not valid; sign in again.")
    if dev["revoked_at"]:
        raise SyncError("device_revoked", "This device was revoked by an administrator (lost or stolen phone). "
                        "Its local data must be wiped; sign in again on a trusted device.")
    user = store.get("users", dev["user_id"])
    if user is None or user.deleted or user.data.get("active") is False:
        # device_revoked, not unauthorized: the app wipes its replica on this answer only, and a
        # disabled person's phone must not keep residents' data (``disable_user`` revokes the
        # devices too; this covers accounts disabled before it did, or by ``update_user``).
        raise SyncError("device_revoked", "This account is disabled; this device's local data must be wiped. "
                        "Ask your administrator.")
    return Actor(user.id, user.data["role"], tuple(user.data.get("areas") or ()), dev["id"], dev["lineage_id"])


def revoke_device(store: Store, device_id: str, by: str | None = None) -> bool:
    with store.transaction():
        done = store.revoke_device(device_id, by, iso(utcnow()))
        if done:
            store.audit(by, "device.revoke", "devices", device_id)
    return done
