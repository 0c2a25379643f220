"""The redkeeper proxy process itself: workers, SIGHUP, saved routes, no orphans.

- `workers: 2`: two processes serve the port (SO_REUSEPORT), a failover reaches both, and
  SIGKILL of the supervisor leaves no worker behind (their stdin closes);
- SIGHUP re-reads the topology: a valid one (a shard removed) changes placement in place while
  a client stays connected; an invalid one is logged and changes nothing;
- the routes of the last decision are saved, and a proxy restarted while no Sentinel answers
  serves them (fail static across restarts).
"""

from __future__ import annotations

import os
import re
import signal
import time
from functools import partial
from pathlib import Path

import pytest
import redis

from redkeeper.data.ring import ring_for, shard_names
from redkeeper.process import pid_alive
from redkeeper.stack import LocalStack
from redkeeper.topology import Topology
from tests.support import load, running_stack, wait_until, write_topology

pytestmark = pytest.mark.integration


def _workers(supervisor: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == supervisor and b"redkeeper.endpoint.workers" in cmdline:
            found.append(int(entry.name))
    return found


def _key_on(topology: Topology, shard: str) -> bytes:
    ring = ring_for(topology)
    names = shard_names(ring)
    return next(k for i in range(1000) if names[ring.index_of(k := f"k{i}".encode())] == shard)


def test_workers_serve_together_follow_failovers_and_die_with_the_supervisor(
    tmp_path: Path,
) -> None:
    path = write_topology(tmp_path, mode="redkeeper")
    path.write_text(
        path.read_text().replace(
            "  mode: redkeeper", "  mode: redkeeper\n  redkeeper: {workers: 2}"
        )
    )
    topology = load(path)
    with running_stack(topology) as stack:
        supervisor = stack.record("proxy").pid
        workers = wait_until(lambda: len(w := _workers(supervisor)) == 2 and w, 10, what="2")
        port = topology.spec.proxy.listen.port
        key = _key_on(topology, "shard1")
        clients = [redis.Redis(port=port) for _ in range(8)]  # spread over both workers
        assert all(c.set(key, "v") for c in clients)
        stack.signal("shard1-1", signal.SIGKILL)
        for client in clients:  # every worker routes to the new master
            wait_until(partial(_set, client, key), 30, what="writes after the failover")
        os.kill(supervisor, signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(w) for w in workers), 15, what="workers exit")


def _set(client: redis.Redis, key: bytes) -> bool:
    try:
        return bool(client.set(key, "after"))
    except redis.RedisError:
        return False


def test_sighup_reloads_placement_in_place_and_refuses_a_broken_file(tmp_path: Path) -> None:
    path = write_topology(tmp_path, mode="redkeeper")
    topology = load(path)
    with running_stack(topology) as stack:
        client = redis.Redis(port=topology.spec.proxy.listen.port)
        key = _key_on(topology, "shard2")
        assert client.set(key, "on shard2")
        original = path.read_text()
        pid = stack.record("proxy").pid
        path.write_text(original.replace("proxy:", "proxy: [broken"))
        os.kill(pid, signal.SIGHUP)
        log = stack.layout.log("proxy")
        wait_until(lambda: "SIGHUP: the topology was not reloaded" in log.read_text(), 10)
        assert client.get(key) == b"on shard2"  # nothing changed
        # shard2 removed: every key now belongs to shard1 (its master does not hold the key)
        one_shard = re.sub(r"  - \{name: shard2.*\n", "", original)
        path.write_text(one_shard)
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: "topology reloaded" in log.read_text(), 10)
        assert client.get(key) is None  # same connection, new placement
        assert stack.record("proxy").pid == pid
        path.write_text(original)  # `down` reads it


def test_a_restarted_proxy_serves_the_saved_routes_without_sentinel(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path, mode="redkeeper"))
    with running_stack(topology) as stack:
        port = topology.spec.proxy.listen.port
        key = _key_on(topology, "shard1")
        assert redis.Redis(port=port).set(key, "v")
        assert (topology.state_dir / "proxy-routes.json").exists()
        for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
            stack.signal(name, signal.SIGKILL)
        stack.signal("proxy", signal.SIGKILL)
        wait_until(lambda: _gone(stack, "proxy"), 10, what="the proxy gone")
        started = time.monotonic()
        stack.restart_process("proxy")
        client = redis.Redis(port=port, socket_timeout=2)
        wait_until(lambda: _get(client, key) == b"v", 15, what="saved routes served")
        assert time.monotonic() - started < 15
        for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
            stack.restart_process(name)


def _gone(stack: LocalStack, name: str) -> bool:
    stack.reap()  # our own child: collect it
    return not stack.record(name).alive()


def _get(client: redis.Redis, key: bytes) -> bytes | None:
    try:
        value = client.get(key)
    except redis.RedisError:
        return None
    return value if isinstance(value, bytes) else None


def _gets(node_port: int) -> int:
    stats = redis.Redis(port=node_port).info("commandstats")
    entry = stats.get("cmdstat_get", {})
    return int(entry.get("calls", 0)) if isinstance(entry, dict) else 0


def test_replica_reads_use_only_healthy_replicas(tmp_path: Path) -> None:
    path = write_topology(tmp_path, mode="redkeeper", shards=1)
    text = path.read_text().replace(
        "  mode: redkeeper",
        "  mode: redkeeper\n  redkeeper: {read_from: replica-preferred, max_replica_lag_s: 2}",
    )
    path.write_text(text)
    topology = load(path)
    shard = topology.shards[0]
    with running_stack(topology) as stack:
        client = redis.Redis(port=topology.spec.proxy.listen.port, socket_timeout=2)
        assert client.set("r", "v")
        wait_until(lambda: "Reads of shard1 from" in stack.layout.log("proxy").read_text(), 10)
        before = {n.port: _gets(n.port) for n in shard.nodes}
        assert all(client.get("r") == b"v" for _ in range(200))  # replicas have caught up
        served = {port: _gets(port) - count for port, count in before.items()}
        assert served[shard.master.port] == 0, served  # reads went to the replicas only
        assert sum(served.values()) >= 200 and all(served[r.port] > 0 for r in shard.replicas), (
            served
        )
        # A frozen replica leaves the read set (its INFO stops answering): no read times out.
        frozen = shard.replicas[0]
        stack.signal("shard1-2", signal.SIGSTOP)
        try:
            log = stack.layout.log("proxy")
            wait_until(lambda: f"Reads of shard1 from {shard.replicas[1]}\n" in log.read_text(),
                       15, what="the frozen replica leaves the read set")  # fmt: skip
            started = time.monotonic()
            assert all(client.get("r") == b"v" for _ in range(200))
            assert time.monotonic() - started < 5
        finally:
            stack.signal("shard1-2", signal.SIGCONT)
        assert frozen.port != shard.master.port
