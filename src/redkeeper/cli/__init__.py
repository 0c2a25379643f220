"""The `redkeeper` command line (click + rich). The only place that exits.

Every RedkeeperError becomes one line per problem on stderr and its exit status (the table
is `redkeeper.errors.EXIT_CODES`); any other exception is a bug: one line saying so
(the traceback only with REDKEEPER_TRACEBACK=1) and exit status 70.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from redkeeper.cli.app import cli
from redkeeper.errors import BUG, EXIT_BUG, EXIT_INTERRUPTED, RedkeeperError

# Importing the command modules registers their commands on `cli`.
from redkeeper.cli import agent_cmds, data_cmds, drill_cmds, hook_cmds  # noqa: F401  # isort: skip
from redkeeper.cli import node_cmds, ops_cmds, proxy_cmds, stack_cmds, topology_cmds  # noqa: F401  # isort: skip
from redkeeper.cli import lab_cmds  # noqa: F401  # isort: skip

__all__ = ["cli", "main"]


def _quiet_broken_pipe() -> None:
    """`redkeeper status | head -1`: the reader left; exit without a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="redkeeper")
    except RedkeeperError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.secho(f"error: {line}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        _quiet_broken_pipe()
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("REDKEEPER_TRACEBACK"):
            traceback.print_exc()
        where = traceback.extract_tb(exc.__traceback__)[-1]
        click.secho(
            f"error: unexpected {type(exc).__name__}: {exc} (at {os.path.basename(where.filename)}"
            f":{where.lineno}); {BUG} with the command line, and rerun with "
            "REDKEEPER_TRACEBACK=1 for the traceback",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_BUG)
