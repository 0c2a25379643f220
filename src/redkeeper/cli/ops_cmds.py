"""Operation commands: `switchover` (planned master moves) and `reshard` (add or remove a
shard online). The operations live in `redkeeper.ops`; this module parses, reports, exits."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from redkeeper.cli.app import cli, config_option, console, err_console, load
from redkeeper.cli.data_cmds import progress_bars
from redkeeper.errors import UsageError
from redkeeper.model import Address
from redkeeper.ops import guard
from redkeeper.ops.interrupt import Interrupts
from redkeeper.ops.journal import Journal
from redkeeper.ops.reshard import Reshard
from redkeeper.ops.reshard_model import Hooks, ReshardResult, ReshardSettings
from redkeeper.ops.reshard_plan import Plan
from redkeeper.ops.switchover import Switchover, SwitchoverResult, SwitchoverSettings
from redkeeper.topology.schema import ShardSpec


def _log(message: str) -> None:
    err_console.print(
        f"[dim]{time.strftime('%Y-%m-%d %H:%M:%S')}[/] {escape(message)}",
        highlight=False,
        soft_wrap=True,
    )


def _address(text: str | None, option: str) -> Address | None:
    if text is None:
        return None
    try:
        return Address.parse(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc} (fix: use HOST:PORT, e.g. 127.0.0.1:6667)") from None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _switchover_json(result: SwitchoverResult) -> dict[str, Any]:
    data = asdict(result)
    data["old_master"] = str(result.old_master)
    data["new_master"] = str(result.new_master)
    return data


def _print_switchover(result: SwitchoverResult) -> None:
    if result.recovered and result.pause_ms is None:
        console.print(
            f"{result.shard}: {result.recovered}; master {result.new_master} "
            f"(was {result.old_master})",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(
        f"{result.shard}: master {result.old_master} -> {result.new_master}; writes paused "
        f"{_ms(result.pause_ms)} (promoted {_ms(result.promoted_ms)} and routed "
        f"{_ms(result.routed_ms)} after SENTINEL FAILOVER); {result.seconds:.1f} s in all",
        highlight=False,
        soft_wrap=True,
    )
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


@cli.command()
@config_option
@click.argument("shard", required=False)
@click.option("--all", "all_shards", is_flag=True, help="Every shard, one after the other.")
@click.option("--to", "to", metavar="HOST:PORT", help="The replica to promote (default: the "
              "healthy replica with the highest replication offset).")  # fmt: skip
@click.option(
    "--max-pause-ms", type=click.IntRange(200, 30_000), default=2000, show_default=True,
    help="Longest write pause before the failover is sent (Redis lifts it by itself then).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def switchover(
    config: Path | None,
    shard: str | None,
    all_shards: bool,
    to: str | None,
    max_pause_ms: int,
    as_json: bool,
) -> None:
    """Move SHARD's master to a caught-up replica through Sentinel, losing no acknowledged
    write: writes wait during the switch (about half a second) instead of failing.

    Rerun after an interruption: it first restores what the interrupted run changed (a run
    that was killed is recovered at once by its guard process; the rerun tells the outcome)."""
    if all_shards == (shard is not None):
        raise UsageError("give a SHARD or --all (fix: e.g. `redkeeper switchover shard1`)")
    if all_shards and to is not None:
        raise UsageError("--to: only with one SHARD (fix: drop --all or --to)")
    target = _address(to, "--to")
    topology = load(config)
    shards = [s.name for s in topology.shards] if all_shards else [str(shard)]
    settings = SwitchoverSettings(max_pause_ms=max_pause_ms)
    results = []
    journal = Journal(topology.state_dir, guard.KIND)
    with Interrupts() as interrupts, journal.locked(guard.LOCK_WAIT_S):
        guard.start(config, topology.state_dir)  # recovers this run if it dies (SIGKILL)
        operation = Switchover(topology, settings=settings, log=_log, interrupts=interrupts)
        for name in shards:
            result = operation.run(name, target)
            results.append(result)
            if not as_json:
                _print_switchover(result)
            interrupts.check(f"after {name}; the next shards are not switched")
    if as_json:
        click.echo(json.dumps([_switchover_json(r) for r in results], indent=2))


@cli.command(guard.COMMAND, hidden=True)
@config_option
def switchover_guard(config: Path | None) -> None:
    """Started by `switchover`: recovers its run if that run dies (redkeeper.ops.guard)."""
    code = guard.watch(load(config))
    if code:
        raise SystemExit(code)


# --------------------------------------------------------------------------- reshard
@cli.group()
def reshard() -> None:
    """Add or remove a shard of a running local stack online: plan, copy, cutover (writes
    paused well under a second), delete. Journaled: after an interruption, run the same
    command again to finish it, or `redkeeper reshard abort` (before the switch)."""


def _reshard_options(func: Any) -> Any:
    func = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")(func)
    func = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)
    func = click.option(
        "--max-pause-ms", type=click.IntRange(50, 10_000), default=1000, show_default=True,
        help="Longest write pause of a cutover attempt (then it is undone and tried again).",
    )(func)  # fmt: skip
    func = click.option(
        "--plan", "plan_only", is_flag=True,
        help="Only count the keys that would move, from which shard to which; change nothing.",
    )(func)  # fmt: skip
    return config_option(func)


def _print_plan(plan: Plan, op: str, shard: str) -> None:
    table = Table("from", "to", "keys", title=f"reshard {op} {shard}: plan", title_justify="left")
    for (src, dst), count in sorted(plan.moves.items()):
        table.add_row(src, dst, f"{count:,}")
    console.print(table)
    share = plan.moving / plan.total if plan.total else 0.0
    console.print(
        f"{plan.moving:,} of {plan.total:,} keys move ({share:.1%}); SCAN took "
        f"{plan.seconds:.1f} s; nothing was changed",
        highlight=False,
    )


def _print_result(result: ReshardResult) -> None:
    mib = result.bytes / (1 << 20)
    drift = result.moved - result.planned
    console.print(
        f"reshard {result.op} {result.shard}: {result.moved:,} keys moved (planned "
        f"{result.planned:,}, {drift:+,}), {mib:.1f} MiB copied at {result.keys_per_second:,.0f} "
        f"keys/s; writes paused {result.longest_pause_ms:.0f} ms (longest), "
        f"{result.total_pause_ms:.0f} ms in all; {result.deleted:,} old copies deleted; "
        f"{result.seconds:.1f} s" + (f"; resumed {result.resumed}x" if result.resumed else ""),
        highlight=False,
        soft_wrap=True,
    )
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


def _run_reshard(
    config: Path | None, op: str, change: ShardSpec | str, plan_only: bool, max_pause_ms: int,
    as_json: bool, quiet: bool,
) -> None:  # fmt: skip
    topology = load(config)
    settings = ReshardSettings(max_pause_ms=max_pause_ms)
    name = change.name if isinstance(change, ShardSpec) else change
    with progress_bars(quiet or as_json) as (start, advance), Interrupts() as interrupts:
        hooks = Hooks(_log, start, advance)
        operation = Reshard(topology, settings=settings, hooks=hooks, interrupts=interrupts)
        if plan_only:
            plan = operation.plan(op, change)
        else:
            result = operation.run(op, change)
    if plan_only:
        if as_json:
            click.echo(json.dumps(plan.to_json(), indent=2))
        else:
            _print_plan(plan, op, name)
    elif as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        _print_result(result)


@reshard.command("add")
@click.argument("shard")
@click.option("--master", "master", metavar="HOST:PORT", required=True, help="Its master.")
@click.option("--replicas", default="", metavar="H:P,…", help="Its replicas, comma-separated.")
@click.option(
    "--weight", type=click.IntRange(1, 100_000), default=None,
    help="Its weight (default: the weight every shard has; shards of unequal weights cannot "
    "be resharded online).",
)  # fmt: skip
@_reshard_options
def reshard_add(
    shard: str, master: str, replicas: str, weight: int | None, config: Path | None,
    plan_only: bool, max_pause_ms: int, as_json: bool, quiet: bool,
) -> None:  # fmt: skip
    """Add SHARD (its nodes are started on the local stack and monitored by Sentinel); about
    1/(n+1) of the keys move to it."""
    topology = load(config)
    weights = {s.weight for s in topology.shards}
    chosen = weight if weight is not None else (weights.pop() if len(weights) == 1 else 1)
    try:
        spec = ShardSpec.model_validate(
            {
                "name": shard,
                "master": master,
                "replicas": [r.strip() for r in replicas.split(",") if r.strip()],
                "weight": chosen,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = {"name": "SHARD", "master": "--master", "replicas": "--replicas"}.get(
            str(first["loc"][0]), "--weight"
        )
        message = str(first["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{field}: {message} (fix: e.g. --master 127.0.0.1:8666)") from None
    _run_reshard(config, "add", spec, plan_only, max_pause_ms, as_json, quiet)


@reshard.command("remove")
@click.argument("shard")
@_reshard_options
def reshard_remove(
    shard: str, config: Path | None, plan_only: bool, max_pause_ms: int, as_json: bool,
    quiet: bool,
) -> None:  # fmt: skip
    """Remove SHARD: its keys move to the other shards, then Sentinel forgets it and its
    processes stop (their data dirs are kept)."""
    _run_reshard(config, "remove", shard, plan_only, max_pause_ms, as_json, quiet)


@reshard.command("abort")
@config_option
def reshard_abort(config: Path | None) -> None:
    """Roll back the reshard under way, if its endpoint switch has not begun: copies deleted,
    settings restored, an added shard's processes stopped."""
    topology = load(config)
    console.print(Reshard(topology, hooks=Hooks(_log)).abort(), highlight=False)
