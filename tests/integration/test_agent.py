"""The agent against real Redis, Sentinel and nutcracker processes (issue: the agent)."""

from __future__ import annotations

import difflib
import signal
from functools import partial
from pathlib import Path

import pytest
import redis

from redkeeper.model import Address
from redkeeper.topology import Topology
from tests.support import (
    agent_health,
    agent_metric,
    command,
    keys_on,
    load,
    proxy,
    run_cli,
    running_stack,
    sentinel_master,
    try_set,
    wait_until,
    write_topology,
)

pytestmark = pytest.mark.integration

FAILOVER = 20.0  # seconds: generous bound for a Sentinel failover with down-after 1000 ms


def _promoted(topology: Topology, shard: str, old: Address) -> Address | None:
    """The new master once every answering Sentinel agrees on an address other than `old`."""
    seen = sentinel_master(topology, shard)
    if len(seen) == 1 and str(old) not in seen:
        return Address.parse(seen.pop())
    return None


def _route(topology: Topology, shard: str) -> str:
    return str(agent_health(topology).routes.get(shard))


def _routed(topology: Topology, shard: str, address: Address) -> bool:
    return _route(topology, shard) == str(address)


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    removed = [
        line
        for line in difflib.ndiff(before.splitlines(), after.splitlines())
        if line.startswith("- ")
    ]
    added = [
        line
        for line in difflib.ndiff(before.splitlines(), after.splitlines())
        if line.startswith("+ ")
    ]
    return list(zip(removed, added, strict=True))


def test_steady_cycles_then_kill_master(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path, period_ms=100))
    with running_stack(topology) as stack:
        pool = stack.layout.config("nutcracker.yml")
        before = pool.read_text()
        stat_before = pool.stat()
        nutcracker_pid = stack.record("nutcracker").pid

        # ≥ 10 cycles with nothing to change: no write, no restart.
        start = agent_metric(topology, "redkeeper_cycles_total")
        wait_until(
            lambda: agent_metric(topology, "redkeeper_cycles_total") >= start + 10,
            10,
            what="cycles",
        )
        assert pool.stat().st_mtime_ns == stat_before.st_mtime_ns
        assert pool.stat().st_ino == stat_before.st_ino
        assert stack.record("nutcracker").pid == nutcracker_pid
        assert agent_metric(topology, "redkeeper_restarts_total") == 0

        key = keys_on(topology, "shard1")[0]
        client = proxy(topology)
        assert try_set(client, key, "before")
        old = topology.shard("shard1").master
        stack.signal("shard1-1", signal.SIGKILL)
        new = wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="failover")
        wait_until(lambda: try_set(proxy(topology), key, "after"), 10, what="writes resume")
        assert redis.Redis(port=new.port).get(key) == b"after"
        # /healthz records the route once nutcracker is verified; a write can land first
        wait_until(lambda: _routed(topology, "shard1", new), 10, what="health shows the route")

        after = pool.read_text()
        assert _changed_lines(before, after) == [
            (f"-     - {old}:1 shard1", f"+     - {new}:1 shard1")
        ]
        assert pool.with_name("nutcracker.yml.bak").read_text() == before
        assert agent_metric(topology, "redkeeper_restarts_total") == 1
        assert stack.record("nutcracker").pid != nutcracker_pid


def test_both_masters_killed_cost_one_restart(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path))
    with running_stack(topology) as stack:
        olds = {s.name: s.master for s in topology.spec.shards}
        stack.signal("shard1-1", signal.SIGKILL)
        stack.signal("shard2-1", signal.SIGKILL)
        for shard, old in olds.items():
            new = wait_until(partial(_promoted, topology, shard, old), FAILOVER)
            wait_until(partial(_routed, topology, shard, new), 10, what="repoint")
        for shard in olds:
            key = keys_on(topology, shard)[0]
            wait_until(partial(try_set, proxy(topology), key, "v"), 10, what="writes")
        assert agent_metric(topology, "redkeeper_restarts_total") == 1
        assert agent_metric(topology, "redkeeper_switches_applied_total") == 2


