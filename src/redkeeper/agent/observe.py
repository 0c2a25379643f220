"""The I/O of a cycle's observation: what the Sentinels answer, the ROLE of candidates, and
(for targets that ask) the facts of every node. Never decides anything: `core` does.

- `sentinels()`: every configured Sentinel's answer (long-lived connections, bounded);
- `roles(addresses)`: ROLE of each candidate (None when it does not answer in time);
- `nodes()`: `INFO replication` of every node of every shard, and the replicas each
  Sentinel flags down (`SENTINEL REPLICAS`), as a `core.nodes.NodesView`.
Every call is bounded by its timeout and never raises for a component that is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from redis.exceptions import RedisError

from redkeeper.core import SentinelAnswer
from redkeeper.core.nodes import NodeFacts, NodesView
from redkeeper.model import Address
from redkeeper.rediskit import aclose, async_client, command
from redkeeper.sentinel import SentinelQuerier
from redkeeper.sentinel.client import query_replicas


class Query(Protocol):
    async def __call__(
        self, addrs: Sequence[Address], *, password: str | None, timeout: float
    ) -> list[SentinelAnswer]: ...


RoleCheck = Callable[[Address, str | None, float], Awaitable[str | None]]


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


async def node_facts(address: Address, password: str | None, timeout: float) -> NodeFacts | None:
    """A node's `INFO replication` as NodeFacts, or None when it does not answer in time."""
    client = async_client(address, password, timeout)
    try:
        async with asyncio.timeout(timeout):
            info: Any = await client.info("replication")
    except (RedisError, OSError, TimeoutError):
        return None
    finally:
        await aclose(client)
    return NodeFacts.from_info(info) if isinstance(info, Mapping) else None


class Observer:
    """One per runner. `shards`: shard name → its nodes (for `nodes()`); `query` and `role`
    are injectable (unit tests, benchmarks with fake Sentinels)."""

    def __init__(
        self,
        sentinels: Sequence[Address],
        *,
        password: str | None = None,
        shards: Mapping[str, Iterable[Address]] | None = None,
        sentinel_timeout: float = 0.5,
        role_timeout: float = 0.3,
        query: Query | None = None,
        role: RoleCheck = role_of,
    ) -> None:
        self.sentinel_addresses = list(sentinels)
        self.password = password
        self.shards = {name: sorted(nodes) for name, nodes in (shards or {}).items()}
        self.sentinel_timeout = sentinel_timeout
        self.role_timeout = role_timeout
        self._querier = SentinelQuerier() if query is None else None
        self._query: Query = self._querier if self._querier is not None else query  # type: ignore[assignment]
        self._role = role

    async def sentinels(self) -> list[SentinelAnswer]:
        return await self._query(
            self.sentinel_addresses, password=self.password, timeout=self.sentinel_timeout
        )

    async def roles(self, addresses: set[Address]) -> dict[Address, str | None]:
        ordered = sorted(addresses)
        found = await asyncio.gather(
            *(self._role(a, self.password, self.role_timeout) for a in ordered)
        )
        return dict(zip(ordered, found, strict=True))

    async def nodes(self) -> NodesView:
        addresses = sorted({a for nodes in self.shards.values() for a in nodes})
        names = sorted(self.shards)
        facts, replicas = await asyncio.gather(
            asyncio.gather(*(node_facts(a, self.password, self.role_timeout) for a in addresses)),
            asyncio.gather(
                *(
                    query_replicas(s, names, password=self.password, timeout=self.sentinel_timeout)
                    for s in self.sentinel_addresses
                )
            ),
        )
        down: dict[str, set[Address]] = {}
        for answer in replicas:
            for name, reports in (answer or {}).items():
                down.setdefault(name, set()).update(r.address for r in reports if r.down)
        return NodesView(dict(zip(addresses, facts, strict=True)), down)

    async def aclose(self) -> None:
        if self._querier is not None:
            await self._querier.aclose()
