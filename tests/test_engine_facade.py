"""``sync.engine`` stays the engine's front door after the split into modules (docs/engine.md)."""

from __future__ import annotations

from typing import Any

import pytest

from sync import engine, permissions, push


def test_every_name_of_the_front_door_is_there() -> None:
    missing = [name for name in engine.__all__ if not hasattr(engine, name)]
    assert not missing
    for name in ("push", "pull", "decode_push", "readable", "area_tree", "uuid7", "PERMISSIONS", "SCOPE_FIELDS",
                 "_check_move", "_check_parent", "_check_resolution"):
        assert name in engine.__all__


def test_a_check_replaced_on_the_engine_is_replaced_where_it_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """The property test reverts a fix by replacing a check on ``sync.engine``: the callers must see it."""
    original = permissions._check_parent

    def replaced(*args: Any, **kwargs: Any) -> None:
        return None

    with monkeypatch.context() as m:
        m.setattr(engine, "_check_parent", replaced)
        assert permissions._check_parent is replaced and push._check_parent is replaced
    assert permissions._check_parent is original and push._check_parent is original and engine._check_parent is original
