"""The root click group and the options every command shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from redkeeper import __version__
from redkeeper.topology import Topology, load_topology

console = Console()
err_console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="redkeeper")
def cli() -> None:
    """redkeeper: highly available, sharded Redis with Sentinel, twemproxy and HAProxy."""


def config_option(func: Any) -> Any:
    return click.option(
        "-c",
        "--config",
        "config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Topology file (default: the embedded default stack).",
    )(func)


def load(config: Path | None) -> Topology:
    topology = load_topology(config)
    for warning in topology.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return topology


RESTART_OPT = "--restart-cmd"


class ArgvTailCommand(click.Command):
    """A command whose `--restart-cmd` takes every following word (up to a lone `--`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        words = list(args)
        argv: tuple[str, ...] | None = None
        if RESTART_OPT in words:
            at = words.index(RESTART_OPT)
            rest = words[at + 1 :]
            end = rest.index("--") if "--" in rest else len(rest)
            argv = tuple(rest[:end])
            if not argv:
                raise click.UsageError(
                    f"{RESTART_OPT} needs a command, e.g. {RESTART_OPT} systemctl restart "
                    "nutcracker",
                    ctx=ctx,
                )
            words = words[:at] + rest[end + 1 :]
        if any(w.startswith(f"{RESTART_OPT}=") for w in words):
            raise click.UsageError(
                f"write {RESTART_OPT} WORD WORD... (separate words), not {RESTART_OPT}=...",
                ctx=ctx,
            )
        remaining = super().parse_args(ctx, words)
        ctx.params["restart_cmd"] = argv
        return remaining


def restart_cmd_option(func: Any) -> Any:
    return click.option(
        RESTART_OPT,
        "restart_cmd",
        metavar="ARGV... [--]",
        default=None,
        help="Restart command as separate words (no shell); it takes every following word, "
        "up to a lone '--'. Put it last.",
    )(func)
