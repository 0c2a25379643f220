"""The agent's loop: wake, observe, decide (`core.decide`), apply, record. One writer.

Wake-ups (Sentinel events, link changes, the period) only start a cycle. A cycle:

1. observes (`agent.observe`): every Sentinel's answer and the target's current routes,
   then `core.decide_masters`, then ROLE of the candidates (`core.candidates`);
2. decides: `core.decide(observation, memory, settings)` — every policy is there;
3. applies through its target (`proxy.base.Target`): `apply` + `verify` for APPLY,
   `repair` (with the latest node facts) when nothing is to change;
4. records: metrics, /healthz, one log line.

Cycles never overlap, so there is exactly one writer of the target. Node facts (for targets
with `needs_nodes`) are refreshed once a period in the background, off the apply's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field

from redkeeper.agent.health import Apply, Health
from redkeeper.agent.http import serve
from redkeeper.agent.metrics import AgentMetrics
from redkeeper.agent.observe import Observer, Query, RoleCheck, role_of
from redkeeper.core import (
    CycleSettings,
    Decision,
    Memory,
    Observation,
    Outcome,
    RefusalReason,
    candidates,
    decide,
    decide_masters,
    timing_for,
)
from redkeeper.core.nodes import NodesView, refuses_writes
from redkeeper.errors import BUG, RedkeeperError
from redkeeper.model import Address
from redkeeper.proxy.base import Target
from redkeeper.sentinel import SentinelEvent, SentinelWatcher
from redkeeper.topology import Topology

log = logging.getLogger("redkeeper.agent")


@dataclass(frozen=True)
class AgentSettings:
    """Timing of the loop (see `core.cycle.timing_for` for the per-mode defaults)."""

    debounce: float = 0.05
    period: float = 1.0
    sentinel_timeout: float = 0.5
    coalesce: float = 1.5  # max wait for other shards' in-flight failovers (one restart)
    role_timeout: float = 0.3
    retry_soon: float = 0.1
    ping_interval: float = 1.0

    @classmethod
    def for_topology(cls, topology: Topology) -> AgentSettings:
        """The loop's timing for the topology's proxy mode (`core.timing_for`)."""
        agent = topology.spec.agent
        timing = timing_for(
            topology.spec.proxy.mode,
            debounce_ms=agent.debounce_ms,
            coalesce_ms=agent.coalesce_ms,
            period_ms=agent.period_ms,
            explicit=agent.model_fields_set,
        )
        return cls(
            debounce=timing.debounce,
            coalesce=timing.coalesce,
            period=timing.period,
            retry_soon=timing.retry,
            sentinel_timeout=agent.sentinel_timeout_ms / 1000,
        )


@dataclass
class AgentState:
    """What /healthz and `status` show (see `Health`)."""

    verdict: str = "starting"
    fail_static: bool = False
    last_cycle: float | None = None  # unix time
    last_error: str | None = None
    answered: int = 0
    routes: dict[str, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    applies: int = 0
    restarts: int = 0
    history: list[Apply] = field(default_factory=list)  # the last 100 applies

    def remember(self, entry: Apply) -> None:
        self.history.append(entry)
        del self.history[:-100]


class Agent:
    def __init__(
        self,
        sentinels: Sequence[Address],
        target: Target,
        *,
        password: str | None = None,
        inventory: Mapping[str, Set[Address]] | None = None,
        settings: AgentSettings = AgentSettings(),
        metrics_address: Address | None = None,
        query: Query | None = None,
        role: RoleCheck = role_of,
        shards: Mapping[str, Iterable[Address]] | None = None,
        write_guard: tuple[int, int] | None = None,
    ) -> None:
        """`write_guard`: (min-replicas-to-write, min-replicas-max-lag) of the nodes: node
        facts are then gathered in every mode, to report `redkeeper_shard_refuses_writes`."""
        self.sentinels = list(sentinels)
        self.target = target
        self.password = password
        self.inventory = inventory
        self.settings = settings
        self.metrics_address = metrics_address
        self.observer = Observer(
            self.sentinels,
            password=password,
            shards=shards if shards is not None else inventory,
            sentinel_timeout=settings.sentinel_timeout,
            role_timeout=settings.role_timeout,
            query=query,
            role=role,
        )
        self.metrics = AgentMetrics(len(set(self.sentinels)))
        self.state = AgentState()
        self.memory = Memory()
        self.nodes: NodesView | None = None
        self.write_guard = write_guard if write_guard and write_guard[0] > 0 else None
        self._masters: dict[str, Address] = {}
        self._wake = asyncio.Event()
        self._first_notice: float | None = None
        self._event_woke = False
        self._last_logged: str | None = None
        self._watcher: SentinelWatcher | None = None
        self._epochs: dict[str, int | None] = {}  # the last verdicts' config-epochs, for logs
        #: set by the redkeeper proxy: its connected clients, for /healthz
        self.clients: Callable[[], int] | None = None

    # ------------------------------------------------------------------ wake-ups
    def _on_event(self, source: Address, event: SentinelEvent) -> None:
        self.metrics.events.labels(event.kind).inc()
        if not event.wakes_agent:
            return
        if event.kind == "+switch-master":
            log.info("Received switch-master %s from Sentinel %s", event.raw, source)
        else:
            log.info("Sentinel %s: %s %s", source, event.kind, event.raw)
        if self._first_notice is None:
            self._first_notice = time.monotonic()
        self._event_woke = True
        self._wake.set()

    def _on_link(self, source: Address, up: bool) -> None:
        links = self._watcher.links_up if self._watcher else 0
        self.metrics.sentinel_links_up.set(links)
        log.info(
            "Sentinel %s link %s (%d/%d up)",
            source,
            "up" if up else "down",
            links,
            len(self.sentinels),
        )
        if up:
            self._event_woke = True
            self._wake.set()

    def wake(self) -> None:
        """Run a cycle now (a reload changed what the target routes)."""
        self._wake.set()

    def set_inventory(self, inventory: Mapping[str, Set[Address]]) -> None:
        """A reloaded topology's inventory (SIGHUP): the guard's addresses and the nodes
        whose facts are gathered."""
        self.inventory = inventory
        self.observer.shards = {name: sorted(nodes) for name, nodes in inventory.items()}

    # ------------------------------------------------------------------ health
    def health(self) -> Health:
        now = time.time()
        age = None if self.state.last_cycle is None else now - self.state.last_cycle
        stale = age is None or age > 3 * self.settings.period + 2 * self.settings.sentinel_timeout
        ok = not stale and not self.state.fail_static and self.state.last_error is None
        return Health(
            ok=ok,
            verdict=self.state.verdict,
            fail_static=self.state.fail_static,
            last_cycle_age_s=None if age is None else round(age, 3),
            last_error=self.state.last_error,
            sentinels_configured=len(set(self.sentinels)),
            sentinels_answering=self.state.answered,
            sentinel_links_up=self._watcher.links_up if self._watcher else 0,
            routes=dict(self.state.routes),
            refusals=list(self.state.refusals),
            applies=self.state.applies,
            restarts=self.state.restarts,
            history=list(self.state.history),
            clients=self.clients() if self.clients is not None else None,
        )

    # ------------------------------------------------------------------ loop
    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set. Raises only for start-up errors (bad config, no binary)."""
        await self.target.prepare()
        self._watcher = SentinelWatcher(
            self.sentinels,
            self._on_event,
            self._on_link,
            password=self.password,
            ping_interval=self.settings.ping_interval,
        )
        tasks = [asyncio.create_task(self._watcher.run(), name="sentinel-watcher")]
        if self.target.needs_nodes or self.write_guard is not None:
            tasks.append(asyncio.create_task(self._refresh_nodes(), name="node-facts"))
        server = None
        if self.metrics_address is not None:
            server = await serve(self.metrics_address, self.metrics, self.health)
            log.info("metrics and /healthz on http://%s", self.metrics_address)
        log.info(
            "agent started: %d Sentinels, target %s", len(self.sentinels), self.target.description
        )
        try:
            await self._loop(stop)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=2.0)
            await self.observer.aclose()
            if server is not None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), timeout=1.0)
            log.info("agent stopped")

    async def _refresh_nodes(self) -> None:
        """Keep `self.nodes` fresh (once a period), for `Target.repair` and the write guard."""
        while True:
            try:
                self.nodes = await self.observer.nodes()
                self._gauge_writes(self.nodes)
            except Exception:
                log.exception("unexpected error gathering node facts; %s", BUG)
            await asyncio.sleep(self.settings.period)

    def _gauge_writes(self, nodes: NodesView) -> None:
        if self.write_guard is None:
            return
        required, max_lag = self.write_guard
        for shard, master in self._masters.items():
            refused = refuses_writes(master, nodes.facts, required, max_lag)
            if refused is not None:
                self.metrics.refuses_writes.labels(shard).set(1 if refused else 0)

    async def _wait(self, stop: asyncio.Event, timeout: float) -> bool:
        """Wait for a wake-up, stop or timeout; True when woken by an event."""
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
        return self._wake.is_set()

    async def _loop(self, stop: asyncio.Event) -> None:
        timeout = 0.0  # first cycle at once
        while not stop.is_set():
            woke = await self._wait(stop, timeout)
            if stop.is_set():
                return
            if woke and self.settings.debounce > 0:
                await asyncio.sleep(self.settings.debounce)  # a burst of events: one cycle
            self._wake.clear()
            by_event, self._event_woke = self._event_woke, False
            notice = self._first_notice if self._first_notice is not None else time.monotonic()
            self._first_notice = None
            timeout = self.settings.period
            try:
                decision = await self.cycle(notice, by_event)
                if decision.retry_soon:
                    timeout = self.settings.retry_soon
            except RedkeeperError as exc:
                self.state.last_error = str(exc)
                self.state.verdict = "error"
                self.metrics.apply_errors.inc()
                self.metrics.cycles.labels("error").inc()
                log.error("cycle failed: %s", exc)
            except Exception:
                self.state.last_error = "unexpected error (see log)"
                self.metrics.cycles.labels("bug").inc()
                log.exception("unexpected error in a reconcile cycle; %s", BUG)

    # ------------------------------------------------------------------ one cycle
    async def cycle(self, notice: float, by_event: bool = False) -> Decision:
        """Observe, decide, apply, record (the module docstring). Raises RedkeeperError when
        the target cannot be read or changed (the loop logs it and retries)."""
        now = time.monotonic()
        answers = await self.observer.sentinels()
        routes = await self.target.routes()
        masters = decide_masters(answers, self.sentinels, names=list(routes))
        self._masters = {**self._masters, **masters.addresses()}
        roles = await self.observer.roles(candidates(masters, routes))
        self._epochs = {n: v.config_epoch for n, v in masters.verdicts.items() if v.ok}
        decision = decide(
            Observation(masters, routes, roles, now, notice),
            self.memory,
            CycleSettings(self.inventory, self.settings.coalesce),
        )
        self.memory = decision.memory
        self._record(decision, masters.answered, routes)
        if decision.outcome is Outcome.APPLY:
            await self._apply(decision)
        elif decision.outcome in (Outcome.IN_SYNC, Outcome.REFUSE):
            repaired = await self.target.repair(self.nodes)
            if repaired is not None:
                self._count_restart(repaired.ok)
                level = logging.INFO if repaired.ok else logging.ERROR
                log.log(
                    level, "repair: %s (%.0f ms)", repaired.output.strip(), repaired.duration_ms
                )
        self._log_verdict(decision, by_event)
        return decision

    def _record(self, decision: Decision, answered: int, routes: Mapping[str, Address]) -> None:
        self.state.answered = answered
        self.state.fail_static = decision.outcome is Outcome.FAIL_STATIC
        self.state.verdict = decision.summary
        self.state.last_cycle = time.time()
        self.state.routes = {k: str(v) for k, v in routes.items()}
        self.state.refusals = [str(r) for r in decision.refusals]
        self.metrics.sentinels_answering.set(answered)
        self.metrics.fail_static.set(1 if self.state.fail_static else 0)
        self.metrics.last_cycle.set(self.state.last_cycle)
        for refusal in decision.refusals:
            self.metrics.refusals.labels(refusal.shard, refusal.reason.value).inc()
        kind = "repoint" if decision.outcome is Outcome.APPLY else decision.outcome.value
        self.metrics.cycles.labels(kind).inc()

    def _log_verdict(self, decision: Decision, by_event: bool) -> None:
        level = logging.INFO
        if decision.outcome is Outcome.FAIL_STATIC or any(
            r.reason is RefusalReason.OUTSIDE_INVENTORY for r in decision.refusals
        ):
            level = logging.WARNING
        elif decision.summary == self._last_logged and not by_event:
            level = logging.DEBUG  # a periodic cycle that found nothing new
        log.log(level, "cycle: %s", decision.summary)
        self._last_logged = decision.summary

    def _count_restart(self, ok: bool) -> None:
        self.metrics.restarts.labels("ok" if ok else "failed").inc()
        self.state.restarts += 1

    async def _apply(self, decision: Decision) -> None:
        for shard, address in sorted(decision.changes.items()):
            epoch = self._epochs.get(shard)
            log.info("Updating master %s to %s (epoch %s)", shard, address, epoch)
        outcome = await self.target.apply(decision.changes)
        restart = outcome.restart
        if restart is not None:
            self._count_restart(restart.ok)
            if not restart.ok:
                self.state.last_error = f"nutcracker restart failed: {restart.output.strip()}"
                self.metrics.apply_errors.inc()
                log.error("nutcracker restart failed: %s", restart.output.strip())
                return
            log.info("nutcracker restarted in %.0f ms", restart.duration_ms)
        latency = decision.latency(time.monotonic())  # the data plane serves it from now
        await self.target.verify(decision.changes)
        self.memory = Memory()
        self.state.routes.update({k: str(v) for k, v in decision.changes.items()})
        for shard in decision.changes:
            self.metrics.switches.labels(shard).inc()
        self.state.applies += 1
        self.state.last_error = None
        finished = time.time()
        self.state.remember(
            Apply(
                time=finished,
                noticed=None if latency is None else finished - latency,
                changes={k: str(v) for k, v in sorted(decision.changes.items())},
                latency_ms=None if latency is None else round(latency * 1000, 1),
                restart_ms=None if restart is None else round(restart.duration_ms, 1),
            )
        )
        if latency is not None:
            self.metrics.apply_latency.observe(latency)
            log.info(
                "applied %d change(s) %.0f ms after the first notice",
                len(decision.changes),
                latency * 1000,
            )
