"""`redkeeper reshard add|remove|abort`: add or remove a shard of a running local stack
online, journaled and resumable (docs/operations.md, "Resharding").

The phases, each journaled (STATE/ops/reshard.json) before it changes anything:

- `planned`: the plan (`reshard_plan`: SCAN of every master + both rings). Refused: a change
  that moves keys between shards that also receive keys (unequal weights, modula:
  `reshard_model.build_context`), a shard holding stray keys, no Sentinel majority
  (SentinelError), a shard without a healthy master;
- `shard-up` (add): the new shard started and monitored by Sentinel (`reshard_shard`); its
  master must be empty;
- `copying` → `switching` → `signaled` → `switched`: copy, cutover, switch
  (`reshard_cutover`);
- `deleted`: the old copies of the moved keys deleted; remove then retires the shard
  (Sentinel forgets it, its processes stop, its data dir stays); the journal is closed.

Running the same command again after a run was killed at any point (even SIGKILL) resumes
from the journal; `abort` rolls back a reshard whose endpoint switch has not begun.
"""

from __future__ import annotations

import time

from redkeeper.data.masters import current_masters
from redkeeper.errors import OperationError, RedkeeperError, UsageError
from redkeeper.ops import reshard_cutover as data
from redkeeper.ops import topofile
from redkeeper.ops.interrupt import Interrupts, reached
from redkeeper.ops.journal import Journal
from redkeeper.ops.nodes import Node
from redkeeper.ops.reshard_model import (
    KIND,
    Context,
    Hooks,
    ReshardRecord,
    ReshardResult,
    ReshardSettings,
    build_context,
    require_file,
    shard_json,
)
from redkeeper.ops.reshard_plan import Plan, dbsize, scan_plan
from redkeeper.ops.reshard_shard import ShardProcesses
from redkeeper.ops.reshard_switch import RingSwitch
from redkeeper.topology import Topology
from redkeeper.topology.schema import ShardSpec

DEFAULTS = ReshardSettings()
Change = ShardSpec | str  # add: the new shard; remove: its name


