"""Restart strategies (pure): which one a command line or topology selects.

`managed` (the agent runs nutcracker), `command` (an argv restarts it), `staging` (a
staging file for `apply-staged`); docs/agent.md. Flags given on a command line win over the
topology's `agent.restart`; two flags at once are a usage error. `proxy.registry` maps a
strategy to its target; `render` uses `Strategy.agent_flags` for the agent's unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from redkeeper.errors import Problem, UsageError
from redkeeper.topology.schema import AgentSpec

Kind = Literal["managed", "command", "staging"]


@dataclass(frozen=True)
class Strategy:
    kind: Kind
    argv: tuple[str, ...] = ()  # command: the restart command
    staging: Path | None = None  # staging: the staging file

    def agent_flags(self) -> list[str]:
        """The `redkeeper agent` flags that select this strategy (render's unit line)."""
        if self.kind == "managed":
            return ["--managed"]
        if self.kind == "command":
            return ["--restart-cmd", *self.argv]
        return ["--staging", str(self.staging)]


def _usage(field: str, message: str, fix: str, source: str) -> UsageError:
    return UsageError(str(Problem(source, field, message, fix)))


def choose_strategy(
    agent: AgentSpec | None,
    *,
    managed: bool = False,
    restart_cmd: tuple[str, ...] | None = None,
    staging: Path | None = None,
    base_dir: Path | None = None,
    source: str = "redkeeper agent",
) -> Strategy:
    """The strategy from command-line flags, else from the topology's `agent` section.
    UsageError (naming the flag) when flags conflict or none is given."""
    chosen = [
        name
        for name, on in (
            ("--managed", managed),
            ("--restart-cmd", bool(restart_cmd)),
            ("--staging", staging is not None),
        )
        if on
    ]
    if len(chosen) > 1:
        raise _usage(
            chosen[1], f"{' and '.join(chosen)} exclude each other", "pick one strategy", source
        )
    if managed:
        return Strategy("managed")
    if restart_cmd:
        return Strategy("command", tuple(restart_cmd))
    if staging is not None:
        return Strategy("staging", staging=staging)
    if agent is None:
        raise _usage(
            "--restart-cmd",
            "no restart strategy given",
            "add one of --managed, --staging FILE, --restart-cmd systemctl restart nutcracker",
            source,
        )
    if agent.restart == "command":
        return Strategy("command", tuple(agent.restart_cmd or ()))
    if agent.restart == "staging":
        path = agent.staging
        if path is not None and not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return Strategy("staging", staging=path)
    return Strategy("managed")
