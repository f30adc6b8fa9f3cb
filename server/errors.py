"""One function maps every error to the protocol's shape and status (no stack traces, ever)."""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from sync.errors import CODES, SyncError, error_body

from .security import quoted, traceback_text

log = logging.getLogger("gridbook")

_DISCONNECTED = "client disconnected prematurely"   # what Litestar raises when the body stops coming
_BY_STATUS = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "offset_mismatch", 413: "too_large", 415: "unsupported_media_type",
              429: "rate_limited", 503: "unavailable"}


def error_response(code: str, message: str | None = None, details: dict | None = None,
                   headers: dict[str, str] | None = None, status: int | None = None) -> Response:
    return Response(content=error_body(code, message, details), status_code=status or CODES[code][0],
                    media_type=MediaType.JSON, headers=headers or {})


def sync_error(_: Request, exc: SyncError) -> Response:
    return error_response(exc.code, exc.message, exc.details, exc.headers)


def http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    code = _BY_STATUS.get(status, "internal" if status >= 500 else "invalid_request")
    if status >= 500 and exc.detail == _DISCONNECTED:
        # A phone lost its signal mid-upload: the body never arrived whole, nothing was applied,
        # and nobody will read this answer. Not a server error, so not logged as one.
        log.info("%s %s: the client disconnected before its body arrived", request.method, quoted(request.url.path))
        return error_response("invalid_request", "The request body was cut off; send it again.", status=400)
    if status >= 500:
        log.error("HTTP %s on %s %s: %s", status, request.method, quoted(request.url.path), quoted(exc.detail))
        return error_response("internal", status=500)
    message = CODES[code][1]
    details = None
    if isinstance(exc, ValidationException):
        message = "The request is not valid: " + str(exc.detail or "")
        extra = exc.extra if isinstance(exc.extra, list) else None
        if extra:
            details = {"errors": [{"key": e.get("key"), "message": e.get("message"), "source": e.get("source")}
                                  for e in extra if isinstance(e, dict)]}
    elif status == 413:
        message = "The request body is too large."
    elif status == 404:
        message = f"There is nothing at {request.url.path}."
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    return error_response(code, message, details, headers=dict(exc.headers or {}), status=status)


def internal_error(request: Request, exc: Exception) -> Response:
    # Not log.exception: its traceback would end with the exception's message unquoted, and a
    # message may carry what the client sent (a path, a form value).
    log.error("unhandled error on %s %s\n%s", request.method, quoted(request.url.path), traceback_text(exc))
    return error_response("internal")


EXCEPTION_HANDLERS = {SyncError: sync_error, HTTPException: http_error, Exception: internal_error}
