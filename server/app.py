"""The Litestar app factory: ``create_app(settings)``.

Handlers decode the transport (headers, gzip, query strings), call the engine, encode. Every
error leaves through ``errors.py`` in the protocol's one shape.
"""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, Router, get
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.enums import OpenAPIMediaType
from litestar.exceptions import NotFoundException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from sync.catalogue import install_catalogue
from sync.protocol import ErrorResponse, LoginRequest, PushRequest
from sync.store import SQLiteStore, open_store

from . import __version__, keys, security
from .blobstore import blob_store
from .errors import EXCEPTION_HANDLERS
from .ratelimit import LoginLimiter
from .settings import Settings


class Stores:
    """One writer connection (writes are serialised by the database anyway: SQLite has one writer,
    PostgreSQL's clock row makes one) and a reader per thread.

    Each worker process has its own (``gridbook serve --workers N``): SQLite serialises the
    writers of all of them (BEGIN IMMEDIATE, busy_timeout), and group commit groups the pushes of
    one process. ``prepared``: the migrations and the catalogue were already done by the parent
    process (``prepare``), which workers must not repeat at once: two would race to apply the
    same migration.
    """

    def __init__(self, path: str, *, prepared: bool = False) -> None:
        self.path = path
        self.writer = open_store(path, writer=True)
        if not prepared:
            self.writer.migrate()
            install_catalogue(self.writer)  # the shipped matter catalogue, on a new database only
        self._local = threading.local()
        self._readers: list[SQLiteStore] = []
        self._lock = threading.Lock()

    def reader(self) -> SQLiteStore:
        s = getattr(self._local, "store", None)
        if s is None:
            s = open_store(self.path)
            self._local.store = s
            with self._lock:
                self._readers.append(s)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._readers:
                s.close()
            self._readers.clear()
        self.writer.close()


class GridbookApp(Litestar):
    """The Litestar app behind a gate: a request whose path or query string no route could want
    (control characters, overlong) is refused with a 400 before routing, so it reaches no handler,
    no file system call and no log line (``security.refusal``)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":  # no websocket route exists: Litestar refuses those itself
            reason = security.refusal(scope)
            if reason is not None:
                scope["app"] = self
                await security.refuse(scope, receive, send, reason)
                return
        await super().__call__(scope, receive, send)


class OpenAPIJson(OpenAPIRenderPlugin):
    """Serves only the JSON document (no viewer assets from a CDN), completed with the request
    bodies the handlers decode themselves (push and login read raw bytes for exact errors)."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json", media_type=OpenAPIMediaType.OPENAPI_JSON)

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:  # type: ignore[type-arg]
        return self.render_json(request, complete_openapi(openapi_schema))


def _schema_not_found(path: FromPath[str] = "/") -> None:
    raise NotFoundException()


class SchemaRouter(Router):
    """The ``/schema`` router, whose catch-all answers 404 in the protocol's JSON error shape.

    Litestar registers a handler there that returns an HTML page for every unknown schema path
    (``/schema/swagger`` …), past the exception handlers; it is swapped for one that raises, so
    ``errors.py`` answers like everywhere else.
    """

    def register(self, value: Any) -> Any:
        fn = getattr(value, "fn", None)
        if getattr(fn, "__name__", "") == "handle_schema_path_not_found":
            value = get(list(value.paths), sync_to_thread=False, include_in_schema=False)(_schema_not_found)
        return super().register(value)


_BODIES = {("/api/v1/sync/push", "post"): PushRequest, ("/api/v1/auth/login", "post"): LoginRequest}


