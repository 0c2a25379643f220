"""Steady mode with real redis-server, redis-sentinel, nutcracker and HAProxy processes.

The issue's claims, each measured: a failover of one shard costs the clients of the other
shards nothing (and the same scenario in restart mode does cost them), a returning old master
gets no write through redkeeper, the read frontend follows the replicas, and an HAProxy
restart is repaired by the agent.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import redis

from redkeeper.errors import ApplyError
from redkeeper.model import Address
from redkeeper.proxy.base import UNROUTED
from redkeeper.proxy.haproxy import RuntimeAPI, ServerState
from redkeeper.proxy.haproxy.pools import index_rows, routes_of
from redkeeper.rediskit import sync_client
from redkeeper.render import Layout, haproxy_plan
from redkeeper.render.haproxy import HAProxyPlan
from redkeeper.stack import LocalStack
from redkeeper.topology import Topology
from tests.support import (
    agent_metric,
    command,
    keys_on,
    load,
    run_cli,
    running_stack,
    sentinel_master,
    wait_until,
    write_topology,
)

pytestmark = pytest.mark.integration

FAILOVER = 20.0  # seconds: bound on a Sentinel failover with down-after 1000 ms
SPLIT_BRAIN_GUARD = "redis:\n  min_replicas_to_write: 0\n"  # the old master accepts writes


def _plan(topology: Topology) -> HAProxyPlan:
    return haproxy_plan(topology, Layout.for_local(topology.state_dir))


def _rows(topology: Topology) -> list[ServerState]:
    return asyncio.run(RuntimeAPI(_plan(topology).admin_socket).servers_state())


def _routes(topology: Topology) -> dict[str, Address]:
    try:
        return routes_of(_plan(topology), _rows(topology))
    except ApplyError:  # HAProxy (re)starting
        return {}


def _promoted(topology: Topology, shard: str, old: Address) -> Address | None:
    seen = sentinel_master(topology, shard)
    if len(seen) == 1 and str(old) not in seen:
        return Address.parse(seen.pop())
    return None


def _readers(topology: Topology, shard: str) -> set[Address]:
    """The nodes HAProxy would send a new read connection of `shard` to."""
    plan = _plan(topology).shard(shard)
    assert plan.read_backend is not None
    have = index_rows(_rows(topology))
    return {n.address for n in plan.nodes if have[(plan.read_backend, n.name)].routable}


def _answering_ports(address: Address, connections: int) -> list[int]:
    """`connections` fresh connections to a frontend: the tcp_port of the Redis behind each."""
    ports = []
    for _ in range(connections):
        with sync_client(address, timeout=2.0) as client:
            ports.append(int(client.info("server")["tcp_port"]))
    return ports


def _set_ok(address: Address, key: str) -> bool:
    try:
        with sync_client(address, timeout=1.0) as client:
            return bool(client.set(key, "v"))
    except (redis.RedisError, OSError):
        return False


@dataclass
class Writers:
    """Clients connected to the proxy, each writing its own keys in a loop."""

    listen: Address
    keys: list[str]
    clients: int = 4
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, index: int) -> None:
        client = sync_client(self.listen, timeout=2.0)
        i = 0
        while not self._stop.is_set():
            key = self.keys[(index + i * self.clients) % len(self.keys)]
            i += 1
            try:
                client.set(key, str(i))
                with self._lock:
                    self.ok += 1
            except (redis.RedisError, OSError) as exc:
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.01)
        client.close()

    @contextmanager
    def running(self) -> Iterator[Writers]:
        threads = [threading.Thread(target=self._run, args=(i,)) for i in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: self.ok >= 200, 10, what="writers under way")
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(5)


@dataclass
class FailoverFigures:
    ok: int
    errors: list[str]
    nutcracker_pid_same: bool
    new_master: Address


def _kill_shard1_with_shard2_writers(stack: LocalStack, topology: Topology) -> FailoverFigures:
    """SIGKILL shard1's master while 4 clients write keys of shard2 only through the proxy;
    shard1's writes must resume on the new master."""
    listen = topology.spec.proxy.listen
    pid = stack.record("nutcracker").pid
    old = topology.shard("shard1").master
    shard1_key = keys_on(topology, "shard1", 1, prefix="s1-")[0]
    with Writers(listen, keys_on(topology, "shard2", 200, prefix="s2-")).running() as writers:
        stack.signal("shard1-1", signal.SIGKILL)
        new = wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="failover")
        wait_until(lambda: _set_ok(listen, shard1_key), 10, what="shard1 writes resume")
        time.sleep(0.5)  # keep writing a little after the switch
    assert redis.Redis(port=new.port).get(shard1_key) == b"v"
    return FailoverFigures(writers.ok, writers.errors, stack.record("nutcracker").pid == pid, new)


