"""Reply plumbing of the proxy: waiters, the client's reply slots, and per-turn flushing.

Owns how reply frames travel from a backend connection to the client that asked for them:
a `Waiter` receives the replies of `count` requests written as one payload, as one run of
frames (`Slot`: a place in a client's reply FIFO, for one request or for a run of requests
to one shard; `Group`: one shard's share of a `Batch`, a run of requests to several shards
whose replies are put back in request order once all groups have replied; `Part`: one
fragment of a split request, whose `Merge` fills the parent slot when all fragments have
replied; `IGNORED`: a reply nobody reads, such as the +QUEUED of a transaction). A failed
request gets its error once per request (`fail_all`). `Flusher` writes each dirty backend
connection and each client with new replies once per event-loop turn.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from redkeeper.server import fastpath
from redkeeper.server.split import Merger


class Writable(Protocol):
    """A backend connection with requests queued for the next write."""

    def flush(self, now: float) -> None: ...


class Client(Protocol):
    """What a waiter hands back when a client has a reply ready to write."""

    touched: bool

    def flush(self) -> None: ...


class Waiter(Protocol):
    """Receives the `count` reply frames of one payload; returns the client to flush, if any."""

    @property
    def count(self) -> int: ...

    def complete(self, frames: bytes) -> Client | None: ...


def fail_all(waiters: list[Waiter], error: bytes) -> None:
    """Answer every request of each waiter with the error frame, then flush each client once."""
    touched: list[Client] = []
    for waiter in waiters:
        client = waiter.complete(error * waiter.count)
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
    """A place in the client's reply FIFO for `count` requests (to one backend connection);
    `data` is their replies once known."""

    __slots__ = ("client", "count", "data")

    def __init__(self, client: Client, data: bytes | None = None, count: int = 1) -> None:
        self.client = client
        self.data = data
        self.count = count

    def complete(self, frames: bytes) -> Client | None:
        self.data = frames
        return self.client


class Batch(Slot):
    """A place in the reply FIFO for a run of requests spread over several groups (shards);
    `order` says the group of each request, in request order."""

    __slots__ = ("left", "order", "parts")

    def __init__(self, client: Client, order: bytes, groups: int) -> None:
        super().__init__(client, None, len(order))
        self.order = order
        self.parts: list[bytes] = [b""] * groups
        self.left = groups


class Group:
    """The waiter of one group of a `Batch`."""

    __slots__ = ("batch", "count", "index")

    def __init__(self, batch: Batch, index: int, count: int) -> None:
        self.batch = batch
        self.index = index
        self.count = count

    def complete(self, frames: bytes) -> Client | None:
        batch = self.batch
        batch.parts[self.index] = frames
        batch.left -= 1
        if batch.left:
            return None
        batch.data = fastpath.interleave(batch.order, batch.parts)
        return batch.client


class _Ignored:
    """The waiter of a reply nobody reads: MULTI's and each +QUEUED of a transaction block."""

    __slots__ = ()
    count = 1

    def complete(self, frames: bytes) -> Client | None:
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
    count = 1

    def __init__(self, merge: Merge, index: int) -> None:
        self.merge = merge
        self.index = index

    def complete(self, frames: bytes) -> Client | None:
        merge = self.merge
        merge.replies[self.index] = frames
        merge.left -= 1
        if merge.left:
            return None
        merge.slot.data = merge.merger.merge(merge.replies)
        return merge.slot.client
