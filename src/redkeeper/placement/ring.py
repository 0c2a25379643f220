"""Where nutcracker 0.5.0 sends a key: server naming and order, hash tags, ketama and modula.

Owns the pool-level rules of twemproxy (src/nc_conf.c, src/nc_server.c, src/hashkit/nc_ketama.c
and nc_modula.c), emulated exactly:

* a server hashes and sorts by its name: the explicit name, else `host` when the port is 11211,
  else `host:port`; the weight is never part of it. Servers are sorted shorter names first,
  then bytewise, and index i everywhere means that sorted order;
* with a hash tag (2 bytes), the content between the first tag[0] and the next tag[1] is hashed
  when it is non-empty, otherwise the whole key; an empty key hashes to 0, and a one-server
  pool always answers index 0;
* ketama gives each server `floorf(pct*160/4*nlive + 1e-10) * 4` points computed in float32
  (so 25 equal servers get 156 points each, not 160), 4 points per MD5 of "<name>-<i>";
  a key goes to the first point >= its hash, wrapping to the first point;
* modula lays one slot per unit of weight in server order and picks `slot[hash % total]`.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redkeeper.errors import ConfigError, Problem, RedkeeperError
from redkeeper.placement.hashes import HASH_FUNCTIONS, ketama_points, unknown_hash_problem

DISTRIBUTIONS: tuple[str, ...] = ("ketama", "modula", "random")

KETAMA_POINTS_PER_SERVER = 160
KETAMA_POINTS_PER_HASH = 4
#: snprintf buffer of nc_ketama.c (255 host + ':' + 5 port + '-' + 10 digits + NUL).
KETAMA_MAX_HOSTLEN = 273
#: libmemcached compatibility: the port is left out of the hashed name when it is 11211.
DEFAULT_KETAMA_PORT = 11211
#: modula keeps a direct slot table up to this total weight, and bisects beyond it.
_MODULA_TABLE_LIMIT = 1 << 20
_UINT32_MAX = 0xFFFFFFFF

_F32 = struct.Struct("<f")


class NotDeterministicError(RedkeeperError):
    """The pool's distribution ("random") picks a server per request: no key has a home."""


@dataclass(frozen=True)
class PoolServer:
    """One `host:port:weight [name]` entry of a nutcracker pool."""

    host: str
    port: int
    weight: int = 1
    name: str | None = None

    @property
    def hash_name(self) -> str:
        """The name twemproxy hashes and sorts this server by."""
        if self.name is not None:
            return self.name
        if self.port == DEFAULT_KETAMA_PORT:
            return self.host
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Placement:
    """Where a key lives: twemproxy's server index, the server, and how it was found.

    `key_hash` is the value twemproxy dispatched with: the hash of the tag content (or of the
    whole key), 0 for an empty key and always 0 in a one-server pool. `point` is the ketama
    ring point that hash landed on (the first point >= it, wrapping); None for modula.
    """

    index: int
    server: PoolServer
    name: str
    key_hash: int
    point: int | None  # the ketama ring point the key landed on; None for modula


def _f32(value: float) -> float:
    """Round a double to the nearest float32 (what a C `float` holds)."""
    result: float = _F32.unpack(_F32.pack(value))[0]
    return result


def ketama_point_count(weight: int, total_weight: int, nlive: int) -> int:
    """Points of one server, with nc_ketama.c's float32 arithmetic."""
    pct = _f32(_f32(float(weight)) / _f32(float(total_weight)))
    scaled = _f32(_f32(_f32(pct * float(KETAMA_POINTS_PER_SERVER)) / 4.0) * _f32(float(nlive)))
    # `+ 0.0000000001` is a double literal: the sum is done in double, then cast to float.
    return math.floor(_f32(scaled + 0.0000000001)) * KETAMA_POINTS_PER_HASH


