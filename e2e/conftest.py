"""End-to-end fixtures: a real server process on a free 127.0.0.1 port, Debian's Chromium.

The demo town is seeded once per session into a temporary database (the same seed gives the
same town); tests that need a pristine town use `fresh_server`. The server's log is printed when
a test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.serverproc import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("GRIDBOOK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"




class Server:
    """`python -m server serve` on a database, started and stopped by the tests."""

    def __init__(self, db: Path, log: Path) -> None:
        self.db = db
        self.log_path = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Server":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--db", str(self.db),
                                      "--port", str(self.port), "--log-level", "info"],
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log_path.read_text(errors="replace"))
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start:\n" + self.log_path.read_text(errors="replace"))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()

    def api(self, username: str, password: str = "demo") -> httpx.Client:
        """An API client signed in as a user (its own device)."""
        c = httpx.Client(base_url=self.url + "/api/v1", timeout=30)
        r = c.post("/auth/login", json={"username": username, "password": password, "device_name": "e2e-check"})
        r.raise_for_status()
        c.headers["Authorization"] = "Bearer " + r.json()["token"]
        return c


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    db = d / "demo.db"
    subprocess.run([sys.executable, "-m", "server", "demo", "--db", str(db)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return db


def _copy_db(src: Path, dest_dir: Path) -> Path:
    dest = dest_dir / "gridbook.db"
    shutil.copyfile(src, dest)
    return dest


@pytest.fixture(scope="session")
def server(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("server")
    s = Server(_copy_db(demo_db, d), d / "server.log").start()
    yield s
    s.stop()


@pytest.fixture
def fresh_server(demo_db: Path, tmp_path: Path) -> Iterator[Server]:
    s = Server(_copy_db(demo_db, tmp_path), tmp_path / "server.log").start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def base_url(server: Server) -> str:
    return server.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync"]}


# A cheap phone's screen, in China. Also used for the persistent contexts of test_offline_ready.py.
CONTEXT_ARGS: dict[str, Any] = {"viewport": {"width": 360, "height": 740}, "locale": "zh-CN",
                                "timezone_id": "Asia/Shanghai", "service_workers": "allow"}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, **CONTEXT_ARGS}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for name in ("fresh_server", "server"):
            s = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(s, Server) and s.log_path.exists():
                rep.sections.append((f"server log ({name})", s.log_path.read_text(errors="replace")[-8000:]))


# ---------------------------------------------------------------------------------------------
# Time bounds: every end-to-end test is bounded (there is no pytest-timeout in the venv).
# A soft limit raises in the test; a hard limit dumps every stack and exits, so CI never hangs.

TEST_TIME_LIMIT_S = int(os.environ.get("GRIDBOOK_E2E_TIME_LIMIT", "240"))


class E2ETimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    import faulthandler
    import signal

    marker = request.node.get_closest_marker("time_limit")
    limit = int(marker.args[0]) if marker else TEST_TIME_LIMIT_S

    def on_alarm(signum: int, frame: Any) -> None:
        raise E2ETimeout(f"end-to-end test ran longer than {limit} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    faulthandler.dump_traceback_later(limit + 90, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "time_limit(seconds): the time bound of one end-to-end test")


@pytest.fixture
def context(context: Any) -> Any:
    """pytest-playwright's context, with bounded waits (nothing in these tests should take 30 s)."""
    context.set_default_timeout(20_000)
    context.set_default_navigation_timeout(20_000)
    return context
