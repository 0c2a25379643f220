"""A reshard's plan: which keys move from which shard to which, from a SCAN of every master
and the two rings. Changes nothing.

- `Rings` (pure) is the one rule of what moves: a key held by shard S moves when the old ring
  assigns it to S and the new ring does not (it then goes to the new ring's shard). A key the
  old ring does not assign to S is a *stray* (written around the proxy, `check` reports it as
  wrong-shard): it is never moved, and its presence refuses the reshard, since its copy on the
  shard the ring names could not be told apart from the real one.
- `Plan` counts moves per (source, destination), keys and strays per shard; `scan_plan` fills
  it by SCAN of every master (pipelined, interleaved like `check`).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import hiredis

from redkeeper.data.load import Wire, command, describe
from redkeeper.data.ring import shard_names
from redkeeper.errors import OperationError
from redkeeper.model import Address
from redkeeper.placement import Ring

SCAN_COUNT = 1000
HOMES_CACHE = 2_000_000  # keys whose homes are remembered (about 100 bytes each)
Progress = Callable[[int], None]


class Rings:
    """The old and the new placement of one reshard (module docstring). A key's homes are
    remembered (up to HOMES_CACHE keys): the plan, the copy and the delete all SCAN the same
    keys, and hashing them is most of the CPU a reshard spends."""

    def __init__(self, old: Ring, new: Ring) -> None:
        self._old_index, self._old_names = old.index_of, shard_names(old)
        self._new_index, self._new_names = new.index_of, shard_names(new)
        self.old_shards = frozenset(self._old_names)
        self.new_shards = frozenset(self._new_names)
        compute = self._both_homes(old, new)
        cache: dict[bytes, tuple[str, str]] = {}
        get = cache.get

        def homes(key: bytes) -> tuple[str, str]:
            found = get(key)
            if found is None:
                found = compute(key)
                if len(cache) < HOMES_CACHE:
                    cache[key] = found
            return found

        self._homes = homes

    def _both_homes(self, old: Ring, new: Ring) -> Callable[[bytes], tuple[str, str]]:
        """(old home, new home) of a key. Two ketama rings of the same hash and hash tag and
        more than one server each hash the key once (the hash is most of the cost)."""
        old_names, new_names = self._old_names, self._new_names
        same = (old.hash, old.hash_tag) == (new.hash, new.hash_tag)
        ketama = old.distribution == new.distribution == "ketama"
        if not (same and ketama and len(old_names) > 1 and len(new_names) > 1):
            old_index, new_index = self._old_index, self._new_index
            return lambda key: (old_names[old_index(key)], new_names[new_index(key)])
        key_hash = old.key_hash
        old_points = [p for p, _ in old.continuum()]
        old_owners = [old_names[o] for _, o in old.continuum()] + [old_names[old.continuum()[0][1]]]
        new_points = [p for p, _ in new.continuum()]
        new_owners = [new_names[o] for _, o in new.continuum()] + [new_names[new.continuum()[0][1]]]

        def homes(key: bytes) -> tuple[str, str]:
            value = key_hash(key)
            return (
                old_owners[bisect_left(old_points, value)],
                new_owners[bisect_left(new_points, value)],
            )

        return homes

    def homes(self, key: bytes) -> tuple[str, str]:
        """(old home, new home) of `key`."""
        return self._homes(key)

    def old_home(self, key: bytes) -> str:
        return self._old_names[self._old_index(key)]

    def new_home(self, key: bytes) -> str:
        return self._new_names[self._new_index(key)]

    def destination(self, shard: str, key: bytes) -> str | None:
        """Where `key`, held by `shard`, moves; None when it stays or is a stray."""
        old, new = self._homes(key)
        return None if old != shard or new == shard else new


@dataclass
class Plan:
    moves: dict[tuple[str, str], int] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)  # scanned per shard
    strays: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def moving(self) -> int:
        return sum(self.moves.values())

    @property
    def total(self) -> int:
        return sum(self.keys.values())

    @property
    def sources(self) -> set[str]:
        return {src for (src, _dst), n in self.moves.items() if n}

    @property
    def destinations(self) -> set[str]:
        return {dst for (_src, dst), n in self.moves.items() if n}

    def feed(self, rings: Rings, shard: str, keys: list[bytes]) -> None:
        self.keys[shard] = self.keys.get(shard, 0) + len(keys)
        homes = rings.homes
        moves = self.moves
        for key in keys:
            old, home = homes(key)
            if old != shard:
                self.strays[shard] = self.strays.get(shard, 0) + 1
            elif home != shard:
                moves[(shard, home)] = moves.get((shard, home), 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "moves": [
                {"from": src, "to": dst, "keys": n} for (src, dst), n in sorted(self.moves.items())
            ],
            "moving": self.moving,
            "keys": self.keys,
            "total": self.total,
            "strays": self.strays,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        moves = {(str(m["from"]), str(m["to"])): int(m["keys"]) for m in data.get("moves", [])}
        keys = {str(k): int(v) for k, v in data.get("keys", {}).items()}
        strays = {str(k): int(v) for k, v in data.get("strays", {}).items()}
        return cls(moves, keys, strays, float(data.get("seconds", 0.0)))


def scan_keys(
    wire: Wire, label: str, count: int = SCAN_COUNT, db: int = 0
) -> Iterator[list[bytes]]:
    """Every key of one node, page by page (the next SCAN is sent before a page is used).
    OperationError naming the node when it fails."""
    count_arg = b"%d" % count
    try:
        if db:
            wire.roundtrip(command(b"SELECT", b"%d" % db), 1)
        wire.send(command(b"SCAN", b"0", b"COUNT", count_arg))
        while True:
            (reply,) = wire.receive(1)
            if not isinstance(reply, list):
                raise OSError(f"SCAN: {reply}")
            cursor, keys = reply
            if cursor != b"0":
                wire.send(command(b"SCAN", cursor, b"COUNT", count_arg))
            yield keys
            if cursor == b"0":
                return
    except (OSError, hiredis.ProtocolError) as exc:
        raise OperationError(
            f"SCAN of {label} failed: {describe(exc)} (fix: check `redkeeper status`, then "
            "run the command again)"
        ) from None


def scan_plan(
    masters: Mapping[str, Address],
    password: str | None,
    rings: Rings,
    *,
    db: int = 0,
    timeout: float = 10.0,
    progress: Progress | None = None,
) -> Plan:
    """SCAN every master of `masters` (shard → address) and count (module docstring)."""
    plan = Plan(keys={name: 0 for name in masters})
    started = time.perf_counter()
    wires = {name: Wire(address, password, timeout) for name, address in masters.items()}
    try:
        pages = {
            name: scan_keys(wire, f"{name}'s master {masters[name]}", db=db)
            for name, wire in wires.items()
        }
        while pages:
            for name, page in list(pages.items()):
                keys = next(page, None)
                if keys is None:
                    del pages[name]
                    continue
                plan.feed(rings, name, keys)
                if progress:
                    progress(len(keys))
    finally:
        for wire in wires.values():
            wire.close()
    plan.seconds = time.perf_counter() - started
    return plan


def dbsize(address: Address, password: str | None, timeout: float = 5.0, db: int = 0) -> int:
    with Wire(address, password, timeout) as wire:
        try:
            if db:
                wire.roundtrip(command(b"SELECT", b"%d" % db), 1)
            (size,) = wire.roundtrip(command(b"DBSIZE"), 1)
        except (OSError, hiredis.ProtocolError) as exc:
            raise OperationError(f"DBSIZE of {address} failed: {describe(exc)}") from None
    if not isinstance(size, int):
        raise OperationError(f"DBSIZE of {address}: {size!r}")
    return size


def possible_moves(old: Ring, new: Ring) -> set[tuple[str, str]] | None:
    """Every (source, destination) a key can move between, from the rings alone (whatever
    the data): exact for ketama, where a hash's owner is the first ring point at or after it,
    so evaluating both rings at every point of either (and past the last) visits every
    interval. None for modula, where any shard may send keys to any other."""
    if old.distribution != "ketama" or new.distribution != "ketama":
        return None
    old_names, new_names = shard_names(old), shard_names(new)

    def owner(ring: Ring, names: list[str]) -> Callable[[int], str]:
        continuum = ring.continuum()
        points = [p for p, _ in continuum]
        owners = [o for _, o in continuum]
        if len(names) == 1 or not points:
            return lambda _h: names[0]

        def at(value: int) -> int:
            position = bisect_left(points, value)
            return owners[position if position < len(points) else 0]

        return lambda h: names[at(h)]

    old_owner, new_owner = owner(old, old_names), owner(new, new_names)
    values = {p for p, _ in old.continuum()} | {p for p, _ in new.continuum()} | {0}
    values.add(min(max(values) + 1, 0xFFFFFFFF))
    pairs = {(old_owner(v), new_owner(v)) for v in values}
    return {(src, dst) for src, dst in pairs if src != dst}
