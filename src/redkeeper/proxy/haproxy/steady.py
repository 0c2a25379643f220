"""Steady mode's target: repoint shards through HAProxy's Runtime API, never a restart.

nutcracker's named servers point at per-shard HAProxy frontends and never change. A failover
of a shard is, on HAProxy's admin socket:

    set server <shard>/master addr <ip> port <port>
    set server <shard>/master state ready
    set server <shard>/master health up
    shutdown sessions server <shard>/master

then `show servers state` must show it (else ApplyError). No reload of HAProxy, no restart of
nutcracker: only the sessions of the failed shard are cut.

`routes()` is what HAProxy reports, so the loop stays level-triggered: an HAProxy that
restarted (its shards' servers come back disabled) is repointed by the next cycle. `repair`
(every cycle without a change) starts a managed nutcracker that is not running and converges
the read and write backends (`proxy.haproxy.pools`) from the node facts the agent's
observation gathered (`needs_nodes`); it has no loop or probe of its own. After every change
the state is saved (off the apply's path) to the server-state file, from which a restarted
HAProxy restores its read backends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from redkeeper.core.nodes import NodesView
from redkeeper.errors import BUG, NutcrackerConfigError, Problem, RedkeeperError
from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.process import pid_alive
from redkeeper.proxy.base import UNROUTED, ApplyOutcome, RestartResult
from redkeeper.proxy.haproxy.pools import (
    Wanted,
    missing_servers,
    pool_changes,
    routes_of,
    wanted_pools,
)
from redkeeper.proxy.haproxy.runtime import (
    HAProxyCommandError,
    HAProxyUnavailableError,
    RuntimeAPI,
    ServerState,
)
from redkeeper.proxy.twemproxy.restart import ManagedNutcracker
from redkeeper.proxy.twemproxy.targets import file_routes
from redkeeper.render.haproxy import HAProxyPlan

log = logging.getLogger("redkeeper.agent")


class SteadyTarget:
    """The agent's target in `proxy.mode: steady` (see the module docstring)."""

    def __init__(
        self,
        plan: HAProxyPlan,
        api: RuntimeAPI,
        *,
        nutcracker: ManagedNutcracker | None = None,
        nutcracker_config: Path | None = None,
    ) -> None:
        self.plan = plan
        self.api = api
        self.nutcracker = nutcracker
        self.nutcracker_config = nutcracker_config
        self.description = f"HAProxy runtime API at {plan.admin_socket} (steady mode)"
        self._applied: dict[str, Address] = {}  # what this agent last verified, per shard
        self._lock = asyncio.Lock()  # one writer of HAProxy's state: applies and pool syncs
        self._save_task: asyncio.Task[None] | None = None
        self._save_wanted = False

    # ---- checks --------------------------------------------------------------------------

    def _check_layout(self, rows: list[ServerState]) -> None:
        missing = missing_servers(self.plan, rows)
        if missing:
            raise HAProxyCommandError(
                f"HAProxy at {self.plan.admin_socket} has no {', '.join(missing[:5])}: it runs "
                "another config (fix: start it with the haproxy.cfg rendered from this topology)"
            )

    def _check_pool_file(self) -> None:
        """nutcracker.yml must point every shard at its HAProxy frontend."""
        if self.nutcracker_config is None:
            return
        path = self.nutcracker_config
        routes = file_routes(path)
        wrong = [
            f"{shard} -> {routes.get(shard)} (steady mode needs {frontend})"
            for shard, frontend in self.plan.frontends().items()
            if routes.get(shard) != frontend
        ]
        if wrong:
            raise NutcrackerConfigError(
                [
                    Problem(
                        str(path),
                        "servers",
                        "not pointed at HAProxy's frontends: " + "; ".join(wrong),
                        "render it from the topology (`redkeeper render`, or `up` locally)",
                    )
                ]
            )

    # ---- Target protocol -----------------------------------------------------------------

    needs_nodes = True

    async def prepare(self) -> None:
        self._check_pool_file()
        if self.nutcracker is not None:
            await self.nutcracker.ensure_running()
        try:
            rows = await self.api.servers_state()
        except HAProxyUnavailableError as exc:
            log.warning("%s; the agent keeps trying every cycle", exc)
            return
        self._check_layout(rows)
        self._applied = {
            shard: address
            for shard, address in routes_of(self.plan, rows).items()
            if address != UNROUTED
        }

    async def routes(self) -> dict[str, Address]:
        """Where HAProxy routes each shard now."""
        rows = await self.api.servers_state()
        self._check_layout(rows)
        routes = routes_of(self.plan, rows)
        for shard, address in routes.items():
            if address == UNROUTED and shard in self._applied:
                log.warning(
                    "HAProxy no longer routes %s (was %s): restarted? re-applying",
                    shard,
                    self._applied[shard],
                )
                del self._applied[shard]
        return routes

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome:
        async with self._lock:
            started = time.perf_counter()
            rows = await self.api.servers_state()
            # Pools that follow the masters at once: the write pool, and each new master
            # leaves its read pool (replicas rejoin on the next cycles, once their ROLE says
            # they follow it). Maintenance first: the old master leaves the write pool
            # before anything points at the new one.
            future = {**routes_of(self.plan, rows), **changes}
            masters = set(changes.values())
            pools = pool_changes(
                [
                    w
                    for w in wanted_pools(self.plan, future, {}, {})
                    if w.backend == self.plan.write_backend or w.address in masters
                ],
                rows,
            )
            await self._set_pools([w for w in pools if not w.ready])
            for shard, address in sorted(changes.items()):
                plan = self.plan.shard(shard)
                await self.api.set_address(plan.backend, plan.server, address)
                await self.api.set_state(plan.backend, plan.server, "ready")
                await self.api.set_health_up(plan.backend, plan.server)
                await self.api.shutdown_sessions(plan.backend, plan.server)
            routes = routes_of(self.plan, await self.api.servers_state())
            wrong = [
                f"{shard}: HAProxy reports {routes.get(shard)}, expected {address}"
                for shard, address in sorted(changes.items())
                if routes.get(shard) != address
            ]
            if wrong:
                raise HAProxyCommandError("after repointing, " + "; ".join(wrong))
            await self._set_pools([w for w in pools if w.ready])
            self._applied.update(changes)
            elapsed = (time.perf_counter() - started) * 1000
        log.info(
            "HAProxy repointed %s in %.1f ms (no restart; only those shards' sessions cut)",
            ", ".join(f"{s} -> {a}" for s, a in sorted(changes.items())),
            elapsed,
        )
        self._save_state_soon()
        return ApplyOutcome(True, None)

    async def verify(self, changes: Mapping[str, Address]) -> None:
        """`apply` already read HAProxy's state back; check once more from a fresh read."""
        routes = routes_of(self.plan, await self.api.servers_state())
        wrong = [s for s, a in sorted(changes.items()) if routes.get(s) != a]
        if wrong:
            raise HAProxyCommandError(f"HAProxy no longer routes {', '.join(wrong)} as applied")

    async def repair(self, nodes: NodesView | None) -> RestartResult | None:
        """Start a managed nutcracker that is not running; converge the read and write pools
        from `nodes` (the agent's latest node facts)."""
        result = None
        if self.nutcracker is not None:
            pid = self.nutcracker.pid
            if pid is None or not pid_alive(pid):
                started = time.monotonic()
                await self.nutcracker.ensure_running()
                elapsed = (time.monotonic() - started) * 1000
                result = RestartResult(True, elapsed, "nutcracker was not running; started it")
        if nodes is not None:
            await self.sync_pools(nodes)
        return result

    # ---- read and write backends ---------------------------------------------------------

    async def sync_pools(self, nodes: NodesView) -> None:
        """Converge every read and write backend server to `wanted_pools` (level-triggered),
        from HAProxy's state read under the lock, so an apply is never undone."""
        if not any(s.read_backend for s in self.plan.shards) and self.plan.write_backend is None:
            return
        async with self._lock:
            rows = await self.api.servers_state()
            self._check_layout(rows)
            routes = routes_of(self.plan, rows)
            changes = pool_changes(wanted_pools(self.plan, routes, nodes.facts, nodes.down), rows)
            await self._set_pools(changes)
        if changes:
            self._save_state_soon()

    async def _set_pools(self, changes: Sequence[Wanted]) -> None:
        for change in changes:
            if change.ready:
                await self.api.set_state(change.backend, change.server, "ready")
            else:
                await self.api.set_state(change.backend, change.server, "maint")
                await self.api.shutdown_sessions(change.backend, change.server)
            log.info(
                "HAProxy %s/%s (%s) -> %s: %s",
                change.backend,
                change.server,
                change.address,
                "ready" if change.ready else "maint",
                change.reason,
            )

    # ---- server-state file ---------------------------------------------------------------

    def _save_state_soon(self) -> None:
        """Dump `show servers state` to the server-state file, off the apply's path."""
        self._save_wanted = True
        if self._save_task is None or self._save_task.done():
            self._save_task = asyncio.create_task(self._save_state(), name="server-state")

    async def save_state(self) -> None:
        """Wait for the pending server-state dump, if any (the tests' barrier before they read
        the file or the commands HAProxy received)."""
        if self._save_task is not None:
            await self._save_task

    async def _save_state(self) -> None:
        path = self.plan.state_file
        while self._save_wanted:
            self._save_wanted = False
            try:
                text = await self.api.state_file_text()
                await asyncio.to_thread(_write_state, path, text)
            except (RedkeeperError, OSError) as exc:
                log.warning("cannot save HAProxy's server-state file %s: %s", path, exc)
                return
            except Exception:
                log.exception("unexpected error saving %s; %s", path, BUG)
                return


def _write_state(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text, backup=False)
