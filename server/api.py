"""The endpoints of protocol v1 (``/api/v1``): decode the transport, call the engine, encode."""

from __future__ import annotations

import itertools
import re
import logging
import time
import zlib
from email.utils import formatdate
from typing import Any

import anyio
import msgspec
from litestar import Request, Response, get, head, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, RawBody
from litestar.response import Stream
from litestar.status_codes import HTTP_204_NO_CONTENT

from sync import accounts, engine, proxy
from sync.blobs import StoredBlob
from sync.errors import SyncError
from sync.protocol import (Health, LoginResponse, LoginUser, PullResponse, PushResponse, login_decoder)
from sync.scope import Actor
from sync.store import iso, utcnow

from . import __version__
from .settings import Settings

log = logging.getLogger("gridbook")


_DECIMAL = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also accepts "²" and "٣"


def _settings(state: State) -> Settings:
    return state["settings"]  # type: ignore[no-any-return]


def read_body(request: Request, body: bytes, limit: int) -> bytes:
    """The request body, gunzipped when ``Content-Encoding: gzip``, never past ``limit`` bytes."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if len(body) > limit:
        raise SyncError("too_large", f"The body is larger than {limit} bytes.", {"max_bytes": limit})
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise SyncError("invalid_request", f"Content-Encoding {encoding!r} is not supported; use gzip or none.")
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise SyncError("too_large", f"The body is larger than {limit} bytes once decompressed.",
                            {"max_bytes": limit})
        out += d.flush()
    except zlib.error:
        raise SyncError("invalid_request", "The body is not valid gzip.") from None
    if not d.eof or d.unused_data:
        # A stream cut short (a dropped upload) or with bytes after its end is not a body we can trust.
        raise SyncError("invalid_request", "The gzip body is incomplete or has data after its end; send it again.")
    if len(out) > limit:
        raise SyncError("too_large", f"The body is larger than {limit} bytes once decompressed.", {"max_bytes": limit})
    return out


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(request: Request) -> Actor:
    stores = request.app.state["stores"]
    return accounts.authenticate(stores.reader(), bearer(request))


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@get("/api/v1/health", operation_id="health", sync_to_thread=False, tags=["meta"])
def health() -> Health:
    """Liveness and versions; no authentication."""
    return Health(ok=True, version=__version__, protocol=1)


@post("/api/v1/auth/login", operation_id="login", sync_to_thread=True, tags=["identity"], status_code=200)
def login(request: Request, body: RawBody, state: State) -> LoginResponse:
    """Sign in and register this device; the token never expires by time, only by revocation."""
    raw = read_body(request, body, 64 * 1024)
    try:
        req = login_decoder.decode(raw)
    except msgspec.ValidationError as e:
        raise SyncError("invalid_request", f"The login request is not valid: {e}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # Not UTF-8, or nested past the decoder's depth: unreadable all the same, never a 500.
        raise SyncError("invalid_request", "The login body is not JSON.") from None
    limiter = state["limiter"]
    ip = _client_ip(request)
    wait = limiter.retry_after(req.username, ip)
    if wait:
        raise SyncError("rate_limited", f"Too many failed sign-ins; try again in {wait} seconds.",
                        {"retry_after": wait}, headers={"Retry-After": str(wait)})
    stores = state["stores"]
    try:
        user = accounts.sign_in(stores.reader(), stores.writer, req.username, req.password, req.new_password)
    except SyncError as e:
        if e.code == "invalid_credentials":
            limiter.failed(req.username, ip)
        raise
    limiter.succeeded(req.username, ip)
    result = accounts.register_device(stores.writer, user, req.device_name, req.previous_device_id)
    u = result.user
    return LoginResponse(token=result.token, device_id=result.device_id,
                         user=LoginUser(id=u.id, username=u.data["username"], display_name=u.data["display_name"],
                                        role=u.data["role"], areas=list(u.data.get("areas") or [])),
                         server_time=iso(utcnow()))


@post("/api/v1/sync/push", operation_id="push", sync_to_thread=True, tags=["sync"], status_code=200)
def push(request: Request, body: RawBody, state: State) -> PushResponse:
    """Apply a batch of mutations atomically, exactly once, in order (protocol §4)."""
    actor = authenticate(request)
    settings = _settings(state)
    raw = read_body(request, body, settings.max_push_bytes)
    req = engine.decode_push(raw)
    if len(req.mutations) > settings.max_mutations:
        raise SyncError("too_large", f"At most {settings.max_mutations} mutations per request.",
                        {"max_mutations": settings.max_mutations})
    return engine.push(state["stores"].writer, actor, req)


@get("/api/v1/sync/pull", operation_id="pull", sync_to_thread=True, tags=["sync"])
def pull(request: Request, state: State, cursor: FromQuery[str | None] = None,
         limit: FromQuery[str | None] = None, lean: FromQuery[str | None] = None) -> PullResponse:
    """A page of everything in scope that changed after the cursor (protocol §5)."""
    actor = authenticate(request)
    settings = _settings(state)
    n = settings.pull_default_limit
    if limit is not None:
        # ASCII digits only: int() would also take " 1\n", "１" (full width) and "1_0".
        if not _DECIMAL.fullmatch(limit) or len(limit) > 9:
            raise SyncError("invalid_request", "limit must be a whole number from 1 to 1000.",
                            {"parameter": "limit"})
        n = int(limit)
    if lean not in (None, "0", "1"):
        raise SyncError("invalid_request", "lean must be 0 or 1.", {"parameter": "lean"})
    reads: list[tuple[str, str, str]] = []
    page = engine.pull(state["stores"].reader(), actor, cursor or None, n, sensitive_reads=reads, lean=lean == "1")
    if reads:  # 信访: every read of a sensitive matter is audited (docs/proxy.md)
        proxy.record_sensitive_reads(state["stores"].writer, actor.user_id, actor.device_id, reads, "pull")
    _touch(state, actor, "last_pull_at", request)
    return page


def _touch(state: State, actor: Actor, column: str, request: Request) -> None:
    """Record that a device was seen (sync health), at most once a minute per device."""
    seen: dict[str, float] = state["device_touch"]
    now = time.monotonic()
    if now - seen.get(actor.device_id, -1e9) < 60:
        return
    seen[actor.device_id] = now
    # Hints for the sync-health screen: anything odd is ignored, never a reason to fail the pull
    # (str.isdigit() alone lets "²" or a 30-digit number through to int() and SQLite).
    depth = (request.headers.get("x-outbox-depth") or "").strip()
    app_version = (request.headers.get("x-app-version") or "").strip()[:100]
    store = state["stores"].writer
    # Best effort: a pull never waits for a push to finish, nor fails, because of this bookkeeping.
    if not store.write_lock.acquire(blocking=False):
        seen.pop(actor.device_id, None)
        return
    try:
        with store.transaction():
            store.touch_device(actor.device_id, column, iso(utcnow()),
                               outbox_depth=int(depth) if _DECIMAL.fullmatch(depth) and len(depth) <= 9 else None,
                               app_version=app_version or None)
    except Exception:  # noqa: BLE001 - sync health is not worth a failed pull
        log.warning("could not record device activity for %s", actor.device_id, exc_info=True)
    finally:
        store.write_lock.release()


def _int_header(request: Request, name: str) -> int:
    value = (request.headers.get(name) or "").strip()
    if not _DECIMAL.fullmatch(value) or len(value) > 15:
        raise SyncError("invalid_request", f"The {name} header must be a non-negative integer.", {"header": name})
    return int(value)


# The blob handlers are async and hand their blocking work to a thread themselves: Litestar 2.25
# fails to await threaded sync handlers that share a path (HEAD, PATCH and GET here).
@head("/api/v1/blobs/{sha256:str}", operation_id="blobHead", tags=["blobs"])
async def blob_head(request: Request, sha256: FromPath[str], state: State) -> Response[None]:
    """How many bytes of a blob the server holds (``Upload-Offset``) and its ``Upload-Length``."""
    def work() -> Any:
        actor = authenticate(request)
        return state["blobs"].state_for(state["stores"].reader(), actor, sha256)

    st = await anyio.to_thread.run_sync(work)
    if st is None:
        raise SyncError("not_found", "The server knows nothing of this blob; start the upload at offset 0.")
    headers = {"Upload-Offset": str(st.offset), "Cache-Control": "no-store"}
    if st.length is not None:
        headers["Upload-Length"] = str(st.length)
    return Response(content=None, status_code=200, headers=headers)


@patch("/api/v1/blobs/{sha256:str}", operation_id="blobPatch", tags=["blobs"], status_code=204)
async def blob_patch(request: Request, sha256: FromPath[str], body: RawBody, state: State) -> Response[None]:
    """Append one chunk (at most 1 MiB) at ``Upload-Offset``; the last one is hash-checked."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    settings = _settings(state)

    def work() -> Any:
        actor = authenticate(request)
        if ctype != "application/offset+octet-stream":
            raise SyncError("invalid_request", "Send chunks with Content-Type: application/offset+octet-stream.")
        offset = _int_header(request, "Upload-Offset")
        length = _int_header(request, "Upload-Length")
        if len(body) > settings.max_chunk_bytes:
            raise SyncError("too_large", f"A chunk may be at most {settings.max_chunk_bytes} bytes.",
                            {"max_chunk": settings.max_chunk_bytes})
        return state["blobs"].patch(state["stores"].writer, actor, sha256, offset, length, body)

    st = await anyio.to_thread.run_sync(work)
    return Response(content=None, status_code=HTTP_204_NO_CONTENT,
                    headers={"Upload-Offset": str(st.offset), "Upload-Length": str(st.length)})


