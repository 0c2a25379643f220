"""The agent's event loop: one writer, level-triggered, debounced, observable.

Wake-ups (Sentinel events, link changes, the period) only start a cycle; each cycle reads the
truth from every Sentinel (`query_all`), decides (`decide_routes`, pure) and applies through
its target. Cycles never overlap, so there is exactly one writer of nutcracker.yml.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import RedisError

from redkeeper.agent.decide import Decision, decide_routes, in_failover_shards
from redkeeper.agent.http import serve
from redkeeper.agent.logs import BUG
from redkeeper.agent.metrics import AgentMetrics
from redkeeper.agent.targets import Target
from redkeeper.errors import RedkeeperError
from redkeeper.model import Address
from redkeeper.rediskit import aclose, async_client, command
from redkeeper.sentinel import (
    SentinelAnswer,
    SentinelEvent,
    SentinelQuerier,
    SentinelWatcher,
    decide,
)

log = logging.getLogger("redkeeper.agent")


@dataclass(frozen=True)
class AgentSettings:
    debounce: float = 0.05
    period: float = 1.0
    sentinel_timeout: float = 0.5
    coalesce: float = 1.5  # max wait for other shards' in-flight failovers (one restart)
    role_timeout: float = 0.3
    retry_soon: float = 0.1
    ping_interval: float = 1.0


@dataclass
class AgentState:
    """What /healthz and `status` show."""

    verdict: str = "starting"
    fail_static: bool = False
    last_cycle: float | None = None  # unix time
    last_error: str | None = None
    answered: int = 0
    routes: dict[str, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    applies: int = 0
    restarts: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # the last 100 applies

    def remember(self, entry: dict[str, Any]) -> None:
        self.history.append(entry)
        del self.history[:-100]


async def role_of(address: Address, password: str | None, timeout: float) -> str | None:
    """ROLE's first element ("master", "slave", "sentinel"), or None when unreachable."""
    client = async_client(address, password, timeout)
    try:
        reply = await asyncio.wait_for(command(client, "ROLE"), timeout)
    except (RedisError, OSError, TimeoutError):
        return None
    finally:
        await aclose(client)
    if isinstance(reply, list) and reply:
        return str(reply[0])
    return None


class Query(Protocol):
    async def __call__(
        self, addrs: Sequence[Address], *, password: str | None, timeout: float
    ) -> list[SentinelAnswer]: ...


