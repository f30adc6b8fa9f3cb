"""Wire messages of protocol v1 as msgspec Structs, decoders built once.

New fields are appended with defaults (msgspec schema evolution), never renamed or removed.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

PROTOCOL_VERSION = 1
MAX_MUTATIONS = 500


class MutationIn(msgspec.Struct, forbid_unknown_fields=False):
    """One mutation as received. Only ``mid`` is checked at envelope level (protocol §4): every
    other defect rejects this mutation alone, so the rest are typed loosely here."""

    mid: str
    collection: Any = None
    id: Any = None
    op: Any = None
    base: Any = None
    fields: Any = None
    at: Any = None


class PushRequest(msgspec.Struct, forbid_unknown_fields=False):
    protocol: int
    mutations: list[MutationIn]
    # extension: the client may say how many mutations are still waiting behind this batch
    outbox_depth: int | None = None


class MutationError(msgspec.Struct, omit_defaults=True):
    code: str
    message: str


class PushResult(msgspec.Struct, omit_defaults=True):
    mid: str
    status: Literal["applied", "merged", "conflict", "rejected"]
    version: int | None = None
    conflict_id: str | None = None
    error: MutationError | None = None
    # extension: which collection/id the result concerns, for clients that lost their outbox index
    id: str | None = None


class PushResponse(msgspec.Struct):
    results: list[PushResult]
    server_time: str


class Change(msgspec.Struct, omit_defaults=True):
    collection: str
    id: str
    version: int | None = None
    deleted: bool | None = None
    removed: bool | None = None
    data: dict[str, Any] | None = None


class PullResponse(msgspec.Struct):
    changes: list[Change]
    cursor: str
    more: bool
    server_time: str


class LoginRequest(msgspec.Struct, forbid_unknown_fields=False):
    username: str
    password: str
    device_name: str = "device"
    previous_device_id: str | None = None
    # Replaces a one-time password (an initial one, an admin's reset) as the user signs in.
    new_password: str | None = None


class LoginUser(msgspec.Struct):
    id: str
    username: str
    display_name: str
    role: str
    areas: list[str]


class LoginResponse(msgspec.Struct):
    token: str
    device_id: str
    user: LoginUser
    server_time: str


class Health(msgspec.Struct):
    ok: bool
    version: str
    protocol: int


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(msgspec.Struct):
    error: ErrorDetail


push_decoder = msgspec.json.Decoder(PushRequest)
login_decoder = msgspec.json.Decoder(LoginRequest)
encoder = msgspec.json.Encoder()
