"""Splitting one request into per-shard fragments, and merging the fragment replies back.

Owns the multi-key rules of the proxy (Envoy's command splitter, twemproxy's fragments):

* `split(spec, args, index_of)` for MGET, MSET and the summing commands (DEL, UNLINK,
  EXISTS, TOUCH): when every key is on one shard the request goes whole (an int); otherwise
  a `Split` of per-shard fragment requests (keys kept in request order within a fragment) and
  the merger for their replies;
* `one_shard(spec, keys, index_of, ...)`: the shard of a command whose keys must share one,
  or the error reply text naming the command and the shards;
* the mergers: MGET re-assembles the element frames in request order (RESP2 `$-1` and RESP3
  `_` nulls pass through as they came); MSET answers +OK only if every fragment did; the
  summing commands add the integers. A fragment's error reply becomes the reply.

Pure: replies are byte frames, placement is a function; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redkeeper.server import resp
from redkeeper.server.commands import MGET, MSET, CommandSpec

IndexOf = Callable[[bytes], int]


@dataclass(frozen=True, slots=True)
class Fragment:
    """One shard's part of a split request, as the RESP request to send."""

    shard: int
    payload: bytes
    count: int  # keys in this fragment


class Merger:
    """Turns the fragment replies (in fragment order) into the client's reply."""

    def merge(self, replies: Sequence[bytes]) -> bytes:
        raise NotImplementedError


def _first_error(replies: Sequence[bytes]) -> bytes | None:
    for reply in replies:
        if resp.is_error(reply):
            return reply
    return None


def _unexpected(command: str, reply: bytes) -> bytes:
    shown = reply[:40].decode(errors="replace").strip()
    return resp.error(f"ERR redkeeper: unexpected {command} fragment reply {shown!r}")


class SumMerger(Merger):
    """DEL, UNLINK, EXISTS, TOUCH: the sum of the integer replies."""

    def __init__(self, command: str) -> None:
        self.command = command

    def merge(self, replies: Sequence[bytes]) -> bytes:
        failed = _first_error(replies)
        if failed is not None:
            return failed
        total = 0
        for reply in replies:
            value = resp.integer_value(reply)
            if value is None:
                return _unexpected(self.command, reply)
            total += value
        return resp.integer(total)


class MSetMerger(Merger):
    """MSET: +OK only if every fragment answered +OK."""

    def merge(self, replies: Sequence[bytes]) -> bytes:
        failed = _first_error(replies)
        if failed is not None:
            return failed
        for reply in replies:
            if reply != resp.OK:
                return _unexpected("MSET", reply)
        return resp.OK


class MGetMerger(Merger):
    """MGET: element i of fragment f goes back to the request position it came from."""

    def __init__(self, positions: list[list[int]], total: int) -> None:
        self.positions = positions
        self.total = total

    def merge(self, replies: Sequence[bytes]) -> bytes:
        failed = _first_error(replies)
        if failed is not None:
            return failed
        out: list[bytes] = [b""] * self.total
        for reply, positions in zip(replies, self.positions, strict=True):
            try:
                items = resp.elements(reply)
            except resp.RespError:
                items = None
            if items is None or len(items) != len(positions):
                return _unexpected("MGET", reply)
            for position, item in zip(positions, items, strict=True):
                out[position] = item
        return resp.array(out)


@dataclass(frozen=True, slots=True)
class Split:
    """A request spread over several shards."""

    fragments: tuple[Fragment, ...]
    merger: Merger


def split(spec: CommandSpec, args: list[bytes], index_of: IndexOf) -> int | Split:
    """The shard of the whole request when all its keys share one, else its fragments.

    `spec` is MGET, MSET or a summing command, with its arity already checked.
    """
    step = 2 if spec.kind == MSET else 1
    name = args[0]
    groups: dict[int, list[int]] = {}  # shard -> argument positions of its keys
    for position in range(1, len(args), step):
        shard = index_of(args[position])
        group = groups.get(shard)
        if group is None:
            groups[shard] = [position]
        else:
            group.append(position)
    if len(groups) == 1:
        return next(iter(groups))
    fragments: list[Fragment] = []
    key_positions: list[list[int]] = []
    for shard, positions in groups.items():
        parts = [name]
        for position in positions:
            parts.extend(args[position : position + step])
        fragments.append(Fragment(shard, resp.command(*parts), len(positions)))
        key_positions.append([(p - 1) // step for p in positions])
    merger: Merger
    if spec.kind == MGET:
        merger = MGetMerger(key_positions, (len(args) - 1) // step)
    elif spec.kind == MSET:
        merger = MSetMerger()
    else:
        merger = SumMerger(spec.name)
    return Split(tuple(fragments), merger)


def one_shard(
    spec: CommandSpec,
    keys: Sequence[bytes],
    index_of: IndexOf,
    shard_names: Sequence[str],
    hash_tag: str | None,
) -> int | str:
    """The one shard holding every key, or the error text (without '-') when they span shards."""
    shards = {index_of(key) for key in keys}
    if len(shards) == 1:
        return shards.pop()
    names = ", ".join(sorted(shard_names[s] for s in shards))
    return f"ERR redkeeper: {spec.name} keys span shards ({names}); {hash_tag_fix(hash_tag)}"


def hash_tag_fix(hash_tag: str | None) -> str:
    """What to tell a user whose keys must share a shard and do not."""
    if hash_tag:
        return (
            f"give the keys a common hash tag, e.g. {hash_tag[0]}user1{hash_tag[1]}:a and "
            f"{hash_tag[0]}user1{hash_tag[1]}:b"
        )
    return "this pool has no hash_tag, so only keys that happen to share a shard can be used"
