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
  each change, so a proxy restarted while Sentinel has no majority keeps serving them;
- `stage_ring(ring, names)` (SIGHUP, `redkeeper reshard`): a new ring. When every shard it
  names has a route, it replaces the router's ring at once. When it adds shards, it waits
  (`routes()` reports them unrouted, so the next cycle decides their masters) and the
  `apply` that routes its last new shard swaps ring and routes in one event-loop step: no
  request ever meets a shard of the ring without a route.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redkeeper.core.nodes import NodesView, readable_replicas
from redkeeper.errors import ApplyError
from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.placement import Ring
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


@dataclass
class PendingRing:
    """A reloaded ring waiting for the masters of the shards it adds (`stage_ring`)."""

    ring: Ring
    names: tuple[str, ...]
    on_swap: Callable[[], None] | None = None
    masters: dict[str, Address] = field(default_factory=dict)  # decided before the swap


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
        self.pending: PendingRing | None = None

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

    def stage_ring(
        self, ring: Ring, names: Sequence[str], on_swap: Callable[[], None] | None = None
    ) -> bool:
        """Serve `ring` (shard `names` in ring order) now when every shard it names has a
        route, else once the agent's decision routes the ones it adds (module docstring).
        `on_swap` runs right before a deferred swap. Returns whether it was swapped now."""
        current = self._masters()
        if all(current.get(name) is not None for name in names):
            self.pending = None
            self.router.set_ring(ring, names)
            return True
        kept = self.pending.masters if self.pending is not None else {}
        self.pending = PendingRing(
            ring, tuple(names), on_swap, {k: v for k, v in kept.items() if k in names}
        )
        return False

    def _all_masters(self) -> dict[str, Address | None]:
        """The router's masters and, for a pending ring, the masters decided for its new
        shards (what the agent sees as the current routes)."""
        masters = self._masters()
        if self.pending is not None:
            for name in self.pending.names:
                if masters.get(name) is None:
                    masters[name] = self.pending.masters.get(name)
        return masters

    async def routes(self) -> dict[str, Address]:
        return {name: master or UNROUTED for name, master in self._all_masters().items()}

    def _swap_if_ready(self, masters: Mapping[str, Address | None]) -> None:
        pending = self.pending
        if pending is None or any(masters.get(name) is None for name in pending.names):
            return
        self.pending = None
        if pending.on_swap is not None:
            pending.on_swap()
        before = set(self.router.routes.names)
        self.router.set_ring(pending.ring, pending.names)  # new shards unrouted until…
        log.info(  # …_install below, in the same event-loop step
            "ring of %d shards serving (added: %s; removed: %s)",
            len(pending.names),
            ", ".join(sorted(set(pending.names) - before)) or "none",
            ", ".join(sorted(before - set(pending.names))) or "none",
        )

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome:
        started = time.perf_counter()
        masters = {**self._all_masters(), **changes}
        self._swap_if_ready(masters)
        known = set(self.router.routes.names)
        if self.pending is not None:  # decided, but the ring that has them is not served yet
            self.pending.masters.update({k: v for k, v in changes.items() if k not in known})
        masters = {k: v for k, v in masters.items() if k in known}
        replicas = {k: v for k, v in self._replicas().items() if k not in changes}
        self._install(masters, replicas)
        elapsed = (time.perf_counter() - started) * 1000
        for shard, address in sorted(changes.items()):
            log.info("Routing %s to %s in %.1f ms (no restart)", shard, address, elapsed)
        self._save()
        return ApplyOutcome(True, None)

    async def verify(self, changes: Mapping[str, Address]) -> None:
        masters = self._all_masters()
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
