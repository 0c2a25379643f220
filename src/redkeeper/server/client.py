"""One client connection of the proxy: parse requests, route them, answer in request order.

Owns the client side of the data plane. At a request boundary, the fast path
(`fastpath.route`, in C) takes the run of complete single-key requests that starts there and
forwards each shard's share as the client's raw bytes, one payload per shard (a `Slot`, or a
`Batch` whose replies are put back in request order); what it leaves is parsed by
`hiredis.Reader` (RESP multibulk) or, when the first byte is not `*`, as inline commands
(Redis's rules), and handled one request at a time (an inlined loop for single-key commands,
`handler.RequestHandler` for everything else: multi-key, local, refused, MULTI/EXEC). Replies
are written in request order as soon as the head of the FIFO is complete (a slow shard delays
this client's later replies: head-of-line blocking, bounded by the server timeout), over the
backend links of the client's protocol (RESP2 or RESP3, chosen by HELLO). Reading pauses
while replies pile up unsent (transport high-water), while too many requests are in flight,
while a backend is saturated, and during drain.
A protocol error gets `-ERR Protocol error: ...` after the replies already owed, then the
connection closes; nothing else closes it but QUIT, the idle timeout and drain.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import hiredis

from redkeeper.server import commands, fastpath, resp
from redkeeper.server.handler import PAUSE_DRAIN, RequestHandler
from redkeeper.server.local import Session
from redkeeper.server.pool import Links
from redkeeper.server.replies import Batch, Group, Slot, Waiter
from redkeeper.server.transaction import Transaction

if TYPE_CHECKING:
    from redkeeper.server.server import ProxyServer

_LOOKUP = commands._BY_BYTES  # name bytes -> spec, both cases precomputed
_SINGLE = commands.SINGLE
_PACK = resp.pack
_FAST = fastpath.FAST_COMMANDS
_ROUTE = fastpath.ROUTE
MAX_INLINE = 64 * 1024
MAX_RUN = fastpath.MAX_RUN  # requests one fast-path run takes at most

# Reasons to pause reading (bits).
PAUSE_WRITE = 1
PAUSE_INFLIGHT = 2
PAUSE_BACKEND = 4
__all__ = ["PAUSE_BACKEND", "PAUSE_DRAIN", "PAUSE_INFLIGHT", "PAUSE_WRITE", "ClientConnection"]


class ClientConnection(RequestHandler, asyncio.Protocol):
    """asyncio protocol for one client socket."""

    def __init__(self, server: ProxyServer, session: Session) -> None:
        self.server = server
        self.pool = server.pool
        self.metrics = server.metrics
        self.session = session
        self.proto = 2
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.queue: collections.deque[Slot] = collections.deque()
        self.touched = False
        self.paused = 0
        self.closed = False
        self.close_after: Slot | None = None  # QUIT or a protocol error: close once written
        self.partial = 0  # bytes of an incomplete request buffered so far
        self.since = b""  # bytes fed to hiredis since it was last at a request boundary
        self.tail = b""  # the end of the last chunk, when it ended inside a request
        self.inline = b""  # an incomplete inline line
        self.midway = False  # hiredis holds part of a request
        self.rr = 0
        self.held: list[bytes] = []  # data that arrived while paused
        self.accepted = True
        self.txn: Transaction | None = None  # since MULTI
        self.owed = 0  # requests in the queue (an entry may stand for several)
        settings = server.settings
        self.max_inflight = settings.max_inflight
        self.max_argc = settings.max_multibulk
        self.max_bulk = settings.max_request_bytes
        self.active = False  # read something since the last tick

    # -- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.session.addr = _address(peer)
        self.session.laddr = _address(local)
        limits = self.server.settings
        transport.set_write_buffer_limits(
            high=limits.client_write_high, low=limits.client_write_low
        )
        self.accepted = self.server.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.queue.clear()
        self.server.forget(self)

    def pause_writing(self) -> None:
        self.pause(PAUSE_WRITE)

    def resume_writing(self) -> None:
        self.resume(PAUSE_WRITE)

    def data_received(self, data: bytes) -> None:
        if self.close_after is not None or self.closed:
            return
        if self.paused:  # read before the pause took effect: keep it for the resume
            self.held.append(data)
            self.reapply_pause()
            return
        self.active = True  # the tick sets session.last_active from it
        try:
            if self.inline:
                self._inline(data)
            elif self.midway:
                self._feed(data)
            elif data[0] != 42:
                self._inline(data)
            elif _ROUTE is not None:
                self._route(data, _ROUTE)
            else:
                self._feed(data)
        except (hiredis.ProtocolError, resp.RespError) as exc:
            self._protocol_error(str(exc))
        except TypeError:  # an argument that is not a bulk string (hiredis parsed ':1' ...)
            self._protocol_error("expected '$' bulk strings in the request")
        except MemoryError:
            self._protocol_error("invalid multibulk length")
        queue = self.queue
        if queue:
            if queue[0].data is not None:
                self.flush()
            if self.owed >= self.max_inflight:
                self.pause(PAUSE_INFLIGHT)

    # -- parsing -----------------------------------------------------------------------------
    def _route(self, data: bytes, route: fastpath.Route) -> None:
        """The fast path from a request boundary; the rest goes the general way."""
        pos = 0
        if self.session.authed and self.txn is None:
            dispatch = self.pool.dispatch
            proto = self.proto
            writes = dispatch.writes[proto]
            reads = dispatch.reads[proto]
            cache, index_of = dispatch.cache, dispatch.index_of
            max_argc, max_bulk = self.max_argc, self.max_bulk
            requests = self.metrics.requests
            queue = self.queue
            n = len(data)
            while pos < n:
                end, order, groups = route(
                    data, pos, _FAST, cache, index_of, max_argc, max_bulk, MAX_RUN
                )
                if end == pos:
                    break
                pos = end
                total = len(order)
                requests[_SINGLE] += total
                self.owed += total
                if len(groups) == 1:
                    code, payload, count = groups[0]
                    slot = Slot(self, None, count)
                    queue.append(slot)
                    links = reads[code >> 1] if code & 1 else writes[code >> 1]
                    if len(links) == 1:
                        conn = links[0].conn
                        if conn is not None:  # conn.write, inlined
                            conn.pending.append(slot)
                            conn.queued += count
                            out = conn.out
                            out.append(payload)
                            if len(out) == 1:
                                conn.mark(conn)
                            continue
                    self._send(links, payload, slot, code >> 1, bool(code & 1))
                    continue
                batch = Batch(self, order, len(groups))
                queue.append(batch)
                for i, (code, payload, count) in enumerate(groups):
                    self._forward(code, payload, Group(batch, i, count), writes, reads)
        if pos < len(data):
            rest = data[pos:] if pos else data
            if rest[0] == 42:
                self._feed(rest)
            else:
                self._inline(rest)

    def _forward(
        self, code: int, payload: bytes, waiter: Waiter, writes: Links, reads: Links
    ) -> None:
        """Send one fast-path group: code is shard * 2 + readonly."""
        shard = code >> 1
        links = reads[shard] if code & 1 else writes[shard]
        if len(links) == 1:
            conn = links[0].conn
            if conn is not None:
                conn.write(payload, waiter)
                return
        self._send(links, payload, waiter, shard, bool(code & 1))

    def _feed(self, data: bytes) -> None:
        settings = self.server.settings
        bad: tuple[int, str] | None = None
        if self.server.suspicious(self.tail + data):  # a length with many digits: check exactly
            since = self.since
            bad = resp.first_bad_header(
                since + data, settings.max_multibulk, settings.max_request_bytes
            )
            if bad is not None:
                data = data[: max(0, bad[0] - len(since))]
        reader = self.reader
        reader.feed(data)
        gets = reader.gets
        max_multibulk = settings.max_multibulk
        fast = self._fast_path()
        consumed = 0  # canonical RESP bytes of the requests taken (a boundary check)
        last = b""  # the canonical bytes of the last request taken
        while True:
            request = gets()
            if request is False:
                break
            if type(request) is not list:
                raise resp.RespError(f"expected '*', got {type(request).__name__}")
            # The hot path, inlined: an authenticated single-key command to a connected link.
            spec = _LOOKUP.get(request[0]) if request else None
            if spec is not None and spec.kind == _SINGLE and fast is not None:
                argc = len(request)
                arity = spec.arity
                key = request[spec.first] if argc > spec.first else None
                if type(key) is bytes and ((argc == arity) if arity > 0 else (argc >= -arity)):
                    cache_get, index_of, writes, reads, counts, queue_append = fast
                    shard = cache_get(key)
                    if shard is None:
                        shard = index_of(key)
                    links = reads[shard] if spec.readonly else writes[shard]
                    if len(links) == 1:
                        conn = links[0].conn
                        if conn is not None:
                            counts[_SINGLE] += 1
                            slot = Slot(self)
                            queue_append(slot)
                            self.owed += 1
                            payload = last = _PACK(tuple(request))
                            consumed += len(payload)
                            conn.write(payload, slot)
                            continue
            if len(request) > max_multibulk:
                raise resp.RespError("invalid multibulk length")
            if request:
                try:
                    last = _PACK(tuple(request))
                    consumed += len(last)
                except TypeError:
                    consumed = -1
                self._handle(request)
                if self.close_after is not None:
                    return
                fast = self._fast_path()
            else:
                last = b"*0\r\n"
                consumed += 4
        if bad is not None:
            raise resp.RespError(bad[1])
        # hiredis can have consumed every byte and still be between two arguments of a request:
        # at a boundary when the requests taken add up to every byte fed since the last one
        # (canonical RESP is the shortest), else check.
        since = self.since
        if reader.has_data() or (
            consumed != len(since) + len(data) and not fastpath.at_boundary(since + data)
        ):
            self.midway = True
            buffered = since + data
            # Keep only the incomplete request: it starts where the requests taken end, when
            # the last one taken sits there byte for byte (else keep all, as before).
            if consumed > 0 and last and buffered[consumed - len(last) : consumed] == last:
                buffered = buffered[consumed:]
            self.partial = len(buffered)
            if self.partial > settings.max_request_bytes:
                raise resp.RespError("request too large (proto-max-bulk-len)")
            self.since = buffered
            self.tail = data[-24:]
        else:
            self.midway = False
            self.partial = 0
            if self.since:
                self.since = self.tail = b""

    def _fast_path(
        self,
    ) -> (
        tuple[
            Callable[[bytes], int | None],
            Callable[[bytes], int],
            Links,
            Links,
            list[int],
            Callable[[Slot], None],
        ]
        | None
    ):
        """What the inlined hot path needs, or None when every request must take the long way."""
        if not self.session.authed or self.txn is not None:
            return None
        dispatch = self.pool.dispatch
        proto = self.proto
        return (
            dispatch.cache_get,
            dispatch.index_of,
            dispatch.writes[proto],
            dispatch.reads[proto],
            self.metrics.requests,
            self.queue.append,
        )

    def _inline(self, data: bytes) -> None:
        buf = self.inline + data if self.inline else data
        self.inline = b""
        pos = 0
        n = len(buf)
        while pos < n:
            if buf[pos] == 42:  # '*': multibulk from here on
                self._feed(buf[pos:])
                return
            eol = buf.find(b"\n", pos)
            if eol < 0:
                if n - pos > MAX_INLINE:
                    raise resp.RespError("too big inline request")
                self.inline = buf[pos:]
                return
            args = resp.split_inline(buf[pos:eol].rstrip(b"\r"))
            pos = eol + 1
            if args:
                self._handle(args)
                if self.close_after is not None:
                    return

    def _protocol_error(self, detail: str) -> None:
        self.metrics.error("protocol")
        self.close_after = self._slot(resp.error(f"ERR Protocol error: {detail}"))
        self.pause(PAUSE_DRAIN)

    # -- replies -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every reply at the head of the FIFO that is complete."""
        queue = self.queue
        out: list[bytes] = []
        close = False
        owed = self.owed
        while queue:
            slot = queue[0]
            data = slot.data
            if data is None:
                break
            queue.popleft()
            owed -= slot.count
            out.append(data)
            if slot is self.close_after:
                close = True
                break
        self.owed = owed
        transport = self.transport
        if self.closed or transport is None:
            return
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            transport.close()
            self.closed = True
            return
        if self.paused & PAUSE_INFLIGHT and owed < self.max_inflight // 2:
            self.resume(PAUSE_INFLIGHT)
        if not queue and self.server.draining:
            transport.close()

    def pause(self, reason: int) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def reapply_pause(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()
            if self.held:
                held, self.held = self.held, []
                self.data_received(b"".join(held))

    def close_now(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self.closed = True


def _address(value: object) -> str:
    if isinstance(value, tuple) and len(value) >= 2:
        host, port = value[0], value[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(value or "")
