"""A simulated field phone that follows protocol v1 the way the PWA must (§4, §5).

It keeps what a phone keeps: the server replica (records as the last pull delivered them), the
cursor, and an outbox of mutations. It never computes versions: ``base`` is the version of the
record in the replica when the user made the edit (0 for a record the phone created and has not
pulled yet), ``at`` comes from the phone's clock. What the user sees is the replica with the
outbox laid over it.

The transport is injected, so the same client drives the engine in-process (the convergence
property test, with lost responses) or a real server over HTTP. A transport signals a response
that never arrived by raising :class:`LostResponse`; the client then keeps its in-flight batch and
sends exactly that batch again (same mids) next time, as a phone does after a dropped connection.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sync.schema import COLLECTIONS

Key = tuple[str, str]


class LostResponse(Exception):
    """The request may or may not have reached the server; its answer did not reach the phone."""


class CursorExpired(Exception):
    """410 cursor_expired (or 400 for a cursor the server no longer recognises)."""


class Transport(Protocol):
    def push(self, client: "SimClient", mutations: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def pull(self, client: "SimClient", cursor: str | None, limit: int) -> dict[str, Any]: ...


class HttpTransport:
    """Protocol v1 over HTTP to a real server (or a proxy in front of one), as a phone speaks it.

    Whatever a phone on a bad link cannot tell from "the server never answered" is
    :class:`LostResponse`: a refused or reset connection, a timeout, an answer cut short, a body
    that is not the JSON it should be, a 5xx. ``410 cursor_expired`` is
    :class:`CursorExpired`. Any other status is a bug, raised as
    ``AssertionError`` with the body (a cursor this server issued is never ``400``).
    """

    def __init__(self, url: Callable[[], str], token: Callable[[SimClient], str], timeout: float = 60.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self.requests = 0

    def _call(self, client: "SimClient", method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        self.requests += 1
        parts = urllib.parse.urlsplit(self.url())
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.token(client)}", "Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            raise LostResponse(f"{method} {path}: {e!r}") from None
        finally:
            conn.close()
        if status >= 500:
            raise LostResponse(f"{method} {path}: {status}")
        try:
            return status, json.loads(raw)
        except ValueError:
            raise LostResponse(f"{method} {path}: {status} with a body that is not JSON") from None

    def push(self, client: "SimClient", mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = json.dumps({"protocol": 1, "mutations": mutations}).encode()
        status, answer = self._call(client, "POST", "/api/v1/sync/push", body)
        assert status == 200, f"{client.name}: push answered {status} {answer}"
        return answer["results"]  # type: ignore[no-any-return]

    def pull(self, client: "SimClient", cursor: str | None, limit: int) -> dict[str, Any]:
        query = urllib.parse.urlencode({"limit": limit, **({"cursor": cursor} if cursor else {})})
        status, answer = self._call(client, "GET", f"/api/v1/sync/pull?{query}")
        if status == 410:
            assert answer["error"]["code"] == "cursor_expired", answer
            raise CursorExpired(answer["error"].get("details", {}).get("reason", ""))
        assert status == 200, f"{client.name}: pull answered {status} {answer}"
        return answer  # type: ignore[no-any-return]


class Ids:
    """Deterministic UUIDs (v4 layout), so a generated program replays identically."""

    def __init__(self, salt: str = "") -> None:
        self.n = 0
        self.salt = salt

    def __call__(self) -> str:
        self.n += 1
        digest = hashlib.sha256(f"{self.salt}:{self.n}".encode()).digest()[:16]
        return str(uuid.UUID(bytes=digest, version=4))


def is_set_valued(collection: str, name: str) -> bool:
    c = COLLECTIONS.get(collection)
    f = c.by_name.get(name) if c else None
    return bool(f and f.set_valued)


@dataclass
class SimClient:
    name: str
    clock: Callable[[], str]
    new_id: Callable[[], str]
    batch_size: int = 500
    replica: dict[Key, dict[str, Any]] = field(default_factory=dict)
    cursor: str | None = None
    outbox: list[dict[str, Any]] = field(default_factory=list)
    inflight: list[dict[str, Any]] | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)   # mid -> result as received
    sent: list[dict[str, Any]] = field(default_factory=list)           # every mutation ever queued
    orphans: set[Key] = field(default_factory=set)   # left scope, kept only for pending edits
    resends: int = 0

    # -- what the user sees ----------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        return [*(self.inflight or []), *self.outbox]

    def has_pending(self, key: Key) -> bool:
        return any((m["collection"], m["id"]) == key for m in self.pending())

    def view(self, collection: str) -> dict[str, dict[str, Any]]:
        """The replica of one collection with the outbox laid over it (protocol §5, last bullets)."""
        out = {rid: copy.deepcopy(d) for (c, rid), d in self.replica.items() if c == collection}
        for m in self.pending():
            if m["collection"] == "matter_events" and collection == "matters":
                f = m["fields"]
                if f.get("kind") == "status" and f.get("matter_id") in out:
                    out[f["matter_id"]]["status"] = f["to"]   # shown as pending until the result comes
                continue
            if m["collection"] != collection:
                continue
            rid = m["id"]
            if m["op"] == "delete":
                out.pop(rid, None)
                continue
            if collection == "conflicts":
                if rid in out:
                    out[rid].update(status="resolved", resolution=m["fields"]["resolution"])
                continue
            rec = out.get(rid)
            if rec is None:
                if m["base"] != 0:
                    continue  # edited, then deleted or moved away on the server: nothing to show
                rec = out[rid] = {"id": rid, "version": 0}
            for name, value in m["fields"].items():
                if is_set_valued(collection, name):
                    if isinstance(value, list):
                        value = {"add": value}
                    have = set(rec.get(name) or [])
                    have |= set(value.get("add", []))
                    have -= set(value.get("remove", []))
                    rec[name] = sorted(have)
                else:
                    rec[name] = value
        return out

    def base_of(self, collection: str, rid: str) -> int:
        rec = self.replica.get((collection, rid))
        return int(rec["version"]) if rec else 0

    # -- making edits (offline) -------------------------------------------------------------
    def queue(self, collection: str, rid: str, fields: dict[str, Any] | None, op: str = "upsert",
              base: int | None = None, mid: str | None = None) -> dict[str, Any]:
        m = {"mid": mid or self.new_id(), "collection": collection, "id": rid, "op": op,
             "base": self.base_of(collection, rid) if base is None else base,
             "fields": fields if fields is not None else {}, "at": self.clock()}
        self.outbox.append(m)
        self.sent.append(m)
        return m

    def create(self, collection: str, fields: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
        return self.queue(collection, rid or self.new_id(), fields, base=0)

    def update(self, collection: str, rid: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self.queue(collection, rid, fields)

    def delete(self, collection: str, rid: str) -> dict[str, Any]:
        return self.queue(collection, rid, {}, op="delete")

    def resolve(self, conflict_id: str, resolution: str, value: Any = None) -> dict[str, Any]:
        fields: dict[str, Any] = {"resolution": resolution}
        if resolution == "value":
            fields["value"] = value
        return self.queue("conflicts", conflict_id, fields)

    # -- sync ------------------------------------------------------------------------------
    def push(self, transport: Transport) -> bool:
        """Push the outbox batch by batch. False if an answer was lost (the batch stays in flight)."""
        while self.inflight or self.outbox:
            if self.inflight is None:
                self.inflight, self.outbox = self.outbox[:self.batch_size], self.outbox[self.batch_size:]
            else:
                self.resends += 1
            batch = self.inflight
            results = transport.push(self, batch)     # may raise LostResponse: keep the batch
            assert [r["mid"] for r in results] == [m["mid"] for m in batch], "one result per mutation, in order"
            for r in results:
                assert r["mid"] not in self.results or self.results[r["mid"]] == r, \
                    f"{self.name}: mid {r['mid']} answered twice differently: {self.results[r['mid']]} then {r}"
                self.results[r["mid"]] = r
            self.inflight = None
            self._drop_orphans()
        return True

    def _drop_orphans(self) -> None:
        for key in list(self.orphans):
            if not self.has_pending(key):
                self.orphans.discard(key)
                self.replica.pop(key, None)

    def pull(self, transport: Transport, limit: int = 500) -> bool:
        """Pull until ``more`` is false, storing the cursor with each page. False if a page was lost."""
        while True:
            try:
                page = transport.pull(self, self.cursor, limit)
            except CursorExpired:
                # §5: push the outbox first (done by sync()), clear the replica, never the outbox.
                self.replica.clear()
                self.orphans.clear()
                self.cursor = None
                continue
            self.apply_page(page)
            if not page["more"]:
                return True

    def apply_page(self, page: dict[str, Any]) -> None:
        """Apply one page and its cursor together (one local transaction on a phone)."""
        for ch in page["changes"]:
            key = (ch["collection"], ch["id"])
            if ch.get("removed"):
                if self.has_pending(key):
                    self.orphans.add(key)    # push the edits first; they may come back rejected
                else:
                    self.replica.pop(key, None)
                continue
            old = self.replica.get(key)
            if old is not None:
                assert ch["version"] >= old["version"], \
                    f"{self.name}: {key} went back from version {old['version']} to {ch['version']}"
            self.orphans.discard(key)
            if ch.get("deleted"):
                self.replica.pop(key, None)
            else:
                self.replica[key] = ch["data"]
        self.cursor = page["cursor"]

    def sync(self, transport: Transport, limit: int = 500) -> bool:
        """Push then pull, as the app does when it gets a connection."""
        try:
            self.push(transport)
        except LostResponse:
            return False
        try:
            return self.pull(transport, limit)
        except LostResponse:
            return False

    def live(self) -> dict[Key, dict[str, Any]]:
        """The replica as it should match the server: what it holds that is not a kept orphan."""
        return {k: v for k, v in self.replica.items() if k not in self.orphans}
