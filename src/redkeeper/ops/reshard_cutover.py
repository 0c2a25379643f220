"""A reshard's data phases: copy, cutover, switch, delete (`reshard` has the whole list).

- copy (`copying`): `notify-keyspace-events` of every source master gets `KA` (its original
  value journaled first, restored on every way out); the `Tracker` subscribes; a full pass
  copies every moving key (`Copier`); catch-up rounds copy the keys written meanwhile until
  few are left. A resumed copy first purges the copies a killed run left on the destinations
  (one of them may be of a key deleted since).
- cutover: `CLIENT PAUSE WRITE` on every source (at most `max_pause_ms`, Redis lifts it by
  itself); the tracker's barrier; the last keys copied; the masters and the moved count
  checked against the plan (more than planned, beyond the tolerance: refused and rolled
  back). Over the pause budget: unpause and try again (a few times).
- switch (`switching` → `signaled` → `switched`), run to its end whatever signal comes: the
  sources' pause is extended to `safety_pause_ms` (a killed run must not let a write run on
  an old shard after the switch); the topology file gets the new shards list
  (`topofile`); the endpoint switches (`reshard_switch`) and is confirmed; every normal client
  of the sources is cut (a write that waited there for a key that moved never runs: its client
  gets an error); unpause. A resumed `switching` whose pause may have ended goes back to copy.
- delete (`deleted`): UNLINK, on each source, the moving keys (their copies are the ones
  served now).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from redkeeper.data.masters import current_masters
from redkeeper.errors import ConfigError, OperationError, RedkeeperError
from redkeeper.model import Address
from redkeeper.ops import topofile
from redkeeper.ops.interrupt import reached
from redkeeper.ops.nodes import Node
from redkeeper.ops.reshard_copy import Copiers, Tracker, unlink_where
from redkeeper.ops.reshard_model import Context
from redkeeper.ops.reshard_plan import dbsize
from redkeeper.ops.reshard_switch import RingSwitch

NOTIFY = "notify-keyspace-events"
TRACKED = "KA"  # keyspace channel, every kind of change (generic, types, expired, evicted)
BARRIER_TIMEOUT = 5.0


class BudgetExceededError(OperationError):
    """A cutover attempt would have paused writes longer than allowed; it was undone."""


def masters_of(ctx: Context) -> dict[str, Address]:
    return current_masters(ctx.union, ctx.password).addresses


def check_masters(
    ctx: Context, masters: Mapping[str, Address], shards: list[str] | None = None
) -> None:
    """Every shard involved (or of `shards`) has a master that says so and takes writes."""
    required = ctx.topology.spec.redis.min_replicas_to_write
    for shard in shards if shards is not None else [*ctx.sources, *ctx.destinations]:
        with Node(masters[shard], ctx.password, f"{shard}'s master") as node:
            info = node.replication()
            if info.get("role") != "master":
                raise OperationError(
                    f"{node.label} says role {info.get('role')}: {shard} has no healthy "
                    "master (fix: wait for Sentinel, check `redkeeper status`, then retry)"
                )
            good = info.get("min_slaves_good_slaves")
            if required > 0 and good is not None and int(good) < required:
                raise OperationError(
                    f"{node.label} refuses writes ({good} of {required} replicas): {shard} "
                    "has no healthy master (fix: `redkeeper status`, start its replicas)"
                )


# --------------------------------------------------------------------------- notify
def track_notifications(ctx: Context, masters: Mapping[str, Address]) -> None:
    for shard in ctx.sources:
        key = str(masters[shard])
        with Node(masters[shard], ctx.password, f"{shard}'s master") as node:
            current = node.config_get(NOTIFY)
            if key not in ctx.record.notify:
                ctx.record.notify[key] = current
                ctx.save()
            wanted = "".join(sorted(set(current) | set(TRACKED)))
            if set(current) != set(wanted):
                node.config_set(NOTIFY, wanted)


def restore_notifications(ctx: Context) -> None:
    """Put every journaled `notify-keyspace-events` back (a node that cannot be reached is
    reported; it has its configured value again when it restarts)."""
    for address, value in list(ctx.record.notify.items()):
        try:
            with Node(Address.parse(address), ctx.password) as node:
                if node.config_get(NOTIFY) != value:
                    node.config_set(NOTIFY, value)
        except OperationError as exc:
            ctx.warnings.append(f"{NOTIFY} not restored: {exc}")
            continue
        del ctx.record.notify[address]
    ctx.save()


# --------------------------------------------------------------------------- copy
def purge_copies(ctx: Context, masters: Mapping[str, Address]) -> int:
    """Delete what a reshard copied to its destinations (keys the old ring does not assign
    to them: no stray exists there, the plan checked)."""
    removed = 0
    old_home = ctx.rings.old_home
    for shard in ctx.destinations:

        def copy(key: bytes, shard: str = shard) -> bool:
            return old_home(key) != shard

        label = f"{shard}'s master {masters[shard]}"
        removed += unlink_where(masters[shard], ctx.password, label, copy, db=ctx.db)
    if removed:
        ctx.log(f"removed {removed:,} copies a previous run left on {', '.join(ctx.destinations)}")
    return removed


def copy_and_cut_over(ctx: Context) -> None:
    """From `shard-up` or `copying` to `switched` (module docstring)."""
    masters = masters_of(ctx)
    check_masters(ctx, masters)
    RingSwitch(ctx.stack, ctx.new).check(ctx.path)  # the endpoint can switch: before any copy
    if ctx.record.phase == "copying":
        purge_copies(ctx, masters)
    ctx.save("copying")
    track_notifications(ctx, masters)
    tracker = Tracker({s: masters[s] for s in ctx.sources}, ctx.password, ctx.rings, db=ctx.db)
    copier = Copiers(ctx.sources, masters, ctx.password, ctx.rings, db=ctx.db)
    try:
        full_pass(ctx, copier, masters)
        for attempt in range(1, ctx.settings.cutover_attempts + 1):
            catch_up(ctx, tracker, copier)
            try:
                paused_at = cut_over(ctx, tracker, copier, masters)
            except BudgetExceededError as exc:
                ctx.log(f"cutover attempt {attempt}: {exc}")
                continue
            switch(ctx, masters, paused_at)
            break
        else:
            raise OperationError(
                f"no cutover fitted in --max-pause-ms {ctx.settings.max_pause_ms} after "
                f"{ctx.settings.cutover_attempts} attempts (writes went on meanwhile); the "
                "copy is kept: run the command again, or with a larger --max-pause-ms"
            )
    finally:
        tracker.close()
        copier.close()
        restore_notifications(ctx)


def full_pass(ctx: Context, copier: Copiers, masters: Mapping[str, Address]) -> None:
    hooks = ctx.hooks
    if hooks.on_total:
        total = sum(dbsize(masters[s], ctx.password, db=ctx.db) for s in ctx.sources)
        hooks.on_total("copying moving keys", total)
    lock = threading.Lock()
    done = [0]

    def advance(count: int) -> None:  # called by every source's thread
        with lock:
            done[0] += count
            first = done[0] == count and count > 0
        if hooks.advance:
            hooks.advance(count)
        if first:
            reached("copying")  # the test hook: killed mid-copy

    started = time.perf_counter()
    copier.full_pass(advance)
    ctx.interrupts.check("while copying; the next run copies again")
    seconds = time.perf_counter() - started
    ctx.record.copy_keys, ctx.record.copy_seconds = copier.stats.copied, seconds
    ctx.record.copied, ctx.record.bytes = copier.stats.copied, copier.stats.bytes
    ctx.save()
    rate = copier.stats.copied / seconds if seconds > 0 else 0.0
    ctx.log(
        f"copied {copier.stats.copied:,} keys ({copier.stats.bytes:,} bytes) in {seconds:.2f} s: "
        f"{rate:,.0f} keys/s"
    )


def catch_up(ctx: Context, tracker: Tracker, copier: Copiers) -> None:
    for _ in range(ctx.settings.catch_up_rounds):
        copied = 0
        for shard in ctx.sources:
            keys = sorted(tracker.take(shard))
            copier.copy(shard, keys)
            copied += len(keys)
        if tracker.broken:
            raise OperationError(f"lost track of writes ({tracker.broken}); run the command again")
        ctx.interrupts.check("while copying; the next run copies again")
        if copied <= ctx.settings.cutover_dirty and tracker.pending() <= ctx.settings.cutover_dirty:
            return


def cut_over(
    ctx: Context, tracker: Tracker, copier: Copiers, masters: Mapping[str, Address]
) -> float:
    """Pause, last copies, checks; the monotonic time writes were paused. Undone (unpaused)
    when anything fails; BudgetExceededError when it took too long."""
    budget = ctx.settings.max_pause_ms / 1000
    nodes = {s: Node(masters[s], ctx.password, f"{s}'s master") for s in ctx.sources}
    try:
        for node in nodes.values():
            node.pause_writes(ctx.settings.max_pause_ms)
        paused_at = time.monotonic()
        reached("paused")
        tracker.barrier(BARRIER_TIMEOUT)
        for shard in ctx.sources:
            copier.copy(shard, sorted(tracker.take(shard)))
        if masters_of(ctx) != dict(masters):
            raise OperationError("a master changed during the copy; run the command again")
        moved, planned = copier.moved(), ctx.record.plan.moving
        limit = planned * (1 + ctx.settings.tolerance) + ctx.settings.tolerance_keys
        if moved > limit:
            raise OperationError(
                f"the new ring moves {moved:,} keys, more than the {planned:,} planned "
                f"(+{ctx.settings.tolerance:.0%} +{ctx.settings.tolerance_keys}); refused"
            )
        elapsed = time.monotonic() - paused_at
        if elapsed > budget * 0.5:  # the switch itself needs the other half
            raise BudgetExceededError(f"the last copies took {elapsed * 1000:.0f} ms; unpaused")
    except BaseException:
        for node in nodes.values():
            try:
                node.unpause()
            except OperationError as exc:
                ctx.warnings.append(str(exc))
        raise
    finally:
        for node in nodes.values():
            node.close()
    ctx.record.moved = moved
    ctx.record.copied, ctx.record.bytes = copier.stats.copied, copier.stats.bytes
    return paused_at


# --------------------------------------------------------------------------- switch
def _unpause_sources(ctx: Context, masters: Mapping[str, Address]) -> None:
    for shard in ctx.sources:
        try:
            with Node(masters[shard], ctx.password, f"{shard}'s master") as node:
                node.unpause()
        except OperationError as exc:
            ctx.warnings.append(str(exc))


def _pause_sources(ctx: Context, masters: Mapping[str, Address], milliseconds: int) -> None:
    for shard in ctx.sources:
        with Node(masters[shard], ctx.password, f"{shard}'s master") as node:
            node.pause_writes(milliseconds)


def switch(ctx: Context, masters: Mapping[str, Address], paused_at: float | None) -> None:
    """`switching` → `switched` (module docstring), run to its end."""
    switcher = RingSwitch(ctx.stack, ctx.new)
    try:
        owner = switcher.check(ctx.path)
    except RedkeeperError:
        if paused_at is not None:  # not committed yet: let the sources' writes through
            _unpause_sources(ctx, masters)
        raise
    with ctx.interrupts.critical():
        _pause_sources(ctx, masters, ctx.settings.safety_pause_ms)
        ctx.record.pause_until = time.time() + ctx.settings.safety_pause_ms / 1000
        ctx.save("switching")
        reached("switching")
        write_new_shards(ctx)
        ctx.save("signaled")
        new_masters = {s.name: masters[s.name] for s in ctx.new.shards}
        switcher.switch(owner, new_masters)
        reached("signaled")
        switcher.confirm(new_masters, ctx.settings.switch_timeout)
        for shard in ctx.sources:
            with Node(masters[shard], ctx.password, f"{shard}'s master") as node:
                node.kill_normal_clients()
                node.unpause()
        if paused_at is not None:
            ctx.record.pauses_ms.append(round((time.monotonic() - paused_at) * 1000, 1))
        ctx.record.pause_until = None
        ctx.save("switched")
    ctx.log(
        f"the endpoint serves the new ring ({', '.join(s.name for s in ctx.new.shards)}); "
        f"writes paused {ctx.record.pauses_ms[-1] if paused_at else 0:.0f} ms"
    )


def write_new_shards(ctx: Context) -> None:
    """The topology file gets the new shards list (nothing when it has it already)."""
    text = ctx.path.read_text()
    now = topofile.checked(ctx.topology, text, list(ctx.topology.spec.shards))
    if list(now.spec.shards) == list(ctx.new.spec.shards):
        return
    if list(now.spec.shards) != list(ctx.old.spec.shards):
        raise OperationError(
            f"{ctx.path}: its shards list is neither the old nor the new one (edited meanwhile?); "
            "fix: restore it from the .bak, then run the command again"
        )
    if ctx.record.op == "add":
        added = ctx.new.spec.shards[-1]
        new_text = topofile.with_shard_added(text, added, str(ctx.path))
    else:
        new_text = topofile.with_shard_removed(text, ctx.record.shard, str(ctx.path))
    checked = topofile.checked(ctx.topology, new_text, list(ctx.new.spec.shards))
    topofile.write_shards(ctx.path, new_text, checked)
    ctx.log(f"{ctx.path}: shards list updated (previous content in {ctx.path.name}.bak)")


def write_old_shards(ctx: Context) -> None:
    """Undo `write_new_shards` (a rollback before the endpoint was told)."""
    text = ctx.path.read_text()
    now = topofile.checked(ctx.topology, text, list(ctx.topology.spec.shards))
    if list(now.spec.shards) != list(ctx.new.spec.shards):
        return
    candidates = []
    backup = ctx.path.with_name(ctx.path.name + ".bak")
    if backup.exists():  # the file as it was, the removed shard at its place
        candidates.append(backup.read_text())
    if ctx.record.op == "add":
        candidates.append(topofile.with_shard_removed(text, ctx.record.shard, str(ctx.path)))
    else:
        removed = ctx.old.shard(ctx.record.shard)
        candidates.append(topofile.with_shard_added(text, removed, str(ctx.path)))
    for old_text in candidates:
        try:
            checked = topofile.checked(ctx.topology, old_text, list(ctx.old.spec.shards))
        except ConfigError:
            continue
        topofile.write_shards(ctx.path, old_text, checked)
        return
    raise OperationError(
        f"{ctx.path}: cannot put the old shards list back (fix: restore it by hand: "
        f"{', '.join(s.name for s in ctx.old.spec.shards)})"
    )


def resume_switch(ctx: Context) -> bool:
    """A run killed in `switching`/`signaled`: finish the switch (True), or — the endpoint
    never told and the sources' pause possibly over — undo it and copy again (False)."""
    masters = masters_of(ctx)
    still_paused = ctx.record.pause_until is not None and time.time() < ctx.record.pause_until - 2
    if ctx.record.phase == "switching" and not still_paused:
        write_old_shards(ctx)
        _unpause_sources(ctx, masters)
        ctx.record.pause_until = None
        ctx.save("copying")
        ctx.log("the interrupted cutover had not switched; copying again")
        return False
    if not still_paused:
        ctx.warnings.append(
            "the interrupted switch was resumed after the sources' safety pause ended: a write "
            "in flight to an old shard then may have run there; `redkeeper check` lists any "
            "key left on two shards"
        )
    ctx.log("finishing the interrupted switch")
    switch(ctx, masters, None)
    return True


# --------------------------------------------------------------------------- delete
def delete_moved(ctx: Context) -> None:
    masters = masters_of(ctx)
    hooks = ctx.hooks
    if hooks.on_total:
        total = sum(dbsize(masters[s], ctx.password, db=ctx.db) for s in ctx.sources)
        hooks.on_total("deleting moved keys from their old shards", total)
    destination = ctx.rings.destination
    for index, shard in enumerate(ctx.sources):

        def moved(key: bytes, shard: str = shard) -> bool:
            return destination(shard, key) is not None

        label = f"{shard}'s master {masters[shard]}"
        ctx.record.deleted += unlink_where(
            masters[shard], ctx.password, label, moved, db=ctx.db, progress=hooks.advance
        )
        ctx.save()
        if index == 0:
            reached("deleting")
    ctx.save("deleted")
