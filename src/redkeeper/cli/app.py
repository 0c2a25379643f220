"""The root click group and the options every command shares."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Column

from redkeeper import __version__
from redkeeper.errors import EXIT_CODES
from redkeeper.topology import Topology, load_topology

#: Width of output that is not a terminal: wide enough that no table cell is ever cut.
PIPE_WIDTH = 10_000


def make_console(stream: IO[str], *, stderr: bool = False) -> Console:
    """A rich console for `stream`. In a terminal: its width (tables fold, never cut,
    addresses: see `address_column`). Otherwise (a pipe, a file, a script): no wrapping and
    no truncation at all, whatever COLUMNS says."""
    file = None if stream in (sys.stdout, sys.stderr) else stream  # None: follow sys.std*
    if stream.isatty():
        return Console(file=file, stderr=stderr)
    return Console(file=file, stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)


console = make_console(sys.stdout)
err_console = make_console(sys.stderr, stderr=True)


def address_column(header: str, values: list[str]) -> Column:
    """A table column of addresses: never cut. As wide as its longest value; in a terminal
    too narrow even for that, folded onto the next line rather than truncated."""
    width = max([len(header), *(len(v) for v in values)])
    return Column(header, no_wrap=True, overflow="fold", min_width=width)


def exit_codes_epilog() -> str:
    lines = ["\b", "Exit status:"]
    lines += [f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES]
    lines.append("  (reconfig-hook: 0 done, 1 retry later, 2 give up: Sentinel's contract)")
    return "\n".join(lines)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=exit_codes_epilog(),
)
@click.version_option(__version__, prog_name="redkeeper")
def cli() -> None:
    """redkeeper: highly available, sharded Redis with Sentinel, twemproxy and HAProxy.

    Node names (logs, start, stop, restart): shard1-1 (shard1's first node in the topology
    file), sentinel-2, agent, nutcracker, haproxy.
    """


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
        err_console.print(f"[yellow]warning:[/] {escape(str(warning))}", highlight=False)
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
