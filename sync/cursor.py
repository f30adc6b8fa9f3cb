"""Opaque pull cursors: what was delivered, under which scope and database epoch, signed.

A cursor is ``v1.<epoch>.<seq>.<snap>.<scope>.<mac>`` in URL-safe base64. ``seq`` is the last
feed position delivered; ``snap`` is non-zero while a snapshot (a pull from no cursor) is being
paged and holds the feed position at which it began: tombstones and scope exits up to there are
of no interest to a client that never had those records. The MAC (keyed with a secret kept in
the database) makes a cursor the server did not issue an ``invalid_request``; an epoch or scope
that no longer matches makes it ``cursor_expired``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from .errors import SyncError


@dataclass(frozen=True)
class Cursor:
    epoch: str
    seq: int
    snap: int
    scope: str


def _mac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:24]


def encode(c: Cursor, secret: str) -> str:
    payload = f"v1.{c.epoch}.{c.seq}.{c.snap}.{c.scope}"
    raw = f"{payload}.{_mac(secret, payload)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(text: str, secret: str) -> Cursor:
    """Parse and verify; ``invalid_request`` for anything the server did not issue."""
    bad = SyncError("invalid_request", "The cursor is not one this server issued; pull again without a cursor.",
                    {"parameter": "cursor"})
    if not text or len(text) > 200:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        payload, mac = raw.rsplit(".", 1)
        version, epoch, seq, snap, scope = payload.split(".")
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if version != "v1" or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise bad
    try:
        return Cursor(epoch, int(seq), int(snap), scope)
    except ValueError:
        raise bad from None
