"""`redkeeper proxy`: the redkeeper proxy process — the data plane (`redkeeper.server`) and the
agent's loop (`redkeeper.agent`) in one event loop, driven by one topology file.

Start-up: the route table is filled before the port opens (the first cycle's decision, or
the routes the previous run saved when Sentinel has no majority yet), bounded by a few
seconds; then clients are served. Signals:

- SIGTERM / SIGINT: stop accepting, answer what is in flight (bounded by `DRAIN_SECONDS`),
  stop the agent, exit 0;
- SIGHUP: re-read the topology file; a valid one replaces the ring (shards added or removed,
  weights, hash) and the inventory in place, clients stay connected; a ring that adds shards
  is served from the cycle that routes them (`RouterTarget.stage_ring`); an invalid one is
  logged and changes nothing.

With `proxy.redkeeper.workers: N > 1` this process runs the agent only and N worker processes
serve the port together (`endpoint.workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redkeeper.agent import Agent, AgentSettings
from redkeeper.data.ring import ring_for, shard_names
from redkeeper.endpoint.target import RouterTarget
from redkeeper.endpoint.workers import Supervisor
from redkeeper.errors import BUG, RedkeeperError
from redkeeper.server import ProxyMetrics, ProxyServer, ProxySettings, Router
from redkeeper.topology import Topology

log = logging.getLogger("redkeeper.proxy")

DRAIN_SECONDS = 5.0
FIRST_ROUTES_SECONDS = 5.0
ROUTES_FILE = "proxy-routes.json"


def proxy_settings(topology: Topology, *, reuse_port: bool = False) -> ProxySettings:
    """The data plane's limits from the topology (`proxy.*` and `proxy.redkeeper.*`)."""
    proxy = topology.spec.proxy
    rk = proxy.redkeeper
    return ProxySettings(
        host=proxy.listen.host,
        port=proxy.listen.port,
        password=topology.password(),
        max_clients=rk.max_clients,
        max_request_bytes=rk.max_request_bytes,
        client_idle_timeout=float(rk.client_idle_timeout_s),
        timeout=(proxy.timeout_ms or 0) / 1000,
        reuse_port=reuse_port or rk.workers > 1,
        backlog=proxy.backlog,
    )


def new_router(topology: Topology) -> Router:
    ring = ring_for(topology)
    return Router(ring, shard_names(ring), read_from=topology.spec.proxy.redkeeper.read_from)


def new_target(
    topology: Topology, router: Router, publish: Callable[..., None] | None = None
) -> RouterTarget:
    return RouterTarget(
        router,
        {shard.name: shard.nodes for shard in topology.shards},
        max_replica_lag=topology.spec.proxy.redkeeper.max_replica_lag_s,
        routes_file=topology.state_dir / ROUTES_FILE,
        publish=publish,
    )


@dataclass
class Proxy:
    """One proxy process's parts (see the module docstring)."""

    topology: Topology
    router: Router
    agent: Agent
    server: ProxyServer | None
    workers: Supervisor | None = None

    @classmethod
    def build(cls, topology: Topology) -> Proxy:
        router = new_router(topology)
        count = topology.spec.proxy.redkeeper.workers
        workers = Supervisor(topology, count) if count > 1 else None
        target = new_target(topology, router, workers.publish if workers else None)
        agent = Agent(
            topology.spec.sentinel.nodes,
            target,
            password=topology.password(),
            inventory=topology.inventory(),
            settings=AgentSettings.for_topology(topology),
            metrics_address=topology.spec.agent.metrics,
        )
        server = None
        if workers is None:
            metrics = ProxyMetrics()
            metrics.register(agent.metrics.registry)
            server = ProxyServer(router, proxy_settings(topology), metrics)
            agent.clients = lambda: len(server.clients)
        return cls(topology, router, agent, server, workers)

    def reload(self, load: Callable[[], Topology]) -> None:
        """SIGHUP: a valid new topology replaces ring, inventory and read nodes in place."""
        try:
            new = load()
            ring = ring_for(new)
        except RedkeeperError as exc:
            log.error("SIGHUP: the topology was not reloaded (nothing changed): %s", exc)
            return
        before = set(self.router.routes.names)
        self.agent.set_inventory(new.inventory())
        target = self.agent.target
        if not isinstance(target, RouterTarget):  # pragma: no cover - built by `build`
            raise TypeError("the proxy's agent target is not its route table")
        target.nodes = {shard.name: list(shard.nodes) for shard in new.shards}
        workers = self.workers
        names = shard_names(ring)
        on_swap = None if workers is None else (lambda: workers.reload(new, with_routes=True))
        now = target.stage_ring(ring, names, on_swap)
        if now and workers is not None:
            workers.reload(new)
        self.topology = new
        after = set(names)
        later = "; served once Sentinel's masters of the new shards are routed"
        log.info(
            "SIGHUP: topology reloaded from %s: %d shards (added: %s; removed: %s)%s",
            new.source,
            len(after),
            ", ".join(sorted(after - before)) or "none",
            ", ".join(sorted(before - after)) or "none",
            "" if now else later,
        )
        self.agent.wake()

    async def _first_routes(self) -> None:
        """Wait (bounded) until the agent ran its first cycle or saved routes were loaded."""
        deadline = time.monotonic() + FIRST_ROUTES_SECONDS
        while time.monotonic() < deadline:
            if self.agent.state.last_cycle is not None:
                return
            await asyncio.sleep(0.01)
        log.warning(
            "no routing decision within %.0f s (Sentinels unreachable?); serving anyway: "
            "requests for unrouted shards get an error reply",
            FIRST_ROUTES_SECONDS,
        )

    async def run(self, stop: asyncio.Event) -> None:
        agent_stop = asyncio.Event()
        agent_task = asyncio.create_task(self.agent.run(agent_stop), name="agent")
        try:
            await asyncio.wait(
                [agent_task, asyncio.create_task(self._first_routes())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            if agent_task.done():
                agent_task.result()  # start-up error: raise it
            if self.server is not None:
                await self.server.start()
                log.info(
                    "redkeeper proxy serving on %s:%d (%d shards, read_from %s)",
                    self.server.settings.host,
                    self.server.port,
                    len(self.router.routes.names),
                    self.router.routes.read_from,
                )
            if self.workers is not None:
                table = self.router.routes
                await self.workers.start(
                    dict(zip(table.names, table.masters, strict=True)),
                    dict(zip(table.names, table.replicas, strict=True)),
                )
                log.info(
                    "redkeeper proxy: %d worker processes serving on %s",
                    self.workers.count,
                    self.topology.spec.proxy.listen,
                )
            await stop.wait()
        finally:
            if self.server is not None:
                await self.server.drain(DRAIN_SECONDS)
            if self.workers is not None:
                await self.workers.stop()
            agent_stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(agent_task, timeout=5.0)


async def serve(topology: Topology, load: Callable[[], Topology]) -> None:
    """Run the proxy until SIGTERM/SIGINT; SIGHUP reloads (module docstring)."""
    proxy = Proxy.build(topology)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_hup() -> None:
        try:
            proxy.reload(load)
        except Exception:
            log.exception("SIGHUP: unexpected error while reloading; %s", BUG)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await proxy.run(stop)


def routes_file(state_dir: Path) -> Path:
    return state_dir / ROUTES_FILE
