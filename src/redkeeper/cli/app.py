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