def test_steady_failover_costs_other_shards_nothing(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path, mode="steady"))
    with running_stack(topology) as stack:
        figures = _kill_shard1_with_shard2_writers(stack, topology)
        print(f"\nsteady: shard2 writers {figures.ok} ok, {len(figures.errors)} errors")
        assert figures.errors == []
        assert figures.nutcracker_pid_same
        assert _routes(topology)["shard1"] == figures.new_master
        assert agent_metric(topology, "redkeeper_restarts_total") == 0
        nutcracker_yml = stack.layout.config("nutcracker.yml")
        assert nutcracker_yml.with_name("nutcracker.yml.bak").exists() is False


def test_restart_mode_same_failover_cuts_every_client(tmp_path: Path) -> None:
    """The comparison figure: restarting nutcracker drops the other shard's clients too."""
    topology = load(write_topology(tmp_path))
    with running_stack(topology) as stack:
        figures = _kill_shard1_with_shard2_writers(stack, topology)
        print(f"\nrestart: shard2 writers {figures.ok} ok, {len(figures.errors)} errors")
        assert not figures.nutcracker_pid_same
        assert len(figures.errors) >= 1  # every connected client sees about one error


def test_returning_old_master_gets_no_write(tmp_path: Path) -> None:
    """SIGSTOP the master past down-after; after the failover SIGCONT it: it says role:master
    (and accepts writes) for seconds, yet nothing written through redkeeper reaches it. Once
    Sentinel has turned it into a replica, it joins the read pool."""
    topology = load(
        write_topology(
            tmp_path,
            mode="steady",
            shards=1,
            write_frontend=True,
            haproxy="check_interval_ms: 200",
            extra=SPLIT_BRAIN_GUARD,
        )
    )
    plan = _plan(topology)
    assert plan.write_frontend is not None and plan.write_backend is not None
    listen = topology.spec.proxy.listen
    with running_stack(topology) as stack:
        old = topology.shard("shard1").master
        stack.signal("shard1-1", signal.SIGSTOP)
        try:
            new = wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="failover")
            wait_until(lambda: _routes(topology).get("shard1") == new, 10, what="repoint")
        finally:
            stack.signal("shard1-1", signal.SIGCONT)
        assert command(old, "ROLE")[0] == "master"  # type: ignore[index]
        assert command(old, "SET", "control", "x") is True  # a naive router would write here
        # In the write backend it stays in maintenance (HAProxy does not even check it).
        old_server = plan.shards[0].nodes[0].name
        assert index_rows(_rows(topology))[(plan.write_backend, old_server)].maint

        written = []
        deadline = time.monotonic() + 3.0
        i = 0
        while time.monotonic() < deadline:
            for via in (listen, plan.write_frontend):
                key = f"after:{i}"
                i += 1
                if _set_ok(via, key):
                    written.append(key)
        assert command(old, "ROLE")[0] == "master"  # type: ignore[index]
        leaked = command(old, "KEYS", "after:*")
        print(f"\n{len(written)} keys written after SIGCONT; {leaked!r} on the old master")
        assert len(written) >= 100
        assert leaked == []
        with sync_client(new) as client:
            assert client.exists(*written) == len(written)

        # Sentinel demotes it (~8-10 s); then it follows the new master and takes reads.
        wait_until(lambda: old in _readers(topology, "shard1"), 30, what="old master reads")
        read = plan.shards[0].read_frontend
        assert read is not None
        replicas = {a.port for a in topology.shard("shard1").nodes} - {new.port}
        assert set(_answering_ports(read, 12)) == replicas


