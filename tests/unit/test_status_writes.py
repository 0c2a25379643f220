"""`status` says when a shard refuses writes (min-replicas-to-write), pure."""

from __future__ import annotations

from pathlib import Path

from redkeeper.core.nodes import NodeFacts, refuses_writes
from redkeeper.model import Address
from redkeeper.stack.status import NodeStatus, write_refusal
from redkeeper.topology import Topology, load_topology
from tests.support import write_topology


def _topology(tmp_path: Path, required: int) -> Topology:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_topology(tmp_path, extra=f"redis: {{min_replicas_to_write: {required}}}\n")
    return load_topology(path)


def _master(connected: int, good: int | None) -> NodeStatus:
    return NodeStatus(
        "shard1", "shard1-3", "127.0.0.1:7003", True, "master",
        connected_replicas=connected, good_replicas=good,
    )  # fmt: skip


def test_no_replica_connected(tmp_path: Path) -> None:
    reason = write_refusal(_topology(tmp_path, 1), "127.0.0.1:7003", [_master(0, 0)])
    assert reason == (
        "master 127.0.0.1:7003 has 0 of 1 required replicas connected (min_replicas_to_write)"
    )


def test_replicas_connected_but_lagging(tmp_path: Path) -> None:
    reason = write_refusal(_topology(tmp_path, 2), "127.0.0.1:7003", [_master(2, 1)])
    assert reason is not None
    assert "has 1 of 2 required replicas connected within min_replicas_max_lag (3 s)" in reason


def test_enough_replicas_or_no_setting_or_no_master(tmp_path: Path) -> None:
    one = _topology(tmp_path, 1)
    assert write_refusal(one, "127.0.0.1:7003", [_master(1, 1)]) is None
    assert write_refusal(one, "127.0.0.1:7003", [_master(1, None)]) is None
    assert write_refusal(_topology(tmp_path / "z", 0), "127.0.0.1:7003", [_master(0, 0)]) is None
    replica = NodeStatus("shard1", "shard1-1", "127.0.0.1:7001", True, "replica")
    assert write_refusal(one, "127.0.0.1:7003", [replica]) is None  # the master is not up
    # no Sentinel verdict: the one node that says role master is judged
    assert write_refusal(one, None, [replica, _master(0, 0)]) is not None


def test_the_agents_rule_counts_online_replicas_within_the_lag() -> None:
    master = Address("127.0.0.1", 7003)
    r1, r2 = Address("127.0.0.1", 7001), Address("127.0.0.1", 7002)
    facts: dict[Address, NodeFacts | None] = {master: NodeFacts("master", lags={r1: 0, r2: 12})}
    assert refuses_writes(master, facts, 1, 10) is False
    assert refuses_writes(master, facts, 2, 10) is True  # r2 lags beyond 10 s
    assert refuses_writes(master, {master: NodeFacts("master")}, 1, 10) is True
    assert refuses_writes(master, {master: NodeFacts("master")}, 0, 10) is False
    assert refuses_writes(master, {master: None}, 1, 10) is None  # silent: unknown
    assert refuses_writes(master, {master: NodeFacts("slave", r1, "connected")}, 1, 10) is None
