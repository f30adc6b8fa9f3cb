"""Scope (protocol §3): each role sees exactly its records, on every pull and every push."""

from __future__ import annotations

from .conftest import Town, new_id


def kinds(seen: dict, collection: str) -> set[str]:
    return {rid for (c, rid) in seen if c == collection}


def fill(town: Town) -> dict[str, str]:
    """A household with a resident, a visit and a matter in each of g1, g2 and g3."""
    out = {}
    for grid, who in (("g1", "w1"), ("g2", "staff"), ("g3", "w3")):
        h = town.household(who, grid)
        r = new_id()
        town.push1(who, town.mut("residents", r, {"household_id": h, "name": "张三", "id_number": "330212194501011234"}))
        v = new_id()
        town.push1(who, town.mut("visits", v, {"household_id": h, "visited_at": "2026-11-20T09:00:00+08:00"}))
        m = town.matter(who, h)
        out.update({f"{grid}.household": h, f"{grid}.resident": r, f"{grid}.visit": v, f"{grid}.matter": m})
    return out


def test_grid_worker_sees_exactly_their_grid(town: Town) -> None:
    ids = fill(town)
    seen = town.pull_all("w1")
    assert kinds(seen, "households") == {ids["g1.household"]}
    assert kinds(seen, "residents") == {ids["g1.resident"]}
    assert kinds(seen, "visits") == {ids["g1.visit"]}
    assert kinds(seen, "matters") == {ids["g1.matter"]}
    # the area records above them and their own grid; not the other village's grid
    areas = kinds(seen, "areas")
    assert {town.ids[k] for k in ("county", "town", "v1", "g1")} <= areas
    assert town.ids["g3"] not in areas
    # the users they can hand matters to: their village's workers and agent, and town staff
    users = {seen[("users", u)].data["username"] for u in kinds(seen, "users")}
    assert {"worker1", "worker2", "agent1", "staff1"} <= users and "admin" not in users


def test_worker_of_another_grid_can_neither_pull_nor_push_it(town: Town) -> None:
    ids = fill(town)
    seen = town.pull_all("w3")
    assert kinds(seen, "households") == {ids["g3.household"]}
    h = ids["g1.household"]
    attempts = [
        town.mut("households", h, {"phone": "13800000000"}, base=town.version("households", h)),
        town.mut("residents", new_id(), {"household_id": h, "name": "李四"}),
        town.mut("visits", new_id(), {"household_id": h, "visited_at": "2026-11-20T09:00:00+08:00"}),
        town.mut("matters", new_id(), {"household_id": h, "title": "越界"}),
        town.mut("matter_events", new_id(), {"matter_id": ids["g1.matter"], "kind": "note", "note": "越界"}),
        town.mut("households", new_id(), {"grid_id": town.ids["g1"], "address": "x", "head_name": "y"}),
    ]
    results = town.push("w3", *attempts)
    assert [(r.status, r.error.code) for r in results] == [("rejected", "forbidden")] * len(attempts)
    assert town.store.get("households", h).data.get("phone") is None


def test_staff_see_their_town_and_admin_everything(town: Town) -> None:
    ids = fill(town)
    for who in ("staff", "admin"):
        seen = town.pull_all(who)
        assert kinds(seen, "households") == {ids[f"{g}.household"] for g in ("g1", "g2", "g3")}


def test_proxy_agent_sees_only_delegated_matters_and_their_households(town: Town) -> None:
    ids = fill(town)
    agent = town.actors["agent"].user_id
    assert kinds(town.pull_all("agent"), "households") == set()
    h = ids["g1.household"]
    m = town.matter("w1", h, handling_mode="proxy", assignee_id=agent)
    e = new_id()
    town.push1("w1", town.mut("matter_events", e, {"matter_id": m, "kind": "note", "note": "请代办"}))
    seen = town.pull_all("agent")
    assert kinds(seen, "matters") == {m}
    assert kinds(seen, "matter_events") == {e}
    assert kinds(seen, "households") == {h}
    assert kinds(seen, "residents") == {ids["g1.resident"]}
    assert kinds(seen, "visits") == set()
    # ID numbers: masked for the agent as for grid workers (issue 12, finding 10: the agent carries the card)
    assert seen[("residents", ids["g1.resident"])].data["id_number"] == "330212********1234"
    masked = town.pull_all("w1")[("residents", ids["g1.resident"])].data["id_number"]
    assert masked == "330212********1234"


def test_household_moving_grid_leaves_with_removed(town: Town) -> None:
    from sync import engine

    ids = fill(town)
    h = ids["g1.household"]
    page = engine.pull(town.store, town.actors["w1"], None)
    while page.more:
        page = engine.pull(town.store, town.actors["w1"], page.cursor)
    r = town.push1("staff", town.mut("households", h, {"grid_id": town.ids["g3"]}, base=town.version("households", h)))
    assert r.status == "applied"
    page = engine.pull(town.store, town.actors["w1"], page.cursor)
    removed = {(c.collection, c.id) for c in page.changes if c.removed}
    assert {("households", h), ("residents", ids["g1.resident"]), ("visits", ids["g1.visit"]),
            ("matters", ids["g1.matter"])} <= removed
    # and it arrives in the new grid, children included
    seen = town.pull_all("w3")
    assert ("households", h) in seen and ("visits", ids["g1.visit"]) in seen


def test_reassigned_or_closed_matter_leaves_the_agent(town: Town) -> None:
    from sync import accounts, engine

    h = town.household("w1")
    agent = town.actors["agent"].user_id
    m = town.matter("w1", h, handling_mode="proxy", assignee_id=agent)
    page = engine.pull(town.store, town.actors["agent"], None)
    assert ("matters", m) in {(c.collection, c.id) for c in page.changes}
    other = accounts.create_user(town.store, "agent2", "demo", "proxy_agent", [town.ids["v1"]],
                                 password_hash=town.store.password_hash(agent))
    r = town.push1("staff", town.mut("matters", m, {"assignee_id": other}, base=town.version("matters", m)))
    assert r.status == "applied"
    page2 = engine.pull(town.store, town.actors["agent"], page.cursor)
    gone = {(c.collection, c.id) for c in page2.changes if c.removed}
    assert {("matters", m), ("households", h)} <= gone


def test_area_change_expires_cursor(town: Town) -> None:
    import pytest

    from sync import accounts, engine
    from sync.errors import SyncError

    page = engine.pull(town.store, town.actors["w1"], None)
    accounts.update_user(town.store, town.actors["w1"].user_id, areas=[town.ids["g2"]])
    actor = accounts.authenticate(town.store, town.tokens["w1"])
    with pytest.raises(SyncError) as e:
        engine.pull(town.store, actor, page.cursor)
    assert e.value.code == "cursor_expired"