RoleCheck = Callable[[Address, str | None, float], Awaitable[str | None]]


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
    ) -> None:
        self.sentinels = list(sentinels)
        self.target = target
        self.password = password
        self.inventory = inventory
        self.settings = settings
        self.metrics_address = metrics_address
        # Injected in benchmarks (100 fake shards); by default long-lived Sentinel connections.
        self._querier: SentinelQuerier | None = None
        self._query: Query
        if query is None:
            self._querier = self._query = SentinelQuerier()
        else:
            self._query = query
        self._role = role
        self.metrics = AgentMetrics(len(self.sentinels))
        self.state = AgentState()
        self._wake = asyncio.Event()
        self._first_notice: float | None = None
        self._pending_since: float | None = None
        self._event_woke = False
        self._last_logged: str | None = None
        self._watcher: SentinelWatcher | None = None

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

    # ------------------------------------------------------------------ health
    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.time()
        age = None if self.state.last_cycle is None else now - self.state.last_cycle
        stale = age is None or age > 3 * self.settings.period + 2 * self.settings.sentinel_timeout
        ok = not stale and not self.state.fail_static and self.state.last_error is None
        links = self._watcher.links_up if self._watcher else 0
        return ok, {
            "ok": ok,
            "verdict": self.state.verdict,
            "fail_static": self.state.fail_static,
            "last_cycle_age_s": None if age is None else round(age, 3),
            "last_error": self.state.last_error,
            "sentinels_configured": len(self.sentinels),
            "sentinels_answering": self.state.answered,
            "sentinel_links_up": links,
            "routes": self.state.routes,
            "refusals": self.state.refusals,
            "applies": self.state.applies,
            "restarts": self.state.restarts,
            "history": self.state.history,
        }

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
        watch = asyncio.create_task(self._watcher.run(), name="sentinel-watcher")
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
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(watch, timeout=2.0)
            if self._querier is not None:
                await self._querier.aclose()
            if server is not None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), timeout=1.0)
            log.info("agent stopped")

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
                await asyncio.sleep(self.settings.debounce)  # coalesce a burst of events
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
        started = time.monotonic()
        answers = await self._query(
            self.sentinels, password=self.password, timeout=self.settings.sentinel_timeout
        )
        answered = sum(1 for a in answers if a.answered)
        routes = self.target.routes()
        verdicts = decide(answers, len(self.sentinels), names=list(routes))
        flags: dict[str, set[str]] = {}
        for answer in answers:
            for name, report in (answer.reports or {}).items():
                flags.setdefault(name, set()).update(report.flags)
        candidates = {
            v.address
            for s, v in verdicts.items()
            if v.ok and v.address and v.address != routes.get(s)
        }
        roles = await self._roles(candidates)
        if self._pending_since is None and any(
            v.ok and v.address != routes.get(s) for s, v in verdicts.items()
        ):
            self._pending_since = notice
        pending_for = 0.0 if self._pending_since is None else started - self._pending_since
        decision = decide_routes(
            verdicts,
            routes,
            answered=answered,
            configured=len(self.sentinels),
            inventory=self.inventory,
            roles=roles,
            in_failover=in_failover_shards(flags),
            pending_for=pending_for,
            coalesce_window=self.settings.coalesce,
        )
        self._record(decision, answered, routes)
        if decision.changes and not decision.hold:
            await self._apply(decision)
        elif not decision.changes:
            self._pending_since = None
            repaired = await self.target.repair()
            if repaired is not None:
                self._count_restart(repaired.ok)
                level = logging.INFO if repaired.ok else logging.ERROR
                log.log(
                    level, "repair: %s (%.0f ms)", repaired.output.strip(), repaired.duration_ms
                )
        self._log_verdict(decision, by_event)
        return decision

    async def _roles(self, candidates: set[Address]) -> dict[Address, str | None]:
        if not candidates:
            return {}
        ordered = sorted(candidates)
        found = await asyncio.gather(
            *(self._role(a, self.password, self.settings.role_timeout) for a in ordered)
        )
        return dict(zip(ordered, found, strict=True))

    def _record(self, decision: Decision, answered: int, routes: Mapping[str, Address]) -> None:
        self.state.answered = answered
        self.state.fail_static = decision.fail_static
        self.state.verdict = decision.summary
        self.state.last_cycle = time.time()
        self.state.routes = {k: str(v) for k, v in routes.items()}
        self.state.refusals = [f"{r.shard}: {r.reason}: {r.detail}" for r in decision.refusals]
        self.metrics.sentinels_answering.set(answered)
        self.metrics.fail_static.set(1 if decision.fail_static else 0)
        self.metrics.last_cycle.set(self.state.last_cycle)
        for refusal in decision.refusals:
            self.metrics.refusals.labels(refusal.shard, refusal.reason).inc()
        kind = (
            "fail-static"
            if decision.fail_static
            else "hold"
            if decision.hold
            else "repoint"
            if decision.changes
            else "in-sync"
        )
        self.metrics.cycles.labels(kind).inc()

    def _log_verdict(self, decision: Decision, by_event: bool) -> None:
        level = logging.INFO
        if decision.fail_static or any(r.reason == "outside-inventory" for r in decision.refusals):
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
            log.info("Updating master %s to %s", shard, address)
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
        for shard in decision.changes:
            self.metrics.switches.labels(shard).inc()
        self.state.applies += 1
        self.state.last_error = None
        latency = None if self._pending_since is None else time.monotonic() - self._pending_since
        self.state.remember(
            {
                "time": time.time(),
                "noticed": None if latency is None else time.time() - latency,
                "changes": {k: str(v) for k, v in sorted(decision.changes.items())},
                "latency_ms": None if latency is None else round(latency * 1000, 1),
                "restart_ms": None if restart is None else round(restart.duration_ms, 1),
            }
        )
        if latency is not None:
            self.metrics.apply_latency.observe(latency)
            log.info(
                "applied %d change(s) %.0f ms after the first notice",
                len(decision.changes),
                latency * 1000,
            )
        self._pending_since = None
