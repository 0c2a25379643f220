"""Steady mode's pure parts: the topology section, the plan, the routing rules, the status."""

from __future__ import annotations

from pathlib import Path

import pytest

from redkeeper.core.nodes import NodeFacts
from redkeeper.errors import TopologyError
from redkeeper.model import Address
from redkeeper.proxy.base import UNROUTED
from redkeeper.proxy.haproxy import ServerState
from redkeeper.proxy.haproxy.pools import (
    missing_servers,
    pool_changes,
    routes_of,
    wanted_pools,
)
from redkeeper.proxy.haproxy.report import HAProxyShard, HAProxyStatus, judge
from redkeeper.render import Layout, haproxy_plan
from redkeeper.render.haproxy import HAProxyPlan
from redkeeper.topology import Topology, parse_topology
from tests.support import default_in_mode

M1, R1, R2 = (Address("127.0.0.1", p) for p in (6666, 6667, 6668))
READY, MAINT = 4, 5  # admin states: ready (config flag only), forced maintenance


def steady(extra: str = "", shards: str = "") -> Topology:
    text = default_in_mode("steady")
    if shards:
        text = text.replace(text[text.index("shards:") : text.index("proxy:")], shards)
    text = text.replace("  mode: steady", "  mode: steady\n" + extra, 1) if extra else text
    return parse_topology(text, source="t.yaml", base_dir=Path("/srv"))


def problems(extra: str = "", shards: str = "") -> list[str]:
    with pytest.raises(TopologyError) as info:
        steady(extra, shards)
    return [str(p) for p in info.value.problems]


ONE_SHARD = "shards:\n  - {name: shard1, master: 127.0.0.1:6666, replicas: [127.0.0.1:6667]}\n"


def test_default_plus_steady_just_works() -> None:
    topology = steady()
    assert topology.warnings == ()
    plan = haproxy_plan(topology, Layout.for_local(Path("/srv/state")))
    assert plan.frontends() == {
        "shard1": Address("127.0.0.1", 22131),
        "shard2": Address("127.0.0.1", 22132),
    }
    assert [s.read_frontend for s in plan.shards] == [
        Address("127.0.0.1", 22141),
        Address("127.0.0.1", 22142),
    ]
    assert plan.admin_socket == Path("/srv/state/haproxy/admin.sock")
    assert plan.state_file == Path("/srv/state/haproxy/server-state")
    assert plan.backends()["shard1"] == ("master",)
    assert plan.backends()["shard1:read"] == ("shard1-1", "shard1-2", "shard1-3")


def test_per_shard_overrides_and_paths() -> None:
    topology = steady(
        "  haproxy:\n"
        "    frontends: {shard2: 127.0.0.1:30000}\n"
        "    read_port_base: null\n"
        "    admin_socket: /run/hx.sock\n"
        "    server_state_file: hx/state\n"
    )
    plan = haproxy_plan(topology, Layout.for_local(Path("/srv/state")))
    assert plan.frontends()["shard2"] == Address("127.0.0.1", 30000)
    assert all(s.read_backend is None for s in plan.shards)
    assert plan.admin_socket == Path("/run/hx.sock")
    assert plan.state_file == Path("/srv/state/hx/state")


def test_haproxy_section_errors_all_at_once() -> None:
    found = problems(
        "  haproxy:\n"
        "    frontends: {nosuch: 127.0.0.1:30000, shard1: 127.0.0.1:22121}\n"
        "    read_port_base: 65535\n"
        "    write_frontend: 127.0.0.1:6379\n"
    )
    assert any("frontends.nosuch: no shard is named 'nosuch'" in p for p in found)
    assert any("22121 is already used by proxy.listen" in p for p in found)
    assert any("port 65536 is outside 1-65535" in p for p in found)
    assert any(
        "write_frontend: a write frontend serves one shard, but there are 2" in p for p in found
    )


def test_write_frontend_with_one_shard_and_warnings() -> None:
    topology = steady("  haproxy: {write_frontend: 127.0.0.1:6379}\n", ONE_SHARD)
    plan = haproxy_plan(topology, Layout.for_system())
    assert plan.write_backend == "shard1:write"
    assert plan.backends()["shard1:write"] == ("shard1-1", "shard1-2")
    text = default_in_mode("restart")
    text = text.replace("  mode: restart", "  haproxy: {stats: null}\n  mode: restart")
    restart = parse_topology(text, source="t.yaml", base_dir=Path("/"))
    assert [w.field for w in restart.warnings] == ["proxy.haproxy"]


def _plan() -> HAProxyPlan:
    return haproxy_plan(
        steady(
            "  haproxy: {write_frontend: 127.0.0.1:6379}\n",
            ONE_SHARD.replace("]", ", 127.0.0.1:6668]"),
        ),
        Layout.for_system(),
    )


def row(
    backend: str, server: str, address: Address, admin: int = READY, op: int = 2
) -> ServerState:
    return ServerState(backend, server, address, op, admin)


