"""Our side's phone for the benchmark: protocol v1 exactly as the PWA speaks it (pwa/js/api.js, sync.js).

- ``Accept-Encoding: gzip`` on every call; a JSON body over 1,024 characters goes gzipped with
  ``Content-Encoding: gzip`` (api.js), a smaller one plain;
- push: the outbox in batches of at most 500 mutations / 1.5 MiB (sync.js), then pull pages of 1000
  until ``more`` is false, each page applied with its cursor;
- ``base`` is the replica's version of the record (0 for a new one); ``at`` is the phone's clock.

The replica is a dict here (the PWA's is IndexedDB: its apply rate is measured in Chromium, scenario 6).
Every request's latency is kept in ``latencies``.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx

PAGE = 1000
MAX_BATCH = 500
MAX_BATCH_BYTES = 1536 * 1024
HEADERS = {"Accept-Encoding": "gzip, deflate", "Accept": "*/*"}


def _body(obj: Any) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))   # JSON.stringify
    raw = text.encode()
    h = {"Content-Type": "application/json"}
    if len(text) > 1024:
        h["Content-Encoding"] = "gzip"
        return gzip.compress(raw, 6), h
    return raw, h


class Phone:
    def __init__(self, base_url: str, timeout: float = 600, page: int = PAGE) -> None:
        self.page = page
        self.http = httpx.Client(base_url=base_url + "/api/v1", headers=HEADERS, timeout=timeout)
        self.token: str | None = None
        self.cursor: str | None = None
        self.replica: dict[tuple[str, str], dict[str, Any]] = {}
        self.outbox: list[dict[str, Any]] = []
        self.latencies: list[float] = []
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, obj: Any = None, params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        content = None
        if obj is not None:
            content, h = _body(obj)
            headers.update(h)
        t0 = time.perf_counter()
        try:
            r = self.http.request(method, path, content=content, headers=headers, params=params)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # As a browser does: a kept-alive connection the server closed meanwhile (its keep-alive
            # timeout ran out while a slow link still delivered the last response) gets the request
            # again on a new connection. Safe for a push too: the same mids are answered from the log.
            self.retries += 1
            r = self.http.request(method, path, content=content, headers=headers, params=params)
        self.latencies.append(time.perf_counter() - t0)
        self.requests += 1
        if r.status_code != 200:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def login(self, username: str, password: str = "demo", device: str = "bench") -> None:
        body = self._call("POST", "/auth/login", {"username": username, "password": password, "device_name": device})
        self.token = body["token"]

    def use_token(self, token: str) -> None:
        self.token = token

    # -- edits ---------------------------------------------------------------------------------------
    def edit(self, collection: str, rid: str, fields: dict[str, Any], create: bool) -> None:
        base = 0 if create else int(self.replica[(collection, rid)]["version"])
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.outbox.append({"mid": str(uuid.uuid4()), "collection": collection, "id": rid, "op": "upsert",
                            "base": base, "fields": fields, "at": at})

    # -- sync ----------------------------------------------------------------------------------------
    def push(self) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        while self.outbox:
            batch: list[dict[str, Any]] = []
            size = 0
            for m in self.outbox:
                s = len(json.dumps(m, ensure_ascii=False)) * 3
                if batch and (len(batch) >= MAX_BATCH or size + s > MAX_BATCH_BYTES):
                    break
                batch.append(m)
                size += s
            res = self._call("POST", "/sync/push", {"protocol": 1, "mutations": batch,
                                                     "outbox_depth": len(self.outbox)})
            results += res["results"]
            self.outbox = self.outbox[len(batch):]
        return results

    def pull(self) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while True:
            # as the PWA asks (pwa/js/api.js): lean pages, the change carries id, version and deleted
            params: dict[str, Any] = {"limit": self.page, "lean": 1}
            if self.cursor:
                params["cursor"] = self.cursor
            page = self._call("GET", "/sync/pull", params=params)
            for ch in page["changes"]:
                key = (ch["collection"], ch["id"])
                if ch.get("removed") or ch.get("deleted"):
                    self.replica.pop(key, None)
                else:
                    self.replica[key] = {**ch["data"], "id": ch["id"], "version": ch["version"], "deleted": False}
            got += page["changes"]
            self.cursor = page["cursor"]
            if not page["more"]:
                return got

    def sync(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self.push(), self.pull()
