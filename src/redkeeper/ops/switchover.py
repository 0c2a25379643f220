"""`redkeeper switchover`: move a shard's master to a caught-up replica on purpose, through
Sentinel, with no acknowledged write lost (docs/operations.md, "Planned switchover").

1. A journal left by an interrupted run is recovered first (`recover`): priorities restored,
   pauses lifted, an old master that still says master made a replica of Sentinel's choice.
   The command's `guard` process does the same as soon as a run dies (SIGKILL, a crash).
2. The master is `core.decide_masters`' verdict (`data.masters`: majority, highest epoch);
   the target is `--to`, else the replica with the highest offset that follows the master
   with its link up and that the failover's Sentinel does not flag down.
3. Steer (`steer`): the original `replica-priority` values are journaled, then changed so that
   Sentinel promotes the target; wait until that Sentinel has read them.
4. Pause: `CLIENT PAUSE WRITE` on the master, timed against Sentinel's INFO (`steer.fire_time`)
   and bounded by `max_pause_ms` (Redis lifts it by itself if this process dies); wait until
   the target's offset equals the master's; pause the target too, so that the writes the
   endpoint sends it once it is master wait until it has a replica instead of failing with
   NOREPLICAS. Any timeout up to here aborts cleanly: unpause, restore, error.
5. `SENTINEL FAILOVER` (the master's pause is first extended to `safety_pause_ms`: an old
   master that ran the waiting writes would lose them at its demotion); wait until the
   verdict names the new master and the endpoint routes it (its /healthz).
6. The old master becomes a replica of the new one, as Sentinel would ~10 s later (REPLICAOF,
   CONFIG REWRITE, CLIENT KILL TYPE normal): a write that waited on it never runs, its client
   gets an error. Once the new master has `min_replicas_to_write` good replicas, both are
   unpaused; priorities restored; the outcome verified; the journal closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redkeeper.core import decide_masters
from redkeeper.data.masters import ask_all, current_masters
from redkeeper.errors import OperationError, SentinelError, UsageError
from redkeeper.model import Address
from redkeeper.ops import steer
from redkeeper.ops.handover import (
    Handover,
    SwitchoverRecord,
    SwitchoverSettings,
    restore_min_replicas,
    wait_failover,
)
from redkeeper.ops.interrupt import Interrupts
from redkeeper.ops.journal import Journal
from redkeeper.ops.nodes import Node
from redkeeper.topology import Topology

__all__ = ["Switchover", "SwitchoverRecord", "SwitchoverResult", "SwitchoverSettings"]

Log = Callable[[str], None]
KIND = "switchover"
DEFAULTS = SwitchoverSettings()


@dataclass
class SwitchoverResult:
    shard: str
    old_master: Address
    new_master: Address
    pause_ms: float | None = None  # writes of the shard held: master paused → both unpaused
    promoted_ms: float | None = None  # SENTINEL FAILOVER → the verdict names the new master
    routed_ms: float | None = None  # SENTINEL FAILOVER → the endpoint routes it
    seconds: float = 0.0
    recovered: str | None = None
    warnings: list[str] = field(default_factory=list)


class Switchover:
    def __init__(
        self,
        topology: Topology,
        *,
        settings: SwitchoverSettings = DEFAULTS,
        log: Log = lambda _m: None,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.topology = topology
        self.password = topology.password()
        self.settings = settings
        self.log = log
        self.interrupts = interrupts or Interrupts()
        self.journal = Journal(topology.state_dir, KIND)

    # ------------------------------------------------------------------ helpers
    def _node(self, address: Address, label: str = "") -> Node:
        return Node(address, self.password, label)

    def _verdict(self, shard: str) -> tuple[Address | None, frozenset[str]]:
        """The verdict's address for `shard` (None without one) and Sentinels' flags."""
        sentinels = self.topology.spec.sentinel.nodes
        view = decide_masters(ask_all(self.topology, self.password, 0.5), sentinels, [shard])
        verdict = view.verdicts[shard]
        return (verdict.address if verdict.ok else None), view.flags.get(shard, frozenset())

    def _sentinel_for(self, shard: str, master: Address) -> Node:
        for node in self.topology.sentinel_nodes():
            sentinel = self._node(node.address, node.name)
            try:
                raw = sentinel.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", shard)
                if isinstance(raw, list) and Address(str(raw[0]), int(raw[1])) == master:
                    return sentinel
            except (OperationError, ValueError, IndexError):
                pass
            sentinel.close()
        raise SentinelError(f"no Sentinel answers with {master} as {shard}'s master (fix: check "
                            "`redkeeper status`, then retry)")  # fmt: skip

    def _choose(
        self, shard: str, master: Address, nodes: dict[Address, Node], to: Address | None,
        sentinel: Node,
    ) -> Address:  # fmt: skip
        seen = steer.replicas(sentinel, shard)
        healthy: dict[Address, int] = {}
        why: dict[Address, str] = {}
        for address, node in nodes.items():
            if address == master:
                continue
            try:
                info = node.replication()
            except OperationError as exc:
                why[address] = str(exc)
                continue
            follows = Address(str(info.get("master_host")), int(info.get("master_port", 0)))
            if info.get("role") != "slave" or follows != master:
                why[address] = f"{address} does not replicate {master}"
            elif info.get("master_link_status") != "up":
                why[address] = f"{address} has its master link down"
            elif address not in seen or seen[address].down:
                why[address] = f"{sentinel.label} does not list {address} as a healthy replica"
            else:
                healthy[address] = int(info.get("slave_repl_offset", 0))
        if to is not None:
            if to not in nodes:
                shown = ", ".join(str(a) for a in nodes)
                raise UsageError(f"--to: {to} is not a node of {shard} (its nodes: {shown})")
            if to == master:
                raise UsageError(f"--to: {to} is already {shard}'s master")
            if to not in healthy:
                raise OperationError(f"cannot switch {shard} to {to}: {why[to]}")
            return to
        if not healthy:
            reasons = "; ".join(why.values()) or "it has no replica"
            raise OperationError(f"{shard} has no healthy replica to switch to: {reasons}")
        order = list(nodes)
        return max(healthy, key=lambda a: (healthy[a], -order.index(a)))

    # ------------------------------------------------------------------ recovery
    def recover(self, *, finish: bool = True) -> tuple[SwitchoverRecord, Address | None] | None:
        """Finish what an interrupted run left (module docstring, step 1): the record and
        Sentinel's master of its shard now, or None when there was no journal. Idempotent;
        `finish=False` (the `guard`) keeps the journal, so that the next run still tells
        whether the interrupted switchover had completed."""
        data = self.journal.read()
        if data is None:
            return None
        record = SwitchoverRecord.from_json(self.journal, data)
        nodes = {a: self._node(a) for a in {record.old_master, record.target, *record.priorities}}
        try:
            failed = steer.Steering(nodes).restore(record.priorities)
            if record.min_replicas is not None:
                try:
                    restore_min_replicas(nodes[record.target], record.min_replicas)
                except OperationError as exc:
                    failed.append(str(exc))
            for message in failed:
                self.log(f"warning: {message}")
            if record.phase == "failover":  # it may still be running: wait for its outcome
                limit = self.topology.spec.sentinel.failover_timeout_ms / 1000
                self.log(f"waiting for the outcome of the failover of {record.shard}")
                wait_failover(
                    self.topology, record.shard, record.old_master, time.monotonic(), limit
                )
            verdict, _flags = self._verdict(record.shard)
            if verdict is None:
                raise SentinelError(
                    f"an interrupted switchover of {record.shard} was found, but Sentinel names "
                    f"no master for it now; priorities restored, {record.old_master} left "
                    "paused until its pause ends (fix: check `redkeeper status`, then rerun)"
                )
            old = nodes[record.old_master]
            if verdict != record.old_master:
                try:
                    if old.replication().get("role") == "master":
                        old.follow(verdict)
                        self.log(f"{record.old_master} made a replica of {verdict}")
                except OperationError as exc:
                    self.log(f"warning: {exc}")
            for node in nodes.values():
                try:
                    node.unpause()
                except OperationError as exc:
                    self.log(f"warning: {exc}")
            if finish:
                self.journal.finish()
        finally:
            for node in nodes.values():
                node.close()
        outcome = "completed" if verdict != record.old_master else "not done"
        self.log(
            f"recovered an interrupted switchover of {record.shard} (phase {record.phase}): "
            f"priorities restored, writes unpaused; the failover was {outcome}, master {verdict}"
        )
        return record, verdict

    # ------------------------------------------------------------------ the switchover
    def run(self, shard: str, to: Address | None = None) -> SwitchoverResult:
        names = [s.name for s in self.topology.shards]
        if shard not in names:
            raise UsageError(f"no shard named {shard!r}; the topology has: {', '.join(names)}")
        started = time.monotonic()
        recovered = self.recover()
        if recovered is not None:
            record, verdict = recovered
            done = verdict is not None and verdict != record.old_master
            if done and record.shard == shard and verdict is not None and to in (None, verdict):
                result = SwitchoverResult(shard, record.old_master, verdict)
                result.recovered = "the interrupted switchover had completed"
                result.seconds = time.monotonic() - started
                return result
        master = current_masters(self.topology, self.password)[shard]
        _, flags = self._verdict(shard)
        if flags & {"o_down", "failover_in_progress"}:
            raise SentinelError(f"a failover of {shard} is under way; retry when it ended")
        spec = self.topology.shard(shard)
        nodes = {a: self._node(a, f"{shard}-{i + 1}") for i, a in enumerate(spec.nodes)}
        sentinel = self._sentinel_for(shard, master)
        try:
            target = self._choose(shard, master, nodes, to, sentinel)
            self.log(f"switching {shard} from {master} to {target} (Sentinel {sentinel.label})")
            record = SwitchoverRecord(shard, master, target, sentinel.address, {}, "steering")
            handover = Handover(
                self.topology,
                record,
                nodes,
                sentinel,
                journal=self.journal,
                settings=self.settings,
                log=self.log,
                interrupts=self.interrupts,
            )
            handover.run()
            times = handover.times
            result = SwitchoverResult(
                shard,
                master,
                handover.new_master,
                pause_ms=round((times.unpaused - times.paused) * 1000, 1),
                promoted_ms=round((times.promoted - times.failover) * 1000, 1),
                routed_ms=None
                if times.routed is None
                else round((times.routed - times.failover) * 1000, 1),
                warnings=handover.warnings,
            )
            if recovered is not None:
                result.recovered = f"recovered a previous run's journal of {recovered[0].shard}"
        finally:
            sentinel.close()
            for node in nodes.values():
                node.close()
        result.seconds = time.monotonic() - started
        return result
