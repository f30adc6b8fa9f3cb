"""Security headers on every response."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


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
