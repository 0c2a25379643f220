"""A reshard's shard on the local stack: bring the added one up and make Sentinel monitor
it, or retire the removed one. Through the same code as `up` and `render`.

- `up`: each new node's redis.conf is rendered by `render.render_redis` and written by
  `render.disk.write_rendered` (what `up` does), started by `stack.launch.launch` (recorded in
  stack.json before it can escape: `down` stops it) — the master first — and waited for
  (`stack.ready.replicas_linked`). Idempotent: a node already running is kept.
- `monitor`: every Sentinel gets `SENTINEL MONITOR` and the settings `render_sentinel` writes
  for every shard (`render.sentinel_shard_settings`); ready when `stack.ready.sentinels_ready`
  says so for the new topology (monitored, replicas and other Sentinels known, CKQUORUM).
- `unmonitor` / `stop`: `SENTINEL REMOVE` on every Sentinel; the nodes stopped (SIGTERM,
  bounded) and their records dropped; their working dirs (data) are kept.

On hosts these steps are the operator's (docs/operations.md, "Resharding on hosts").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

from redkeeper.errors import OperationError
from redkeeper.model import Address
from redkeeper.ops.nodes import Node, NodeReplyError
from redkeeper.process import find_binary, port_open, stop_pid
from redkeeper.render import render_redis, sentinel_shard_settings
from redkeeper.render.disk import write_rendered
from redkeeper.stack import LocalStack, ready, state
from redkeeper.stack.launch import launch
from redkeeper.topology import RedisNode, Topology
from redkeeper.waiting import poll

Log = Callable[[str], None]
PORT_TIMEOUT = 10.0
LINK_TIMEOUT = 20.0
SENTINEL_TIMEOUT = 30.0


class ShardProcesses:
    """One shard's processes and its Sentinel monitoring (module docstring)."""

    def __init__(self, stack: LocalStack, topology: Topology, shard: str, log: Log) -> None:
        self.stack = stack
        self.topology = topology  # a topology that has `shard`
        self.shard = topology.shard(shard)
        self.password = topology.password()
        self.log = log
        self.nodes: list[RedisNode] = [n for n in topology.redis_nodes() if n.shard == shard]

    def _live(self) -> dict[str, int]:
        return {r.name: r.pid for r in state.read_records(self.stack.state_dir) if r.alive()}

    def up(self) -> None:
        live = self._live()
        todo = [n for n in self.nodes if n.name not in live]
        taken = [f"{n.name} {n.address}" for n in todo if port_open(n.address.host, n.address.port)]
        if taken:
            raise OperationError(
                f"port(s) in use: {', '.join(taken)} (fix: stop what holds them, or give the "
                "new shard other addresses)"
            )
        masters = {self.shard.name: self.shard.master}
        layout = self.stack.layout
        files = [render_redis(self.topology, n, layout, masters, self.password) for n in todo]
        write_rendered(files, backup=False)
        binary = find_binary("redis-server")
        for node in sorted(todo, key=lambda n: n.address != self.shard.master):
            conf = layout.self_rewriting_config(node.name)
            launch(self.stack.state_dir, layout, node.name, [binary, str(conf)])
            if poll(partial(ready.port_ready, node.address), PORT_TIMEOUT) is not None:
                raise OperationError(
                    f"{node.name} did not open {node.address} within {PORT_TIMEOUT:.0f} s "
                    f"(see `redkeeper logs {node.name}`)"
                )
            self.log(f"started {node.name} ({node.address})")
        linked = partial(ready.replicas_linked, self.nodes, masters, self.password)
        reason = poll(linked, LINK_TIMEOUT, 0.05)
        if reason is not None:
            raise OperationError(f"{self.shard.name}: {reason} after {LINK_TIMEOUT:.0f} s")

    def monitor(self) -> None:
        name, master = self.shard.name, self.shard.master
        quorum = str(self.topology.spec.sentinel.quorum)
        settings = sentinel_shard_settings(self.topology, self.password)
        for sentinel in self.topology.sentinel_nodes():
            with Node(sentinel.address, self.password, sentinel.name) as node:
                if self._monitored(node) is None:
                    node.call("SENTINEL", "MONITOR", name, master.host, str(master.port), quorum)
                node.call("SENTINEL", "SET", name, *[w for pair in settings for w in pair])
        self.log(f"every Sentinel monitors {name} (master {master})")
        check = partial(
            ready.sentinels_ready, self.topology, self.topology.sentinel_nodes(), self.password
        )
        reason = poll(check, SENTINEL_TIMEOUT, 0.2)
        if reason is not None:
            raise OperationError(
                f"Sentinels not ready for {name} after {SENTINEL_TIMEOUT:.0f} s: {reason}"
            )

    def _monitored(self, node: Node) -> Address | None:
        try:
            raw = node.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.shard.name)
        except NodeReplyError:
            return None
        if not isinstance(raw, list) or len(raw) != 2:
            return None
        return Address(str(raw[0]), int(raw[1]))

    def unmonitor(self) -> None:
        for sentinel in self.topology.sentinel_nodes():
            with Node(sentinel.address, self.password, sentinel.name) as node:
                if self._monitored(node) is not None:
                    node.call("SENTINEL", "REMOVE", self.shard.name)
        self.log(f"no Sentinel monitors {self.shard.name} any more")

    def stop(self) -> None:
        names = {n.name for n in self.nodes}
        for record in state.read_records(self.stack.state_dir):
            if record.name in names and record.alive():
                stop_pid(record.pid, record.start_ticks, self.stack.timings.stop)
                self.log(f"stopped {record.name} (pid {record.pid}); its data dir is kept")
        state.update(
            self.stack.state_dir,
            lambda s: dataclasses.replace(
                s, processes=tuple(r for r in s.processes if r.name not in names)
            ),
        )
