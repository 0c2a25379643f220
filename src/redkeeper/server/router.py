"""The router of the proxy: exact twemproxy placement plus the current route table.

Owns which shard a key belongs to (`redkeeper.placement.Ring`, bit-exact with nutcracker,
behind a bounded cache) and which address serves each shard now. The route data the hot
path reads is one immutable `RouteTable`, replaced by reference on every change, so a
reader sees either the old table or the new one, never a mix. Listeners (the backend pool)
are told of every change synchronously, in the same event-loop step. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from redkeeper.errors import RedkeeperError
from redkeeper.model import Address
from redkeeper.placement import Ring

READ_FROM: tuple[str, ...] = ("master", "replica", "replica-preferred")
#: keys longer than this are hashed every time instead of filling the cache.
CACHE_MAX_KEY_BYTES = 128
DEFAULT_HASH_CACHE = 1 << 17


class RouteError(RedkeeperError):
    """A route change that names unknown shards or an unknown read policy."""


@dataclass(frozen=True, slots=True)
class RouteTable:
    """One immutable snapshot: per ring index, the shard's name, master and read replicas."""

    names: tuple[str, ...]
    masters: tuple[Address | None, ...]
    replicas: tuple[tuple[Address, ...], ...]
    read_from: str
    version: int

    def index(self, shard: str) -> int:
        """The ring index of shard `shard`."""
        return self.names.index(shard)

    def read_targets(self, index: int) -> tuple[Address, ...]:
        """Where a read-only command for shard `index` may go, by the read policy."""
        master = self.masters[index]
        own: tuple[Address, ...] = (master,) if master is not None else ()
        if self.read_from == "master":
            return own
        replicas = self.replicas[index]
        if self.read_from == "replica" or replicas:
            return replicas
        return own  # replica-preferred with no eligible replica

    def no_route_error(self, index: int, read: bool) -> str:
        """The error text (without '-') for a request to a shard with no usable route."""
        name = self.names[index]
        if read and self.read_from == "replica":
            return f"ERR redkeeper: {name} has no eligible replica for reads (read_from replica)"
        return f"ERR redkeeper: {name} has no master route (fail static)"


Listener = Callable[[RouteTable, RouteTable], None]


def cached_index(
    ring: Ring, size: int = DEFAULT_HASH_CACHE, cache: dict[bytes, int] | None = None
) -> Callable[[bytes], int]:
    """`ring.index_of` behind a dict of at most `size` keys (cleared when full); 0 = no cache.

    `cache` (filled only by the returned function) lets a hot path try `cache.get` inline.
    """
    raw = ring.index_of
    if size <= 0 or len(ring.servers) == 1:
        return raw
    if cache is None:
        cache = {}
    get = cache.get

    def index_of(key: bytes) -> int:
        index = get(key)
        if index is None:
            index = raw(key)
            if len(key) <= CACHE_MAX_KEY_BYTES:
                if len(cache) >= size:
                    cache.clear()
                cache[key] = index
        return index

    return index_of


def _ring_names(ring: Ring, shard_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(server.hash_name for server in ring.servers)
    if sorted(names) != sorted(shard_names):
        raise RouteError(
            f"the ring's server names {sorted(names)} are not the shard names "
            f"{sorted(shard_names)} (fix: build the ring from PoolServer(..., name=shard))"
        )
    return names


class Router:
    """Exact twemproxy placement + the current route table; routes are swapped atomically."""

    def __init__(
        self,
        ring: Ring,
        shard_names: Sequence[str],
        *,
        read_from: str = "master",
        hash_cache_size: int = DEFAULT_HASH_CACHE,
    ) -> None:
        if read_from not in READ_FROM:
            raise RouteError(f"read_from {read_from!r} is not one of {', '.join(READ_FROM)}")
        self._cache_size = hash_cache_size
        self._listeners: list[Listener] = []
        self.ring = ring
        names = _ring_names(ring, shard_names)
        self.hash_cache: dict[bytes, int] = {}
        self.index_of = cached_index(ring, hash_cache_size, self.hash_cache)
        self.hash_tag = ring.hash_tag
        self.routes = RouteTable(
            names, (None,) * len(names), ((),) * len(names), read_from, version=0
        )

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(old, new)` after every change of the route table."""
        self._listeners.append(listener)

    def shard_of(self, key: bytes) -> str:
        """The name of the shard that holds `key`."""
        return self.routes.names[self.index_of(key)]

    def _publish(self, table: RouteTable) -> None:
        old, self.routes = self.routes, table
        for listener in self._listeners:
            listener(old, table)

    def set_routes(
        self,
        masters: Mapping[str, Address | None],
        replicas: Mapping[str, Sequence[Address]] | None = None,
    ) -> None:
        """Shard name -> master (None: no route, fail static) and the replicas eligible for reads.

        A shard missing from `masters` has no route. Unknown shard names raise RouteError.
        """
        replicas = replicas or {}
        names = self.routes.names
        unknown = sorted((set(masters) | set(replicas)) - set(names))
        if unknown:
            raise RouteError(f"unknown shards {unknown} (known: {', '.join(sorted(names))})")
        table = RouteTable(
            names,
            tuple(masters.get(name) for name in names),
            tuple(tuple(replicas.get(name, ())) for name in names),
            self.routes.read_from,
            self.routes.version + 1,
        )
        self._publish(table)

    def set_read_from(self, read_from: str) -> None:
        """Change the pool's read policy: master, replica or replica-preferred."""
        if read_from not in READ_FROM:
            raise RouteError(f"read_from {read_from!r} is not one of {', '.join(READ_FROM)}")
        old = self.routes
        self._publish(RouteTable(old.names, old.masters, old.replicas, read_from, old.version + 1))

    def set_ring(self, ring: Ring, shard_names: Sequence[str]) -> None:
        """Swap placement in place (SIGHUP, resharding); routes of shards kept by name."""
        names = _ring_names(ring, shard_names)
        old = self.routes
        by_name = dict(zip(old.names, zip(old.masters, old.replicas, strict=True), strict=True))
        kept = [by_name.get(name, (None, ())) for name in names]
        self.ring = ring
        self.hash_tag = ring.hash_tag
        self.hash_cache = {}
        self.index_of = cached_index(ring, self._cache_size, self.hash_cache)
        self._publish(
            RouteTable(
                names,
                tuple(master for master, _ in kept),
                tuple(reps for _, reps in kept),
                old.read_from,
                old.version + 1,
            )
        )
