"""A real ``python -m server serve`` as a child process, for tests and benches that need one.

Used by the crash test (kill -9 mid-push), the backup/restore test and the fault-injection
harness (``bench/faults``), which restart and kill it at random moments. It listens on
127.0.0.1 only, on a free port chosen at each start; its output goes to a log file that the
callers show when something fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import backend

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m server serve`` as a child process, its output in a log file."""

    def __init__(self, db: str | Path, log: Path, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.db = str(db)   # a SQLite path or a postgresql:// URL (tests/backend.py)
        self.log_path = log
        # GRIDBOOK_* settings of this server, on top of the test's environment; on PostgreSQL, the
        # console key and the blobs go beside the log (not into the checkout's data/)
        beside = {f"GRIDBOOK_{k.upper()}": v for k, v in backend.beside_db(Path(log).parent).items()}
        self.env = {**beside, **(env or {})}
        self.args = args or []  # more options of `serve`, e.g. ["--workers", "2"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- start on port {self.port} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--db", str(self.db), "--port", str(self.port),
                 *self.args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1) as r:
                    body = json.loads(r.read())
                    assert body["ok"] is True and body["protocol"] == 1
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise AssertionError("the server did not answer /api/v1/health within 30 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no log)"