def test_read_frontend_spreads_reads_and_drops_a_broken_link(tmp_path: Path) -> None:
    topology = load(
        write_topology(tmp_path, mode="steady", shards=1, haproxy="check_interval_ms: 200")
    )
    with running_stack(topology):
        shard = topology.shard("shard1")
        read = _plan(topology).shards[0].read_frontend
        assert read is not None
        replica_ports = {a.port for a in shard.replicas}
        assert set(_answering_ports(read, 12)) == replica_ports  # never the master
        report = run_cli("status", "-c", topology.source, "--json")
        assert report.returncode == 0, report.stdout + report.stderr
        haproxy = json.loads(report.stdout)["haproxy"]
        assert haproxy["up"] and haproxy["shards"][0]["route"] == str(shard.master)
        assert sorted(haproxy["shards"][0]["readers"]) == sorted(map(str, shard.replicas))
        broken = shard.replicas[0]
        nowhere = Address("127.0.0.1", 1)  # nothing listens: its link goes down
        command(broken, "REPLICAOF", nowhere.host, str(nowhere.port))
        try:
            wait_until(lambda: broken not in _readers(topology, "shard1"), 5, what="dropped")
            assert set(_answering_ports(read, 8)) == {shard.replicas[1].port}
        finally:
            command(broken, "REPLICAOF", shard.master.host, str(shard.master.port))
        wait_until(lambda: broken in _readers(topology, "shard1"), 10, what="back in the pool")


def test_haproxy_restart_is_repaired_by_the_agent(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path, mode="steady"))
    listen = topology.spec.proxy.listen
    with running_stack(topology) as stack:
        old = topology.shard("shard1").master
        stack.signal("shard1-1", signal.SIGKILL)
        new = wait_until(lambda: _promoted(topology, "shard1", old), FAILOVER, what="failover")
        wait_until(lambda: _routes(topology).get("shard1") == new, 10, what="repoint")
        wait_until(lambda: _readers(topology, "shard2"), 5, what="shard2 read pool")
        shard2_readers = _readers(topology, "shard2")
        nutcracker_pid = stack.record("nutcracker").pid
        haproxy_pid = stack.record("haproxy").pid

        stack.signal("agent", signal.SIGSTOP)  # HAProxy restarts while nobody repairs it
        try:
            stack.signal("haproxy", signal.SIGKILL)
            wait_until(lambda: not stack.record("haproxy").alive(), 5, what="haproxy gone")
            stack.restart_process("haproxy")
            wait_until(lambda: _routes(topology), 5, what="admin socket")
            # Fail closed: no shard routed (the rendered config starts every server in
            # maintenance), the read pools come back from the server-state file.
            assert set(_routes(topology).values()) == {UNROUTED}
            assert _readers(topology, "shard2") == shard2_readers
        finally:
            stack.signal("agent", signal.SIGCONT)
        masters = {"shard1": new, "shard2": topology.shard("shard2").master}
        wait_until(lambda: _routes(topology) == masters, 10, what="agent re-applies")
        for shard in ("shard1", "shard2"):
            key = keys_on(topology, shard, 1, prefix="r-")[0]
            wait_until(partial(_set_ok, listen, key), 10, what=f"{shard} writes")
        assert stack.record("nutcracker").pid == nutcracker_pid
        assert stack.record("haproxy").pid != haproxy_pid
        log = (stack.state_dir / "agent" / "agent.log").read_text()
        assert "HAProxy no longer routes shard1" in log
        assert agent_metric(topology, "redkeeper_restarts_total") == 0
