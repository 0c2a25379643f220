"""Backend connections of the proxy: one multiplexed connection per (address, protocol).

Owns the upstream side: `BackendLink` is one backend address spoken to in one RESP
protocol (2 or 3). It connects lazily on the first request, authenticates (`AUTH`, or `HELLO 3
AUTH default <password>` for RESP3) pipelined ahead of the queued requests, and after a failed
connect answers at once with an error until a bounded backoff has passed; the next request
then reconnects. `BackendConnection` is the socket: every client's requests are appended to
one output buffer that is written once per event-loop turn (`Flusher`), and replies are
counted in frames (`fastpath.frames`) and handed, in FIFO order, to the waiters that asked
for them: each waiter gets the contiguous run of its `count` replies in one piece.

A link closed because the route table moved its shard elsewhere fails only its in-flight
requests (they may or may not have run) and hands back the ones not yet written, which are
routed again with the new table. The per-request server timeout is checked per written batch:
when the oldest unanswered batch is older than the timeout, the connection is reset (replies
are positional) and every pending request gets an error reply.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable
from typing import Protocol, cast

from redkeeper.model import Address
from redkeeper.server import fastpath, resp
from redkeeper.server.replies import Client, Flusher, Waiter, fail_all

_PUSH = 62  # '>': a RESP3 out-of-band push, never a reply
_LINE = frozenset(b"+-:")  # replies that end at the first CRLF
_DOLLAR = 36
_SCAN_HERE = not fastpath.COMPILED  # without C, cutting single replies inline is faster


class LinkHost(Protocol):
    """What a link needs from its pool."""

    flusher: Flusher
    password: str | None
    connect_timeout: float
    write_high: int

    def backoff_bounds(self) -> tuple[float, float]: ...
    def saturated(self, delta: int) -> None: ...
    def observe(self, shard: str, seconds: float) -> None: ...
    def link_state(self, link: BackendLink, up: bool) -> None: ...


class BackendConnection(asyncio.Protocol):
    """One socket to a backend: a FIFO of waiters and an output buffer."""

    def __init__(self, link: BackendLink) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.pending: collections.deque[Waiter] = collections.deque()
        self.out: list[bytes] = []
        self.buf = b""  # unconsumed input, from the first reply of the head waiter
        self.scanned = 0  # bytes of self.buf already counted as the head waiter's frames
        self.got = 0  # frames of the head waiter counted so far
        self.queued = 0  # requests in self.out
        self.sent = 0  # payloads written
        self.received = 0  # replies received
        self.batches: collections.deque[tuple[float, int]] = collections.deque()
        self.dead = False
        self.paused = False
        self.mark = link.host.flusher.mark

    # -- asyncio callbacks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self.transport = transport
        high = self.link.host.write_high
        transport.set_write_buffer_limits(high=high, low=high // 4)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pending = self.pending
        flusher = self.link.host.flusher
        ready = flusher.ready
        frames = fastpath.frames
        n = len(buf)
        start = 0  # the head waiter's first reply
        pos = self.scanned  # the end of its replies counted so far
        got = self.got
        count = 0
        try:
            while pos < n:
                if not pending:
                    raise resp.RespError("a reply nobody asked for")
                waiter = pending[0]
                need = waiter.count
                if _SCAN_HERE and need == 1:  # pure Python: the common replies inline
                    kind = buf[pos]
                    if kind in _LINE:
                        end = buf.find(b"\r\n", pos) + 2
                        if end == 1:
                            break
                    elif kind == _DOLLAR:
                        eol = buf.find(b"\r\n", pos)
                        if eol < 0:
                            break
                        length = int(buf[pos + 1 : eol])
                        end = eol + 4 + length if length >= 0 else eol + 2
                        if end > n:
                            break
                    else:
                        end = resp.frame_end(buf, pos)
                        if end < 0:
                            break
                        if kind == _PUSH:
                            buf = buf[:pos] + buf[end:]
                            n = len(buf)
                            continue
                    pos = end
                    got = 1
                else:
                    found, pos = frames(buf, pos, need - got)
                    got += found
                if got < need:
                    if pos < n and buf[pos] == _PUSH:  # skip it
                        end = resp.frame_end(buf, pos)
                        if end < 0:
                            break
                        buf = buf[:pos] + buf[end:]
                        n = len(buf)
                        continue
                    break
                pending.popleft()
                client = waiter.complete(buf[start:pos] if start or pos < n else buf)
                count += 1
                got = 0
                start = pos
                if client is not None and not client.touched:
                    client.touched = True
                    ready.append(client)
        except (resp.RespError, ValueError) as exc:
            self.buf = b""
            self.scanned = self.got = 0
            flusher.schedule()
            self.link.reset(self, f"sent an invalid reply ({exc})")
            return
        self.buf = buf[start:] if start < n else b""
        self.scanned = pos - start
        self.got = got
        if count:
            flusher.schedule()
            self.received += count
            batches = self.batches
            if batches:
                received = self.received
                now = flusher.loop.time()
                while batches and batches[0][1] <= received:
                    self.link.host.observe(self.link.shard, now - batches.popleft()[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self, exc)

    def pause_writing(self) -> None:
        if not self.paused:
            self.paused = True
            self.link.host.saturated(1)

    def resume_writing(self) -> None:
        if self.paused:
            self.paused = False
            self.link.host.saturated(-1)

    # -- used by the link ----------------------------------------------------------------------
    def write(self, payload: bytes, waiter: Waiter) -> None:
        self.pending.append(waiter)
        self.queued += waiter.count
        out = self.out
        out.append(payload)
        if len(out) == 1:
            self.mark(self)

    def flush(self, now: float) -> None:
        if not self.out or self.dead or self.transport is None:
            return
        self.sent += len(self.out)
        self.link.requests += self.queued
        self.queued = 0
        self.batches.append((now, self.sent))
        data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
        self.out = []
        self.transport.write(data)

    def take_all(self) -> tuple[list[Waiter], list[tuple[bytes, Waiter]]]:
        """Detach every waiter: (in flight, not yet written with its payload)."""
        self.dead = True
        unsent_count = len(self.out)
        waiters = list(self.pending)
        self.pending.clear()
        in_flight = waiters[: len(waiters) - unsent_count]
        unsent = list(zip(self.out, waiters[len(waiters) - unsent_count :], strict=True))
        self.out = []
        self.queued = 0
        self.batches.clear()
        if self.paused:
            self.paused = False
            self.link.host.saturated(-1)
        return in_flight, unsent

    def oldest_batch(self) -> float | None:
        return self.batches[0][0] if self.batches else None


class _Handshake:
    """The waiter of AUTH / HELLO 3 sent ahead of the first requests."""

    def __init__(self, link: BackendLink, conn: BackendConnection) -> None:
        self.link = link
        self.conn = conn

    count = 1

    def complete(self, frames: bytes) -> Client | None:
        if resp.is_error(frames):
            text = frames[1:].decode(errors="replace").strip()
            self.link.reset(self.conn, f"refused the handshake: {text}")
        return None


Redispatch = Callable[["BackendLink", bytes, Waiter], None]


class BackendLink:
    """One backend address in one protocol: lazy connect, handshake, bounded backoff."""

    def __init__(
        self,
        host: LinkHost,
        shard: str,
        address: Address,
        proto: int,
        redispatch: Redispatch,
    ) -> None:
        self.host = host
        self.shard = shard
        self.address = address
        self.proto = proto
        self.read_role = False  # the pool sets it: a replica link (re-routed as a read)
        self.redispatch = redispatch
        self.conn: BackendConnection | None = None  # set only while up
        self.connecting: BackendConnection | None = None
        self.waiting: list[tuple[bytes, Waiter]] = []
        self.retry_at = 0.0
        self.backoff = 0.0
        self.last_error = ""
        self.closed = False
        self.where = f"{shard} backend {address}"
        self.requests = 0  # requests written, for metrics

    def send(self, payload: bytes, waiter: Waiter) -> None:
        """Queue one request (the hot path when connected)."""
        conn = self.conn
        if conn is not None:
            conn.write(payload, waiter)
            return
        if self.closed:
            self.redispatch(self, payload, waiter)
            return
        if self.connecting is None:
            loop = self.host.flusher.loop
            if loop.time() < self.retry_at:
                fail_all([waiter], self._unreachable())
                return
            self._connect(loop)
        self.waiting.append((payload, waiter))

    def _unreachable(self) -> bytes:
        return resp.error(f"ERR redkeeper: {self.where} unreachable: {self.last_error}")

    def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        conn = BackendConnection(self)
        self.connecting = conn
        task = loop.create_task(self._open(loop, conn))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _open(self, loop: asyncio.AbstractEventLoop, conn: BackendConnection) -> None:
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: conn, self.address.host, self.address.port),
                self.host.connect_timeout,
            )
        except (TimeoutError, OSError) as exc:
            self._connect_failed(conn, _describe(exc))
            return
        if conn.dead:
            self._connect_failed(conn, "closed during connect")
            return
        if self.connecting is not conn or self.closed:
            conn.dead = True
            if conn.transport is not None:
                conn.transport.close()
            return
        self.connecting = None
        self.conn = conn
        self.backoff = 0.0
        self.host.link_state(self, True)
        password = self.host.password
        if self.proto == 3:
            args = ["HELLO", "3"] + (["AUTH", "default", password] if password else [])
            conn.write(resp.command(*args), _Handshake(self, conn))
        elif password:
            conn.write(resp.command("AUTH", password), _Handshake(self, conn))
        waiting, self.waiting = self.waiting, []
        for payload, waiter in waiting:
            conn.write(payload, waiter)

    def _connect_failed(self, conn: BackendConnection, reason: str) -> None:
        if self.connecting is not conn:
            return
        self.connecting = None
        self.last_error = reason
        low, high = self.host.backoff_bounds()
        self.backoff = min(high, max(low, self.backoff * 2))
        self.retry_at = self.host.flusher.loop.time() + self.backoff
        self.host.link_state(self, False)
        error = self._unreachable()
        waiting, self.waiting = self.waiting, []
        fail_all([waiter for _, waiter in waiting], error)

    def lost(self, conn: BackendConnection, exc: Exception | None) -> None:
        """The socket closed (by the backend, a reset, or us)."""
        if conn.dead:
            return
        reason = _describe(exc) if exc is not None else "closed by the backend"
        self._fail_conn(conn, f"ERR redkeeper: {self.where} connection lost: {reason}")

    def reset(self, conn: BackendConnection, why: str) -> None:
        """Drop a connection whose reply stream cannot be trusted (timeout, bad frame, auth)."""
        if conn.dead:
            return
        self._fail_conn(conn, f"ERR redkeeper: {self.where} {why}")

    def _fail_conn(self, conn: BackendConnection, message: str) -> None:
        in_flight, unsent = conn.take_all()
        if conn.transport is not None:
            conn.transport.abort()
        if self.conn is conn:
            self.conn = None
            self.host.link_state(self, False)
        error = resp.error(message)
        fail_all(in_flight + [w for _, w in unsent], error)

    def check_timeout(self, now: float, timeout: float) -> None:
        conn = self.conn
        if conn is None:
            return
        oldest = conn.oldest_batch()
        if oldest is not None and now - oldest > timeout:
            self.reset(conn, f"timed out after {round(timeout * 1000)} ms")

    def close(self, message: str) -> None:
        """Close for good: in-flight requests get `message`; unsent ones are routed again."""
        self.closed = True
        conn, self.conn = self.conn, None
        connecting, self.connecting = self.connecting, None
        unsent: list[tuple[bytes, Waiter]] = []
        error = resp.error(message)
        failed: list[Waiter] = []
        for c in (conn, connecting):
            if c is None:
                continue
            in_flight, not_written = c.take_all()
            failed += in_flight
            unsent += not_written
            if c.transport is not None:
                c.transport.abort()
        unsent += self.waiting
        self.waiting = []
        if conn is not None:
            self.host.link_state(self, False)
        fail_all(failed, error)
        for payload, waiter in unsent:
            self.redispatch(self, payload, waiter)

    def idle(self) -> bool:
        conn = self.conn
        return not self.waiting and (conn is None or not conn.pending)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "connect timed out"
    text = str(exc) or type(exc).__name__
    return text.replace("\r", " ").replace("\n", " ")