def tag_content(key: bytes, tag: bytes) -> bytes:
    """The part of `key` twemproxy hashes under hash tag `tag` (2 bytes)."""
    start = key.find(tag[0])
    if start < 0:
        return key
    end = key.find(tag[1], start + 1)
    if end - start > 1:  # found (end > 0) and non-empty content
        return key[start + 1 : end]
    return key


def _validate(
    servers: Sequence[PoolServer], hash_name: str, distribution: str, hash_tag: str | None
) -> list[Problem]:
    problems: list[Problem] = []
    if hash_name not in HASH_FUNCTIONS:
        problems.append(unknown_hash_problem(hash_name))
    if distribution not in DISTRIBUTIONS:
        problems.append(
            Problem(
                "<pool>",
                "distribution",
                f"unknown twemproxy distribution {distribution!r}",
                f"use one of: {', '.join(DISTRIBUTIONS)} (default ketama)",
            )
        )
    if hash_tag is not None and len(hash_tag.encode()) != 2:
        problems.append(
            Problem(
                "<pool>",
                "hash_tag",
                f"hash_tag {hash_tag!r} is not exactly 2 characters (bytes)",
                'use an opening and a closing character, e.g. "{}", or no hash_tag',
            )
        )
    if not servers:
        problems.append(
            Problem("<pool>", "servers", "the pool has no servers", "list at least one server")
        )
    seen: set[bytes] = set()
    total = 0
    for server in servers:
        where = f"{server.host}:{server.port}:{server.weight}"
        if server.weight < 1:
            problems.append(
                Problem("<pool>", "servers", f"{where} has a weight < 1", "use a weight >= 1")
            )
        total += max(server.weight, 0)
        if not 0 < server.port < 65536:
            problems.append(
                Problem("<pool>", "servers", f"{where} has an invalid port", "use 1..65535")
            )
        if server.name is not None and (not server.name or any(c.isspace() for c in server.name)):
            problems.append(
                Problem(
                    "<pool>",
                    "servers",
                    f"{where} has an empty name or one with whitespace: {server.name!r}",
                    "use a name without spaces",
                )
            )
        key = server.hash_name.encode()
        if key in seen:
            problems.append(
                Problem(
                    "<pool>",
                    "servers",
                    f"two servers share the name {server.hash_name!r}",
                    "give every server a distinct name",
                )
            )
        seen.add(key)
    if total > _UINT32_MAX:
        problems.append(
            Problem(
                "<pool>", "servers", "the total weight overflows 32 bits", "use smaller weights"
            )
        )
    return problems


def _sort_key(server: PoolServer) -> tuple[int, bytes]:
    name = server.hash_name.encode()
    return (len(name), name)