def complete_openapi(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    (_, components) = msgspec.json.schema_components([*_BODIES.values(), ErrorResponse],
                                                     ref_template="#/components/schemas/{name}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components.items():
        schemas.setdefault(name, schema)
    for (path, method), struct in _BODIES.items():
        op = doc.get("paths", {}).get(path, {}).get(method)
        if op is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{struct.__name__}"}}}}
    patch = doc.get("paths", {}).get("/api/v1/blobs/{sha256}", {}).get("patch")
    if patch is not None:
        patch["requestBody"] = {"required": True, "content": {"application/offset+octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    for (path, method), codes in _ERRORS.items():
        op = doc.get("paths", {}).get(path, {}).get(method)
        if op is None:
            continue
        responses = op.setdefault("responses", {})
        for code in (*codes, 500):
            responses[str(code)] = {"description": CODES_BY_STATUS.get(code, "error"), "content": error_ref}
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict) and "responses" in op:
                for code, resp in op["responses"].items():
                    if code.startswith(("4", "5")) and isinstance(resp, dict):
                        resp["content"] = error_ref
    _constrain(doc)
    return doc


_DIGITS = {"type": "string", "pattern": "^[0-9]{1,15}$"}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_BLOB_TYPES = ("image/jpeg", "image/png", "image/webp", "application/pdf", "application/octet-stream")


def _constrain(doc: dict[str, Any]) -> None:
    """What the handlers check by hand, said in the schema too, so that a request the schema calls
    valid is one the server accepts (schemathesis holds us to it: tests/test_fuzz_api.py)."""
    paths = doc.get("paths", {})
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer", "description": "The device token from login (protocol §3)."}
    schemas = components.get("schemas", {})
    push = schemas.get("PushRequest", {}).get("properties", {})
    if push:
        push["protocol"] = {"type": "integer", "enum": [1]}
        push["mutations"]["maxItems"] = 500
    for path, item in paths.items():
        for method, op in item.items():
            if not isinstance(op, dict) or path in ("/api/v1/health", "/api/v1/auth/login"):
                continue
            op["security"] = [{"bearer": []}]
            for param in op.get("parameters", []):
                if param.get("name") == "sha256" and param.get("in") == "path":
                    param["schema"] = dict(_SHA256)
                elif param.get("name") == "limit":
                    param["schema"] = {"type": "integer", "minimum": 1, "maximum": 1000}
                elif param.get("name") == "cursor":
                    param["schema"] = {"type": "string", "maxLength": 200}
                elif param.get("name") == "lean":
                    param["schema"] = {"type": "string", "enum": ["0", "1"]}
    blob = paths.get("/api/v1/blobs/{sha256}", {})
    offset_headers = {name: {"schema": dict(_DIGITS), "description": desc} for name, desc in (
        ("Upload-Offset", "bytes of the blob the server holds"), ("Upload-Length", "the blob's full length"))}
    if "patch" in blob:
        blob["patch"].setdefault("parameters", []).extend(
            {"name": name, "in": "header", "required": True, "schema": dict(_DIGITS)}
            for name in ("Upload-Offset", "Upload-Length"))
        blob["patch"]["responses"]["204"] = {"description": "Chunk stored", "headers": offset_headers}
    if "head" in blob:
        blob["head"]["responses"]["200"] = {"description": "What the server holds", "headers": {
            "Upload-Offset": {**offset_headers["Upload-Offset"], "required": True},
            "Upload-Length": offset_headers["Upload-Length"]}}
    if "get" in blob:
        blob["get"]["responses"]["200"] = {"description": "The blob's bytes", "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in _BLOB_TYPES}}
    # How one answer feeds the next request (OpenAPI links): a client's loops, for stateful testing.
    pull_ok = paths.get("/api/v1/sync/pull", {}).get("get", {}).get("responses", {}).get("200")
    if pull_ok is not None:
        pull_ok["links"] = {"NextPage": {"operationId": "pull", "description": "the next page",
                                         "parameters": {"cursor": "$response.body#/cursor"}}}
    if "patch" in blob:
        same = {"sha256": "$request.path.sha256"}
        blob["patch"]["responses"]["204"]["links"] = {
            "UploadState": {"operationId": "blobHead", "parameters": same},
            "Download": {"operationId": "blobGet", "parameters": same}}


_ERRORS = {
    ("/api/v1/auth/login", "post"): (400, 401, 403, 413, 429),
    ("/api/v1/sync/push", "post"): (400, 401, 413),
    ("/api/v1/sync/pull", "get"): (400, 401, 410),
    ("/api/v1/blobs/{sha256}", "head"): (400, 401, 404),
    ("/api/v1/blobs/{sha256}", "patch"): (400, 401, 409, 413, 422),
    ("/api/v1/blobs/{sha256}", "get"): (400, 401, 404),
    ("/api/v1/matters/{matter_id}/proxy", "get"): (400, 401, 404),
    ("/api/v1/audit/sensitive-reads", "get"): (400, 401, 403),
}
CODES_BY_STATUS = {400: "invalid_request", 401: "invalid_credentials | unauthorized | device_revoked",
                   403: "forbidden | password_change_required",
                   404: "not_found", 409: "offset_mismatch", 410: "cursor_expired", 413: "too_large",
                   422: "hash_mismatch", 429: "rate_limited", 500: "internal"}


def prepare(settings: Settings) -> None:
    """What must happen once before several worker processes start on the database: the console
    key file (made by one process: a worker reading it half-written would refuse to start), the
    migrations and the shipped catalogue (two workers would race to apply the same migration), and
    finishing the uploads a crash left with every byte (``BlobStore.recover``)."""
    # the SQLite file's directory; for PostgreSQL, where the key file and blobs go by default (data/)
    os.makedirs(os.path.dirname(os.path.abspath(settings.local_base)), exist_ok=True)
    keys.console_key(settings)
    store = open_store(settings.db)
    try:
        store.migrate()
        install_catalogue(store)
        blob_store(settings).recover(store)
    finally:
        store.close()


def worker_app() -> GridbookApp:
    """The app of one worker process of ``gridbook serve --workers N`` (uvicorn's factory, called in
    each process it spawns). The parent process resolved the settings and wrote every one into the
    environment as ``GRIDBOOK_<NAME>`` (``cli.worker_environment``), and ran ``prepare``."""
    return create_app(Settings.load(), prepared=True)


def create_app(settings: Settings, *, prepared: bool = False) -> GridbookApp:
    """The app. ``prepared``: ``prepare(settings)`` already ran (in the parent of worker processes)."""
    from . import api, staff
    from . import pwa as pwa_routes

    # the SQLite file's directory; for PostgreSQL, where the key file and blobs go by default (data/)
    os.makedirs(os.path.dirname(os.path.abspath(settings.local_base)), exist_ok=True)
    key = keys.console_key(settings)   # before the database: a key problem stops the start cleanly
    blobs = blob_store(settings)   # the local blob directory, or an S3-compatible bucket (settings checked)
    stores = Stores(settings.db, prepared=prepared)
    if not prepared:
        blobs.recover(stores.writer)   # uploads a crash left with every byte but unchecked
    # What each worker process keeps in its own memory, and why that is safe with several:
    # - settings, the console key and the blob store's configuration: the same in every process;
    # - stores: connections, per process by nature; the seq counter, feed order and upload offsets
    #   are read inside each write transaction, so processes never act on a stale copy;
    # - limiter: holds no counters, only the stores; the counters are in the database, so every
    #   process and server enforces one limit (server/ratelimit.py);
    # - device_touch: a throttle, "write a device's last seen at most once a minute". Per process,
    #   N workers write it at most N times a minute: bookkeeping for the sync-health screen,
    #   never a decision, so sharing it would cost a database read per pull for nothing.
    # The area tree cache (sync.engine.area_tree) is checked against areas_version in the
    # database on every use.
    state = State({"settings": settings, "stores": stores, "blobs": blobs, "console_key": key,
                   "limiter": LoginLimiter(stores.writer, stores.reader, settings.login_max_failures,
                                           settings.login_max_failures_ip, settings.login_window_seconds),
                   "device_touch": {}})
    handlers: list[Any] = [*api.ROUTES, *staff.ROUTES]
    pwa = Path(settings.pwa_dir)
    if pwa.is_dir():
        handlers.append(pwa_routes.service_worker)
        handlers.append(create_static_files_router(path="/", directories=[pwa], html_mode=True,
                                                   name="pwa", include_in_schema=False,
                                                   file_system=pwa_routes.StaticFiles()))
    return GridbookApp(
        route_handlers=handlers,
        state=state,
        exception_handlers=EXCEPTION_HANDLERS,
        compression_config=CompressionConfig(backend="gzip", minimum_size=512, gzip_compress_level=9),
        openapi_config=OpenAPIConfig(title="Gridbook sync API", version=__version__,
                                     description="Protocol v1 (docs/protocol.md).", render_plugins=[OpenAPIJson()],
                                     openapi_router=SchemaRouter("/schema", route_handlers=[], include_in_schema=False)),
        request_max_body_size=max(settings.max_push_bytes, settings.max_chunk_bytes) + 1024,
        before_send=[security.headers],
        on_shutdown=[stores.close],
        debug=False,
    )