def test_agent_restarted_after_failover_with_a_sentinel_down(tmp_path: Path) -> None:
    """Killed during a failover, restarted after it while one Sentinel is down and
    nutcracker.yml still points at the dead master: converges at start-up."""
    topology = load(write_topology(tmp_path))
    with running_stack(topology) as stack:
        pool = stack.layout.config("nutcracker.yml")
        old = topology.shard("shard1").master
        stack.signal("agent", signal.SIGKILL)
        stack.signal("sentinel-3", signal.SIGKILL)
        stack.signal("shard1-1", signal.SIGKILL)
        new = wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="failover")
        assert f"{old}:1 shard1" in pool.read_text()  # nobody repointed it yet
        stack.restart_process("agent")
        wait_until(lambda: f"{new}:1 shard1" in pool.read_text(), 15, what="repoint at start")
        key = keys_on(topology, "shard1")[0]
        wait_until(lambda: try_set(proxy(topology), key, "v"), 10, what="writes resume")
        health = wait_until(lambda: agent_health(topology), 5)
        assert health.sentinels_answering == 2 and not health.fail_static


def test_listened_sentinel_restarted_mid_failover(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path))
    with running_stack(topology) as stack:
        old = topology.shard("shard1").master
        stack.signal("shard1-1", signal.SIGKILL)
        stack.signal("sentinel-1", signal.SIGKILL)
        new = wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="failover")
        stack.restart_process("sentinel-1")
        wait_until(lambda: _route(topology, "shard1") == str(new), 10, what="repoint")
        wait_until(lambda: agent_health(topology).sentinel_links_up == 3, 15, what="link back up")
        key = keys_on(topology, "shard1")[0]
        wait_until(lambda: try_set(proxy(topology), key, "v"), 10, what="writes resume")


def test_no_sentinel_majority_fails_static(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path, period_ms=200))
    with running_stack(topology) as stack:
        pool = stack.layout.config("nutcracker.yml")
        before = pool.read_text()
        old = topology.shard("shard1").master
        stack.signal("sentinel-2", signal.SIGKILL)
        stack.signal("sentinel-3", signal.SIGKILL)
        # The lone Sentinel forces a failover without agreement: it now reports a new master.
        lone = topology.spec.sentinel.nodes[0]
        command(lone, "SENTINEL", "FAILOVER", "shard1")
        wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="forced failover")
        wait_until(lambda: agent_health(topology).fail_static, 10, what="fail static")
        cycles = agent_metric(topology, "redkeeper_cycles_total")
        wait_until(lambda: agent_metric(topology, "redkeeper_cycles_total") >= cycles + 3, 10)
        assert pool.read_text() == before
        assert agent_metric(topology, "redkeeper_fail_static") == 1
        report = run_cli("status", "-c", topology.source, "--json")
        assert report.returncode == 1
        assert "fail static" in report.stdout
        # Majority back: the agent follows the new configuration.
        stack.restart_process("sentinel-2")
        stack.restart_process("sentinel-3")
        new = wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="agreement")
        wait_until(lambda: _route(topology, "shard1") == str(new), 15, what="repoint")
        assert not agent_health(topology).fail_static


def test_sentinel_announcing_an_address_outside_the_inventory_is_refused(
    tmp_path: Path,
) -> None:
    topology = load(write_topology(tmp_path, period_ms=200))
    with running_stack(topology) as stack:
        pool = stack.layout.config("nutcracker.yml")
        before = pool.read_text()
        mtime = pool.stat().st_mtime_ns
        rogue = topology.shard("shard2").master  # a real Redis, but not a node of shard1
        for node in topology.spec.sentinel.nodes:
            command(node, "SENTINEL", "REMOVE", "shard1")
            command(node, "SENTINEL", "MONITOR", "shard1", rogue.host, str(rogue.port), "2")
        wait_until(
            lambda: any("outside-inventory" in r for r in agent_health(topology).refusals),
            10,
            what="refusal",
        )
        assert agent_metric(topology, "redkeeper_refusals_total") >= 1
        assert pool.read_text() == before and pool.stat().st_mtime_ns == mtime
        log = (stack.state_dir / "agent" / "agent.log").read_text()
        assert "not a node of shard1" in log and "WARNING" in log
