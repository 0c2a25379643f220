"""The proxy's hot loops: the C versions from `_speedups` when built, else pure Python.

Owns four pure functions with one contract each (the C extension `_speedups.c` and the
Python code here are tested against each other):

* `route(buf, pos, commands, cache, index_of, max_argc, max_bulk, max_requests)`: the run of
  complete single-key requests at `buf[pos:]`, grouped by shard, forwarded as the client's
  raw bytes. Returns `(end, order, groups)`: `order` has a byte per request, the index of its
  group; `groups` holds one `(shard * 2 + readonly, payload, count)` per shard, readonly
  when every request of the group only reads, the payload in request order (a read after a
  write to the same key sees it, as on one connection). It stops at the first request that
  needs the general path (incomplete, inline, malformed, over the limits, or not a
  single-key command with a valid arity), or after MAX_RUN requests.
  `ROUTE` is None without the C extension: the client connection then takes the general
  path (hiredis) for everything.
* `frames(buf, pos, need)`: `(count, end)` after skipping up to `need` complete reply frames;
  it stops at an incomplete frame or before an out-of-band push.
* `interleave(order, parts)`: the replies in request order from the per-group reply runs.
* `request_end(buf, pos)`: the end of the complete multibulk request at `buf[pos:]`, -1 if
  incomplete, -2 if malformed; `at_boundary(buf)` uses it to tell whether hiredis, having
  consumed every byte, stopped between requests or between two arguments of one.

`command_info(spec)` packs what `route` needs of a command table row into one int.
Set REDKEEPER_PURE_PYTHON=1 to run without the C extension.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from redkeeper.server import commands, resp

Route = Callable[
    [bytes, int, dict[bytes, int], dict[bytes, int], Callable[[bytes], int], int, int, int],
    tuple[int, bytes, list[tuple[int, bytes, int]]],
]
Frames = Callable[[bytes, int, int], tuple[int, int]]
Interleave = Callable[[bytes, list[bytes]], bytes]
RequestEnd = Callable[[bytes, int], int]

_PUSH = 62  # '>'
_PLUS, _MINUS, _COLON, _DOLLAR, _STAR = 43, 45, 58, 36, 42
MAX_GROUPS = 255
MAX_RUN = 256  # requests one `route` call takes at most


def command_info(spec: commands.CommandSpec) -> int:
    """first | readonly << 7 | (arity + 128) << 8: one int per fast command for `route`."""
    return spec.first | (int(spec.readonly) << 7) | ((spec.arity + 128) << 8)


#: the commands `route` takes (single-key ones), by the name bytes as sent (both cases).
FAST_COMMANDS: dict[bytes, int] = {
    name: command_info(spec)
    for name, spec in commands._BY_BYTES.items()
    if spec.kind == commands.SINGLE and 0 < spec.first < 128
}


def frames_py(buf: bytes, pos: int, need: int) -> tuple[int, int]:
    """Pure-Python `frames`: skip up to `need` complete reply frames from `buf[pos:]`."""
    n = len(buf)
    count = 0
    while count < need and pos < n:
        kind = buf[pos]
        if kind in (_PLUS, _COLON, _MINUS):
            end = buf.find(b"\r\n", pos) + 2
            if end == 1:
                break
        elif kind == _DOLLAR:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            try:
                length = int(buf[pos + 1 : eol])
            except ValueError:
                raise resp.RespError("invalid bulk length") from None
            end = eol + 4 + length if length >= 0 else eol + 2
            if end > n:
                break
            if length >= 0 and buf[end - 2 : end] != b"\r\n":
                raise resp.RespError("bulk string not terminated by CRLF")
        elif kind == _PUSH:
            break
        else:
            end = resp.frame_end(buf, pos)
            if end < 0:
                break
        pos = end
        count += 1
    return count, pos


def interleave_py(order: bytes, parts: list[bytes]) -> bytes:
    """Pure-Python `interleave`: for each group index in `order`, the next frame of its part."""
    at = [0] * len(parts)
    out: list[bytes] = []
    for g in order:
        part = parts[g]
        start = at[g]
        end = resp.frame_end(part, start)
        if end < 0:
            raise resp.RespError("the reply parts do not match the request order")
        out.append(part[start:end])
        at[g] = end
    if any(a != len(p) for a, p in zip(at, parts, strict=True)):
        raise resp.RespError("the reply parts do not match the request order")
    return b"".join(out)


def request_end_py(buf: bytes, pos: int) -> int:
    """Pure-Python `request_end`."""
    n = len(buf)
    if pos >= n:
        return -1
    if buf[pos] != _STAR:
        return -2
    q, argc = _header(buf, pos + 1)
    if q < 0:
        return q
    for _ in range(argc):
        if q >= n:
            return -1
        if buf[q] != _DOLLAR:
            return -2
        r, length = _header(buf, q + 1)
        if r < 0:
            return r
        if length < 0:
            return -2
        if r + length + 2 > n:
            return -1
        q = r + length + 2
    return q


_NUMBER = re.compile(rb"(-?[0-9]{1,18})\r\n")
_NUMBER_PREFIX = re.compile(rb"-?[0-9]{0,18}\r?")


def _header(buf: bytes, pos: int) -> tuple[int, int]:
    """(offset after the CRLF, value) of the decimal line at `buf[pos:]` (at most 18 digits);
    the offset is -1 if the line is incomplete, -2 if it is not such a number."""
    match = _NUMBER.match(buf, pos)
    if match is not None:
        return match.end(), int(match.group(1))
    return (-1 if _NUMBER_PREFIX.fullmatch(buf, pos) else -2), 0


def at_boundary(buf: bytes) -> bool:
    """Whether `buf` is whole multibulk requests only (False at a partial or malformed one)."""
    pos, n = 0, len(buf)
    end = request_end
    while pos < n:
        pos = end(buf, pos)
        if pos < 0:
            return False
    return True


def route_py(
    buf: bytes,
    pos: int,
    table: dict[bytes, int],
    cache: dict[bytes, int],
    index_of: Callable[[bytes], int],
    max_argc: int,
    max_bulk: int,
    max_requests: int,
) -> tuple[int, bytes, list[tuple[int, bytes, int]]]:
    """Pure-Python `route` (the reference the C version is tested against)."""
    max_requests = min(max_requests, MAX_RUN)
    n = len(buf)
    order = bytearray()
    shards: list[int] = []
    reads: list[int] = []
    payloads: list[list[bytes]] = []
    while len(order) < max(1, max_requests) and pos < n and buf[pos] == _STAR:
        q, argc = _header(buf, pos + 1)
        if q < 0 or not 1 <= argc <= max_argc:
            break
        spans: list[tuple[int, int]] = []
        for _ in range(argc):
            if q >= n or buf[q] != _DOLLAR:
                break
            r, length = _header(buf, q + 1)
            if r < 0 or not 0 <= length <= max_bulk:
                break
            if r + length + 2 > n or buf[r + length : r + length + 2] != b"\r\n":
                break
            spans.append((r, r + length))
            q = r + length + 2
        if len(spans) != argc:
            break
        info = table.get(buf[spans[0][0] : spans[0][1]])
        if info is None:
            break
        first, readonly, arity = info & 0x7F, (info >> 7) & 1, (info >> 8) - 128
        if first >= argc or ((argc != arity) if arity > 0 else (argc < -arity)):
            break
        key = buf[spans[first][0] : spans[first][1]]
        shard = cache.get(key)
        if shard is None:
            shard = index_of(key)
        if shard in shards:
            g = shards.index(shard)
        elif len(shards) == MAX_GROUPS:
            break
        else:
            g = len(shards)
            shards.append(shard)
            reads.append(1)
            payloads.append([])
        reads[g] &= readonly
        order.append(g)
        payloads[g].append(buf[pos:q])
        pos = q
    groups = [
        (shard * 2 + read, b"".join(parts), len(parts))
        for shard, read, parts in zip(shards, reads, payloads, strict=True)
    ]
    return pos, bytes(order), groups


def _load() -> Any:
    if os.environ.get("REDKEEPER_PURE_PYTHON"):
        return None
    try:
        from redkeeper.server import _speedups  # type: ignore[attr-defined]  # noqa: PLC0415
    except ImportError:
        return None
    return _speedups


_C = _load()
#: whether the C extension is in use.
COMPILED: bool = _C is not None
ROUTE: Route | None = _C.route if _C is not None else None
frames: Frames = _C.frames if _C is not None else frames_py
interleave: Interleave = _C.interleave if _C is not None else interleave_py
request_end: RequestEnd = _C.request_end if _C is not None else request_end_py
