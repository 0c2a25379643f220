"""One client connection of the proxy: parse requests, route them, answer in request order.

Owns the client side of the data plane. Requests are parsed by `hiredis.Reader` (RESP
multibulk) or, at a request boundary when the first byte is not `*`, as inline commands
(Redis's rules); each gets a `Slot` in the connection's FIFO, and replies are written in
request order as soon as the head of the FIFO is complete (a slow shard delays this client's
later replies: head-of-line blocking, bounded by the server timeout). Keyed commands go to the
shard `Router` places them on, over the backend links of the client's protocol (RESP2 or
RESP3, chosen by HELLO); multi-key commands are split and merged by `split`; LOCAL commands
are answered by `local`. Reading pauses while replies pile up unsent (transport high-water),
while too many requests are in flight, while a backend is saturated, and during drain.
A protocol error gets `-ERR Protocol error: ...` after the replies already owed, then the
connection closes; nothing else closes it but QUIT, the idle timeout and drain.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import hiredis

from redkeeper.server import commands, resp, split
from redkeeper.server.backend import BackendLink
from redkeeper.server.local import NOAUTH, PRE_AUTH, Session
from redkeeper.server.pool import Links
from redkeeper.server.replies import Merge, Part, Slot

if TYPE_CHECKING:
    from redkeeper.server.server import ProxyServer

_LOOKUP = commands._BY_BYTES  # name bytes -> spec, both cases precomputed
_SINGLE = commands.SINGLE
# hiredis's stub types the argument as a 1-tuple; it packs any tuple of bulk arguments.
_PACK: Callable[[tuple[bytes, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]
MAX_INLINE = 64 * 1024

# Reasons to pause reading (bits).
PAUSE_WRITE = 1
PAUSE_INFLIGHT = 2
PAUSE_BACKEND = 4
PAUSE_DRAIN = 8


class ClientConnection(asyncio.Protocol):
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
        self.mid = False  # hiredis holds part of a request (its has_data() may be False then)
        self.rr = 0
        self.held: list[bytes] = []  # data that arrived while paused
        self.accepted = True

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
        self.session.last_active = self.server.loop.time()
        try:
            if self.inline or (data[0] != 42 and not self.mid):
                self._inline(data)
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
            if len(queue) >= self.server.settings.max_inflight:
                self.pause(PAUSE_INFLIGHT)

    # -- parsing -----------------------------------------------------------------------------
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
        last = None
        while True:
            request = gets()
            if request is False:
                break
            if type(request) is not list:
                raise resp.RespError(f"expected '*', got {type(request).__name__}")
            last = request
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
                            conn.pending.append(slot)
                            out = conn.out
                            out.append(_PACK(tuple(request)))
                            if len(out) == 1:
                                conn.link.host.flusher.mark(conn)
                            continue
            if len(request) > max_multibulk:
                raise resp.RespError("invalid multibulk length")
            if request:
                self._handle(request)
                if self.close_after is not None:
                    return
                fast = self._fast_path()
        if bad is not None:
            raise resp.RespError(bad[1])
        # Between two elements of a request hiredis has consumed every byte it was fed, so
        # has_data() is False there too: at a boundary only if the data ends with the request
        # it returned last (hiredis takes only canonical lengths, so that is its encoding).
        self.mid = reader.has_data() or last is None or not self._ends_with(data, last)
        if self.mid:
            self.partial += len(data)
            if self.partial > settings.max_request_bytes:
                raise resp.RespError("request too large (proto-max-bulk-len)")
            self.since = self.since + data
            self.tail = data[-24:]
        else:
            self.partial = 0
            if self.since:
                self.since = self.tail = b""

    def _ends_with(self, data: bytes, request: list[bytes]) -> bool:
        """True when the bytes fed so far end with `request`'s encoding."""
        try:
            wire = _PACK(tuple(request))
        except TypeError:
            return False
        cut = len(wire) - len(data)
        if cut <= 0:
            return data.endswith(wire)
        return wire.endswith(data) and self.since.endswith(wire[:cut])

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
        if not self.session.authed:
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
        slot = Slot(self, resp.error(f"ERR Protocol error: {detail}"))
        self.queue.append(slot)
        self.close_after = slot
        self.pause(PAUSE_DRAIN)

    # -- routing -----------------------------------------------------------------------------
    def _reply(self, data: bytes) -> None:
        self.queue.append(Slot(self, data))

    def _handle(self, args: list[bytes]) -> None:
        spec = _LOOKUP.get(args[0])
        if spec is None:
            if type(args[0]) is not bytes:
                raise resp.RespError("expected '$' bulk strings in the request")
            spec = commands.lookup(args[0])
            if spec is None:
                self.metrics.error("unknown")
                self._reply(resp.error(commands.unknown_error(args[0])))
                return
        kind = spec.kind
        self.metrics.requests[kind] += 1
        argc = len(args)
        arity = spec.arity
        if (argc != arity) if arity > 0 else (argc < -arity):
            self._reply(resp.error(commands.arity_error(args[0])))
            return
        if not self.session.authed and spec.name not in PRE_AUTH:
            self._reply(NOAUTH)
            return
        if kind == _SINGLE:
            dispatch = self.pool.dispatch
            key = args[spec.first]
            if type(key) is not bytes:
                raise resp.RespError("expected '$', got a non-bulk key")
            shard = dispatch.index_of(key)
            table = dispatch.reads if spec.readonly else dispatch.writes
            slot = Slot(self)
            self.queue.append(slot)
            self._send(table[self.proto][shard], _PACK(tuple(args)), slot, shard, spec.readonly)
            return
        self._handle_other(spec, args)

    def _send(
        self,
        links: Sequence[BackendLink],
        payload: bytes,
        waiter: Slot | Part,
        shard: int,
        read: bool,
    ) -> None:
        count = len(links)
        if count == 1:
            links[0].send(payload, waiter)
        elif count:
            self.rr += 1
            links[self.rr % count].send(payload, waiter)
        else:
            routes = self.pool.dispatch.routes
            self.metrics.error("no_route")
            waiter.complete(resp.error(routes.no_route_error(shard, read)))

    def _handle_other(self, spec: commands.CommandSpec, args: list[bytes]) -> None:
        kind = spec.kind
        session = self.session
        session.last_command = spec.name
        if kind == commands.LOCAL:
            reply, close = self.server.local.run(session, spec.name, args)
            self.proto = session.proto
            self._reply(reply)
            if close:
                self.close_after = self.queue[-1]
                self.pause(PAUSE_DRAIN)
            return
        if kind == commands.REFUSED:
            self.metrics.error("refused")
            self._reply(resp.error(commands.refused_error(spec)))
            return
        for arg in args:
            if type(arg) is not bytes:
                raise resp.RespError("expected '$' bulk strings in the request")
        dispatch = self.pool.dispatch
        read = spec.readonly
        table = (dispatch.reads if read else dispatch.writes)[self.proto]
        if kind in (commands.MGET, commands.MSET, commands.SUM):
            if kind == commands.MSET and argc_odd(args):
                self._reply(resp.error(commands.arity_error(args[0])))
                return
            plan = split.split(spec, args, dispatch.index_of)
            slot = Slot(self)
            self.queue.append(slot)
            if isinstance(plan, int):
                self._send(table[plan], _PACK(tuple(args)), slot, plan, read)
                return
            merge = Merge(slot, plan.merger, len(plan.fragments))
            for i, fragment in enumerate(plan.fragments):
                part = Part(merge, i)
                self._send(table[fragment.shard], fragment.payload, part, fragment.shard, read)
            return
        try:
            keys = commands.keys_of(spec, args)
        except commands.CommandError as exc:
            self._reply(resp.error(str(exc)))
            return
        names = dispatch.routes.names
        where = split.one_shard(spec, keys, dispatch.index_of, names, dispatch.hash_tag)
        if isinstance(where, str):
            self.metrics.error("cross_shard")
            self._reply(resp.error(where))
            return
        slot = Slot(self)
        self.queue.append(slot)
        self._send(table[where], _PACK(tuple(args)), slot, where, read)

    # -- replies -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every reply at the head of the FIFO that is complete."""
        queue = self.queue
        out: list[bytes] = []
        close = False
        while queue:
            data = queue[0].data
            if data is None:
                break
            slot = queue.popleft()
            out.append(data)
            if slot is self.close_after:
                close = True
                break
        transport = self.transport
        if self.closed or transport is None:
            return
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            transport.close()
            self.closed = True
            return
        if self.paused & PAUSE_INFLIGHT and len(queue) < self.server.settings.max_inflight // 2:
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


def argc_odd(args: list[bytes]) -> bool:
    """MSET needs key/value pairs: an even argument count after the name."""
    return (len(args) - 1) % 2 == 1


def _address(value: object) -> str:
    if isinstance(value, tuple) and len(value) >= 2:
        host, port = value[0], value[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(value or "")
