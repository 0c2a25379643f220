"""redis-py clients configured for the peers redkeeper talks to (Redis, Sentinel, nutcracker).

Every client: RESP2 (redis-py 8 defaults to RESP3's HELLO, which nutcracker rejects), no
CLIENT SETINFO on connect (nutcracker closes the connection on it), and no hidden retries or
reconnects (redis-py retries 3 times with backoff by default; a probe must answer now or not).

Keys are bytes: the synchronous client decodes replies with `surrogateescape`, so a key that
is not UTF-8 comes back as a str that encodes back to the very same bytes (`model.key_bytes`)
when it is sent again (SCAN then UNLINK, MGET) — never a UnicodeDecodeError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from redkeeper.model import Address


def sync_client(address: Address, password: str | None = None, timeout: float = 0.5) -> redis.Redis:
    return redis.Redis(
        host=address.host,
        port=address.port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        encoding_errors="surrogateescape",
        retry=Retry(NoBackoff(), 0, supported_errors=()),
        protocol=2,
        driver_info=None,
    )


def async_client(
    address: Address, password: str | None = None, timeout: float = 0.5
) -> aioredis.Redis:
    return aioredis.Redis(
        host=address.host,
        port=address.port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        protocol=2,
        decode_responses=True,
        encoding_errors="replace",
        retry=AsyncRetry(NoBackoff(), 0, supported_errors=()),
        health_check_interval=0,
        driver_info=None,
    )


async def command(client: aioredis.Redis, *args: str) -> object:
    """One command, its raw reply untyped (redis-py's `execute_command` is not annotated)."""
    execute = cast(Callable[..., Awaitable[object]], client.execute_command)
    return await execute(*args)


async def aclose(client: aioredis.Redis) -> None:
    with contextlib.suppress(Exception):
        await client.aclose()
