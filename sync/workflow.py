"""The matter state machine as a pure table (DOMAIN.md W5/W7; protocol §6 "Workflow status").

A status change is a matter event ``{"kind": "status", "from", "to"}``. Whether it may happen
depends only on this table, the matter's current status, the actor's role and whether the
actor is the matter's assignee.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

INITIAL: Final = "submitted"
TERMINAL: Final = frozenset({"closed", "not_accepted", "merged_duplicate"})
# Statuses in which the matter no longer counts as delegated to its assignee (the delegation ends).
DELEGATION_ENDED: Final = TERMINAL

STAFF: Final = frozenset({"staff", "admin"})
ASSIGNEE: Final = "assignee"  # the matter's assignee, whatever their role
# The assignee of a proxy matter (handling_mode proxy) holding the resident's delegation: the agent
# takes the matter on in the village (代办员接件) without waiting for the town to accept and dispatch.
PROXY_AGENT: Final = "proxy_agent_assignee"

# (from, to) -> who may make the move. Staff and admin appear explicitly so the table reads whole.
TRANSITIONS: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("submitted", "accepted"): STAFF,                    # 受理
    ("submitted", "in_progress"): frozenset({PROXY_AGENT}),  # 代办员接件 (proxy matters)
    ("submitted", "not_accepted"): STAFF,                # 不予受理 (reason in the note)
    ("submitted", "merged_duplicate"): STAFF,            # 合并重复
    ("accepted", "assigned"): STAFF,                     # 派单
    ("accepted", "in_progress"): STAFF | {PROXY_AGENT},  # staff handle it themselves, or the agent takes it
    ("assigned", "in_progress"): STAFF | {ASSIGNEE},     # 接单
    ("in_progress", "waiting_materials"): STAFF | {ASSIGNEE},  # 待补材料: pauses the deadline clock
    ("waiting_materials", "in_progress"): STAFF | {ASSIGNEE},
    ("in_progress", "escalated"): STAFF | {ASSIGNEE},    # 上报: level up
    ("escalated", "assigned"): STAFF,                    # re-dispatched at the higher level
    ("escalated", "in_progress"): STAFF,
    ("in_progress", "resolved"): STAFF | {ASSIGNEE},     # 办结
    ("resolved", "closed"): STAFF,                       # 销号 after verification
    ("resolved", "reopened"): STAFF,                     # not verified, or the resident is not satisfied
    ("closed", "reopened"): STAFF,
    ("reopened", "assigned"): STAFF,
    ("reopened", "in_progress"): STAFF | {ASSIGNEE},
}

STATUSES: Final = ("submitted", "accepted", "not_accepted", "merged_duplicate", "assigned", "in_progress",
                   "waiting_materials", "escalated", "resolved", "closed", "reopened")


# 待补材料 stops the deadline clock (the days spent there move ``effective_deadline`` on when the
# matter goes on): a matter waiting for materials is never overdue.
CLOCK_STOPPED: Final = ("waiting_materials",)


def held_to(data: dict[str, Any]) -> str | None:
    """The deadline a matter is held to: moved on by the days it waited for materials (docs/proxy.md)."""
    deadline = data.get("effective_deadline") or data.get("deadline")
    return deadline if isinstance(deadline, str) else None


def is_overdue(data: dict[str, Any], today: str, ended: tuple[str, ...]) -> bool:
    """Overdue on ``today`` (a local date): held to a deadline before it, its status set and neither one
    of ``ended`` nor a stopped clock. The one rule of the console's cards, lists, badges and reports;
    the store's SQL says the same (``SQLiteStore._overdue``, pinned by tests/test_metrics.py)."""
    deadline, status = held_to(data), data.get("status")
    return bool(deadline and deadline < today and status is not None and status not in ended
                and status not in CLOCK_STOPPED)


# -- 即将超期 and 超期天数 (issue 14): the supervision columns, one rule each, beside is_overdue ---------
DUE_SOON_WORKDAYS: Final = 2


def due_soon_until(today: date) -> str:
    """The last held-to deadline a matter 即将超期 on ``today`` may have: ``DUE_SOON_WORKDAYS`` working
    days after it (Monday–Friday, as every deadline of the project)."""
    from .proxy import add_workdays   # proxy → schema → workflow: imported when used
    return add_workdays(today, DUE_SOON_WORKDAYS).isoformat()


def is_due_soon(data: dict[str, Any], today: str, until: str, ended: tuple[str, ...]) -> bool:
    """即将超期 on ``today``: held to a deadline from ``today`` to ``until`` (``due_soon_until``), so not
    overdue yet, its status set and neither one of ``ended`` nor a stopped clock. The store's SQL says
    the same (``SQLiteStore._due_soon``, pinned by tests/test_console_lists.py)."""
    deadline, status = held_to(data), data.get("status")
    return bool(deadline and today <= deadline <= until and status is not None and status not in ended
                and status not in CLOCK_STOPPED)


def overdue_days(data: dict[str, Any], today: str, ended: tuple[str, ...]) -> int:
    """超期天数: calendar days from the held-to deadline to ``today`` for an overdue matter
    (``is_overdue``), else 0. Calendar days, as a resident counts the wait (the deadline itself is
    set in working days); the list's sort ``overdue_days`` orders by the same held-to deadline."""
    if not is_overdue(data, today, ended):
        return 0
    try:
        return (date.fromisoformat(today) - date.fromisoformat(held_to(data) or today)).days
    except ValueError:
        return 0


def is_transition(frm: str, to: str) -> bool:
    """Whether the table has the move at all, for anybody."""
    return (frm, to) in TRANSITIONS


def may_transition(frm: str, to: str, role: str, is_assignee: bool, proxy_agent: bool = False) -> bool:
    """Whether an actor of ``role`` (the assignee or not) may move a matter from ``frm`` to ``to``.

    ``proxy_agent``: the actor is the delegated proxy agent of a proxy matter (implies assignee).
    """
    who = TRANSITIONS.get((frm, to))
    if who is None:
        return False
    return role in who or (is_assignee and ASSIGNEE in who) or (proxy_agent and PROXY_AGENT in who)


def next_statuses(frm: str, role: str, is_assignee: bool, proxy_agent: bool = False) -> list[str]:
    """The moves an actor may offer from ``frm`` (for buttons in the apps)."""
    return [to for (f, to) in TRANSITIONS if f == frm and may_transition(f, to, role, is_assignee, proxy_agent)]


def delegation_active(status: str) -> bool:
    return status not in DELEGATION_ENDED
