"""The 12 key hashes of twemproxy 0.5.0 (src/hashkit), reimplemented bit-for-bit in Python.

Every function takes the key bytes and returns the unsigned 32-bit value nutcracker computes.
twemproxy receives keys as `const char *`; on x86-64 `char` is signed, so wherever the C code
widens a key byte without going through an unsigned type, bytes >= 0x80 are sign-extended
(0xE9 becomes 0xFFFFFFE9) before being mixed in. That affects fnv1_64, fnv1a_64, fnv1_32,
fnv1a_32, one_at_a_time and the 3-byte tail of hsieh; crc16 and crc32 mask the byte back to
8 bits, and md5, crc32a, murmur and jenkins read unsigned bytes.

These are the raw hash functions (what twemproxy's src/test_all.c checks). The pool-level
rules (hash tags, empty key -> 0, one-server pool) live in `redkeeper.placement.ring`.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable

from redkeeper.errors import ConfigError, Problem

_M32 = 0xFFFFFFFF

#: byte value -> what `(uint32_t)(char)byte` is on x86-64 (sign-extended for bytes >= 0x80).
_SX32: tuple[int, ...] = tuple(b if b < 0x80 else b | 0xFFFFFF00 for b in range(256))

_FNV64_INIT_LO = 0x84222325  # low 32 bits of 0xcbf29ce484222325
_FNV64_PRIME_LO = 0x000001B3  # low 32 bits of 0x100000001b3
_FNV32_INIT = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv1a_64(key: bytes) -> int:
    """twemproxy's "fnv1a_64": really 32-bit arithmetic seeded from the 64-bit constants."""
    h = _FNV64_INIT_LO
    if key.isascii():
        for b in key:
            h = ((h ^ b) * 0x1B3) & 0xFFFFFFFF
    else:
        sx = _SX32
        for b in key:
            h = ((h ^ sx[b]) * 0x1B3) & 0xFFFFFFFF
    return h


def fnv1_64(key: bytes) -> int:
    """64-bit FNV-1, low 32 bits (the low half of a 64-bit product only needs the low halves)."""
    h = _FNV64_INIT_LO
    sx = _SX32
    for b in key:
        h = ((h * _FNV64_PRIME_LO) & _M32) ^ sx[b]
    return h


def fnv1_32(key: bytes) -> int:
    """Standard 32-bit FNV-1 (multiply, then xor), with signed-char bytes."""
    h = _FNV32_INIT
    sx = _SX32
    for b in key:
        h = ((h * _FNV32_PRIME) & _M32) ^ sx[b]
    return h


def fnv1a_32(key: bytes) -> int:
    """Standard 32-bit FNV-1a (xor, then multiply), with signed-char bytes."""
    h = _FNV32_INIT
    sx = _SX32
    for b in key:
        h = ((h ^ sx[b]) * _FNV32_PRIME) & _M32
    return h


def one_at_a_time(key: bytes) -> int:
    """Bob Jenkins' one-at-a-time hash, with signed-char bytes."""
    h = 0
    sx = _SX32
    for b in key:
        h = (h + sx[b]) & _M32
        h = (h + (h << 10)) & _M32
        h ^= h >> 6
    h = (h + (h << 3)) & _M32
    h ^= h >> 11
    return (h + (h << 15)) & _M32


def md5(key: bytes) -> int:
    """Little-endian uint32 of the first 4 bytes of the MD5 digest."""
    return int.from_bytes(hashlib.md5(key, usedforsecurity=False).digest()[:4], "little")


def _crc16_table() -> tuple[int, ...]:
    """The MSB-first CRC-16 table for polynomial 0x1021 (XMODEM / CCITT)."""
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16 = _crc16_table()


def crc16(key: bytes) -> int:
    """XMODEM-table CRC whose 32-bit accumulator is never cut back to 16 bits."""
    crc = 0
    table = _CRC16
    for b in key:
        # (crc >> 8) ^ (char)b, masked to 8 bits: the sign of b cannot leak through.
        crc = ((crc << 8) & _M32) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


def crc32(key: bytes) -> int:
    """15 bits of the standard CRC-32: `((~crc) >> 16) & 0x7fff`."""
    return (zlib.crc32(key) >> 16) & 0x7FFF


def crc32a(key: bytes) -> int:
    """The standard (zlib) CRC-32."""
    return zlib.crc32(key)


def hsieh(key: bytes) -> int:
    """Paul Hsieh's SuperFastHash; the 3-byte tail mixes in a sign-extended char."""
    n = len(key)
    if n == 0:
        return 0
    h = 0
    end = n - (n & 3)
    for i in range(0, end, 4):
        h = (h + (key[i] | (key[i + 1] << 8))) & _M32
        tmp = (((key[i + 2] | (key[i + 3] << 8)) << 11) ^ h) & _M32
        h = ((h << 16) & _M32) ^ tmp
        h = (h + (h >> 11)) & _M32
    rem = n & 3
    if rem == 3:
        h = (h + (key[end] | (key[end + 1] << 8))) & _M32
        h ^= (h << 16) & _M32
        h ^= (_SX32[key[end + 2]] << 18) & _M32
        h = (h + (h >> 11)) & _M32
    elif rem == 2:
        h = (h + (key[end] | (key[end + 1] << 8))) & _M32
        h ^= (h << 11) & _M32
        h = (h + (h >> 17)) & _M32
    elif rem == 1:
        h = (h + key[end]) & _M32
        h ^= (h << 10) & _M32
        h = (h + (h >> 1)) & _M32
    h ^= (h << 3) & _M32
    h = (h + (h >> 5)) & _M32
    h ^= (h << 4) & _M32
    h = (h + (h >> 17)) & _M32
    h ^= (h << 25) & _M32
    return (h + (h >> 6)) & _M32


