"""RESP2/RESP3 helpers of the proxy: the reply-frame scanner, encoders, inline parsing.

Owns the byte-level protocol the proxy needs beyond hiredis's request parser:

* `frame_end(buf, pos)` finds where one complete reply (any RESP2 or RESP3 type, nested
  aggregates and attributes included) ends, so backend replies pass through untranslated;
* `elements(frame)` splits an aggregate reply into its element frames (for merging MGET);
* encoders for the replies the proxy makes itself (errors, integers, bulks, arrays, maps);
* `split_inline(line)`: Redis's inline-command splitting (sdssplitargs rules).

Pure: no I/O. Malformed input raises `RespError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import hiredis

from redkeeper.errors import RedkeeperError

CRLF = b"\r\n"
OK = b"+OK\r\n"

# Type bytes.
_PLUS, _MINUS, _COLON, _DOLLAR, _STAR = 43, 45, 58, 36, 42
_NULL, _BOOL, _DOUBLE, _BIGNUM = 95, 35, 44, 40  # _ # , (
_BLOB_ERR, _VERBATIM = 33, 61  # ! =
_MAP, _SET, _ATTR, _PUSH = 37, 126, 124, 62  # % ~ | >
_LINE_TYPES = frozenset((_PLUS, _MINUS, _COLON, _NULL, _BOOL, _DOUBLE, _BIGNUM))
_BLOB_TYPES = frozenset((_DOLLAR, _BLOB_ERR, _VERBATIM))
_AGGREGATE_TYPES = frozenset((_STAR, _SET, _PUSH))
_PAIR_TYPES = frozenset((_MAP, _ATTR))


class RespError(RedkeeperError):
    """Bytes that are not valid RESP (the message is the protocol error's detail)."""


def _length(buf: bytes, start: int, end: int) -> int:
    try:
        return int(buf[start:end])
    except ValueError:
        raise RespError(f"invalid length {buf[start:end][:20]!r}") from None


def frame_end(buf: bytes, pos: int = 0) -> int:
    """The offset just past the complete reply that starts at `pos`, or -1 if incomplete.

    An attribute (`|`) is returned together with the reply it annotates.
    """
    n = len(buf)
    remaining = 1
    while remaining:
        if pos >= n:
            return -1
        kind = buf[pos]
        eol = buf.find(CRLF, pos + 1)
        if eol < 0:
            return -1
        remaining -= 1
        if kind in _LINE_TYPES:
            pos = eol + 2
        elif kind in _BLOB_TYPES:
            length = _length(buf, pos + 1, eol)
            if length < 0:
                if length != -1 or kind != _DOLLAR:
                    raise RespError(f"invalid bulk length {length}")
                pos = eol + 2
            else:
                pos = eol + 4 + length
                if pos > n:
                    return -1
                if buf[pos - 2 : pos] != CRLF:
                    raise RespError("bulk string not terminated by CRLF")
        elif kind in _AGGREGATE_TYPES:
            count = _length(buf, pos + 1, eol)
            if count < -1:
                raise RespError(f"invalid aggregate length {count}")
            remaining += max(count, 0)
            pos = eol + 2
        elif kind in _PAIR_TYPES:
            count = _length(buf, pos + 1, eol)
            if count < 0:
                raise RespError(f"invalid map length {count}")
            remaining += 2 * count + (1 if kind == _ATTR else 0)
            pos = eol + 2
        else:
            raise RespError(f"unknown reply type byte {chr(kind)!r}")
    return pos


def is_push(frame: bytes) -> bool:
    """A RESP3 out-of-band push (never the reply to a request)."""
    return frame[:1] == b">"


def is_error(frame: bytes) -> bool:
    """An error reply: simple (`-`) or RESP3 blob (`!`) error."""
    return frame[:1] in (b"-", b"!")


def elements(frame: bytes) -> list[bytes] | None:
    """The element frames of an array/set/push reply; None for a null or non-aggregate."""
    if not frame or frame[0] not in _AGGREGATE_TYPES:
        return None
    eol = frame.find(CRLF)
    count = _length(frame, 1, eol)
    if count < 0:
        return None
    items: list[bytes] = []
    pos = eol + 2
    for _ in range(count):
        end = frame_end(frame, pos)
        if end < 0:
            raise RespError("truncated aggregate")
        items.append(frame[pos:end])
        pos = end
    return items


def integer_value(frame: bytes) -> int | None:
    """The value of an integer reply `:n`, else None."""
    if frame[:1] != b":":
        return None
    try:
        return int(frame[1:-2])
    except ValueError:
        return None


# -- encoders ---------------------------------------------------------------------------------


def error(message: str) -> bytes:
    """An error reply; `message` starts with the error code (ERR, NOAUTH, ...)."""
    text = message.replace("\r", " ").replace("\n", " ")
    return b"-" + text.encode() + CRLF


def simple(text: str) -> bytes:
    return b"+" + text.encode() + CRLF


def integer(value: int) -> bytes:
    return b":%d\r\n" % value


def bulk(value: bytes | str | None, proto: int = 2) -> bytes:
    """A bulk string, or the null of protocol `proto` for None."""
    if value is None:
        return null(proto)
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


def null(proto: int) -> bytes:
    """The null bulk reply: `$-1` in RESP2, `_` in RESP3."""
    return b"_\r\n" if proto == 3 else b"$-1\r\n"


def array(items: Sequence[bytes]) -> bytes:
    """An array of already-encoded frames."""
    return b"*%d\r\n%s" % (len(items), b"".join(items))


def mapping(pairs: Sequence[tuple[bytes, bytes]], proto: int) -> bytes:
    """A map of encoded (key, value) frames: `%` in RESP3, a flat array in RESP2."""
    body = b"".join(k + v for k, v in pairs)
    if proto == 3:
        return b"%%%d\r\n%s" % (len(pairs), body)
    return b"*%d\r\n%s" % (2 * len(pairs), body)


#: hiredis's request encoder (C): a tuple of bulk arguments as one RESP request.
pack: Callable[[tuple[bytes, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]


def command(*args: bytes | str) -> bytes:
    """A request as a RESP array of bulk strings."""
    parts = [a.encode() if isinstance(a, str) else a for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


# -- inline commands --------------------------------------------------------------------------

_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_SPACE = b" \t\n\r\v\f\x00"


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline command line like Redis's sdssplitargs (quotes and escapes included)."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if i >= n:
                if in_double or in_single:
                    raise RespError("unbalanced quotes in request")
                break
            c = line[i]
            if in_double:
                if c == 0x5C and i + 3 < n and line[i + 1] == 0x78 and _is_hex_pair(line, i + 2):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise RespError("unbalanced quotes in request")
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise RespError("unbalanced quotes in request")
                    i += 1
                    break
                else:
                    current.append(c)
            elif c in _SPACE:
                break
            elif c == 0x22:
                in_double = True
            elif c == 0x27:
                in_single = True
            else:
                current.append(c)
            i += 1
        args.append(bytes(current))


def _is_hex_pair(line: bytes, at: int) -> bool:
    return line[at] in _HEX and line[at + 1] in _HEX


# -- request header guard ---------------------------------------------------------------------


def first_bad_header(buf: bytes, max_multibulk: int, max_bulk: int) -> tuple[int, str] | None:
    """Walk the multibulk requests in `buf` (which starts at a request boundary) and return
    (offset, detail) of the first header that breaks a limit, or None.

    hiredis preallocates a list for an `*N` header before any element arrives (and frees it
    slot by slot), so a huge N must never reach it; this exact walk runs only when a cheap scan
    of the raw bytes saw something that looks like a big length. Inline requests and incomplete
    frames end the walk (nothing dangerous can follow them unseen).
    """
    pos, n = 0, len(buf)
    while pos < n:
        if buf[pos] != _STAR:
            return None
        eol = buf.find(CRLF, pos)
        if eol < 0:
            return None
        try:
            count = int(buf[pos + 1 : eol])
        except ValueError:
            return pos, "invalid multibulk length"
        if count > max_multibulk:
            return pos, "invalid multibulk length"
        pos = eol + 2
        for _ in range(max(count, 0)):
            if pos >= n:
                return None
            if buf[pos] != _DOLLAR:
                return pos, f"expected '$', got '{chr(buf[pos])}'"
            eol = buf.find(CRLF, pos)
            if eol < 0:
                return None
            try:
                length = int(buf[pos + 1 : eol])
            except ValueError:
                return pos, "invalid bulk length"
            if length > max_bulk or length < 0:
                return pos, "invalid bulk length"
            pos = eol + 4 + length
    return None
