"""The redkeeper proxy's route table as the agent's target (`proxy.base.Target`).

The agent's runner, inside the proxy process, decides (`core.decide`) and calls `apply`,
which swaps the `server.Router`'s route table in memory: no file, no restart. Only the
changed shards' backend connections are cut (their in-flight requests get an error reply);
new requests go to the new master at once.

- `routes()`: the router's masters (`UNROUTED` for a shard without one yet);
- `apply(changes)`: the new masters; a changed shard's read replicas are dropped until the
  next `repair` proves them replicas of the new master;
- `repair(nodes)`: the replicas eligible for reads (`core.nodes.readable_replicas`), when
  `read_from` is not master; the latest routes are saved to `routes_file` (if given) after
  each change, so a proxy restarted while Sentinel has no majority keeps serving them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from redkeeper.core.nodes import NodesView, readable_replicas
from redkeeper.errors import ApplyError
from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.proxy.base import UNROUTED, ApplyOutcome, RestartResult
from redkeeper.server import Router

log = logging.getLogger("redkeeper.proxy")

Publish = Callable[[Mapping[str, Address | None], Mapping[str, Sequence[Address]]], None]


def load_routes(path: Path, names: Sequence[str]) -> dict[str, Address]:
    """The routes a previous run saved (only known shard names), {} when none or unreadable."""
    try:
        data = json.loads(path.read_text())
        return {
            name: Address.parse(str(data[name]))
            for name in names
            if isinstance(data, dict) and name in data
        }
    except (OSError, ValueError, TypeError):
        return {}


class RouterTarget:
    """See the module docstring. `nodes`: each shard's nodes in topology order (for reads);
    `publish`: called after every change with (masters, replicas), e.g. to tell worker
    processes (the router itself is updated first)."""

    description = "redkeeper proxy route table (in memory, no restart)"

    def __init__(
        self,
        router: Router,
        nodes: Mapping[str, Sequence[Address]],
        *,
        max_replica_lag: int | None = None,
        routes_file: Path | None = None,
        publish: Publish | None = None,
    ) -> None:
        self.router = router
        self.nodes = {name: list(addresses) for name, addresses in nodes.items()}
        self.max_replica_lag = max_replica_lag
        self.routes_file = routes_file
        self.publish = publish
        self.needs_nodes = router.routes.read_from != "master"

    # ---- state ---------------------------------------------------------------------------

    def _masters(self) -> dict[str, Address | None]:
        table = self.router.routes
        return dict(zip(table.names, table.masters, strict=True))

    def _replicas(self) -> dict[str, tuple[Address, ...]]:
        table = self.router.routes
        return dict(zip(table.names, table.replicas, strict=True))

    def _install(
        self, masters: Mapping[str, Address | None], replicas: Mapping[str, Sequence[Address]]
    ) -> None:
        self.router.set_routes(masters, replicas)
        if self.publish is not None:
            self.publish(masters, replicas)

    def _save(self) -> None:
        if self.routes_file is None:
            return
        routes = {k: str(v) for k, v in self._masters().items() if v is not None}
        try:
            atomic_write(self.routes_file, json.dumps(routes, indent=2) + "\n", backup=False)
        except (ApplyError, OSError) as exc:
            log.warning("cannot save the routes to %s: %s", self.routes_file, exc)

    # ---- Target --------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Serve the routes a previous run saved until the first decision (fail static)."""
        if self.routes_file is None:
            return
        saved = load_routes(self.routes_file, self.router.routes.names)
        if saved:
            self._install(saved, {})
            log.info(
                "serving the routes saved by the previous run until Sentinel answers: %s",
                ", ".join(f"{k} -> {v}" for k, v in sorted(saved.items())),
            )

    async def routes(self) -> dict[str, Address]:
        return {name: master or UNROUTED for name, master in self._masters().items()}

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome:
        started = time.perf_counter()
        masters = {**self._masters(), **changes}
        replicas = {k: v for k, v in self._replicas().items() if k not in changes}
        self._install(masters, replicas)
        elapsed = (time.perf_counter() - started) * 1000
        for shard, address in sorted(changes.items()):
            log.info("Routing %s to %s in %.1f ms (no restart)", shard, address, elapsed)
        self._save()
        return ApplyOutcome(True, None)

    async def verify(self, changes: Mapping[str, Address]) -> None:
        masters = self._masters()
        wrong = [shard for shard, address in changes.items() if masters.get(shard) != address]
        if wrong:
            raise ApplyError(f"the route table does not hold {', '.join(sorted(wrong))}")

    async def repair(self, nodes: NodesView | None) -> RestartResult | None:
        if not self.needs_nodes or nodes is None:
            return None
        masters = self._masters()
        wanted = {
            shard: tuple(
                readable_replicas(shard, master, self.nodes.get(shard, []), nodes,
                                  self.max_replica_lag)
            )
            for shard, master in masters.items()
        }  # fmt: skip
        current = self._replicas()
        if wanted != current:
            self._install(masters, wanted)
            for shard in sorted(s for s in wanted if wanted[s] != current.get(s)):
                readers = ", ".join(str(a) for a in wanted[shard]) or "none (the master)"
                log.info("Reads of %s from %s", shard, readers)
        return None
