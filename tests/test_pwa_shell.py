"""The field app's shell: the service worker precaches every file, the message tables agree,
every key the code asks for exists, and /sw.js versions itself from the shell's content."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from litestar.testing import TestClient

from server.app import create_app
from server.pwa import PLACEHOLDER, render_sw, shell_files
from server.settings import Settings
from sync import schema

PWA = Path(__file__).resolve().parent.parent / "pwa"
LINE = re.compile(r'^\s*"([^"]+)":\s*"((?:[^"\\]|\\.)*)",?\s*$')


def messages(lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (PWA / "js" / "messages" / f"{lang}.js").read_text(encoding="utf-8").splitlines():
        m = LINE.match(line)
        if m:
            assert m.group(1) not in out, f"{lang}: {m.group(1)} twice"
            out[m.group(1)] = m.group(2)
        else:
            assert re.match(r"^\s*(//.*|export default \{|\};|)\s*$", line), f"{lang}: unreadable line {line!r}"
    return out


def test_message_tables_have_the_same_keys_and_placeholders() -> None:
    zh, en = messages("zh-CN"), messages("en")
    assert len(zh) > 100
    assert set(zh) == set(en), (set(zh) ^ set(en))
    ph = lambda s: sorted(re.findall(r"\{(\w+)\}", s))  # noqa: E731
    for k in zh:
        assert zh[k].strip() and en[k].strip(), k
        assert ph(zh[k]) == ph(en[k]), k


def _tuple(name: str) -> list[str]:
    return list(getattr(schema, name))


def test_every_key_the_code_asks_for_exists() -> None:
    zh = messages("zh-CN")
    used: set[str] = set()
    for f in PWA.rglob("*.js"):
        if "messages" in f.parts:
            continue
        src = f.read_text(encoding="utf-8")
        used |= {k for k in re.findall(r'\bt\(\s*"([a-z0-9_.]+)"', src) if not k.endswith((".", "_"))}
        used |= {k for k in re.findall(r'"((?:conflicts|nav|rating|op)\.[a-z0-9_]+)"', src) if not k.endswith("_")}
    # families looked up with a computed suffix: every value they can take
    families = {
        "status": _tuple("MATTER_STATUSES"), "move": _tuple("MATTER_STATUSES"), "urgency": _tuple("URGENCIES"),
        "channel": _tuple("CHANNELS"), "level": _tuple("LEVELS"), "event": _tuple("EVENT_KINDS"),
        "role": _tuple("ROLES"), "checklist": [x for k in schema.CHECKLIST_ITEMS for x in (k, k + "_hint")],
        "handling": ["direct", "proxy"], "gender": ["male", "female", "unknown"],
        "residence": ["resident", "away", "moved_out", "deceased"], "resolution": ["current", "incoming", "value"],
    }
    for fam, values in families.items():
        used |= {f"{fam}.{v}" for v in values}
    missing = sorted(k for k in used if k not in zh)
    assert not missing, missing


def test_the_service_worker_precaches_every_app_file() -> None:
    shell = shell_files(PWA)
    on_disk = sorted("/" + str(p.relative_to(PWA)) for p in PWA.rglob("*") if p.is_file() and p.name != "sw.js")
    assert sorted(shell) == on_disk
    assert len(set(shell)) == len(shell)


def test_sw_version_follows_the_shell(tmp_path: Path) -> None:
    copy = tmp_path / "pwa"
    shutil.copytree(PWA, copy)
    v1 = render_sw(copy)
    assert PLACEHOLDER not in v1 and v1 == render_sw(copy)
    css = copy / "css" / "app.css"
    css.write_text(css.read_text() + "\n/* changed */\n")
    assert render_sw(copy) != v1


def test_sw_is_served_versioned_and_uncached(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "g.db"), pwa_dir=str(PWA)))
    with TestClient(app) as c:
        r = c.get("/sw.js")
        assert r.status_code == 200 and r.headers["content-type"] == "text/javascript; charset=utf-8"
        assert PLACEHOLDER not in r.text and "no-cache" in r.headers["cache-control"]
        # the browser compares the worker byte for byte: the same shell must give the same bytes,
        # or every update check would install a "new" version that then waits
        assert c.get("/sw.js").content == r.content
        assert c.get("/").status_code == 200 and c.get("/js/app.js").status_code == 200


def test_the_worker_is_registered_before_the_app_loads() -> None:
    """index.html registers the service worker from a module that imports nothing, ahead of app.js:
    a failed or stalled app start (a module that did not arrive, IndexedDB) must not leave a phone
    without its offline copy (issue 18)."""
    html = (PWA / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script type="module"[^>]*src="([^"]+)"', html)
    assert scripts == ["/js/register_sw.js", "/js/app.js"]
    reg = (PWA / "js" / "register_sw.js").read_text(encoding="utf-8")
    assert not re.search(r"^\s*import\b", reg, re.M)
    assert 'navigator.serviceWorker.register("/sw.js")' in reg
    assert "serviceWorker.register(" not in (PWA / "js" / "app.js").read_text(encoding="utf-8")