_MURMUR_M = 0x5BD1E995


def _le_words(data: bytes) -> tuple[int, ...]:
    """`data` (a multiple of 4 bytes long) as little-endian uint32 words."""
    return struct.unpack(f"<{len(data) >> 2}I", data)


def murmur(key: bytes) -> int:
    """MurmurHash2 with twemproxy's length-derived seed (0xdeadbeef * length)."""
    m = _MURMUR_M
    n = len(key)
    h = ((0xDEADBEEF * n) & _M32) ^ (n & _M32)
    end = n - (n & 3)
    for word in _le_words(key[:end]):
        k = (word * m) & _M32
        k ^= k >> 24
        k = (k * m) & _M32
        h = ((h * m) & _M32) ^ k
    rem = n & 3
    if rem:
        if rem == 3:
            h ^= key[end + 2] << 16
        if rem >= 2:
            h ^= key[end + 1] << 8
        h ^= key[end]
        h = (h * m) & _M32
    h ^= h >> 13
    h = (h * m) & _M32
    return h ^ (h >> 15)


def jenkins(key: bytes) -> int:
    """Bob Jenkins' lookup3 `hashlittle` with initval 13 (same result for any alignment).

    The key is read as 12-byte blocks of three little-endian words; every block but the last
    goes through mix(), the last (zero-padded: the C switch adds only the bytes present, which
    sums the same) through final().
    """
    n = len(key)
    a = b = c = (0xDEADBEEF + n + 13) & _M32
    if n == 0:
        return c
    m = _M32
    words = _le_words(key + b"\0" * (-n % 12))
    last = len(words) - 3
    for i in range(0, last, 3):
        a = (a + words[i]) & m
        b = (b + words[i + 1]) & m
        c = (c + words[i + 2]) & m
        # mix(a, b, c); rot(x, k) is ((x << k) | (x >> (32 - k))) & m
        a = (a - c) & m
        a ^= ((c << 4) | (c >> 28)) & m
        c = (c + b) & m
        b = (b - a) & m
        b ^= ((a << 6) | (a >> 26)) & m
        a = (a + c) & m
        c = (c - b) & m
        c ^= ((b << 8) | (b >> 24)) & m
        b = (b + a) & m
        a = (a - c) & m
        a ^= ((c << 16) | (c >> 16)) & m
        c = (c + b) & m
        b = (b - a) & m
        b ^= ((a << 19) | (a >> 13)) & m
        a = (a + c) & m
        c = (c - b) & m
        c ^= ((b << 4) | (b >> 28)) & m
        b = (b + a) & m
    a = (a + words[last]) & m
    b = (b + words[last + 1]) & m
    c = (c + words[last + 2]) & m
    # final(a, b, c)
    c ^= b
    c = (c - (((b << 14) | (b >> 18)) & m)) & m
    a ^= c
    a = (a - (((c << 11) | (c >> 21)) & m)) & m
    b ^= a
    b = (b - (((a << 25) | (a >> 7)) & m)) & m
    c ^= b
    c = (c - (((b << 16) | (b >> 16)) & m)) & m
    a ^= c
    a = (a - (((c << 4) | (c >> 28)) & m)) & m
    b ^= a
    b = (b - (((a << 14) | (a >> 18)) & m)) & m
    c ^= b
    return (c - (((b << 24) | (b >> 8)) & m)) & m


HashFunction = Callable[[bytes], int]

#: twemproxy's hash names (nc_conf.c order) -> implementation.
HASH_FUNCTIONS: dict[str, HashFunction] = {
    "one_at_a_time": one_at_a_time,
    "md5": md5,
    "crc16": crc16,
    "crc32": crc32,
    "crc32a": crc32a,
    "fnv1_64": fnv1_64,
    "fnv1a_64": fnv1a_64,
    "fnv1_32": fnv1_32,
    "fnv1a_32": fnv1a_32,
    "hsieh": hsieh,
    "murmur": murmur,
    "jenkins": jenkins,
}

HASHES: tuple[str, ...] = tuple(HASH_FUNCTIONS)


def hash_key(hash_name: str, key: bytes) -> int:
    """The raw twemproxy hash `hash_name` of `key`; an unknown name raises ConfigError.

    This is the hashkit function alone: an empty key gives the function's own value here,
    while a pool (see `Ring`) never hashes an empty key and uses 0.
    """
    try:
        function = HASH_FUNCTIONS[hash_name]
    except KeyError:
        raise ConfigError([unknown_hash_problem(hash_name)]) from None
    return function(key)


def unknown_hash_problem(hash_name: str) -> Problem:
    """The operator-facing problem for a hash name twemproxy 0.5.0 does not know."""
    return Problem(
        file="<pool>",
        field="hash",
        message=f"unknown twemproxy hash {hash_name!r}",
        fix=f"use one of: {', '.join(HASHES)} (default fnv1a_64)",
    )


def ketama_points(name_point: bytes) -> tuple[int, int, int, int]:
    """The 4 ketama ring points of one "<name>-<i>" string: LE uint32s of the MD5 digest."""
    digest = hashlib.md5(name_point, usedforsecurity=False).digest()
    return (
        int.from_bytes(digest[0:4], "little"),
        int.from_bytes(digest[4:8], "little"),
        int.from_bytes(digest[8:12], "little"),
        int.from_bytes(digest[12:16], "little"),
    )
