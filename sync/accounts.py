"""Users, passwords, devices and tokens: identity (protocol §2), with no web framework in it.

Passwords are hashed with scrypt (memory-hard, in the standard library). Device tokens are
random; only their SHA-256 is stored, so a copy of the database does not let anyone sign in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from .engine import _Ctx, _keys_for, _write_new, area_tree, uuid7
from .errors import SyncError
from .schema import ROLES, is_uuid
from .scope import Actor
from .store import SQLiteStore, StoredRecord, iso, utcnow

# scrypt: N=2^14, r=8 -> 16 MiB of memory per hash; about 50 ms on a small server.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class LoginResult:
    token: str
    device_id: str
    user: StoredRecord


def _system_ctx(store: SQLiteStore, by: str = "system") -> _Ctx:
    tree = area_tree(store)
    now = utcnow()
    actor = Actor(by, "admin", (), "system", "system")
    return _Ctx(store, actor, tree, frozenset(), now, iso(now))


def create_user(store: SQLiteStore, username: str, password: str, role: str, areas: list[str],
                display_name: str | None = None, phone: str | None = None, user_id: str | None = None,
                password_hash: str | None = None) -> str:
    """Add a user (an admin's act, not a sync mutation). Returns the user id."""
    if role not in ROLES:
        raise SyncError("invalid_request", f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 50 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise SyncError("invalid_request", "username: letters, digits, . _ - only, at most 50")
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
        store.set_password_hash(uid, password_hash or hash_password(password))
        store.audit(None, "user.create", "users", uid, {"username": username, "role": role})
    return uid


def update_user(store: SQLiteStore, user_id: str, by: str | None = None, **changes: Any) -> StoredRecord:
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


def set_password(store: SQLiteStore, user_id: str, password: str, by: str | None = None) -> None:
    with store.transaction():
        store.set_password_hash(user_id, hash_password(password))
        store.audit(by, "user.password", "users", user_id)


def check_password(store: SQLiteStore, username: str, password: str) -> StoredRecord:
    """The active user with this username and password, else ``invalid_credentials``.

    Unknown user and wrong password take as long and answer alike. Only reads: a server runs it
    on a reader connection, outside the write lock, since scrypt is slow on purpose.
    """
    user = store.user_by_username(username) if isinstance(username, str) else None
    stored = store.password_hash(user.id) if user else None
    ok = verify_password(password, stored or _DUMMY_HASH) and stored is not None
    if not ok or user is None or user.data.get("active") is False:
        raise SyncError("invalid_credentials", "Wrong username or password.")
    return user


def register_device(store: SQLiteStore, user: StoredRecord, device_name: str,
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


def login(store: SQLiteStore, username: str, password: str, device_name: str,
          previous_device_id: str | None = None) -> LoginResult:
    """Check the password and register a device with a new token. Wrong user or password: one answer."""
    return register_device(store, check_password(store, username, password), device_name, previous_device_id)


def authenticate(store: SQLiteStore, token: str | None) -> Actor:
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
        raise SyncError("unauthorized", "This account is disabled; ask your administrator.")
    return Actor(user.id, user.data["role"], tuple(user.data.get("areas") or ()), dev["id"], dev["lineage_id"])


def revoke_device(store: SQLiteStore, device_id: str, by: str | None = None) -> bool:
    with store.transaction():
        done = store.revoke_device(device_id, by, iso(utcnow()))
        if done:
            store.audit(by, "device.revoke", "devices", device_id)
    return done
