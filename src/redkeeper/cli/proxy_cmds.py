"""`redkeeper proxy`: run the redkeeper proxy (`proxy.mode: redkeeper`) from a topology."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from redkeeper.agent import logs as agent_logs
from redkeeper.cli.app import cli, config_option, load
from redkeeper.errors import Problem, TopologyError
from redkeeper.topology import Topology


@cli.command("proxy")
@config_option
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the proxy keeps its last routes (default: the topology's state_dir).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Human lines with dates, or one JSON object per line.",
)
def proxy(config: Path | None, state_dir: Path | None, log_format: str) -> None:
    """Run the redkeeper proxy: the client endpoint (proxy.listen), following Sentinel itself.

    \b
    Same key placement as nutcracker for the same pool; today's clients work at their
    default settings (RESP2 and RESP3); a failover is a route swap in memory, never a
    restart. SIGTERM drains and exits; SIGHUP re-reads the topology (shards added or
    removed without dropping clients). Metrics and /healthz at agent.metrics.
    """
    agent_logs.setup(log_format)

    def loaded() -> Topology:
        topology = load(config)
        if state_dir is not None:
            spec = topology.spec.model_copy(update={"state_dir": state_dir})
            topology = replace(topology, spec=spec)
        if topology.spec.proxy.mode != "redkeeper":
            raise TopologyError(
                [
                    Problem(
                        topology.source,
                        "proxy.mode",
                        f"is {topology.spec.proxy.mode}: `redkeeper proxy` runs the redkeeper "
                        "proxy only",
                        "set proxy.mode: redkeeper (or run `redkeeper agent` for nutcracker)",
                    )
                ]
            )
        return topology

    # The data plane is imported only here: every other command starts without it.
    import uvloop  # noqa: PLC0415

    from redkeeper.endpoint.app import serve  # noqa: PLC0415

    uvloop.run(serve(loaded(), loaded))
