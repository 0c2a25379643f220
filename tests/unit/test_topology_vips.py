"""Proxy hosts, virtual IPs and keepalived settings of a topology: what validate catches."""

from __future__ import annotations

from pathlib import Path

import pytest

from redkeeper.errors import TopologyError
from redkeeper.lab.lab import default_topology_text
from redkeeper.topology import Topology, parse_topology

BASE = """
sentinel: {nodes: [10.1.0.11:26379, 10.1.0.12:26379, 10.1.0.13:26379], quorum: 2,
           down_after_ms: 1500, failover_timeout_ms: 10000}
shards:
  - {name: a, master: 10.1.0.11:6379, replicas: [10.1.0.12:6379]}
auth: {password_env: RK_TEST_PW}
agent: {metrics: "0.0.0.0:9121"}
proxy:
  mode: redkeeper
"""
PAIR = """  listen: 10.1.0.100:22121
  hosts: [10.1.0.21, 10.1.0.22]
  vips: [{address: 10.1.0.100, router_id: 51}]
"""


def parse(proxy: str, extra: str = "") -> Topology:
    return parse_topology(BASE + proxy + extra, source="t.yaml", base_dir=Path("/srv"))


def problems(proxy: str, extra: str = "") -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse(proxy, extra)
    return [str(p) for p in info.value.problems]


def test_a_proxy_pair_with_a_vip_is_valid() -> None:
    topology = parse(PAIR)
    assert topology.proxy_hosts() == ["10.1.0.21", "10.1.0.22"]
    assert topology.spec.proxy.priorities(0) == [250, 249]
    assert "10.1.0.22" in topology.hosts()
    assert str(topology.health_addresses()["10.1.0.22"]) == "10.1.0.22:9121"
    assert not [w for w in topology.warnings if "proxy" in w.field]


def test_priorities_spread_the_preferred_host_over_several_vips() -> None:
    topology = parse(
        PAIR.replace(
            "vips: [{address: 10.1.0.100, router_id: 51}]",
            "vips: [{address: 10.1.0.100, router_id: 51}, {address: 10.1.0.101, router_id: 52}]",
        ).replace("listen: 10.1.0.100:22121", "listen: 0.0.0.0:22121")
    )
    assert topology.spec.proxy.priorities(0) == [250, 249]
    assert topology.spec.proxy.priorities(1) == [249, 250]


def test_a_single_proxy_host_with_a_vip_is_an_error() -> None:
    found = problems(PAIR.replace("hosts: [10.1.0.21, 10.1.0.22]", "hosts: [10.1.0.21]"))
    assert any("proxy.hosts: a virtual IP needs at least 2 proxy hosts" in p for p in found)


def test_duplicate_router_ids_and_addresses() -> None:
    found = problems(
        PAIR.replace(
            "vips: [{address: 10.1.0.100, router_id: 51}]",
            "vips: [{address: 10.1.0.100, router_id: 51}, {address: 10.1.0.100, router_id: 51}]",
        )
    )
    assert any("proxy.vips[1].router_id: duplicate router_id 51" in p for p in found)
    assert any("proxy.vips[1].address: duplicate address 10.1.0.100" in p for p in found)


def test_a_vip_that_is_a_hosts_own_address() -> None:
    found = problems(
        PAIR.replace("address: 10.1.0.100", "address: 10.1.0.12").replace(
            "listen: 10.1.0.100", "listen: 10.1.0.12"
        )
    )
    assert any("10.1.0.12 is a host's own address (shards[0].replicas[0])" in p for p in found)


def test_a_vip_outside_the_proxy_hosts_subnet_and_a_broadcast_vip() -> None:
    found = problems(PAIR.replace("10.1.0.100", "10.2.0.100"))
    assert any("proxy.hosts[0]: 10.1.0.21 is outside 10.2.0.0/24" in p for p in found)
    found = problems(PAIR.replace("10.1.0.100", "10.1.0.255"))
    assert any("is the broadcast address of 10.1.0.0/24" in p for p in found)


def test_listen_must_be_the_vip_and_health_a_wildcard() -> None:
    found = problems(PAIR.replace("listen: 10.1.0.100", "listen: 10.1.0.21"))
    assert any("proxy.listen: 10.1.0.21 is not a virtual IP" in p for p in found)
    text = BASE.replace('"0.0.0.0:9121"', "127.0.0.1:9121") + PAIR
    with pytest.raises(TopologyError) as info:
        parse_topology(text, source="t.yaml", base_dir=Path("/srv"))
    assert any(p.field == "agent.metrics" and "0.0.0.0:9121" in p.fix for p in info.value.problems)


def test_priorities_and_keepalived_settings() -> None:
    found = problems(PAIR.replace("router_id: 51}", "router_id: 51, priorities: [100]}"))
    assert any("1 priorities for 2 proxy hosts" in p for p in found)
    found = problems(PAIR.replace("router_id: 51}", "router_id: 51, priorities: [100, 100]}"))
    assert any("equal priorities" in p for p in found)
    found = problems(PAIR, "  keepalived: {check_interval_s: 1, check_timeout_ms: 1000}\n")
    assert any("check_timeout_ms: 1000 ms is not below check_interval_s" in p for p in found)
    found = problems(PAIR, "  keepalived: {auth_pass_env: X, auth_pass_file: y}\n")
    assert any("both auth_pass_env and auth_pass_file" in p for p in found)
    spread = parse(PAIR.replace("router_id: 51}", "router_id: 51, priorities: [110, 100]}"))
    assert any(w.field == "proxy.keepalived.routing_weight" for w in spread.warnings)


def test_a_vip_must_be_ipv4_and_the_hosts_addresses() -> None:
    found = problems(PAIR.replace("address: 10.1.0.100", "address: vip.example"))
    assert any("is not an IPv4 address" in p for p in found)
    found = problems(PAIR.replace("hosts: [10.1.0.21, 10.1.0.22]", "hosts: [p1.example, p2]"))
    assert any("'p1.example' is not an IPv4 address" in p for p in found)


def test_vrrp_pass_from_env_is_at_most_8_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    topology = parse(PAIR, "  keepalived: {auth_pass_env: RK_VRRP}\n")
    monkeypatch.setenv("RK_VRRP", "12345678")
    assert topology.vrrp_password() == "12345678"
    monkeypatch.setenv("RK_VRRP", "123456789")
    with pytest.raises(TopologyError, match="keepalived uses the first 8 only"):
        topology.vrrp_password()
    monkeypatch.delenv("RK_VRRP")
    with pytest.raises(TopologyError, match="RK_VRRP is not set"):
        topology.vrrp_password()


def test_no_password_on_other_hosts_is_a_warning() -> None:
    text = (BASE + PAIR).replace("auth: {password_env: RK_TEST_PW}\n", "")
    topology = parse_topology(text, source="t.yaml", base_dir=Path("/srv"))
    assert any(w.field == "auth" and "protected-mode no" in w.message for w in topology.warnings)


def test_the_lab_topology_is_valid() -> None:
    topology = parse_topology(default_topology_text(), source="lab.yaml", base_dir=Path("/x"))
    assert len(topology.proxy_hosts()) == 2
    assert topology.spec.redis.repl_diskless_sync_delay == 0
