"""The proxy's hot loops: the C versions from `_speedups` when built, else pure Python.

Owns three pure functions with one contract each (the C extension `_speedups.c` and the
Python code here are tested against each other):

* `route(buf, pos, commands, cache, index_of, max_argc, max_bulk, max_requests)`: the run of
  complete single-key requests at `buf[pos:]`, grouped by (shard, read-only), forwarded as the
  client's raw bytes. Returns `(end, order, groups)`: `order` has a byte per request, the
  index of its group; `groups` holds `(shard * 2 + readonly, payload, count)`. It stops at
  the first request that needs the general path (incomplete, inline, malformed, over the
  limits, or not a single-key command with a valid arity). `ROUTE` is None without the C
  extension: the client connection then takes the general path (hiredis) for everything.
* `frames(buf, pos, need)`: `(count, end)` after skipping up to `need` complete reply frames;
  it stops at an incomplete frame or before an out-of-band push.
* `interleave(order, parts)`: the replies in request order from the per-group reply runs.

`command_info(spec)` packs what `route` needs of a command table row into one int.
Set REDKEEPER_PURE_PYTHON=1 to run without the C extension.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from redkeeper.server import commands, resp

Route = Callable[
    [bytes, int, dict[bytes, int], dict[bytes, int], Callable[[bytes], int], int, int, int],
    tuple[int, bytes, list[tuple[int, bytes, int]]],
]
Frames = Callable[[bytes, int, int], tuple[int, int]]
Interleave = Callable[[bytes, list[bytes]], bytes]

_PUSH = 62  # '>'
_PLUS, _MINUS, _COLON, _DOLLAR, _STAR = 43, 45, 58, 36, 42
MAX_GROUPS = 255


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


def _line_int(buf: bytes, pos: int) -> tuple[int, int] | None:
    """(value, offset after CRLF) of the decimal line at `buf[pos:]`, None if not complete+valid."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0 or eol == pos or eol - pos > 19:
        return None
    text = buf[pos:eol]
    if not (text.isdigit() or (text[:1] == b"-" and text[1:].isdigit())):
        return None
    return int(text), eol + 2


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
    n = len(buf)
    order = bytearray()
    codes: list[int] = []
    payloads: list[list[bytes]] = []
    while len(order) < max(1, max_requests) and pos < n and buf[pos] == _STAR:
        header = _line_int(buf, pos + 1)
        if header is None or not 1 <= header[0] <= max_argc:
            break
        argc, q = header
        spans: list[tuple[int, int]] = []
        for _ in range(argc):
            if q >= n or buf[q] != _DOLLAR:
                break
            bulk = _line_int(buf, q + 1)
            if bulk is None or not 0 <= bulk[0] <= max_bulk:
                break
            length, r = bulk
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
        code = shard * 2 + readonly
        if code in codes:
            g = codes.index(code)
        elif len(codes) == MAX_GROUPS:
            break
        else:
            g = len(codes)
            codes.append(code)
            payloads.append([])
        order.append(g)
        payloads[g].append(buf[pos:q])
        pos = q
    groups = [
        (code, b"".join(parts), len(parts)) for code, parts in zip(codes, payloads, strict=True)
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
