"""A link simulator: a TCP proxy that counts bytes and HTTP requests and shapes each direction.

    python -m bench.linkproxy --listen 0 --target 127.0.0.1:8000 --profile 2g --control 0

Every byte between the client and the server passes through it, for both sides of the benchmark
alike. Per direction it adds a one-way latency and caps the bandwidth: a chunk that arrives at
time t starts on the wire when the previous one has left (the link is a queue), takes
len·8/bandwidth seconds to send, and is delivered one latency later. Counts are TCP payload
bytes (HTTP headers and bodies, as the application sees them; TCP/IP headers are not counted)
and requests (HTTP/1.1 request heads parsed from the upstream stream, keep-alive and chunked
bodies understood) and connections.

It prints ``listening <port> <control-port>`` on stdout when ready. The control port answers one
line per connection: ``stats`` → JSON counters, ``reset`` → zero them (and answer the old ones),
``profile NAME`` → shape the link from now on (a phone's yesterday on a good link, today on 2G:
the same address both days, as PouchDB's checkpoints need).
Addresses are 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field

# (kbit/s up, kbit/s down, one-way latency ms each direction)
PROFILES = {
    "none": (0, 0, 0),
    "3g": (1000, 1000, 100),
    "2g": (64, 64, 200),
}


@dataclass
class Counters:
    bytes_up: int = 0
    bytes_down: int = 0
    requests: int = 0
    connections: int = 0
    kinds: dict[str, int] = field(default_factory=dict)   # "POST _bulk_get" -> count


class HttpRequestCounter:
    """Counts HTTP/1.1 request heads in a client→server byte stream (Content-Length and chunked)."""

    def __init__(self) -> None:
        self.buf = b""
        self.state = "head"
        self.body_left = 0
        self.count = 0
        self.kinds: list[str] = []

    @staticmethod
    def kind(request_line: str) -> str:
        """``GET /grid/_changes?since=…`` → ``GET _changes``; ``/api/v1/sync/pull`` → ``GET pull``."""
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ")[0].split("?")[0]
        parts = [p for p in path.split("/") if p]
        special = [p for p in parts if p.startswith("_")]
        return f"{method} {special[0] if special else (parts[-1] if parts else '/')}"

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.state == "head":
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end].decode("latin-1")
                self.buf = self.buf[end + 4:]
                self.count += 1
                self.kinds.append(self.kind(head.split("\r\n", 1)[0]))
                length, chunked = 0, False
                for line in head.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    k = k.strip().lower()
                    if k == "content-length":
                        length = int(v.strip())
                    elif k == "transfer-encoding" and "chunked" in v.lower():
                        chunked = True
                if chunked:
                    self.state = "chunk-size"
                elif length:
                    self.state, self.body_left = "body", length
            elif self.state == "body":
                take = min(self.body_left, len(self.buf))
                self.buf = self.buf[take:]
                self.body_left -= take
                if self.body_left:
                    return
                self.state = "head"
            elif self.state == "chunk-size":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(self.buf[:end].split(b";")[0].strip() or b"0", 16)
                self.buf = self.buf[end + 2:]
                if size == 0:
                    self.state = "trailer"
                else:
                    self.state, self.body_left = "chunk-data", size + 2   # data and its CRLF
            elif self.state == "chunk-data":
                take = min(self.body_left, len(self.buf))
                self.buf = self.buf[take:]
                self.body_left -= take
                if self.body_left:
                    return
                self.state = "chunk-size"
            elif self.state == "trailer":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                trailer = self.buf[:end]
                self.buf = self.buf[end + 2:]
                if not trailer:
                    self.state = "head"


class Link:
    """One direction of one connection: a queue with a bandwidth and a latency."""

    def __init__(self, kbps: int, latency_ms: int) -> None:
        self.rate = kbps * 1000 / 8 if kbps else 0.0   # bytes per second; 0 = unlimited
        self.latency = latency_ms / 1000
        self.free_at = 0.0

    def delivery_time(self, n: int, now: float) -> float:
        start = max(now, self.free_at)
        done = start + (n / self.rate if self.rate else 0.0)
        self.free_at = done
        return done + self.latency


class Proxy:
    def __init__(self, target: tuple[str, int], up_kbps: int, down_kbps: int, latency_ms: int) -> None:
        self.target = target
        # one link per proxy (one proxy per device): parallel connections share its bandwidth
        self.up = Link(up_kbps, latency_ms)
        self.down = Link(down_kbps, latency_ms)
        self.c = Counters()

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link,
                   upstream: bool, counter: HttpRequestCounter | None) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                at, data = await queue.get()
                if not data:
                    break
                delay = at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except OSError:
                pass

        task = asyncio.create_task(deliver())
        try:
            while True:
                # small reads so that shaping is smooth at 2G rates
                data = await reader.read(4096 if link.rate else 65536)
                if not data:
                    break
                if upstream:
                    self.c.bytes_up += len(data)
                    if counter is not None:
                        counter.feed(data)
                        self.c.requests += counter.count
                        counter.count = 0
                        for k in counter.kinds:
                            self.c.kinds[k] = self.c.kinds.get(k, 0) + 1
                        counter.kinds.clear()
                else:
                    self.c.bytes_down += len(data)
                await queue.put((link.delivery_time(len(data), loop.time()), data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put((0.0, b""))
            try:
                await task
            except (ConnectionError, OSError):
                pass

    async def handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.c.connections += 1
        # the TCP handshake: one round trip before the first byte can go
        await asyncio.sleep(self.up.latency + self.down.latency)
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            cwriter.close()
            return
        up = self.pipe(creader, swriter, self.up, True, HttpRequestCounter())
        down = self.pipe(sreader, cwriter, self.down, False, None)
        await asyncio.gather(up, down)
        for w in (cwriter, swriter):
            try:
                w.close()
            except OSError:
                pass

    def set_profile(self, name: str) -> None:
        up, down, lat = PROFILES[name]
        for link, kbps in ((self.up, up), (self.down, down)):
            link.rate = kbps * 1000 / 8 if kbps else 0.0
            link.latency = lat / 1000

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cmd = (await reader.readline()).decode().strip()
        out = asdict(self.c)
        if cmd == "reset":
            self.c = Counters()
        elif cmd.startswith("profile "):
            self.set_profile(cmd.split()[1])
        writer.write((json.dumps(out) + "\n").encode())
        await writer.drain()
        writer.close()


async def serve(args: argparse.Namespace) -> None:
    up, down, lat = PROFILES[args.profile]
    host, port = args.target.rsplit(":", 1)
    p = Proxy((host, int(port)), up, down, lat)
    srv = await asyncio.start_server(p.handle, "127.0.0.1", args.listen)
    ctl = await asyncio.start_server(p.control, "127.0.0.1", args.control)
    print(f"listening {srv.sockets[0].getsockname()[1]} {ctl.sockets[0].getsockname()[1]}", flush=True)
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:   # stops by itself, whatever happens to its parent
        await asyncio.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--control", type=int, default=0)
    ap.add_argument("--target", required=True)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="none")
    ap.add_argument("--max-seconds", type=float, default=3600)
    args = ap.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
