"""The sync engine: push (protocol §4, merge rules §6) and pull (§5).

``push(store, actor, body)`` decodes a request, applies it as one write transaction and returns
one result per mutation; ``pull(store, actor, cursor, limit)`` returns a page of the change
feed. Neither knows about HTTP: the server decodes nothing but the transport.

This module is the engine's front door; each rule lives in the module of its concern
(``docs/engine.md`` has the map):

=====================  ==========================================================================
``sync.push``          the push transaction, idempotency by mid, create / update / delete
``sync.pull``          cursors and feed pages, reads in scope
``sync.validate``      a mutation's envelope and its fields, typed with msgspec
``sync.permissions``   who may write what: roles, scope, fields, references, moves, hand-overs
``sync.keys``          the scope keys of a record, and the cascade when they change
``sync.conflicts``     conflicts and rejections recorded
``sync.resolve``       resolving a conflict
``sync.matters``       matters' derived fields, status moves, matter events
``sync.writes``        the one write path of a record
``sync.context``       what one push works with (``_Ctx``) and the reads the rules share
=====================  ==========================================================================

Every name the server, the bench and the tests import from ``sync.engine`` is re-exported here.
Setting one of them on this module (``monkeypatch.setattr(engine, "_check_move", …)``, as the
property test does to show that the invariants catch a reverted fix) sets it in every engine
module that uses it, so the patch reaches the code that calls it.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .conflicts import _DUP_NS, _conflict, _err, _mutation_json, _reject
from .context import MAX_VERSION, STAFF_ROLES, Status, _category, _Ctx, _events_of, _household_grid, area_tree
from .context import now_utc, uuid7
from .keys import (DEPENDENTS, _area_of, _area_of_existing, _cascade, _conflict_keys, _delegation_changed,
                   _keys_for, _refresh_conflicts, _refresh_keys)
from .matters import _create_event, _derive_matter, _mark_applied, _rederive_matters, _set_status
from .permissions import (PERMISSIONS, SCOPE_FIELDS, _agents_village_household, _check_assignee,
                          _check_field_writers, _check_move, _check_parent, _check_resident, _check_resolution,
                          _check_role, _check_scope, _check_update, _has_area_authority, _live, _may_still_write,
                          _unknown, _was_delegated)
from .pull import _LEAN_DROP, DEFAULT_LIMIT, MAX_LIMIT, _matter_of, pull, readable
from .push import _apply, _create, _delete, _prefetch, _push, _update, decode_push, push
from .resolve import _apply_resolution, _resolve_conflict
from .writes import _tombstone, _write, _write_new

__all__ = [
    "DEFAULT_LIMIT", "DEPENDENTS", "MAX_LIMIT", "MAX_VERSION", "PERMISSIONS", "SCOPE_FIELDS", "STAFF_ROLES",
    "Status", "area_tree", "decode_push", "now_utc", "pull", "push", "readable", "uuid7",
    "_DUP_NS", "_LEAN_DROP", "_Ctx", "_agents_village_household", "_apply", "_apply_resolution", "_area_of",
    "_area_of_existing", "_cascade", "_category", "_check_assignee", "_check_field_writers", "_check_move",
    "_check_parent", "_check_resident", "_check_resolution", "_check_role", "_check_scope", "_check_update",
    "_conflict", "_conflict_keys", "_create", "_create_event", "_delegation_changed", "_delete",
    "_derive_matter", "_err", "_events_of", "_has_area_authority", "_household_grid", "_keys_for", "_live",
    "_mark_applied", "_matter_of", "_may_still_write", "_mutation_json", "_prefetch", "_push",
    "_rederive_matters", "_refresh_conflicts", "_refresh_keys", "_reject", "_resolve_conflict", "_set_status",
    "_tombstone", "_unknown", "_update", "_was_delegated", "_write", "_write_new",
]


class _Facade(types.ModuleType):
    """``sync.engine``: setting a re-exported name rebinds it in every engine module bound to it."""

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name, _MISSING)
        if old is not _MISSING and name in __all__:
            for mod_name, mod in list(sys.modules.items()):
                if mod_name.startswith("sync.") and mod is not self and getattr(mod, name, _MISSING) is old:
                    setattr(mod, name, value)
        super().__setattr__(name, value)


_MISSING = object()
sys.modules[__name__].__class__ = _Facade
