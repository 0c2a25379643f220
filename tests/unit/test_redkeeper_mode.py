"""`proxy.mode: redkeeper` without sockets: its topology checks, its rendered unit, and the
route-table target (`endpoint.target.RouterTarget`) the agent drives."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from redkeeper.core.nodes import NodeFacts, NodesView
from redkeeper.data.ring import ring_for, shard_names
from redkeeper.endpoint.target import RouterTarget
from redkeeper.errors import ApplyError, TopologyError
from redkeeper.model import Address
from redkeeper.proxy.base import UNROUTED
from redkeeper.render import Layout, render_all
from redkeeper.server import Router
from redkeeper.topology import Topology, parse_topology

M1, R1, R2 = (Address("127.0.0.1", p) for p in (6666, 6667, 6668))
M2 = Address("127.0.0.1", 7666)
BASE = """
sentinel: {nodes: [127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381], quorum: 2,
           down_after_ms: 1500, failover_timeout_ms: 10000}
shards:
  - {name: shard1, master: 127.0.0.1:6666, replicas: [127.0.0.1:6667, 127.0.0.1:6668]}
  - {name: shard2, master: 127.0.0.1:7666, replicas: []}
"""


def parse(proxy: str) -> Topology:
    return parse_topology(BASE + proxy, source="t.yaml", base_dir=Path("/srv"))


def errors(proxy: str) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse(proxy)
    return [str(p) for p in info.value.problems]


def test_mode_redkeeper_settings_and_defaults() -> None:
    topology = parse("proxy: {mode: redkeeper}\n")
    rk = topology.spec.proxy.redkeeper
    assert (rk.workers, rk.read_from, rk.max_replica_lag_s) == (1, "master", 2)
    assert topology.warnings == ()


@pytest.mark.parametrize(
    ("proxy", "field", "words"),
    [
        ("proxy: {mode: redkeeper, distribution: random}", "proxy.distribution", "no key a home"),
        ("proxy: {mode: redkeeper, redis_db: 3}", "proxy.redis_db", "database 0 only"),
        (
            "proxy: {mode: redkeeper, redkeeper: {read_from: replica}}",
            "proxy.redkeeper.read_from",
            "shard2 has no replicas",
        ),
        ("proxy: {mode: redkeeper, redkeeper: {workers: 0}}", "proxy.redkeeper.workers", ""),
    ],
)
def test_what_the_redkeeper_proxy_cannot_do_is_an_error(proxy: str, field: str, words: str) -> None:
    found = errors(proxy + "\n")
    assert any(field in p and words in p for p in found), found


def test_redkeeper_settings_in_another_mode_are_a_warning() -> None:
    topology = parse("proxy: {mode: restart, redkeeper: {workers: 2}}\n")
    assert any("proxy.redkeeper" in str(w) and "ignored" in str(w) for w in topology.warnings)


def test_render_writes_one_proxy_unit_and_no_nutcracker_yml() -> None:
    topology = parse("proxy: {mode: redkeeper, listen: 10.0.0.9:22121}\n")
    files = render_all(topology, Layout.for_system(), host="10.0.0.9", topology_text="x")
    names = sorted(f.path.name for f in files)
    assert names == ["redkeeper-proxy.service", "topology.yaml"]
    unit = next(f for f in files if f.path.name == "redkeeper-proxy.service").text
    assert "ExecStart=/usr/local/bin/redkeeper proxy -c /etc/redkeeper/topology.yaml" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit


def _target(tmp_path: Path, read_from: str = "master") -> RouterTarget:
    topology = parse(f"proxy: {{mode: redkeeper, redkeeper: {{read_from: {read_from}}}}}\n")
    ring = ring_for(topology)
    router = Router(ring, shard_names(ring), read_from=read_from)
    nodes = {s.name: s.nodes for s in topology.shards}
    return RouterTarget(router, nodes, max_replica_lag=2, routes_file=tmp_path / "routes.json")


def test_apply_swaps_routes_verifies_and_saves(tmp_path: Path) -> None:
    target = _target(tmp_path)
    assert asyncio.run(target.routes()) == {"shard1": UNROUTED, "shard2": UNROUTED}
    asyncio.run(target.apply({"shard1": M1, "shard2": M2}))
    asyncio.run(target.verify({"shard1": M1}))
    assert asyncio.run(target.routes()) == {"shard1": M1, "shard2": M2}
    saved = json.loads((tmp_path / "routes.json").read_text())
    assert saved == {"shard1": str(M1), "shard2": str(M2)}
    # a new target (a restarted proxy) serves the saved routes until the first decision
    again = _target(tmp_path)
    asyncio.run(again.prepare())
    assert asyncio.run(again.routes()) == {"shard1": M1, "shard2": M2}
    target.router.set_routes({"shard1": R1})
    with pytest.raises(ApplyError, match="shard2"):
        asyncio.run(target.verify({"shard2": M2}))


def test_repair_reads_from_healthy_replicas_and_apply_drops_them(tmp_path: Path) -> None:
    target = _target(tmp_path, "replica-preferred")
    assert target.needs_nodes
    asyncio.run(target.apply({"shard1": M1, "shard2": M2}))
    facts = {
        M1: NodeFacts("master", lags={R1: 0, R2: 5}),  # R2 lags 5 s > 2 s
        R1: NodeFacts("slave", M1, "connected"),
        R2: NodeFacts("slave", M1, "connected"),
        M2: NodeFacts("master"),
    }
    asyncio.run(target.repair(NodesView(facts)))
    by_name = dict(zip(target.router.routes.names, target.router.routes.replicas, strict=True))
    assert by_name == {"shard1": (R1,), "shard2": ()}
    asyncio.run(target.repair(NodesView(facts, {"shard1": {R1}})))  # a Sentinel flags R1 down
    by_name = dict(zip(target.router.routes.names, target.router.routes.replicas, strict=True))
    assert by_name["shard1"] == ()
    asyncio.run(target.repair(NodesView(facts)))
    asyncio.run(target.apply({"shard1": R1}))  # failover: the old replicas are not R1's yet
    by_name = dict(zip(target.router.routes.names, target.router.routes.replicas, strict=True))
    assert by_name["shard1"] == ()


def test_master_reads_need_no_node_facts(tmp_path: Path) -> None:
    target = _target(tmp_path)
    assert not target.needs_nodes
    assert asyncio.run(target.repair(None)) is None


M3 = Address("127.0.0.1", 8666)
THIRD = "  - {name: shard3, master: 127.0.0.1:8666, replicas: []}\n"


def test_a_ring_that_adds_a_shard_is_served_with_its_route_in_one_step(tmp_path: Path) -> None:
    target = _target(tmp_path)
    asyncio.run(target.apply({"shard1": M1, "shard2": M2}))
    tables = []
    target.router.subscribe(lambda _old, new: tables.append(new))
    bigger = parse_topology(BASE + THIRD, source="t.yaml", base_dir=Path("/srv"))
    ring = ring_for(bigger)
    swapped: list[bool] = []
    assert not target.stage_ring(ring, shard_names(ring), lambda: swapped.append(True))
    # still the old ring; the agent sees shard3 unrouted and decides its master
    assert target.router.routes.names == ("shard1", "shard2")
    assert asyncio.run(target.routes())["shard3"] == UNROUTED
    asyncio.run(target.apply({"shard3": M3}))
    asyncio.run(target.verify({"shard3": M3}))
    assert swapped == [True]
    assert set(target.router.routes.names) == {"shard1", "shard2", "shard3"}
    routed = dict(zip(target.router.routes.names, target.router.routes.masters, strict=True))
    assert routed == {"shard1": M1, "shard2": M2, "shard3": M3}
    assert None not in tables[-1].masters  # the last table published has every route
    # a ring that only removes a shard is served at once
    ring = ring_for(parse(""))
    assert target.stage_ring(ring, shard_names(ring))
    assert asyncio.run(target.routes()) == {"shard1": M1, "shard2": M2}


def test_a_pending_ring_keeps_masters_decided_before_its_last_shard(tmp_path: Path) -> None:
    target = _target(tmp_path)
    asyncio.run(target.apply({"shard1": M1, "shard2": M2}))
    fourth = THIRD + "  - {name: shard4, master: 127.0.0.1:9666, replicas: []}\n"
    ring = ring_for(parse_topology(BASE + fourth, source="t.yaml", base_dir=Path("/srv")))
    assert not target.stage_ring(ring, shard_names(ring))
    asyncio.run(target.apply({"shard3": M3}))  # shard4's master not known yet
    assert target.router.routes.names == ("shard1", "shard2")
    assert asyncio.run(target.routes())["shard3"] == M3
    asyncio.run(target.apply({"shard4": Address("127.0.0.1", 9666)}))
    assert set(target.router.routes.names) == {"shard1", "shard2", "shard3", "shard4"}
    assert None not in target.router.routes.masters