class Reshard:
    def __init__(
        self,
        topology: Topology,
        *,
        settings: ReshardSettings = DEFAULTS,
        hooks: Hooks | None = None,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.path = require_file(topology)
        self.topology = topology
        self.settings = settings
        self.hooks = hooks or Hooks()
        self.interrupts = interrupts or Interrupts()
        self.journal = Journal(topology.state_dir, KIND)

    # ------------------------------------------------------------------ records
    def _context(self, record: ReshardRecord) -> Context:
        return build_context(
            self.topology, record, self.journal, self.settings, self.hooks, self.interrupts
        )

    def _fresh(self, op: str, change: Change) -> ReshardRecord:
        shards = list(self.topology.spec.shards)
        names = [s.name for s in shards]
        source = str(self.path)
        if op == "add":
            assert isinstance(change, ShardSpec)
            if change.name in names:
                raise UsageError(f"SHARD: {change.name} is already in {source} (fix: another name)")
            new_shards = [*shards, change]
            text = topofile.with_shard_added(self.path.read_text(), change, source)
        else:
            assert isinstance(change, str)
            if change not in names:
                raise UsageError(
                    f"SHARD: no shard {change!r} in {source}; it has {', '.join(names)}"
                )
            if len(shards) == 1:
                raise UsageError(f"SHARD: {change} is the only shard; it cannot be removed")
            new_shards = [s for s in shards if s.name != change]
            text = topofile.with_shard_removed(self.path.read_text(), change, source)
        topofile.checked(self.topology, text, new_shards)  # valid, and nothing else changes
        name = change.name if isinstance(change, ShardSpec) else change
        return ReshardRecord(
            op,
            name,
            source,
            [shard_json(s) for s in shards],
            [shard_json(s) for s in new_shards],
            {},
        )

    def _plan(self, ctx: Context) -> Plan:
        RingSwitch(ctx.stack, ctx.new).check(ctx.path)
        old_names = [s.name for s in ctx.old.shards]
        masters = current_masters(ctx.old, ctx.password).addresses
        data.check_masters(
            ctx, masters, [s for s in ctx.sources + ctx.destinations if s in old_names]
        )
        if self.hooks.on_total:
            total = sum(dbsize(masters[s], ctx.password, db=ctx.db) for s in old_names)
            self.hooks.on_total("planning (SCAN of every master)", total)
        plan = scan_plan(
            {s: masters[s] for s in old_names}, ctx.password, ctx.rings, db=ctx.db,
            progress=self.hooks.advance,
        )  # fmt: skip
        if plan.strays:
            found = ", ".join(f"{n} on {s}" for s, n in sorted(plan.strays.items()))
            raise OperationError(
                f"reshard refused: keys on a shard the ring does not assign them to ({found}); "
                "they could not be told apart from moved copies (fix: `redkeeper check` lists "
                "them; move or delete them, then retry)"
            )
        unexpected = plan.sources - set(ctx.sources) | plan.destinations - set(ctx.destinations)
        if unexpected:  # pragma: no cover - possible_moves is exact
            raise OperationError(f"reshard: the data moves where the rings do not: {unexpected}")
        return plan

    def plan(self, op: str, change: Change) -> Plan:
        """What `op` would move (SCAN + rings); changes nothing."""
        return self._plan(self._context(self._fresh(op, change)))

    # ------------------------------------------------------------------ run
    def run(self, op: str, change: Change) -> ReshardResult:
        data_ = self.journal.read()
        name = change.name if isinstance(change, ShardSpec) else change
        if data_ is not None:
            record = ReshardRecord.from_json(self.journal, data_)
            if (record.op, record.shard) != (op, name):
                raise UsageError(
                    f"a reshard ({record.op} {record.shard}) is under way since "
                    f"{time.ctime(record.started)}: run `redkeeper reshard {record.op} "
                    f"{record.shard}` to finish it, or `redkeeper reshard abort`"
                )
            if isinstance(change, ShardSpec) and shard_json(change) not in record.new_shards:
                raise UsageError(
                    f"--master/--replicas: the reshard under way adds {record.shard} with other "
                    "addresses (fix: give the same ones, or `redkeeper reshard abort`)"
                )
            record.resumed += 1
            ctx = self._context(record)
            ctx.save()
            self.hooks.log(f"resuming the reshard ({op} {name}) from phase {record.phase}")
        else:
            record = self._fresh(op, change)
            ctx = self._context(record)
            plan = self._plan(ctx)
            record.planned = plan.to_json()
            ctx.save("planned")
            self.hooks.log(
                f"plan: {plan.moving:,} of {plan.total:,} keys move "
                f"({', '.join(f'{s}→{d} {n:,}' for (s, d), n in sorted(plan.moves.items()))})"
            )
            reached("planned")
        self._phases(ctx)
        return self._result(ctx)

    def _phases(self, ctx: Context) -> None:
        record = ctx.record
        if record.phase == "planned":
            if record.op == "add":
                self._bring_up(ctx)
            ctx.save("shard-up")
            reached("shard-up")
        resumed_switch = record.phase in ("switching", "signaled") and data.resume_switch(ctx)
        if not resumed_switch and record.phase in ("shard-up", "copying"):
            data.copy_and_cut_over(ctx)
        if record.phase == "switched":
            data.restore_notifications(ctx)
            data.delete_moved(ctx)
        if record.phase == "deleted":
            reached("deleted")
            if record.op == "remove":
                retired = ShardProcesses(ctx.stack, ctx.old, record.shard, ctx.log)
                retired.unmonitor()
                retired.stop()
            self.journal.finish()

    def _bring_up(self, ctx: Context) -> None:
        shard = ctx.new.shard(ctx.record.shard)
        processes = ShardProcesses(ctx.stack, ctx.new, shard.name, ctx.log)
        processes.up()
        held = dbsize(shard.master, ctx.password, db=ctx.db)
        if held:
            raise OperationError(
                f"the new shard's master {shard.master} holds {held:,} keys already (fix: give "
                "the new shard empty nodes, or `redkeeper reshard abort`)"
            )
        processes.monitor()

    def _result(self, ctx: Context) -> ReshardResult:
        record = ctx.record
        rate = record.copy_keys / record.copy_seconds if record.copy_seconds > 0 else 0.0
        return ReshardResult(
            record.op,
            record.shard,
            record.plan.moving,
            record.moved,
            record.deleted,
            record.copied,
            record.bytes,
            rate,
            list(record.pauses_ms),
            time.time() - record.started,
            record.resumed,
            ctx.warnings,
        )

    # ------------------------------------------------------------------ abort
    def abort(self) -> str:
        """Roll back a reshard whose endpoint switch has not begun."""
        raw = self.journal.read()
        if raw is None:
            raise UsageError("no reshard is under way (nothing to abort)")
        record = ReshardRecord.from_json(self.journal, raw)
        if record.phase in ("signaled", "switched", "deleted"):
            raise OperationError(
                f"the endpoint already serves the new ring: run `redkeeper reshard {record.op} "
                f"{record.shard}` to finish instead"
            )
        ctx = self._context(record)
        if record.phase == "switching":
            data.write_old_shards(ctx)
        try:
            masters = current_masters(ctx.union, ctx.password).addresses
        except RedkeeperError:
            if record.op == "remove":
                raise
            masters = current_masters(ctx.old, ctx.password).addresses
            masters[record.shard] = ctx.new.shard(record.shard).master
        for shard in ctx.sources:
            with Node(masters[shard], ctx.password, f"{shard}'s master") as node:
                node.unpause()
        data.restore_notifications(ctx)
        if record.phase in ("copying", "switching") or record.op == "add":
            try:
                data.purge_copies(ctx, masters)
            except OperationError as exc:
                ctx.warnings.append(f"copies not removed: {exc}")
        if record.op == "add":
            added = ShardProcesses(ctx.stack, ctx.new, record.shard, ctx.log)
            added.unmonitor()
            added.stop()
        self.journal.finish()
        return f"reshard ({record.op} {record.shard}) rolled back from phase {record.phase}"
