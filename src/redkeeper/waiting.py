"""Bounded polling: the one helper per style (blocking, and asyncio).

Both call a check until it says ready or the timeout passes, sleeping `interval` between
calls; neither ever waits unbounded.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


def poll(check: Callable[[], str | None], timeout: float, interval: float = 0.02) -> str | None:
    """Call `check` until it returns None (ready) or `timeout` passes; the last reason."""
    deadline = time.monotonic() + timeout
    while True:
        reason = check()
        if reason is None or time.monotonic() >= deadline:
            return reason
        time.sleep(interval)


async def poll_async(
    done: Callable[[], bool | Awaitable[bool]], timeout: float, interval: float
) -> bool:
    """Call (and await, if it is a coroutine function) `done` every `interval` s until it is
    True (-> True) or `timeout` passes (-> False)."""
    deadline = time.monotonic() + timeout
    while True:
        result = done()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
