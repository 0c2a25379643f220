"""`redkeeper start|stop|restart NODE…`: one node of the running local stack at a time.

The names are those of `logs` (shard1-2, sentinel-3, agent, haproxy; nutcracker when no
agent runs it). See `redkeeper.stack.nodes` for what "ready" means.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.markup import escape

from redkeeper.cli.app import cli, config_option, err_console, load
from redkeeper.stack import LocalStack
from redkeeper.stack.nodes import NodeControl

NAMES = click.argument("names", nargs=-1, required=True, metavar="NODE...")


def _log(message: str) -> None:
    err_console.print(
        f"[dim]{time.strftime('%Y-%m-%d %H:%M:%S')}[/] {escape(message)}", highlight=False
    )


def _control(config: Path | None) -> NodeControl:
    return NodeControl(LocalStack(load(config), log=_log), _log)


@cli.command()
@config_option
@NAMES
def start(config: Path | None, names: tuple[str, ...]) -> None:
    """Start stopped or killed nodes of the running stack again, with the command line `up`
    recorded, and wait until each is back (a replica linked to Sentinel's master and seen by
    every Sentinel; a Sentinel that knows the others; the agent healthy). `down` stops
    them too."""
    _control(config).start(names)


@cli.command()
@config_option
@NAMES
def stop(config: Path | None, names: tuple[str, ...]) -> None:
    """Stop nodes of the running stack (SIGTERM, then SIGKILL after 5 s); `start` brings
    them back. Stopping a master makes Sentinel fail over, as a crash would."""
    _control(config).stop(names)


@cli.command()
@config_option
@NAMES
def restart(config: Path | None, names: tuple[str, ...]) -> None:
    """`stop` then `start` the named nodes, waiting until each is ready again."""
    _control(config).restart(names)
