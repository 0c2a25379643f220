"""The `redkeeper` command line (click + rich). The only place that exits.

Every RedkeeperError becomes one line per problem on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys

import click

from redkeeper.cli.app import cli
from redkeeper.errors import RedkeeperError

# Importing the command modules registers their commands on `cli`.
from redkeeper.cli import agent_cmds, data_cmds, drill_cmds, hook_cmds  # noqa: F401  # isort: skip
from redkeeper.cli import proxy_cmds, stack_cmds, topology_cmds  # noqa: F401  # isort: skip

__all__ = ["cli", "main"]


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="redkeeper")
    except RedkeeperError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.secho(f"error: {line}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
