"""Security headers on every response, and the gate every request passes before routing."""

from __future__ import annotations

import re
import traceback
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Receive, Scope, Send

from sync.errors import error_body

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")

# Longest path and query string served. The longest real ones are a blob URL (81 characters) and a
# console filter or pull cursor (a few hundred); a file name past 255 bytes only ever reaches the
# file system's limit.
MAX_PATH = 2048
MAX_QUERY = 8192
# C0 controls, DEL and the C1 controls: no route, file name or query value has any use for them,
# and written to a log or a terminal they forge lines and colours.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


async def headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    h = MutableScopeHeaders.from_message(message)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("Permissions-Policy", "camera=(self), geolocation=(self), microphone=()")
    app = scope.get("app")
    settings = app.state.get("settings") if app is not None else None
    if scope.get("scheme") == "https" or getattr(settings, "secure_cookies", False):
        # Behind HTTPS (secure_cookies says so when a proxy terminates TLS): never plain HTTP again.
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    path = scope.get("path", "")
    if path.startswith("/api/") and "Cache-Control" not in h:
        h["Cache-Control"] = "no-store"


def refusal(scope: Scope) -> str | None:
    """Why a request is refused before it reaches any route (its path or query string), else None."""
    path = scope.get("path", "")
    raw_path = scope.get("raw_path") or path.encode("utf-8", "surrogateescape")
    query: bytes = scope.get("query_string", b"")
    if len(raw_path) > MAX_PATH or len(path) > MAX_PATH:
        return f"The path is longer than {MAX_PATH} bytes."
    if len(query) > MAX_QUERY:
        return f"The query string is longer than {MAX_QUERY} bytes."
    if _CONTROL.search(path) or _CONTROL_BYTES.search(raw_path):
        return "The path contains a control character."
    decoded = unquote_to_bytes(query.replace(b"+", b" "))
    if _CONTROL_BYTES.search(decoded) or _CONTROL.search(decoded.decode("utf-8", "replace")):
        name = _bad_parameter(query)
        return (f"The query parameter {name} contains a control character." if name
                else "The query string contains a control character.")
    return None


def bad_parameter(scope: Scope) -> str | None:
    """The query parameter whose name or value holds a control character, for the error's details."""
    return _bad_parameter(scope.get("query_string", b""))


def _bad_parameter(query: bytes) -> str | None:
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        raw_name = unquote_to_bytes(name.replace(b"+", b" "))
        text = unquote_to_bytes(value.replace(b"+", b" "))
        if _CONTROL_BYTES.search(raw_name + b"=" + text) or _CONTROL.search(
                (raw_name + b"=" + text).decode("utf-8", "replace")):
            shown = raw_name.decode("utf-8", "replace")
            return shown if shown.isascii() and shown.replace("_", "").isalnum() and len(shown) <= 40 else None
    return None


async def refuse(scope: Scope, receive: Receive, send: Send, reason: str) -> None:
    """A 400 in the protocol's error shape, with the headers of every other answer."""
    name = bad_parameter(scope)
    body = msgspec.json.encode(error_body("invalid_request", reason + " Send the request without it.",
                                          {"parameter": name} if name else None))
    start: Any = {"type": "http.response.start", "status": 400, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]}
    await headers(start, scope)
    await send(start)
    await send({"type": "http.response.body", "body": body})


def quoted(value: Any) -> str:
    """What a client sent, fit for one log line: repr-quoted, control and separator characters
    escaped, so it can never start a line of its own."""
    return repr(str(value))


def traceback_text(exc: BaseException) -> str:
    """A traceback whose frames (our code) read as usual and whose exception messages, which may
    carry what a client sent, are quoted (chained exceptions too)."""
    parts: list[str] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen and len(parts) < 10:
        seen.add(id(e))
        parts.append("".join(traceback.format_tb(e.__traceback__)) + f"{type(e).__qualname__}: {quoted(e)}")
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return "\n--- raised while handling ---\n".join(reversed(parts))
