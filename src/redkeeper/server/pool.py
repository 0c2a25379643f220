"""The backend pool: every `BackendLink` of the proxy and the dispatch table clients read.

Owns the mapping from the router's pure `RouteTable` to live links. On every route change
(synchronously, inside `Router.set_routes`) it builds a new immutable `Dispatch` (placement
function + per protocol, per shard: the master's link and the read links) and swaps it in by
reference, then closes the links of a shard's old master (their in-flight requests get an
error reply, unsent ones are routed again with the new table) and retires replicas that are
no longer eligible (closed once idle). It also runs the periodic tick: per-request server
timeouts, and it keeps the backend saturation count that pauses client reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from redkeeper.model import Address
from redkeeper.server import resp
from redkeeper.server.backend import BackendLink
from redkeeper.server.metrics import ProxyMetrics
from redkeeper.server.replies import Flusher, Waiter, fail_all
from redkeeper.server.router import Router, RouteTable

PROTOCOLS = (2, 3)
Links = tuple[tuple[BackendLink, ...], ...]  # per shard index: candidate links


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What a client reads per request, swapped as one reference."""

    routes: RouteTable
    index_of: Callable[[bytes], int]
    cache_get: Callable[[bytes], int | None]  # the placement cache, tried inline first
    cache: dict[bytes, int]  # that cache itself (the C fast path reads it)
    hash_tag: str | None
    writes: tuple[Links, ...]  # indexed by protocol (2 or 3)
    reads: tuple[Links, ...]


@dataclass(frozen=True)
class PoolSettings:
    password: str | None = None
    connect_timeout: float = 1.0
    timeout: float = 5.0  # per-request server timeout in seconds; 0 = none
    backoff_min: float = 0.05
    backoff_max: float = 1.0
    write_high: int = 4 * 1024 * 1024  # a backend's unsent output above this pauses clients


class BackendPool:
    """All backend links, the current `Dispatch`, timeouts and saturation."""

    def __init__(
        self,
        router: Router,
        settings: PoolSettings,
        metrics: ProxyMetrics,
        loop: asyncio.AbstractEventLoop,
        on_saturation: Callable[[bool], None] = lambda saturated: None,
    ) -> None:
        self.router = router
        self.settings = settings
        self.metrics = metrics
        self.password = settings.password
        self.connect_timeout = settings.connect_timeout
        self.write_high = settings.write_high
        self.flusher = Flusher(loop)
        self.on_saturation = on_saturation
        self.links: dict[tuple[Address, int], BackendLink] = {}
        self.retiring: list[BackendLink] = []
        self.saturation = 0
        self.closed = False
        self.dispatch = self._build(router.routes)
        router.subscribe(self._on_routes)

    # -- LinkHost ---------------------------------------------------------------------------
    def backoff_bounds(self) -> tuple[float, float]:
        return self.settings.backoff_min, self.settings.backoff_max

    def saturated(self, delta: int) -> None:
        before = self.saturation
        self.saturation = max(0, before + delta)
        if (before == 0) != (self.saturation == 0):
            self.on_saturation(self.saturation > 0)

    def observe(self, shard: str, seconds: float) -> None:
        self.metrics.observe_backend(shard, seconds)

    def link_state(self, link: BackendLink, up: bool) -> None:
        self.metrics.link_state(link.shard, str(link.address), link.proto, up)

    # -- routes -----------------------------------------------------------------------------
    def _link(self, shard: str, address: Address, proto: int, read_role: bool) -> BackendLink:
        link = self.links.get((address, proto))
        if link is None or link.shard != shard:
            if link is not None:
                self.retiring.append(link)
            link = BackendLink(self, shard, address, proto, self.redispatch)
            self.links[address, proto] = link
        link.read_role = read_role
        return link

    def _build(self, routes: RouteTable) -> Dispatch:
        writes: list[Links] = [(), ()]
        reads: list[Links] = [(), ()]
        for proto in PROTOCOLS:
            w: list[tuple[BackendLink, ...]] = []
            r: list[tuple[BackendLink, ...]] = []
            for index, name in enumerate(routes.names):
                master = routes.masters[index]
                w.append(() if master is None else (self._link(name, master, proto, False),))
                r.append(
                    tuple(
                        self._link(name, a, proto, a != master) for a in routes.read_targets(index)
                    )
                )
            writes.append(tuple(w))
            reads.append(tuple(r))
        return Dispatch(
            routes,
            self.router.index_of,
            self.router.hash_cache.get,
            self.router.hash_cache,
            self.router.hash_tag,
            tuple(writes),
            tuple(reads),
        )

    def _on_routes(self, old: RouteTable, new: RouteTable) -> None:
        self.dispatch = self._build(new)
        named: set[Address] = set()
        for index in range(len(new.names)):
            master = new.masters[index]
            if master is not None:
                named.add(master)
            named.update(new.replicas[index])
        new_master = dict(zip(new.names, new.masters, strict=True))
        for index, name in enumerate(old.names):
            previous = old.masters[index]
            if previous is None or new_master.get(name) == previous:
                continue
            message = (
                f"ERR redkeeper: {name} master moved from {previous} to "
                f"{new_master.get(name) or 'no route'}; the request was in flight to the old "
                "master and may or may not have run"
            )
            for proto in PROTOCOLS:
                link = self.links.pop((previous, proto), None)
                if link is not None:
                    link.close(message)
        for key, link in list(self.links.items()):
            if key[0] not in named:
                del self.links[key]
                self.retiring.append(link)
        self.metrics.route_version(new.version)

    def redispatch(self, link: BackendLink, payload: bytes, waiter: Waiter) -> None:
        """Route again a request that a closed link never wrote."""
        dispatch = self.dispatch
        try:
            index = dispatch.routes.index(link.shard)
        except ValueError:
            fail_all([waiter], resp.error(f"ERR redkeeper: {link.shard} left the pool"))
            return
        table = dispatch.reads if link.read_role else dispatch.writes
        candidates = table[link.proto][index]
        if self.closed:
            fail_all([waiter], resp.error("ERR redkeeper: the proxy is shutting down"))
            return
        if not candidates or candidates[0] is link:
            error = dispatch.routes.no_route_error(index, link.read_role)
            fail_all([waiter], resp.error(error))
            return
        candidates[0].send(payload, waiter)

    # -- periodic ---------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Server timeouts on every link; close retired links once idle."""
        timeout = self.settings.timeout
        if timeout > 0:
            for link in self.links.values():
                link.check_timeout(now, timeout)
            for link in self.retiring:
                link.check_timeout(now, timeout)
        if self.retiring:
            keep = []
            for link in self.retiring:
                if link.idle():
                    link.close(f"ERR redkeeper: {link.where} was retired")
                else:
                    keep.append(link)
            self.retiring = keep

    def close_all(self, message: str) -> None:
        self.closed = True
        for link in [*self.links.values(), *self.retiring]:
            link.close(message)
        self.links.clear()
        self.retiring = []

    def link_report(self) -> list[tuple[str, str, int, bool]]:
        """(shard, address, protocol, up) of every current link."""
        return [
            (link.shard, str(link.address), link.proto, link.conn is not None)
            for link in self.links.values()
        ]
