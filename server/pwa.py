"""The field app's service worker, served with a version that is a hash of the whole app shell.

Any change to any file the worker precaches changes its bytes, so phones get "new version
available" without anyone remembering to bump a number (pwa/sw.js).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from litestar.file_system import BaseLocalFileSystem

PLACEHOLDER = "__SHELL_VERSION__"


def shell_files(pwa_dir: Path) -> list[str]:
    """The SHELL list of sw.js: every file the app needs offline."""
    sw = (pwa_dir / "sw.js").read_text(encoding="utf-8")
    m = re.search(r"const SHELL = \[(.*?)\];", sw, re.S)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def render_sw(pwa_dir: Path) -> str:
    sw = (pwa_dir / "sw.js").read_text(encoding="utf-8")
    h = hashlib.sha256(sw.encode())
    for path in shell_files(pwa_dir):
        f = pwa_dir / path.lstrip("/")
        h.update(path.encode())
        h.update(f.read_bytes() if f.is_file() else b"missing")
    return sw.replace(PLACEHOLDER, h.hexdigest()[:12])


@get("/sw.js", sync_to_thread=True, include_in_schema=False)
def service_worker(state: State) -> Response[str]:
    """Computed per request: cheap (a few hundred KB hashed) and never stale after a deploy."""
    body = render_sw(Path(state["settings"].pwa_dir))
    return Response(content=body, media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


class StaticFiles(BaseLocalFileSystem):
    """The local file system, where a name that cannot be a file is simply not found.

    Litestar answers 500 for any ``OSError`` but "not found" (a name longer than 255 bytes, a path
    through a file such as ``/index.html/x``, a loop of links) and lets a ``ValueError`` (a NUL byte)
    through as a 500 too; none of them is a server fault.
    """

    async def info(self, path: Any, **kwargs: Any) -> Any:
        try:
            return await super().info(path, **kwargs)
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as e:
            raise FileNotFoundError(str(path)) from e
