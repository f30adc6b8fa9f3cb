"""The engine is typed throughout: mypy --strict over sync/ (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sync_passes_mypy_strict() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "sync"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
