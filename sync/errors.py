"""Every error code of the protocol, in one place, with the HTTP status it maps to.

Whole-request refusals are raised as :class:`SyncError`; per-mutation refusals are
returned as results carrying the same codes (see ``engine.push``).
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, default message)
CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "The request could not be read."),
    "invalid_credentials": (401, "Wrong username or password."),
    "unauthorized": (401, "Sign in first: this call needs a valid device token."),
    "device_revoked": (401, "This device was revoked by an administrator; local data must be wiped."),
    "forbidden": (403, "You may not do this."),
    "password_change_required": (403, "This is a one-time password: choose a new password to sign in."),
    "not_found": (404, "Nothing is here."),
    "method_not_allowed": (405, "This method is not allowed here."),
    "offset_mismatch": (409, "The upload offset does not match what the server holds."),
    "cursor_expired": (410, "The cursor can no longer be served: push the outbox, clear the replica and pull from the start."),
    "too_large": (413, "The request is too large."),
    "unsupported_media_type": (415, "This content type is not accepted here."),
    "hash_mismatch": (422, "The uploaded bytes do not match their SHA-256; the upload was discarded."),
    "rate_limited": (429, "Too many attempts; wait and try again."),
    "internal": (500, "Something went wrong on the server; nothing of this request was applied."),
    "unavailable": (503, "The server is busy; try again shortly."),
    # per-mutation codes (results with status "rejected"; never whole-request statuses)
    "invalid_transition": (409, "This status change is not allowed from the matter's current status."),
    "id_collision": (409, "A different record already has this id."),
    "invalid_base": (409, "The base version is newer than the record."),
    "already_resolved": (409, "This conflict was already resolved."),
    "no_delegation": (403, "A proxy agent acts on a proxy matter only with the resident's authorisation (委托)."),
}

# Codes that only appear inside push results, never as an HTTP error status.
MUTATION_CODES = frozenset(
    {"invalid_request", "forbidden", "not_found",
     "invalid_transition", "id_collision", "invalid_base", "already_resolved", "no_delegation"}
)


class SyncError(Exception):
    """A refusal with a stable protocol code, a message a person can act on, and details."""

    def __init__(self, code: str, message: str | None = None, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message or CODES[code][1]
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return CODES[self.code][0]

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape of the protocol: ``{"error": {"code", "message", "details"?}}``."""
    err: dict[str, Any] = {"code": code, "message": message or CODES[code][1]}
    if details:
        err["details"] = details
    return {"error": err}


class MutationRejected(Exception):
    """Raised inside the engine while one mutation is decided; becomes a ``rejected`` result."""

    def __init__(self, code: str, message: str) -> None:
        assert code in MUTATION_CODES, code
        self.code = code
        self.message = message
        super().__init__(message)
