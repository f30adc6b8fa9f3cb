"""The processes a benchmark run starts, each on 127.0.0.1 and each stopped by the run (or by itself)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "bench" / "peer"
POUCH_JS = PEER / "pouch.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Server:
    """``python -m server serve`` on a database."""

    def __init__(self, db: Path, log: Path, workers: int = 1) -> None:
        self.db, self.log_path = db, log
        self.workers = workers   # gridbook serve --workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Server":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--db", str(self.db), "--host",
                                      "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)], cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: see " + str(self.log_path))
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start: see " + str(self.log_path))

    def __exit__(self, *exc: Any) -> None:
        _stop(self.proc)
        self.log.close()


class LinkProxy:
    """``python -m bench.linkproxy`` in front of a port, with a link profile."""

    def __init__(self, target_port: int, profile: str) -> None:
        self.target_port, self.profile = target_port, profile
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> "LinkProxy":
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.linkproxy", "--target",
                                      f"127.0.0.1:{self.target_port}", "--profile", self.profile,
                                      "--max-seconds", "1800"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "listening":
            raise RuntimeError("link proxy did not start")
        self.port, self.control = int(line[1]), int(line[2])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stats(self, reset: bool = False) -> dict[str, int]:
        return self._send("reset" if reset else "stats")

    def set_profile(self, profile: str) -> None:
        self._send(f"profile {profile}")

    def _send(self, cmd: str) -> dict[str, int]:
        with socket.create_connection(("127.0.0.1", self.control), timeout=10) as s:
            s.sendall(cmd.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)  # type: ignore[no-any-return]

    def __exit__(self, *exc: Any) -> None:
        _stop(self.proc)


class PouchServer:
    """express-pouchdb on pouchdb-node (LevelDB files under ``dir``)."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.dir, self.log_path = directory, log

    def __enter__(self) -> "PouchServer":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["node", str(POUCH_JS), "serve", "0", str(self.dir)], cwd=PEER,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "listening":
            raise RuntimeError("PouchDB server did not start: see " + str(self.log_path))
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        _stop(self.proc)
        self.log.close()


def pouch_job(job: dict[str, Any], timeout: float = 1500) -> dict[str, Any]:
    """One PouchDB client job (a fresh Node process), its JSON answer."""
    r = subprocess.run(["node", str(POUCH_JS), "job"], cwd=PEER, input=json.dumps(job, ensure_ascii=False),
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"pouch job {job.get('kind')} failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def ensure_peer() -> str:
    """Install the peer's npm packages into bench/peer/node_modules when missing; their versions."""
    if not (PEER / "node_modules" / "express-pouchdb").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)
    versions = {}
    for name in ("pouchdb-node", "express-pouchdb", "express"):
        versions[name] = json.loads((PEER / "node_modules" / name / "package.json").read_text())["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"node {node}, " + ", ".join(f"{k} {v}" for k, v in versions.items())


def env_info() -> dict[str, Any]:
    import platform
    import sqlite3
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        chromium = "?"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "chromium": chromium, "kernel": platform.release()}
