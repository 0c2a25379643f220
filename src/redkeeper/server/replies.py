"""Reply plumbing of the proxy: waiters, the client's reply slots, and per-turn flushing.

Owns how a reply frame travels from a backend connection to the client that asked for it:
a `Waiter` receives one frame (`Slot`: one request's place in a client's reply FIFO; `Part`:
one fragment of a split request, whose `Merge` fills the parent slot when all fragments have
replied; `IGNORED`: a reply nobody reads, such as the +QUEUED of a transaction), and `Flusher` writes each dirty backend connection and each client with new replies
once per event-loop turn.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from redkeeper.server.split import Merger


class Writable(Protocol):
    """A backend connection with requests queued for the next write."""

    def flush(self, now: float) -> None: ...


class Client(Protocol):
    """What a waiter hands back when a client has a reply ready to write."""

    touched: bool

    def flush(self) -> None: ...


class Waiter(Protocol):
    """Receives the reply frame of one request; returns the client to flush, if any."""

    def complete(self, frame: bytes) -> Client | None: ...


def complete_all(items: list[tuple[Waiter, bytes]]) -> None:
    """Hand each waiter its frame, then flush each client touched once."""
    touched: list[Client] = []
    for waiter, frame in items:
        client = waiter.complete(frame)
        if client is not None and not client.touched:
            client.touched = True
            touched.append(client)
    for client in touched:
        client.touched = False
        client.flush()


class Flusher:
    """Coalesces writes per event-loop turn: backend requests, then client replies.

    Every backend connection with queued requests is written once per turn, and every client
    whose replies became ready during the turn (from any number of shards) is written once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[Writable] = []
        self.ready: list[Client] = []
        self.scheduled = False

    def mark(self, conn: Writable) -> None:
        self.dirty.append(conn)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if self.dirty:
            dirty, self.dirty = self.dirty, []
            now = self.loop.time()
            for conn in dirty:
                conn.flush(now)
        if self.ready:
            ready, self.ready = self.ready, []
            for client in ready:
                client.touched = False
                client.flush()


class Slot:
    """One request's place in the client's reply FIFO; `data` is its reply once known."""

    __slots__ = ("client", "data")

    def __init__(self, client: Client, data: bytes | None = None) -> None:
        self.client = client
        self.data = data

    def complete(self, frame: bytes) -> Client | None:
        self.data = frame
        return self.client


class _Ignored:
    """The waiter of a reply nobody reads: MULTI's and each +QUEUED of a transaction block."""

    __slots__ = ()

    def complete(self, frame: bytes) -> Client | None:
        return None


IGNORED = _Ignored()


class Merge:
    """The fragments of one split request; fills the parent slot when all have replied."""

    __slots__ = ("left", "merger", "replies", "slot")

    def __init__(self, slot: Slot, merger: Merger, count: int) -> None:
        self.slot = slot
        self.merger = merger
        self.replies: list[bytes] = [b""] * count
        self.left = count


class Part:
    __slots__ = ("index", "merge")

    def __init__(self, merge: Merge, index: int) -> None:
        self.merge = merge
        self.index = index

    def complete(self, frame: bytes) -> Client | None:
        merge = self.merge
        merge.replies[self.index] = frame
        merge.left -= 1
        if merge.left:
            return None
        merge.slot.data = merge.merger.merge(merge.replies)
        return merge.slot.client
