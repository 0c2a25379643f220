"""The general path of one client request: checks, routing, splitting, local answers, MULTI.

Owns what happens to a parsed request that the fast path (`fastpath.route`, or the inlined
loop of `client`) did not take: the command table's checks (unknown, arity, NOAUTH), a
single-key command to its shard, multi-key commands split per shard (`split`), same-shard
commands, LOCAL commands (`local`), refusals, and transactions: commands between MULTI and
EXEC are checked and buffered (`transaction`), and EXEC writes MULTI, them and EXEC as one
contiguous run on the shard's master connection, of which only EXEC's reply reaches the
client. `RequestHandler` is a mixin of `ClientConnection`, which owns the attributes below.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import TYPE_CHECKING

from redkeeper.server import commands, resp, split, transaction
from redkeeper.server.backend import BackendLink
from redkeeper.server.local import NOAUTH, PRE_AUTH, Session
from redkeeper.server.metrics import ProxyMetrics
from redkeeper.server.replies import IGNORED, Merge, Part, Slot, Waiter
from redkeeper.server.transaction import Transaction

if TYPE_CHECKING:
    from redkeeper.server.pool import BackendPool
    from redkeeper.server.server import ProxyServer

_LOOKUP = commands._BY_BYTES  # name bytes -> spec, both cases precomputed
_PACK = resp.pack
#: what a client in MULTI sends that is not queued: it acts at once.
_NOT_QUEUED = frozenset({"EXEC", "DISCARD", "QUIT", "RESET"})
PAUSE_DRAIN = 8  # a reason to pause reading (the client's bits)


class RequestHandler:
    """Handles one parsed request of the client connection it is mixed into."""

    server: ProxyServer
    pool: BackendPool
    metrics: ProxyMetrics
    session: Session
    proto: int
    queue: collections.deque[Slot]
    close_after: Slot | None
    txn: Transaction | None
    rr: int
    owed: int  # requests in `queue`

    def pause(self, reason: int) -> None:
        raise NotImplementedError

    def _slot(self, data: bytes | None = None) -> Slot:
        """A new place at the end of the reply FIFO."""
        slot = Slot(self, data)  # type: ignore[arg-type]  # the mixin is a Client
        self.queue.append(slot)
        self.owed += 1
        return slot

    def _handle(self, args: list[bytes]) -> None:
        spec = _LOOKUP.get(args[0])
        if spec is None:
            if type(args[0]) is not bytes:
                raise resp.RespError("expected '$' bulk strings in the request")
            spec = commands.lookup(args[0])
            if self.txn is not None and (spec is None or spec.name not in _NOT_QUEUED):
                self._queue(spec, args)
                return
            if spec is None:
                self.metrics.error("unknown")
                self._slot(resp.error(commands.unknown_error(args[0])))
                return
        elif self.txn is not None and spec.name not in _NOT_QUEUED:
            self._queue(spec, args)
            return
        kind = spec.kind
        self.metrics.requests[kind] += 1
        if not spec.arity_ok(len(args)):
            self._slot(resp.error(commands.arity_error(args[0])))
            return
        if not self.session.authed and spec.name not in PRE_AUTH:
            self._slot(NOAUTH)
            return
        if kind == commands.SINGLE:
            dispatch = self.pool.dispatch
            key = args[spec.first]
            if type(key) is not bytes:
                raise resp.RespError("expected '$', got a non-bulk key")
            shard = dispatch.index_of(key)
            table = dispatch.reads if spec.readonly else dispatch.writes
            slot = self._slot()
            self._send(table[self.proto][shard], _PACK(tuple(args)), slot, shard, spec.readonly)
            return
        self._handle_other(spec, args)

    def _send(
        self,
        links: Sequence[BackendLink],
        payload: bytes,
        waiter: Waiter,
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
            waiter.complete(resp.error(routes.no_route_error(shard, read)) * waiter.count)

    def _handle_other(self, spec: commands.CommandSpec, args: list[bytes]) -> None:
        kind = spec.kind
        session = self.session
        session.last_command = spec.name
        session.last_active = self.server.loop.time()
        if kind == commands.TXN:
            self._transaction(spec.name)
            return
        if kind == commands.LOCAL:
            if spec.name == "RESET":
                self.txn = None
            reply, close = self.server.local.run(session, spec.name, args)
            self.proto = session.proto
            slot = self._slot(reply)
            if close:
                self.close_after = slot
                self.pause(PAUSE_DRAIN)
            return
        if kind == commands.REFUSED:
            self.metrics.error("refused")
            self._slot(resp.error(commands.refused_error(spec)))
            return
        for arg in args:
            if type(arg) is not bytes:
                raise resp.RespError("expected '$' bulk strings in the request")
        dispatch = self.pool.dispatch
        read = spec.readonly
        table = (dispatch.reads if read else dispatch.writes)[self.proto]
        if kind in (commands.MGET, commands.MSET, commands.SUM):
            if kind == commands.MSET and (len(args) - 1) % 2:
                self._slot(resp.error(commands.arity_error(args[0])))
                return
            plan = split.split(spec, args, dispatch.index_of)
            slot = self._slot()
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
            self._slot(resp.error(str(exc)))
            return
        names = dispatch.routes.names
        where = split.one_shard(spec, keys, dispatch.index_of, names, dispatch.hash_tag)
        if isinstance(where, str):
            self.metrics.error("cross_shard")
            self._slot(resp.error(where))
            return
        slot = self._slot()
        self._send(table[where], _PACK(tuple(args)), slot, where, read)

    # -- transactions ------------------------------------------------------------------------
    def _queue(self, spec: commands.CommandSpec | None, args: list[bytes]) -> None:
        """A command sent inside MULTI: checked, buffered, answered +QUEUED (or an error)."""
        txn = self.txn
        assert txn is not None
        if spec is not None:
            self.metrics.requests[spec.kind] += 1
        dispatch = self.pool.dispatch
        names = dispatch.routes.names
        reply = txn.queue(spec, args, dispatch.index_of, names, dispatch.hash_tag)
        if reply is not transaction.QUEUED and txn.aborted:
            self.metrics.error("transaction")
        self._slot(reply)

    def _transaction(self, name: str) -> None:
        """MULTI, EXEC, DISCARD, UNWATCH."""
        txn = self.txn
        if name == "MULTI":
            settings = self.server.settings
            self.txn = Transaction(settings.max_inflight, settings.max_request_bytes)
            self._slot(resp.OK)
        elif name == "DISCARD":
            self.txn = None
            self._slot(resp.OK if txn is not None else transaction.DISCARD_WITHOUT_MULTI)
        elif name == "UNWATCH":  # nothing is ever watched through the proxy
            self._slot(resp.OK)
        elif txn is None:
            self._slot(transaction.EXEC_WITHOUT_MULTI)
        else:
            self.txn = None
            if txn.aborted:
                self._slot(transaction.EXECABORT)
            elif not txn.requests:
                self._slot(transaction.EMPTY)
            else:
                self._exec(txn)

    def _exec(self, txn: Transaction) -> None:
        """Write MULTI, the commands and EXEC as one run on the shard's master connection;
        only EXEC's reply reaches the client."""
        dispatch = self.pool.dispatch
        shard = txn.shard_at_exec(dispatch.index_of)
        links = dispatch.writes[self.proto][shard]
        slot = self._slot()
        if not links:
            self._send(links, b"", slot, shard, False)  # the no-route error
            return
        link = links[0]
        block = txn.block()
        last = block.pop()
        for payload in block:
            link.send(payload, IGNORED)
        link.send(last, slot)
