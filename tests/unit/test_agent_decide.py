"""The agent's pure decision rules (docs/agent.md)."""

from __future__ import annotations

from redkeeper.agent.decide import decide_routes, in_failover_shards
from redkeeper.model import Address
from redkeeper.sentinel import MasterVerdict, Status

A1, A2, A3 = (Address("127.0.0.1", p) for p in (6666, 6667, 6668))
B1, B2 = Address("127.0.0.1", 7666), Address("127.0.0.1", 7667)
INVENTORY = {"shard1": frozenset({A1, A2, A3}), "shard2": frozenset({B1, B2})}


def ok(name: str, address: Address, epoch: int = 1) -> MasterVerdict:
    return MasterVerdict(name, Status.OK, address, epoch, 3, 2, 3, 3, f"epoch {epoch} from 3/3")


def test_in_sync() -> None:
    decision = decide_routes(
        {"shard1": ok("shard1", A1), "shard2": ok("shard2", B1)},
        {"shard1": A1, "shard2": B1},
        answered=3,
        configured=3,
        inventory=INVENTORY,
    )
    assert decision.changes == {} and not decision.fail_static
    assert decision.summary.startswith("in sync")


def test_repoint_one_shard() -> None:
    decision = decide_routes(
        {"shard1": ok("shard1", A2), "shard2": ok("shard2", B1)},
        {"shard1": A1, "shard2": B1},
        answered=2,
        configured=3,
        inventory=INVENTORY,
        roles={A2: "master"},
    )
    assert decision.changes == {"shard1": A2}
    assert decision.summary == "repoint shard1 -> 127.0.0.1:6667"


def test_no_majority_fails_static() -> None:
    decision = decide_routes({"shard1": ok("shard1", A2)}, {"shard1": A1}, answered=1, configured=3)
    assert decision.fail_static and decision.changes == {}
    assert "1/3 Sentinels answered (need 2)" in decision.summary


def test_outside_inventory_is_refused() -> None:
    rogue = Address("10.9.9.9", 6379)
    decision = decide_routes(
        {"shard1": ok("shard1", rogue)},
        {"shard1": A1},
        answered=3,
        configured=3,
        inventory=INVENTORY,
    )
    assert decision.changes == {}
    assert [(r.shard, r.reason, r.address) for r in decision.refusals] == [
        ("shard1", "outside-inventory", rogue)
    ]


def test_without_inventory_any_address_is_followed() -> None:
    rogue = Address("10.9.9.9", 6379)
    decision = decide_routes(
        {"shard1": ok("shard1", rogue)}, {"shard1": A1}, answered=3, configured=3
    )
    assert decision.changes == {"shard1": rogue}


def test_candidate_still_replica_waits_and_retries_soon() -> None:
    decision = decide_routes(
        {"shard1": ok("shard1", A2)},
        {"shard1": A1},
        answered=3,
        configured=3,
        roles={A2: "slave"},
    )
    assert decision.changes == {} and decision.retry_soon
    assert decision.refusals[0].reason == "not-master"


def test_unreachable_candidate_is_trusted_to_the_majority() -> None:
    decision = decide_routes(
        {"shard1": ok("shard1", A2)}, {"shard1": A1}, answered=3, configured=3, roles={A2: None}
    )
    assert decision.changes == {"shard1": A2}


def test_conflict_and_unknown_are_not_acted_on() -> None:
    conflict = MasterVerdict("shard1", Status.CONFLICT, None, 3, 3, 2, 3, 1, "tie at epoch 3")
    decision = decide_routes(
        {"shard1": conflict}, {"shard1": A1, "shard2": B1}, answered=3, configured=3
    )
    assert decision.changes == {}
    assert sorted(r.reason for r in decision.refusals) == ["conflict", "unknown-master"]


def test_coalesces_with_a_failover_in_flight_for_a_bounded_time() -> None:
    verdicts = {"shard1": ok("shard1", A2), "shard2": ok("shard2", B1)}
    routes = {"shard1": A1, "shard2": B1}
    held = decide_routes(
        verdicts,
        routes,
        answered=3,
        configured=3,
        in_failover={"shard2"},
        pending_for=0.2,
        coalesce_window=1.0,
    )
    assert held.hold and held.retry_soon and held.held_for == ("shard2",)
    assert held.changes == {"shard1": A2}
    expired = decide_routes(
        verdicts,
        routes,
        answered=3,
        configured=3,
        in_failover={"shard2"},
        pending_for=1.2,
        coalesce_window=1.0,
    )
    assert not expired.hold and expired.changes == {"shard1": A2}
    both = decide_routes(
        {"shard1": ok("shard1", A2), "shard2": ok("shard2", B2)},
        routes,
        answered=3,
        configured=3,
        in_failover={"shard1", "shard2"},
        pending_for=0.0,
        coalesce_window=1.0,
    )
    assert not both.hold and both.changes == {"shard1": A2, "shard2": B2}


def test_in_failover_flags() -> None:
    flags = {"a": {"master"}, "b": {"master", "o_down"}, "c": {"failover_in_progress"}}
    assert in_failover_shards(flags) == {"b", "c"}