def test_routes_follow_haproxy_and_maintenance_is_no_route() -> None:
    plan = _plan()
    rows = [row("shard1", "master", R1)]
    assert routes_of(plan, rows) == {"shard1": R1}
    assert routes_of(plan, [row("shard1", "master", M1, MAINT)]) == {"shard1": UNROUTED}
    assert "shard1:read/shard1-1" in missing_servers(plan, rows)
    assert (
        missing_servers(
            plan, rows + [row(b, s, M1) for b, ss in plan.backends().items() for s in ss]
        )
        == []
    )


def test_read_pool_rules() -> None:
    plan = _plan()
    roles = {
        M1: NodeFacts("master"),  # the returning old master: says master, not in Sentinel's view
        R1: NodeFacts("master"),  # Sentinel's master
        R2: NodeFacts("slave", R1, "connected"),
    }
    wanted = {(w.backend, w.server): w for w in wanted_pools(plan, {"shard1": R1}, roles, {})}
    assert not wanted["shard1:read", "shard1-1"].ready
    assert wanted["shard1:read", "shard1-1"].reason == "INFO says role master"
    assert wanted["shard1:read", "shard1-2"].reason == "it is the master"
    assert wanted["shard1:read", "shard1-3"].ready
    # the write pool: only Sentinel's master, whatever the others' ROLE says
    assert [w.server for w in wanted.values() if w.backend == "shard1:write" and w.ready] == [
        "shard1-2"
    ]
    cases = [
        (NodeFacts("slave", M1, "connected"), "it follows 127.0.0.1:6666, not the master"),
        (NodeFacts("slave", R1, "connecting"), "its link to 127.0.0.1:6667 is connecting"),
        (None, "INFO replication: no answer"),
    ]
    for role, reason in cases:
        found = wanted_pools(plan, {"shard1": R1}, {R2: role}, {})
        assert next(w for w in found if w.address == R2 and "read" in w.backend).reason.startswith(
            reason
        )
    down = wanted_pools(plan, {"shard1": R1}, roles, {"shard1": {R2}})
    assert next(w for w in down if w.address == R2 and "read" in w.backend).reason == (
        "a Sentinel flags it down"
    )
    nowhere = wanted_pools(plan, {"shard1": UNROUTED}, roles, {})
    assert not any(w.ready for w in nowhere)


def test_pool_changes_put_servers_in_maintenance_first() -> None:
    plan = _plan()
    roles = {R2: NodeFacts("slave", R1, "connected")}
    rows = [
        row("shard1:write", "shard1-1", M1, READY),  # the old master, still ready
        row("shard1:write", "shard1-2", R1, MAINT),
        row("shard1:write", "shard1-3", R2, MAINT),
        row("shard1:read", "shard1-1", M1, MAINT),
        row("shard1:read", "shard1-2", R1, READY),
        row("shard1:read", "shard1-3", R2, READY),
    ]
    changes = pool_changes(wanted_pools(plan, {"shard1": R1}, roles, {}), rows)
    assert [(c.backend, c.server, c.ready) for c in changes] == [
        ("shard1:read", "shard1-2", False),
        ("shard1:write", "shard1-1", False),
        ("shard1:write", "shard1-2", True),
    ]


def test_node_facts_from_info_replication() -> None:
    replica = {"role": "slave", "master_host": "127.0.0.1", "master_port": 6666,
               "master_link_status": "up"}  # fmt: skip
    assert NodeFacts.from_info(replica) == NodeFacts("slave", M1, "connected")
    assert NodeFacts.from_info({**replica, "master_link_status": "down"}) == NodeFacts(
        "slave", M1, "down"
    )
    master = {
        "role": "master",
        "slave0": {"ip": "127.0.0.1", "port": 6667, "state": "online", "offset": 5, "lag": 1},
        "slave1": {"ip": "127.0.0.1", "port": 6668, "state": "wait_bgsave", "lag": 0},
    }
    assert NodeFacts.from_info(master) == NodeFacts("master", lags={R1: 1})
    assert NodeFacts.from_info({"role": "sentinel"}) is None


def test_status_judges_haproxy_against_sentinel() -> None:
    good = HAProxyShard("shard1", "127.0.0.1:22131", str(R1), "UP", [str(R2)], "x:1", 2)
    status = HAProxyStatus("/s", True, shards=[good])
    assert judge(status, {"shard1": str(R1)}) == []
    assert judge(status, {"shard1": str(M1)}) == [
        "shard1: HAProxy routes to 127.0.0.1:6667, Sentinel says 127.0.0.1:6666"
    ]
    status.shards = [HAProxyShard("shard1", "f", None, "MAINT", [], "x:1", 2)]
    assert judge(status, {"shard1": str(R1)}) == [
        "shard1: HAProxy routes it nowhere (server in maintenance)",
        "shard1: no replica takes reads at x:1",
    ]
    down = HAProxyStatus("/s", False, error="admin socket: Connection refused")
    assert judge(down, {}) == ["haproxy: admin socket: Connection refused"]
    status = HAProxyStatus(
        "/s", True, shards=[good], writers=[str(M1), str(R1)], write_frontend="w"
    )
    assert judge(status, {"shard1": str(R1)}) == [
        "write frontend w routes to 127.0.0.1:6666, 127.0.0.1:6667, Sentinel says 127.0.0.1:6667"
    ]
