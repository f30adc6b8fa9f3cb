"""The shipped matter catalogue (DOMAIN.md §4.9): two levels of categories with their 归口 line,
lowest handling level, default deadline and, for proxy services, the materials checklist.

``install_catalogue`` writes it through ``engine.push`` as a system administrator, so every
category gets versions, field metadata and feed entries like any record a phone would send.
Record ids are ``uuid5(CATEGORY_NAMESPACE, code)``: every server holds the same catalogue under
the same ids, so a phone moved between servers (or a restored backup) keeps its references.
"""

from __future__ import annotations

import json
import uuid
from importlib import resources
from typing import Any

from . import engine
from .protocol import MutationIn, PushRequest
from .scope import Actor
from .storage import Store
from .store import iso, utcnow

# Fixed for ever: changing it would give every category a new id on new servers.
CATEGORY_NAMESPACE = uuid.UUID("5b0f3a52-7c1e-5d3a-9f0e-6a8b2c4d1e70")

_SYSTEM = Actor("system", "admin", (), "system", "system")


def category_id(code: str) -> str:
    """The stable record id of the category ``code``."""
    return str(uuid.uuid5(CATEGORY_NAMESPACE, code))


def load_catalogue() -> list[dict[str, Any]]:
    """The shipped entries (``sync/data/categories.json``), first-level entries before their children."""
    text = resources.files("sync").joinpath("data/categories.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    entries: list[dict[str, Any]] = doc["categories"]
    return entries


def install_catalogue(store: Store) -> int:
    """Install the shipped catalogue when the ``categories`` collection is empty; return how many.

    "Empty" counts tombstones too: once an administrator has deleted shipped categories, running
    this again (every ``demo`` or ``run``) must not bring them back. The check and the writes share
    one transaction, so two processes starting at once cannot both install it.
    """
    entries = load_catalogue()
    at = iso(utcnow())
    mutations = [MutationIn(mid=str(uuid.uuid5(CATEGORY_NAMESPACE, "install:" + e["code"])),
                            collection="categories", id=category_id(e["code"]), op="upsert", base=0,
                            fields=dict(e), at=at)
                 for e in entries]
    with store.transaction():
        if store.record_count("categories"):
            return 0
        installed = 0
        for i in range(0, len(mutations), 500):
            resp = engine.push(store, _SYSTEM, PushRequest(protocol=1, mutations=mutations[i:i + 500]))
            bad = [r for r in resp.results if r.status != "applied"]
            if bad:
                # The shipped file is ours: a rejection is a bug in it, and a half catalogue is worse than none.
                raise ValueError(f"the shipped catalogue has an invalid entry: {bad[0]}")
            installed += len(resp.results)
    return installed