def sniff(head_bytes: bytes) -> str:
    """The media type of a blob, from its first bytes."""
    if head_bytes.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head_bytes.startswith(b"\x89PNG"):
        return "image/png"
    if head_bytes[:4] == b"RIFF" and head_bytes[8:12] == b"WEBP":
        return "image/webp"
    if head_bytes.startswith(b"%PDF"):
        return "application/pdf"
    return "application/octet-stream"


def blob_response(blob: StoredBlob, sha256: str) -> Stream:
    """A complete blob, streamed from wherever it is stored (never whole in memory), typed by its
    first bytes. Cache-Control: no-store, as the blob may not outlive a wiped phone or a shared
    office computer in an HTTP cache. The ETag is the hash: the same on every server."""
    try:
        first = blob.body.read(1 << 16)
    except BaseException:
        blob.body.close()
        raise
    return Stream(itertools.chain([first], blob.blocks()), media_type=sniff(first[:12]), headers={
        "Content-Length": str(blob.length), "Content-Disposition": f'inline; filename="{sha256}"',
        "Last-Modified": formatdate(blob.modified, usegmt=True), "ETag": f'"{sha256}"', "Cache-Control": "no-store"})


@get("/api/v1/blobs/{sha256:str}", operation_id="blobGet", tags=["blobs"])
async def blob_get(request: Request, sha256: FromPath[str], state: State) -> Stream:
    """The bytes, to users in whose scope a record refers to the blob (or who uploaded it)."""
    def work() -> Stream:
        actor = authenticate(request)
        return blob_response(state["blobs"].open_for(state["stores"].reader(), actor, sha256), sha256)

    return await anyio.to_thread.run_sync(work)


