"""Operation commands: `switchover` (planned master moves) and `reshard` (add or remove a
shard online). The operations live in `redkeeper.ops`; this module parses, reports, exits."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from redkeeper.cli.app import cli, config_option, console, err_console, load
from redkeeper.errors import UsageError
from redkeeper.model import Address
from redkeeper.ops.interrupt import Interrupts
from redkeeper.ops.switchover import Switchover, SwitchoverResult, SwitchoverSettings


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

    Rerun after an interruption: it first restores what the interrupted run changed."""
    if all_shards == (shard is not None):
        raise UsageError("give a SHARD or --all (fix: e.g. `redkeeper switchover shard1`)")
    if all_shards and to is not None:
        raise UsageError("--to: only with one SHARD (fix: drop --all or --to)")
    target = _address(to, "--to")
    topology = load(config)
    shards = [s.name for s in topology.shards] if all_shards else [str(shard)]
    settings = SwitchoverSettings(max_pause_ms=max_pause_ms)
    results = []
    with Interrupts() as interrupts:
        operation = Switchover(topology, settings=settings, log=_log, interrupts=interrupts)
        for name in shards:
            result = operation.run(name, target)
            results.append(result)
            if not as_json:
                _print_switchover(result)
            interrupts.check(f"after {name}; the next shards are not switched")
    if as_json:
        click.echo(json.dumps([_switchover_json(r) for r in results], indent=2))
