"""Switching the endpoint of a local stack to a reshard's new ring (after the topology file
has the new shards list), and knowing when it serves it.

- `proxy.mode: redkeeper`: SIGHUP to the redkeeper proxy, which re-reads the topology and
  swaps its ring in place (a ring that adds a shard is served from the cycle that routes it:
  `endpoint.target.RouterTarget.stage_ring`); no restart, clients stay connected.
- `proxy.mode: restart`: nutcracker.yml rendered for the new topology with the current masters
  (`render.render_nutcracker`), validated by `nutcracker -t` and written with a `.bak` under
  the apply sequence's lock and pending marker (`proxy.twemproxy.apply.stage_restart`); then
  SIGHUP to the agent, which reloads its inventory and restarts nutcracker through
  `repair_pending`: the one apply sequence, run by nutcracker's owner. Every client connection
  of nutcracker is cut once.
- `confirm`: bounded, until the endpoint's /healthz routes exactly the new shards, each to its
  master (and, with nutcracker, the pending restart is done).

Steady mode (HAProxy frontends per shard) is not supported: `check` says so first.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

from redkeeper.errors import OperationError, StackError, UsageError
from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.ops.endpoint import wait_health
from redkeeper.process import ProcessRecord
from redkeeper.proxy.twemproxy.apply import pending_path, stage_restart
from redkeeper.proxy.twemproxy.config import checked_by_nutcracker
from redkeeper.render import render_nutcracker
from redkeeper.stack import LocalStack
from redkeeper.topology import Topology


class RingSwitch:
    """The endpoint of `stack` (module docstring); `new` is the reshard's new topology."""

    def __init__(self, stack: LocalStack, new: Topology) -> None:
        self.stack = stack
        self.new = new
        self.mode = new.spec.proxy.mode
        self.owner = "proxy" if self.mode == "redkeeper" else "agent"
        self.config = stack.layout.config("nutcracker.yml")

    def check(self, path: Path) -> ProcessRecord:
        """The process to signal; UsageError/OperationError when this stack cannot switch."""
        if self.mode == "steady":
            raise UsageError(
                "reshard: proxy.mode steady is not supported (nutcracker's servers are HAProxy "
                "frontends, one per shard) (fix: use mode restart or redkeeper)"
            )
        if self.mode == "restart" and self.new.spec.agent.restart != "managed":
            raise UsageError(
                "reshard: on a local stack the agent must run nutcracker (agent.restart: "
                "managed); on hosts follow docs/operations.md, 'Resharding on hosts'"
            )
        try:
            record = self.stack.record(self.owner)
        except StackError:  # not recorded
            record = None
        if record is None or not record.alive():
            raise StackError(
                f"the {self.owner} of the local stack in {self.stack.state_dir} is not running "
                f"(fix: `redkeeper start {self.owner}`, or `redkeeper up`)"
            )
        argv = list(record.argv)
        used = Path(argv[argv.index("-c") + 1]).resolve() if "-c" in argv else None
        if used != path.resolve():
            raise UsageError(
                f"-c: the {self.owner} runs with {used or 'the embedded default'}, not {path} "
                "(fix: pass the topology file the stack was started with)"
            )
        return record

    def switch(self, record: ProcessRecord, masters: Mapping[str, Address]) -> None:
        """Make the endpoint read the new ring (the topology file already has it)."""
        if self.mode == "restart":
            rendered = render_nutcracker(
                self.new, self.stack.layout, masters, self.new.password()
            ).text

            def write() -> bool:
                return atomic_write(
                    self.config,
                    rendered,
                    validate=checked_by_nutcracker(self.config),
                    backup=True,
                )

            stage_restart(self.config, write)
        try:
            os.kill(record.pid, signal.SIGHUP)
        except ProcessLookupError:
            raise OperationError(f"the {self.owner} (pid {record.pid}) is gone") from None

    def confirm(self, masters: Mapping[str, Address], timeout: float) -> None:
        names = {shard.name for shard in self.new.shards}
        wanted = {name: str(masters[name]) for name in names}
        pending = pending_path(self.config)

        def served(routes: Mapping[str, str]) -> bool:
            if dict(routes) != wanted:
                return False
            return self.mode != "restart" or not pending.exists()

        health = wait_health(self.new, lambda h: served(h.routes), timeout, poll=0.002)
        if health is None or not served(health.routes):
            seen = "no answer" if health is None else f"routes {health.routes}"
            raise OperationError(
                f"the endpoint does not serve the new ring after {timeout:.0f} s ({seen}; "
                f"see `redkeeper logs {self.owner}`); run the command again to finish"
            )
