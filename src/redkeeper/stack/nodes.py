"""`redkeeper start|stop|restart NODE…`: one process of a running local stack at a time.

A node is started again with the command line recorded when `up` started it, recorded
before it can escape (`launch`), and waited for (bounded) until it is really back: a Redis
node is the master Sentinel names or a replica of it with its link up that every answering
Sentinel lists and none flags down; a Sentinel monitors every shard and knows the other
Sentinels; the agent answers /healthz and its proxy serves. `stop` keeps the record, so
`start` can use it and `down` still knows the node.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

from redkeeper.errors import ProcessError, StackError, UsageError
from redkeeper.process import ManagedProcess, ProcessRecord, stop_pid
from redkeeper.render import haproxy_plan
from redkeeper.stack import ready, state
from redkeeper.stack.launch import launch
from redkeeper.stack.local import LocalStack
from redkeeper.stack.teardown import STAGES
from redkeeper.waiting import poll

Log = Callable[[str], None]


class NodeControl:
    def __init__(self, stack: LocalStack, log: Log) -> None:
        self.stack = stack
        self.log = log
        self.topology = stack.topology
        self.password = self.topology.password()

    # ------------------------------------------------------------------ names
    def records(self, names: Sequence[str]) -> list[ProcessRecord]:
        """The records of `names` (UsageError for a name the stack does not have)."""
        recorded = {r.name: r for r in state.read_records(self.stack.state_dir)}
        if not recorded:
            raise StackError(
                f"nothing running from {self.stack.state_dir} (fix: `redkeeper up` first)"
            )
        valid = [n for n in self.stack.process_names() if n in recorded]
        found: list[ProcessRecord] = []
        for name in dict.fromkeys(names):
            if name == "nutcracker" and "agent" in recorded:
                raise UsageError(
                    "nutcracker is run (and restarted) by the agent: use `redkeeper restart agent`"
                )
            if name not in recorded:
                raise UsageError(f"no node named {name!r}; the stack has: {', '.join(valid)}")
            found.append(recorded[name])
        return found

    # ------------------------------------------------------------------ stop
    def stop(self, names: Sequence[str]) -> list[ProcessRecord]:
        """Stop the named processes (agent first, Redis last); their records stay."""
        records = self.records(names)
        stopped: list[ProcessRecord] = []
        for in_stage in STAGES:
            for record in [r for r in records if in_stage(r) and r not in stopped]:
                stopped.append(record)
                if not record.alive():
                    self.log(f"{record.name} is not running")
                    continue
                started = time.monotonic()
                stop_pid(record.pid, record.start_ticks, self.stack.timings.stop)
                took = time.monotonic() - started
                self.log(f"stopped {record.name} (pid {record.pid}) in {took:.1f} s")
        return stopped

    # ------------------------------------------------------------------ start
    def start(self, names: Sequence[str]) -> list[ProcessRecord]:
        """Start the named processes that are not running and wait until they are ready:
        Redis nodes first (started together, then waited for), then Sentinels, then the
        rest."""
        order = self.stack.process_names()
        todo: list[ProcessRecord] = []
        for record in sorted(self.records(names), key=lambda r: order.index(r.name)):
            if record.alive():
                self.log(f"{record.name} is already running (pid {record.pid})")
            else:
                todo.append(record)
        redis = {n.name for n in self.topology.redis_nodes()}
        sentinels = {n.name for n in self.topology.sentinel_nodes()}
        phases = [
            [r for r in todo if r.name in redis],
            [r for r in todo if r.name in sentinels],
            *([r] for r in todo if r.name not in redis | sentinels),
        ]
        started: list[ProcessRecord] = []
        for phase in phases:
            launched = []
            for record in phase:
                proc = launch(
                    self.stack.state_dir, self.stack.layout, record.name, list(record.argv)
                )
                self.log(f"started {record.name} (pid {proc.record.pid})")
                launched.append((proc, time.monotonic()))
            for proc, begun in launched:
                self._wait_ready(proc, begun)
                started.append(proc.record)
        return started

    def _wait_ready(self, proc: ManagedProcess, begun: float) -> None:
        check, bound, ready_text = self._readiness(proc.name)

        def checked() -> str | None:
            if proc.exited() is not None:
                raise ProcessError(
                    f"{proc.name} exited at start; last log lines:\n{proc.tail_log()}"
                )
            return check()

        reason = poll(checked, max(0.0, begun + bound - time.monotonic()), interval=0.1)
        if reason is not None:
            raise ProcessError(
                f"{proc.name} started (pid {proc.record.pid}) but is not ready after "
                f"{bound:.0f} s: {reason} (see `redkeeper logs {proc.name}`)"
            )
        self.log(f"{proc.name} ready in {time.monotonic() - begun:.1f} s ({ready_text})")

    def restart(self, names: Sequence[str]) -> list[ProcessRecord]:
        self.stop(names)
        return self.start(names)

    def _readiness(self, name: str) -> tuple[Callable[[], str | None], float, str]:
        """(check, bound in seconds, what ready means) for process `name`."""
        timings = self.stack.timings
        for node in self.topology.redis_nodes():
            if node.name == name:
                check = partial(ready.redis_node_ready, self.topology, node, self.password)
                return (
                    check,
                    timings.replication + 15.0,  # + Sentinel's 8 s before it demotes
                    "in its shard, and every answering Sentinel sees it",
                )
        for sentinel in self.topology.sentinel_nodes():
            if sentinel.name == name:
                check = partial(ready.sentinels_ready, self.topology, [sentinel], self.password)
                return check, timings.sentinels, "monitors every shard, knows the others"
        listen = self.topology.spec.proxy.listen
        if name == "agent":
            check = partial(ready.agent_ready, self.topology, self.password)
            return check, timings.proxy + 5.0, "healthy, its nutcracker serves"
        if name == "nutcracker":
            return partial(ready.proxy_serving, listen, self.password), timings.proxy, "serving"
        frontend = haproxy_plan(self.topology, self.stack.layout).shards[0].frontend
        return partial(ready.port_ready, frontend), timings.proxy, "listening"
