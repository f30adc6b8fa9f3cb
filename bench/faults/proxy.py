"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, in front of a real server process.

Each request that arrives is read whole (head and ``Content-Length`` body), then a *plan*
(a callable, seeded by the harness, so a run replays identically) decides its fate:

    none            forwarded, answered
    delay           held for a few milliseconds, then forwarded and answered
    drop_request    never forwarded; the client's connection is closed (the phone lost signal)
    cut_request     the head and only part of the body reach the server, then both connections
                    close (signal lost mid-upload: the server must apply nothing)
    drop_response   forwarded and handled by the server; the answer is thrown away and the
                    client's connection closed (committed, but the phone never hears of it)
    cut_response    handled; only the first bytes of the answer reach the client
    duplicate       delivered to the server twice (a retrying middlebox); the client gets the
                    second answer. For pushes both answers must carry the same results; any
                    difference is counted in ``stats["duplicate_mismatch"]`` (must stay 0)
    kill            forwarded, and the server is killed with SIGKILL a few milliseconds later
                    (``on_kill`` restarts it); the client gets whatever arrived before the kill

One connection carries one request (``Connection: close`` is forced), so a fault never leaks
into the next request. The proxy counts what it did in ``stats``.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

KINDS = ("delay", "drop_request", "cut_request", "drop_response", "cut_response", "duplicate", "kill")


@dataclass(frozen=True)
class Fault:
    kind: str = "none"
    delay: float = 0.0      # seconds: the delay, or how long after forwarding the kill comes
    cut: float = 0.5        # where a cut falls, as a fraction of the bytes


Plan = Callable[[str, str], Fault]   # (method, path) -> what happens to this request


class ProxyError(Exception):
    pass


def _read_head(sock: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes]:
    """Bytes up to and including the blank line, and what came after it."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProxyError("connection closed before the end of the head")
        buf += chunk
        if len(buf) > 1 << 20:
            raise ProxyError("head too large")
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _force_close(head: bytes) -> bytes:
    lines = [ln for ln in head.rstrip(b"\r\n").split(b"\r\n")
             if ln.partition(b":")[0].strip().lower() not in (b"connection", b"keep-alive")]
    return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n"


def complete(response: bytes) -> bool:
    """Whether the bytes hold a whole HTTP response (head and its Content-Length body)."""
    if b"\r\n\r\n" not in response:
        return False
    head, _, body = response.partition(b"\r\n\r\n")
    return len(body) >= _content_length(head + b"\r\n\r\n")


class FaultProxy:
    """``with FaultProxy(upstream, plan) as p:`` clients talk to ``p.url``."""

    def __init__(self, upstream: Callable[[], int], plan: Plan, on_kill: Callable[[], None] | None = None,
                 timeout: float = 60.0) -> None:
        self.upstream = upstream          # the server's current port (it changes when it restarts)
        self.plan = plan
        self.on_kill = on_kill
        self.timeout = timeout
        self.stats: Counter[str] = Counter()
        self.mismatches: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- one request -------------------------------------------------------------------------
    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def _exchange(self, request: bytes, *, cut: int | None = None, kill_after: float | None = None) -> bytes:
        """Send the request upstream (or its first ``cut`` bytes), read the answer to the end."""
        up = socket.create_connection(("127.0.0.1", self.upstream()), timeout=self.timeout)
        try:
            if cut is not None:
                up.sendall(request[:cut])
                up.shutdown(socket.SHUT_RDWR)
                return b""
            up.sendall(request)
            if kill_after is not None:
                time.sleep(kill_after)
                up.settimeout(0.0)
                got = b""
                try:
                    while chunk := up.recv(65536):
                        got += chunk
                except (BlockingIOError, OSError):
                    pass
                assert self.on_kill is not None
                self.on_kill()
                return got
            chunks = []
            while chunk := up.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            up.close()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(self.timeout)
        try:
            head, rest = _read_head(client)
            need = _content_length(head)
            body = rest
            while len(body) < need:
                chunk = client.recv(65536)
                if not chunk:
                    raise ProxyError("client closed mid-body")
                body += chunk
            method, path = head.split(b" ", 2)[:2]
            fault = self.plan(method.decode(), path.decode())
            self._count("requests")
            self._count(fault.kind)
            request = _force_close(head) + body
            answer: bytes | None = None
            if fault.kind == "drop_request":
                return
            if fault.kind == "cut_request":
                # cut inside the body if there is one, else inside the head
                n = len(request) - len(body) + int(len(body) * fault.cut) if body else int(len(request) * fault.cut)
                self._exchange(request, cut=max(1, min(n, len(request) - 1)))
                return
            if fault.kind == "delay":
                time.sleep(fault.delay)
            if fault.kind == "kill":
                got = self._exchange(request, kill_after=fault.delay)
                if complete(got):
                    client.sendall(got)      # it answered before it died
                    self._count("kill_after_answer")
                return
            answer = self._exchange(request)
            if fault.kind == "duplicate":
                again = self._exchange(request)
                if path.startswith(b"/api/v1/sync/push") and _results(answer) != _results(again):
                    self._count("duplicate_mismatch")
                    with self._lock:
                        self.mismatches.append(f"{answer[:300]!r} then {again[:300]!r}")
                answer = again
            if fault.kind == "drop_response":
                return
            if fault.kind == "cut_response":
                client.sendall(answer[:max(0, min(int(len(answer) * fault.cut), len(answer) - 1))])
                return
            client.sendall(answer)
        except (ProxyError, OSError):
            self._count("client_or_upstream_error")
        finally:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()


def _results(response: bytes) -> object:
    """The push results in an answer (its status line and results; ``server_time`` may differ)."""
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    try:
        return status, json.loads(body).get("results")
    except (ValueError, AttributeError):
        return status, body