@get("/api/v1/matters/{matter_id:str}/proxy", operation_id="proxyMatter", tags=["proxy"])
async def proxy_matter(request: Request, matter_id: FromPath[str], state: State) -> dict[str, Any]:
    """A proxy matter's delegations, custody trail, steps and feedback, with the upload state of
    every signature (docs/proxy.md). Only for users who see the matter; a sensitive one is audited."""
    def work() -> dict[str, Any]:
        actor = authenticate(request)
        store = state["stores"].reader()
        if engine.readable(store, actor, "matters", matter_id) is None:
            raise SyncError("not_found", "No such matter, or not one you may see.")
        summary = proxy.matter_summary(store, matter_id)
        assert summary is not None
        if summary["sensitive"]:
            proxy.record_sensitive_reads(state["stores"].writer, actor.user_id, actor.device_id,
                                         [("matters", matter_id, matter_id)], "api")
        return summary

    return await anyio.to_thread.run_sync(work)


@get("/api/v1/audit/sensitive-reads", operation_id="sensitiveReads", tags=["proxy"])
async def sensitive_reads(request: Request, state: State, matter_id: FromQuery[str | None] = None) -> dict[str, Any]:
    """Who read which sensitive matter (信访), when and how: staff of its area and admins only."""
    def work() -> dict[str, Any]:
        actor = authenticate(request)
        if not actor.is_staff:
            raise SyncError("forbidden", "Only staff and administrators may read the audit of sensitive reads.")
        store = state["stores"].reader()
        rows = [r for r in proxy.sensitive_reads(store, matter_id or None)
                if engine.readable(store, actor, "matters", r["matter_id"]) is not None]
        return {"reads": rows}

    return await anyio.to_thread.run_sync(work)


ROUTES = [health, login, push, pull, blob_head, blob_patch, blob_get, proxy_matter, sensitive_reads]
