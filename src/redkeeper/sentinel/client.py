"""The asyncio edge towards Sentinels: ask all of them, and listen to all of them.

Owns every network exchange with Sentinels (redis-py `redis.asyncio`):

- `query_sentinel` / `SentinelQuerier`: `SENTINEL MASTERS` on each Sentinel, concurrently,
  each bounded by `timeout` (plus `GET-MASTER-ADDR-BY-NAME` for a master in failover: the
  observed fact `core.masters` needs for the leader's quirk); network failures become
  `SentinelAnswer(error=...)`, never raise.
- `SentinelWatcher`: one task per Sentinel holding a `PSUBSCRIBE *` link, delivering parsed
  events, reporting link up/down, detecting dead (killed or frozen) Sentinels with a PING on
  the pub/sub connection, and reconnecting forever with jittered exponential backoff.

The wire protocol is pinned to RESP2 and redis-py's own retries and silent reconnects are
disabled (`Retry(NoBackoff(), 0, supported_errors=())`): a dropped link must be seen here.
Raw replies are parsed into types in `sentinel.replies`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from redkeeper.core.masters import MasterReport, SentinelAnswer
from redkeeper.errors import BUG, SentinelError
from redkeeper.model import Address
from redkeeper.rediskit import async_client, command
from redkeeper.sentinel.events import SentinelEvent, parse_event
from redkeeper.sentinel.replies import (
    needs_current_address,
    parse_master_addr,
    parse_masters_reply,
)

log = logging.getLogger("redkeeper.sentinel")

# What a broken or slow link raises; anything else is a bug.
_LINK_ERRORS = (RedisError, OSError, TimeoutError)


async def _close(client: aioredis.Redis, pubsub: PubSub | None = None) -> None:
    """Close a pub/sub and its client; bounded by the client's own timeouts, never raises."""
    with contextlib.suppress(*_LINK_ERRORS):
        if pubsub is not None:
            await cast(Callable[[], Awaitable[None]], pubsub.aclose)()  # untyped in redis-py
    with contextlib.suppress(*_LINK_ERRORS):
        await client.aclose()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _ask(client: aioredis.Redis, addr: Address) -> dict[str, MasterReport]:
    reports = parse_masters_reply(addr, await command(client, "SENTINEL", "MASTERS"))
    for name, report in list(reports.items()):
        if needs_current_address(report):
            raw = await command(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
            reports[name] = replace(report, current_address=parse_master_addr(raw))
    return reports


async def query_sentinel(
    addr: Address,
    *,
    password: str | None = None,
    timeout: float = 0.5,
    client: aioredis.Redis | None = None,
) -> SentinelAnswer:
    """Ask one Sentinel for every master it monitors. Never raises for network failures,
    timeouts or a malformed reply: those give `SentinelAnswer(reports=None, error=...)`.
    A given `client` is reused and left open; otherwise one is made and closed."""
    own = client is None
    conn = async_client(addr, password, timeout) if client is None else client
    try:
        async with asyncio.timeout(timeout):
            reports = await _ask(conn, addr)
    except TimeoutError:
        return SentinelAnswer(addr, None, f"no answer within {timeout:g} s")
    except _LINK_ERRORS as exc:
        return SentinelAnswer(addr, None, _describe(exc))
    except ValueError as exc:
        return SentinelAnswer(addr, None, f"unparseable SENTINEL MASTERS reply: {exc}")
    finally:
        if own:
            await _close(conn)
    return SentinelAnswer(addr, reports, None)


class SentinelQuerier:
    """Ask every Sentinel over long-lived connections (one client per Sentinel), for the agent's
    once-a-second cycles; a Sentinel that fails gets a fresh connection next time."""

    def __init__(self) -> None:
        self._clients: dict[Address, aioredis.Redis] = {}

    async def __call__(
        self, addrs: Sequence[Address], *, password: str | None, timeout: float
    ) -> list[SentinelAnswer]:
        async def one(addr: Address) -> SentinelAnswer:
            client = self._clients.get(addr)
            if client is None:
                client = self._clients[addr] = async_client(addr, password, timeout)
            answer = await query_sentinel(addr, password=password, timeout=timeout, client=client)
            if not answer.answered:
                await _close(self._clients.pop(addr))
            return answer

        return list(await asyncio.gather(*(one(a) for a in dict.fromkeys(addrs))))

    async def aclose(self) -> None:
        for client in self._clients.values():
            await _close(client)
        self._clients.clear()


class _LinkDeadError(SentinelError):
    """No byte from a Sentinel for too long: killed, frozen or cut off."""


class SentinelWatcher:
    """Subscribe to every Sentinel (`PSUBSCRIBE *`) and keep those links up until cancelled.

    `on_event(addr, event)` gets every published message; `on_link(addr, up)` is called with
    True after each successful (re)subscribe and with False when an established link drops.
    Callbacks are plain functions run on the event loop; one that raises is logged as a bug
    and the watcher goes on. Cancelling `run()` closes every connection without calling
    `on_link`.
    """

    def __init__(
        self,
        addrs: Sequence[Address],
        on_event: Callable[[Address, SentinelEvent], None],
        on_link: Callable[[Address, bool], None],
        *,
        password: str | None = None,
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        ping_interval: float = 1.0,
        io_timeout: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not addrs:
            raise ValueError("SentinelWatcher needs at least one Sentinel address")
        if not 0 < backoff_min <= backoff_max:
            raise ValueError("need 0 < backoff_min <= backoff_max")
        if ping_interval <= 0:
            raise ValueError("ping_interval must be positive")
        self._addrs = list(dict.fromkeys(addrs))
        self._on_event = on_event
        self._on_link = on_link
        self._password = password
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        # A link is dead when nothing (not even a PONG) arrived for this long.
        self._dead_after = 2.5 * ping_interval
        self._io_timeout = io_timeout if io_timeout is not None else max(ping_interval, 0.2)
        self._rng = rng if rng is not None else random.Random()
        self._up: dict[Address, bool] = dict.fromkeys(self._addrs, False)

    @property
    def links_up(self) -> int:
        return sum(self._up.values())

    async def run(self) -> None:
        """Watch every Sentinel until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for addr in self._addrs:
                    group.create_task(self._watch(addr), name=f"sentinel-watch {addr}")
        finally:
            for addr in self._addrs:
                self._up[addr] = False

    # --- one Sentinel ----------------------------------------------------------------------

    def _call(self, what: str, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("sentinel %s: the %s callback raised; %s", args[0], what, BUG)

    def _set_link(self, addr: Address, up: bool) -> None:
        if self._up[addr] == up:
            return
        self._up[addr] = up
        self._call("on_link", self._on_link, addr, up)

    async def _watch(self, addr: Address) -> None:
        cap = self._backoff_min
        failures = 0
        while True:
            reason = "closed"
            try:
                await self._session(addr)
            except _LinkDeadError as exc:
                reason = str(exc)
            except _LINK_ERRORS as exc:
                reason = _describe(exc)
            except Exception as exc:
                reason = _describe(exc)
                log.exception("sentinel %s: unexpected error on the link; %s", addr, BUG)
            was_up = self._up[addr]
            self._set_link(addr, False)
            if was_up:
                cap, failures = self._backoff_min, 0
            delay = self._rng.uniform(self._backoff_min, cap)
            cap = min(cap * 2, self._backoff_max)
            failures += 1
            if was_up:
                log.warning("sentinel %s: link down (%s); reconnecting", addr, reason)
            elif failures == 1:
                log.warning("sentinel %s: cannot subscribe (%s); retrying", addr, reason)
            else:
                log.debug("sentinel %s: still unreachable (%s)", addr, reason)
            await asyncio.sleep(delay)

    async def _session(self, addr: Address) -> None:
        """Connect, subscribe, then pump messages until the link fails (raises)."""
        client = async_client(addr, self._password, self._io_timeout)
        pubsub = client.pubsub()
        try:
            async with asyncio.timeout(self._io_timeout):
                await pubsub.psubscribe("*")
                while True:
                    reply = await pubsub.get_message(timeout=self._io_timeout)
                    if isinstance(reply, Mapping) and reply.get("type") == "psubscribe":
                        break
            self._set_link(addr, True)
            log.debug("sentinel %s: subscribed", addr)
            await self._pump(addr, pubsub)
        finally:
            await _close(client, pubsub)

    async def _pump(self, addr: Address, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        last_rx = last_ping = loop.time()
        while True:
            now = loop.time()
            wait = min(last_ping + self._ping_interval, last_rx + self._dead_after) - now
            reply = await pubsub.get_message(timeout=max(wait, 0.01))
            now = loop.time()
            if reply is not None:
                last_rx = now
                self._deliver(addr, reply)
            if now - last_rx >= self._dead_after:
                raise _LinkDeadError(f"no reply for {now - last_rx:.1f} s")
            if now - last_ping >= self._ping_interval:
                async with asyncio.timeout(self._io_timeout):
                    await pubsub.ping()
                last_ping = now

    def _deliver(self, addr: Address, reply: object) -> None:
        if not isinstance(reply, Mapping) or reply.get("type") != "pmessage":
            return  # pong, (p)subscribe confirmations
        channel, data = reply.get("channel"), reply.get("data")
        if not isinstance(channel, str) or not isinstance(data, str):
            return
        self._call("on_event", self._on_event, addr, parse_event(channel, data))


# --- replicas (steady mode's read backends) ------------------------------------------------


@dataclass(frozen=True)
class ReplicaReport:
    """What one Sentinel says about one replica of a master (`SENTINEL REPLICAS`)."""

    address: Address
    flags: frozenset[str]  # e.g. {"slave"}, {"slave", "s_down"}
    link_up: bool  # master-link-status ok

    @property
    def down(self) -> bool:
        """Flagged s_down/o_down. ("disconnected" is not down: Sentinel sets it for a moment
        on every reconnect, e.g. to each replica it reconfigures during a failover.)"""
        return bool(self.flags & {"s_down", "o_down"})


def _replica_entry(raw: object) -> ReplicaReport:
    if isinstance(raw, Mapping):
        fields = {str(k): str(v) for k, v in raw.items()}
    elif isinstance(raw, list | tuple) and len(raw) % 2 == 0:
        fields = {str(k): str(v) for k, v in zip(raw[::2], raw[1::2], strict=True)}
    else:
        raise ValueError(f"unexpected SENTINEL REPLICAS entry: {raw!r}")
    return ReplicaReport(
        Address(fields["ip"], int(fields["port"])),
        frozenset(f for f in fields.get("flags", "").split(",") if f),
        fields.get("master-link-status") == "ok",
    )


async def query_replicas(
    addr: Address, names: Sequence[str], *, password: str | None = None, timeout: float = 0.5
) -> dict[str, list[ReplicaReport]] | None:
    """`SENTINEL REPLICAS <name>` for every name, on one connection to one Sentinel, bounded
    by `timeout` in all. None when the Sentinel does not answer (or answers nonsense); a name
    it does not monitor is left out."""
    client = async_client(addr, password, timeout)
    found: dict[str, list[ReplicaReport]] = {}
    try:
        async with asyncio.timeout(timeout):
            for name in names:
                try:
                    raw = await command(client, "SENTINEL", "REPLICAS", name)
                except RedisError as exc:
                    if "No such master" in str(exc):
                        continue
                    raise
                if not isinstance(raw, list):
                    raise ValueError(f"unexpected SENTINEL REPLICAS reply: {raw!r}")
                found[name] = [_replica_entry(entry) for entry in raw]
    except (*_LINK_ERRORS, ValueError, KeyError):
        return None
    finally:
        await _close(client)
    return found