class Ring:
    """A nutcracker pool's placement, built once; `index_of` is the fast path."""

    def __init__(
        self,
        servers: Sequence[PoolServer],
        hash: str = "fnv1a_64",
        distribution: str = "ketama",
        hash_tag: str | None = None,
    ) -> None:
        problems = _validate(servers, hash, distribution, hash_tag)
        if problems:
            raise ConfigError(problems)
        if distribution == "random":
            raise NotDeterministicError(
                'distribution "random" picks a server per request, so no key has a fixed home '
                "(fix: use ketama or modula to predict or check placement)"
            )
        self.servers: tuple[PoolServer, ...] = tuple(sorted(servers, key=_sort_key))
        self.hash = hash
        self.distribution = distribution
        self.hash_tag = hash_tag
        self._names = tuple(s.hash_name for s in self.servers)
        self._hash_fn = HASH_FUNCTIONS[hash]
        self._tag = hash_tag.encode() if hash_tag is not None else None
        self._single = len(self.servers) == 1
        self._points: list[int] = []
        self._owners: list[int] = []  # owner of each point, plus the wrap-around entry
        self._slots: list[int] = []
        self._bounds: list[int] = []
        weights = [s.weight for s in self.servers]
        self.total_weight = sum(weights)
        if distribution == "ketama":
            self._build_ketama(weights)
            self.point_counts: tuple[int, ...] = tuple(
                ketama_point_count(w, self.total_weight, len(weights)) for w in weights
            )
        else:
            self._build_modula(weights)
            self.point_counts = tuple(weights)
        self._lookup = self._make_lookup()

    def _build_ketama(self, weights: list[int]) -> None:
        nlive = len(weights)
        ring: list[tuple[int, int]] = []
        for index, (name, weight) in enumerate(zip(self._names, weights, strict=True)):
            count = ketama_point_count(weight, self.total_weight, nlive)
            prefix = name.encode() + b"-"
            for i in range(count // KETAMA_POINTS_PER_HASH):
                host = (prefix + str(i).encode())[: KETAMA_MAX_HOSTLEN - 1]
                ring.extend((value, index) for value in ketama_points(host))
        ring.sort(key=lambda item: item[0])  # stable, like glibc's merge-sort qsort
        self._points = [value for value, _ in ring]
        self._owners = [index for _, index in ring]
        self._owners.append(self._owners[0])  # past the last point: wrap to the first

    def _build_modula(self, weights: list[int]) -> None:
        if self.total_weight <= _MODULA_TABLE_LIMIT:
            for index, weight in enumerate(weights):
                self._slots.extend([index] * weight)
        else:
            running = 0
            for weight in weights:
                running += weight
                self._bounds.append(running)

    def _make_lookup(self) -> Callable[[bytes], int]:
        """A closure specialised for this pool: key bytes -> server index."""
        hash_fn = self._hash_fn
        tag = self._tag
        if self._single:
            return lambda key: 0
        if self.distribution == "ketama":
            points, owners = self._points, self._owners
            if tag is None:

                def ketama(key: bytes) -> int:
                    return owners[bisect_left(points, hash_fn(key) if key else 0)]

                return ketama

            def ketama_tagged(key: bytes) -> int:
                key = tag_content(key, tag)
                return owners[bisect_left(points, hash_fn(key) if key else 0)]

            return ketama_tagged
        total, slots, bounds = self.total_weight, self._slots, self._bounds
        if slots:
            if tag is None:

                def modula(key: bytes) -> int:
                    return slots[(hash_fn(key) if key else 0) % total]

                return modula

            def modula_tagged(key: bytes) -> int:
                key = tag_content(key, tag)
                return slots[(hash_fn(key) if key else 0) % total]

            return modula_tagged

        def modula_wide(key: bytes) -> int:
            if tag is not None:
                key = tag_content(key, tag)
            return bisect_right(bounds, (hash_fn(key) if key else 0) % total)

        return modula_wide

    def key_hash(self, key: bytes) -> int:
        """The hash twemproxy dispatches `key` with (tag content, empty key and 1 server -> 0)."""
        if self._single:
            return 0
        if self._tag is not None:
            key = tag_content(key, self._tag)
        return self._hash_fn(key) if key else 0

    def index_of(self, key: bytes) -> int:
        """twemproxy's server index for `key` (the hot path)."""
        return self._lookup(key)

    def locate(self, key: bytes) -> Placement:
        """The server that holds `key`, with the hash and ring point that chose it."""
        key_hash = self.key_hash(key)
        point: int | None = None
        if self.distribution == "ketama":
            position = bisect_left(self._points, key_hash)
            index = self._owners[position]
            point = self._points[position if position < len(self._points) else 0]
        elif self._slots:
            index = self._slots[key_hash % self.total_weight]
        else:
            index = bisect_right(self._bounds, key_hash % self.total_weight)
        if self._single:
            index = 0
        server = self.servers[index]
        return Placement(index, server, self._names[index], key_hash, point)

    def continuum(self) -> list[tuple[int, int]]:
        """The ketama ring as sorted (point, server index) pairs (empty for modula)."""
        return list(zip(self._points, self._owners[:-1], strict=True))

    def __repr__(self) -> str:
        return (
            f"Ring({len(self.servers)} servers, hash={self.hash!r}, "
            f"distribution={self.distribution!r}, hash_tag={self.hash_tag!r})"
        )
