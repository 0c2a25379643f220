"""Support for the differential test of the redkeeper proxy against nutcracker 0.5.0.

* `RespConn`: a raw RESP2 client on a socket. Replies keep their RESP type (status, error,
  integer, bulk, array, the two nulls), so the comparison is exact; it notices a closed
  connection (nutcracker closes on anything it does not support).
* `StreamGen`: a seeded random command stream over every command both endpoints serve, with
  binary, non-ASCII, hash-tagged, empty and long keys and values up to 1 MB. Every command
  whose keys must share a shard gets keys of one shard; the few where nutcracker answers wrong
  carry an oracle (computed on the shards directly) instead of being compared with it.
* `normalize`: replies whose order or timing Redis does not fix (SMEMBERS, TTL, SRANDMEMBER
  with a count over the size ...) in a comparable form.
* `snapshot`: a shard's whole keyspace as type, canonical value and TTL per key.
"""

from __future__ import annotations

import hashlib
import random
import select
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import redis

# -- RESP2 values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    text: bytes


@dataclass(frozen=True)
class Err:
    text: bytes


@dataclass(frozen=True)
class Null:
    kind: str  # "bulk" ($-1) or "array" (*-1)


NULL_BULK = Null("bulk")
NULL_ARRAY = Null("array")
Value: TypeAlias = "int | bytes | Status | Err | Null | list[Value]"


class PeerClosedError(ConnectionError):
    """The peer closed (or reset) the connection."""


class _IncompleteError(Exception):
    pass


def _skip(buf: bytearray, pos: int) -> int:
    """The end of the reply at `pos` (no copying); raises _IncompleteError."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        raise _IncompleteError
    kind = buf[pos]
    nxt = eol + 2
    if kind in b"+-:":
        return nxt
    count = int(buf[pos + 1 : eol])
    if kind == 36:  # $
        if count < 0:
            return nxt
        if len(buf) < nxt + count + 2:
            raise _IncompleteError
        return nxt + count + 2
    if kind == 42:  # *
        for _ in range(max(count, 0)):
            nxt = _skip(buf, nxt)
        return nxt
    raise ValueError(f"not RESP2: {bytes(buf[pos : pos + 40])!r}")


def _parse(buf: bytearray, pos: int) -> tuple[Value, int]:
    eol = buf.find(b"\r\n", pos)
    kind = buf[pos]
    line = bytes(buf[pos + 1 : eol])
    nxt = eol + 2
    if kind == 43:
        return Status(line), nxt
    if kind == 45:
        return Err(line), nxt
    if kind == 58:
        return int(line), nxt
    count = int(line)
    if kind == 36:
        if count < 0:
            return NULL_BULK, nxt
        return bytes(buf[nxt : nxt + count]), nxt + count + 2
    if count < 0:
        return NULL_ARRAY, nxt
    items: list[Value] = []
    for _ in range(count):
        item, nxt = _parse(buf, nxt)
        items.append(item)
    return items, nxt


def encode(args: Sequence[bytes]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class RespConn:
    """A raw RESP2 connection: pipelined sends, typed replies, closes noticed."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def send(self, commands: Iterable[Sequence[bytes]]) -> None:
        try:
            self.sock.sendall(b"".join(encode(c) for c in commands))
        except OSError as exc:
            raise PeerClosedError(str(exc)) from exc

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise PeerClosedError(str(exc)) from exc

    def read(self) -> Value:
        while True:
            try:
                end = _skip(self.buf, self.pos)
            except _IncompleteError:
                try:
                    chunk = self.sock.recv(1 << 20)
                except ConnectionResetError as exc:
                    raise PeerClosedError("connection reset") from exc
                if not chunk:
                    raise PeerClosedError("connection closed") from None
                if self.pos > (1 << 20) and self.pos * 2 > len(self.buf):
                    del self.buf[: self.pos]
                    self.pos = 0
                self.buf += chunk
                continue
            value, nxt = _parse(self.buf, self.pos)
            assert nxt == end
            self.pos = end
            return value

    def pipeline(self, commands: Sequence[Sequence[bytes]], piece: int = 1 << 20) -> list[Value]:
        """Send `commands` (in writes of `piece` bytes) and read their replies, reading while
        writing (no deadlock when both directions carry megabytes)."""
        data = memoryview(b"".join(encode(c) for c in commands))
        sock = self.sock
        sent = 0
        try:
            while sent < len(data):
                readable, writable, _ = select.select([sock], [sock], [], 30.0)
                if not readable and not writable:
                    raise PeerClosedError("timed out after 30 s")
                if writable:
                    sent += sock.send(data[sent : sent + piece])
                if readable:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        raise PeerClosedError("connection closed")
                    self.buf += chunk
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise PeerClosedError(str(exc)) from exc
        return [self.read() for _ in commands]

    def call(self, *args: bytes | str | int) -> Value:
        self.send([[_b(a) for a in args]])
        return self.read()

    def closed_now(self, wait: float = 0.5) -> bool:
        """True when the peer has closed the connection (nothing unread is expected)."""
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(30.0)

    def close(self) -> None:
        self.sock.close()


def _b(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def show(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


# -- the command stream ---------------------------------------------------------------------

GROUPS = (
    "strings",
    "keys",
    "hashes",
    "lists",
    "sets",
    "zsets",
    "hyperloglog",
    "geo",
    "bits",
    "multikey",
    "scripting",
    "connection",
    "errors",
)


@dataclass(frozen=True)
class Op:
    """One command of the stream."""

    args: tuple[bytes, ...]
    group: str
    norm: str = "exact"  # see `normalize`
    oracle: str = ""  # "" | "sum" (EXISTS) | "direct" (send whole to `shard`)
    shard: str = ""

    @property
    def name(self) -> str:
        return self.args[0].decode().upper()

    def show(self) -> str:
        parts = [a if len(a) <= 40 else a[:24] + b"...(%d bytes)" % len(a) for a in self.args]
        return show(parts, 400)


SCRIPTS = {
    "get": b"return redis.call('GET', KEYS[1])",
    "set": b"redis.call('SET', KEYS[1], ARGV[1]); return redis.call('STRLEN', KEYS[1])",
    "count": b"local n = 0 for _, k in ipairs(KEYS) do n = n + redis.call('EXISTS', k) end "
    b"return n",
    "types": b"return {1, 'two', 3.99, false, true, {ARGV[1], {}}, redis.status_reply('FINE')}",
    "error": b"return redis.error_reply('boom')",
    "incr": b"return redis.call('INCRBY', KEYS[1], ARGV[1])",
    "del": b"return redis.call('DEL', unpack(KEYS))",
    "pcall": b"return redis.pcall('LPUSH', KEYS[1], 'x')",
}
SHAS = {name: hashlib.sha1(body).hexdigest().encode() for name, body in SCRIPTS.items()}

FAMILIES = ("str", "list", "hash", "set", "zset", "hll", "geo")

#: keys that are not random: every byte value, non-ASCII UTF-8, hash tags (well formed and
#: not), empty-ish, long (16000 bytes stays under nutcracker's 16336-byte key limit).
_SPECIAL_KEYS: list[bytes] = [
    bytes(range(256)),
    b"",
    b" ",
    b"\x00",
    b"\xff",
    b"\r\n",
    b"0",
    b"-1",
    b"nil",
    "é".encode(),
    "日本語キー".encode(),
    "ключ".encode(),
    "🔑".encode(),
    "Ünïcödé:{tag}".encode(),
    b"{user1}:a",
    b"{user1}:b",
    b"{user1}:c",
    "{é}:x".encode(),
    "{é}:y".encode(),
    b"{\xff\x00}:1",
    b"{\xff\x00}:2",
    b"{}",
    b"{}a",
    b"a{b}c{d}",
    b"{{x}}",
    b"}x{",
    b"x{",
    b"{tag}" + b"x" * 2000,
    b"L" * 1000,
    "é".encode() * 500,
    b"k" * 16000,
]
MEMBERS: list[bytes] = [
    b"a",
    b"b",
    b"c",
    b"",
    b"1",
    b"2",
    b"10",
    b"-3",
    b"3.5",
    "é".encode(),
    "日本".encode(),
    "ключ".encode(),
    b"\x00",
    b"\xff\xfe",
    b"m\r\nx",
    b" ",
    b"STORE",
    b"store",
    b"LIMIT",
    b"WITHSCORES",
    b"BLOCK",
]
UNITS = (b"m", b"km", b"mi", b"ft")


def _i(value: int | float | str) -> bytes:
    return str(value).encode()


@dataclass
class StreamGen:
    """A seeded command stream; `shard_of(key)` is the pool's placement (shard name)."""

    seed: int
    shard_of: Callable[[bytes], str]
    payloads: Sequence[bytes]  # DUMP payloads for RESTORE
    now: int  # unix seconds when the stream was made (EXPIREAT/EXAT stay in the future)
    big_budget: int = 12 << 20
    rng: random.Random = field(init=False)
    keys: dict[str, list[bytes]] = field(init=False)
    every: list[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        rng = self.rng
        specials = list(_SPECIAL_KEYS)
        order = list(range(256))
        rng.shuffle(order)
        specials += [bytes(order[i : i + 32]) for i in range(0, 256, 32)]  # all 256 again
        rng.shuffle(specials)
        self.keys = {fam: [] for fam in FAMILIES}
        for i, key in enumerate(specials):
            self.keys[FAMILIES[i % len(FAMILIES)]].append(key)
        for fam in FAMILIES:
            self.keys[fam] += [b"{%s}:%d" % (fam.encode(), i) for i in range(3)]
            self.keys[fam] += [rng.randbytes(rng.randint(1, 24)) for _ in range(4)]
            self.keys[fam] += [b"%s:%d" % (fam.encode(), i) for i in range(4)]
        self.every = [k for fam in FAMILIES for k in self.keys[fam]]

    # -- random pieces ------------------------------------------------------------------------
    def key(self, fam: str) -> bytes:
        if self.rng.random() < 0.06:
            return self.rng.choice(self.every)
        return self.rng.choice(self.keys[fam])

    def same(self, key: bytes, fam: str, count: int) -> list[bytes]:
        """`count` keys on `key`'s shard, mostly of family `fam` (repeats allowed)."""
        shard = self.shard_of(key)
        pool = [key, *(k for k in self.keys[fam] if self.shard_of(k) == shard)]
        if self.rng.random() < 0.1:
            pool += [k for k in self.every if self.shard_of(k) == shard]
        return [self.rng.choice(pool) for _ in range(count)]

    def member(self) -> bytes:
        return self.rng.choice(MEMBERS)

    def members(self, low: int = 1, high: int = 4) -> list[bytes]:
        return [self.member() for _ in range(self.rng.randint(low, high))]

    def value(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.012 and self.big_budget > 0:
            size = rng.choice((65536, 300_000, 1 << 20))
            self.big_budget -= size
            return rng.randbytes(size)
        if roll < 0.3:
            return self.member()
        if roll < 0.5:
            return _i(rng.randint(-100, 100))
        if roll < 0.6:
            return b"%d.5" % rng.randint(-50, 50)
        if roll < 0.75:
            return rng.randbytes(rng.randint(0, 64))
        if roll < 0.85:
            return "".join(rng.choice("aé日ю🔑z ") for _ in range(rng.randint(1, 20))).encode()
        return b"v" * rng.randint(65, 400)

    def score(self) -> bytes:
        return self.rng.choice((b"-inf", b"+inf", b"0", b"1", b"1.5", b"-2", b"100", b"3e2", b"7"))

    def offset(self) -> bytes:
        return _i(self.rng.choice((0, 1, 5, 63, 100, self.rng.randint(0, 20000))))

    def rng_range(self) -> list[bytes]:
        return [_i(self.rng.randint(-10, 10)), _i(self.rng.randint(-10, 10))]

    def secs(self) -> bytes:
        return _i(self.rng.choice((-1, 0, 1000, 5000, 100000)))

    # -- commands -----------------------------------------------------------------------------
    def op(self, group: str, *args: bytes, norm: str = "exact") -> Op:
        return Op(tuple(args), group, norm)

    def builders(self) -> list[Callable[[], list[Op]]]:
        return [getattr(self, name) for name in sorted(dir(self)) if name.startswith("c_")]

    def ops(self, count: int, required: Iterable[str] = ()) -> list[Op]:
        """Every builder a few times (in random order), then random builders up to `count`
        ops and until every command of `required` is in."""
        builders = self.builders()
        tour = builders * 3
        self.rng.shuffle(tour)
        out: list[Op] = []
        for build in tour:
            out += build()
        missing = set(required) - {op.name for op in out}
        attempts = 0
        while len(out) < count or missing:
            ops = self.rng.choice(builders)()
            out += ops
            missing -= {op.name for op in ops}
            attempts += 1
            if attempts > 50 * count:
                raise AssertionError(f"the stream never makes {sorted(missing)}")
        return out

    # strings
    def c_get(self) -> list[Op]:
        return [self.op("strings", b"GET", self.key("str"))]

    def c_set(self) -> list[Op]:
        rng = self.rng
        args = [b"SET", self.key("str"), self.value()]
        expiry = rng.choice(
            (
                [],
                [],
                [b"EX", self.secs()],
                [b"PX", _i(rng.choice((0, 10_000_000)))],
                [b"EXAT", _i(self.now + 100000)],
                [b"PXAT", _i((self.now + 100000) * 1000)],
                [b"KEEPTTL"],
            )
        )
        args += expiry + rng.choice(([], [], [b"NX"], [b"XX"])) + rng.choice(([], [b"GET"]))
        return [self.op("strings", *args)]

    def c_setnx(self) -> list[Op]:
        return [self.op("strings", b"SETNX", self.key("str"), self.value())]

    def c_setex(self) -> list[Op]:
        return [self.op("strings", b"SETEX", self.key("str"), self.secs(), self.value())]

    def c_psetex(self) -> list[Op]:
        ms = _i(self.rng.choice((0, 10_000_000, 99_000_000)))
        return [self.op("strings", b"PSETEX", self.key("str"), ms, self.value())]

    def c_getset(self) -> list[Op]:
        return [self.op("strings", b"GETSET", self.key("str"), self.value())]

    def c_getdel(self) -> list[Op]:
        return [self.op("strings", b"GETDEL", self.key("str"))]

    def c_getex(self) -> list[Op]:
        option = self.rng.choice(
            ([], [b"EX", self.secs()], [b"PXAT", _i((self.now + 50000) * 1000)], [b"PERSIST"])
        )
        return [self.op("strings", b"GETEX", self.key("str"), *option)]

    def c_append(self) -> list[Op]:
        return [self.op("strings", b"APPEND", self.key("str"), self.value())]

    def c_strlen(self) -> list[Op]:
        return [self.op("strings", b"STRLEN", self.key("str"))]

    def c_getrange(self) -> list[Op]:
        return [self.op("strings", b"GETRANGE", self.key("str"), *self.rng_range())]

    def c_setrange(self) -> list[Op]:
        return [self.op("strings", b"SETRANGE", self.key("str"), self.offset(), self.value())]

    def c_incr(self) -> list[Op]:
        name = self.rng.choice((b"INCR", b"DECR"))
        return [self.op("strings", name, self.key("str"))]

    def c_incrby(self) -> list[Op]:
        name = self.rng.choice((b"INCRBY", b"DECRBY"))
        amount = self.rng.choice((1, -7, 1000, 2**62, -(2**63), 0))
        return [self.op("strings", name, self.key("str"), _i(amount))]

    def c_incrbyfloat(self) -> list[Op]:
        amount = self.rng.choice((b"1.5", b"-0.25", b"1e3", b"3", b"abc"))
        return [self.op("strings", b"INCRBYFLOAT", self.key("str"), amount)]

    def c_mget(self) -> list[Op]:
        keys = [self.key("str") for _ in range(self.rng.randint(1, 12))]
        return [self.op("multikey", b"MGET", *keys)]

    def c_mset(self) -> list[Op]:
        args: list[bytes] = [b"MSET"]
        for _ in range(self.rng.randint(1, 8)):
            args += [self.key("str"), self.value()]
        return [self.op("multikey", *args)]

    def c_big(self) -> list[Op]:
        """A value of 100 KB to 1 MB in a string, a list or a hash, and reads of it."""
        rng = self.rng
        size = rng.choice((100_000, 500_000, 1 << 20)) if self.big_budget > 0 else 1000
        if self.big_budget == StreamGen.big_budget:
            size = 1 << 20  # the first is 1 MB
        self.big_budget -= size
        value = rng.randbytes(size)
        form = rng.randint(0, 2)
        if form == 0:
            key = self.key("str")
            other = self.key("str")
            return [
                self.op("strings", b"SET", key, value),
                self.op("strings", b"GET", key),
                self.op("strings", b"APPEND", key, self.value()),
                self.op("strings", b"GETRANGE", key, b"-20", b"-1"),
                self.op("multikey", b"MGET", other, key, other),
            ]
        if form == 1:
            key = self.key("list")
            return [
                self.op("lists", b"RPUSH", key, value, self.value()),
                self.op("lists", b"LRANGE", key, b"-2", b"-1"),
            ]
        key = self.key("hash")
        return [
            self.op("hashes", b"HSET", key, b"big", value),
            self.op("hashes", b"HGET", key, b"big"),
        ]

    # bits (one key)
    def c_getbit(self) -> list[Op]:
        return [self.op("bits", b"GETBIT", self.key("str"), self.offset())]

    def c_setbit(self) -> list[Op]:
        bit = self.rng.choice((b"0", b"1", b"1", b"2"))
        return [self.op("bits", b"SETBIT", self.key("str"), self.offset(), bit)]

    def c_bitcount(self) -> list[Op]:
        extra = self.rng.choice(([], self.rng_range(), [*self.rng_range(), b"BIT"]))
        return [self.op("bits", b"BITCOUNT", self.key("str"), *extra)]

    def c_bitpos(self) -> list[Op]:
        bit = self.rng.choice((b"0", b"1"))
        extra = self.rng.choice(([], [b"2"], [*self.rng_range(), b"BYTE"], [b"0", b"-1", b"BIT"]))
        return [self.op("bits", b"BITPOS", self.key("str"), bit, *extra)]

    def c_bitfield(self) -> list[Op]:
        rng = self.rng
        args: list[bytes] = [b"BITFIELD", self.key("str")]
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice((b"u8", b"i8", b"u4", b"i16", b"i64", b"u63"))
            choice = rng.randint(0, 3)
            if choice == 0:
                args += [b"GET", kind, self.offset()]
            elif choice == 1:
                args += [b"SET", kind, rng.choice((b"0", b"#1")), _i(rng.randint(-300, 300))]
            elif choice == 2:
                args += [b"INCRBY", kind, self.offset(), _i(rng.randint(-200, 200))]
            else:
                args += [b"OVERFLOW", rng.choice((b"WRAP", b"SAT", b"FAIL"))]
        return [self.op("bits", *args)]

    # keys / TTL
    def c_del(self) -> list[Op]:
        name = self.rng.choice((b"DEL", b"UNLINK"))
        keys = [self.rng.choice(self.every) for _ in range(self.rng.randint(1, 6))]
        return [self.op("multikey", name, *keys)]

    def c_touch(self) -> list[Op]:
        keys = [self.rng.choice(self.every) for _ in range(self.rng.randint(1, 8))]
        return [self.op("multikey", b"TOUCH", *keys)]

    def c_exists(self) -> list[Op]:
        rng = self.rng
        first = rng.choice(self.every)
        if rng.random() < 0.4:
            fam = rng.choice(FAMILIES)
            same = self.same(first, fam, rng.randint(0, 4))
            return [self.op("multikey", b"EXISTS", first, *same)]
        keys = [first, *(rng.choice(self.every) for _ in range(rng.randint(1, 10)))]
        one = len({self.shard_of(k) for k in keys}) == 1
        return [Op((b"EXISTS", *keys), "multikey", oracle="" if one else "sum")]

    def c_expire(self) -> list[Op]:
        rng = self.rng
        key = rng.choice(self.every)
        name, when = rng.choice(
            (
                (b"EXPIRE", self.secs()),
                (b"PEXPIRE", _i(rng.choice((-5, 0, 9_000_000)))),
                (b"EXPIREAT", _i(rng.choice((1, self.now + 90000)))),
                (b"PEXPIREAT", _i(rng.choice((1, (self.now + 80000) * 1000)))),
            )
        )
        return [self.op("keys", name, key, when)]

    def c_persist(self) -> list[Op]:
        return [self.op("keys", b"PERSIST", self.rng.choice(self.every))]

    def c_ttl(self) -> list[Op]:
        key = self.rng.choice(self.every)
        return [
            self.op("keys", b"TTL", key, norm="ttl"),
            self.op("keys", b"PTTL", key, norm="pttl"),
        ]

    def c_type(self) -> list[Op]:
        return [self.op("keys", b"TYPE", self.rng.choice(self.every))]

    def c_dump(self) -> list[Op]:
        return [self.op("keys", b"DUMP", self.rng.choice(self.every), norm="dump")]

    def c_restore(self) -> list[Op]:
        rng = self.rng
        args = [b"RESTORE", rng.choice(self.every), b"0", rng.choice(self.payloads)]
        args += rng.choice(([], [b"REPLACE"], [b"REPLACE"]))
        if rng.random() < 0.3:
            args[2] = _i((self.now + 70000) * 1000)
            args.append(b"ABSTTL")
        return [self.op("keys", *args)]

    def c_sort(self) -> list[Op]:
        rng = self.rng
        fam = rng.choice(("list", "set", "zset"))
        key = self.key(fam)
        args = [b"SORT", key]
        args += rng.choice(([], [b"LIMIT", b"0", b"5"], [b"LIMIT", b"1", b"-1"]))
        args += rng.choice(([], [b"GET", b"#"]))
        args += rng.choice(([], [b"ASC"], [b"DESC"]))
        args += rng.choice(([b"ALPHA"], [b"ALPHA"], []))
        if rng.random() < 0.3:
            args += [b"STORE", self.same(key, "list", 1)[0]]
        return [self.op("keys", *args)]

    def c_copy(self) -> list[Op]:
        fam = self.rng.choice(FAMILIES)
        src = self.key(fam)
        extra = self.rng.choice(([], [b"REPLACE"]))
        return [self.op("keys", b"COPY", src, self.same(src, fam, 1)[0], *extra)]

    # hashes
    def c_hset(self) -> list[Op]:
        name = self.rng.choice((b"HSET", b"HMSET"))
        args = [name, self.key("hash")]
        for _ in range(self.rng.randint(1, 4)):
            args += [self.member(), self.value()]
        return [self.op("hashes", *args)]

    def c_hsetnx(self) -> list[Op]:
        return [self.op("hashes", b"HSETNX", self.key("hash"), self.member(), self.value())]

    def c_hget(self) -> list[Op]:
        key = self.key("hash")
        return [
            self.op("hashes", b"HGET", key, self.member()),
            self.op("hashes", b"HMGET", key, *self.members()),
            self.op("hashes", b"HEXISTS", key, self.member()),
            self.op("hashes", b"HSTRLEN", key, self.member()),
        ]

    def c_hdel(self) -> list[Op]:
        return [self.op("hashes", b"HDEL", self.key("hash"), *self.members())]

    def c_hgetall(self) -> list[Op]:
        key = self.key("hash")
        return [
            self.op("hashes", b"HGETALL", key, norm="pairs"),
            self.op("hashes", b"HKEYS", key, norm="set"),
            self.op("hashes", b"HVALS", key, norm="set"),
            self.op("hashes", b"HLEN", key),
        ]

    def c_hincrby(self) -> list[Op]:
        amount = _i(self.rng.choice((1, -3, 2**63 - 1)))
        return [self.op("hashes", b"HINCRBY", self.key("hash"), self.member(), amount)]

    def c_hincrbyfloat(self) -> list[Op]:
        amount = self.rng.choice((b"0.5", b"-2.25", b"1e2"))
        return [self.op("hashes", b"HINCRBYFLOAT", self.key("hash"), self.member(), amount)]

    def c_hrandfield(self) -> list[Op]:
        key = self.key("hash")
        return [
            self.op("hashes", b"HRANDFIELD", key, norm="kind"),
            self.op("hashes", b"HRANDFIELD", key, b"1000", norm="set"),
            self.op("hashes", b"HRANDFIELD", key, b"1000", b"WITHVALUES", norm="pairs"),
        ]

    def c_hscan(self) -> list[Op]:
        extra = self.rng.choice(([], [b"MATCH", b"*"], [b"MATCH", b"[a-c]*"]))
        args = [b"HSCAN", self.key("hash"), b"0", *extra, b"COUNT", b"1000"]
        return [self.op("hashes", *args, norm="scan_pairs")]

    # lists
    def c_push(self) -> list[Op]:
        name = self.rng.choice((b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"))
        values = [self.value() for _ in range(self.rng.randint(1, 3))]
        return [self.op("lists", name, self.key("list"), *values)]

    def c_pop(self) -> list[Op]:
        name = self.rng.choice((b"LPOP", b"RPOP"))
        count = self.rng.choice(([], [b"1"], [b"3"], [b"0"]))
        return [self.op("lists", name, self.key("list"), *count)]

    def c_lindex(self) -> list[Op]:
        key = self.key("list")
        return [
            self.op("lists", b"LINDEX", key, _i(self.rng.randint(-4, 4))),
            self.op("lists", b"LLEN", key),
            self.op("lists", b"LRANGE", key, *self.rng_range()),
        ]

    def c_linsert(self) -> list[Op]:
        where = self.rng.choice((b"BEFORE", b"AFTER"))
        args = [b"LINSERT", self.key("list"), where, self.value(), self.value()]
        return [self.op("lists", *args)]

    def c_lpos(self) -> list[Op]:
        rng = self.rng
        extra = rng.choice(
            (
                [],
                [b"RANK", b"-1"],
                [b"COUNT", b"0"],
                [b"RANK", b"2", b"COUNT", b"2"],
                [b"RANK", b"0"],
            )
        )
        extra += rng.choice(([], [b"MAXLEN", b"3"]))
        return [self.op("lists", b"LPOS", self.key("list"), self.value(), *extra)]

    def c_lrem(self) -> list[Op]:
        count = _i(self.rng.randint(-2, 2))
        return [self.op("lists", b"LREM", self.key("list"), count, self.value())]

    def c_lset(self) -> list[Op]:
        index = _i(self.rng.randint(-3, 3))
        return [self.op("lists", b"LSET", self.key("list"), index, self.value())]

    def c_ltrim(self) -> list[Op]:
        return [self.op("lists", b"LTRIM", self.key("list"), *self.rng_range())]

    def c_rpoplpush(self) -> list[Op]:
        src = self.key("list")
        dst = self.same(src, "list", 1)[0]
        if self.rng.random() < 0.5:
            return [self.op("lists", b"RPOPLPUSH", src, dst)]
        ends = [self.rng.choice((b"LEFT", b"RIGHT")) for _ in range(2)]
        return [self.op("lists", b"LMOVE", src, dst, *ends)]

    # sets
    def c_sadd(self) -> list[Op]:
        name = self.rng.choice((b"SADD", b"SADD", b"SREM"))
        return [self.op("sets", name, self.key("set"), *self.members())]

    def c_sread(self) -> list[Op]:
        key = self.key("set")
        return [
            self.op("sets", b"SCARD", key),
            self.op("sets", b"SISMEMBER", key, self.member()),
            self.op("sets", b"SMISMEMBER", key, *self.members()),
            self.op("sets", b"SMEMBERS", key, norm="set"),
        ]

    def c_srandmember(self) -> list[Op]:
        key = self.key("set")
        return [
            self.op("sets", b"SRANDMEMBER", key, norm="kind"),
            self.op("sets", b"SRANDMEMBER", key, b"1000", norm="set"),
        ]

    def c_spop(self) -> list[Op]:
        key = self.key("set")
        if self.rng.random() < 0.5:  # SPOP without a count is random unless the set has 1 member
            return [
                self.op("sets", b"DEL", key),
                self.op("sets", b"SADD", key, self.member()),
                self.op("sets", b"SPOP", key),
            ]
        return [self.op("sets", b"SPOP", key, b"1000", norm="set")]

    def c_sscan(self) -> list[Op]:
        extra = self.rng.choice(([], [b"MATCH", b"*"], [b"MATCH", b"1*"]))
        args = [b"SSCAN", self.key("set"), b"0", *extra, b"COUNT", b"1000"]
        return [self.op("sets", *args, norm="scan")]

    def c_setop(self) -> list[Op]:
        rng = self.rng
        first = self.key("set")
        keys = [first, *self.same(first, "set", rng.randint(0, 3))]
        name = rng.choice((b"SDIFF", b"SINTER", b"SUNION"))
        if rng.random() < 0.5:
            return [self.op("sets", name, *keys, norm="set")]
        dst = self.same(first, "set", 1)[0]
        return [self.op("sets", name + b"STORE", dst, *keys)]

    def c_smove(self) -> list[Op]:
        src = self.key("set")
        return [self.op("sets", b"SMOVE", src, self.same(src, "set", 1)[0], self.member())]

    # sorted sets
    def c_zadd(self) -> list[Op]:
        rng = self.rng
        args = [b"ZADD", self.key("zset")]
        args += rng.choice(([], [], [b"NX"], [b"XX"], [b"GT"], [b"LT"], [b"NX", b"GT"]))
        args += rng.choice(([], [b"CH"]))
        if rng.random() < 0.15:
            args += [b"INCR", self.score(), self.member()]
        else:
            for _ in range(rng.randint(1, 4)):
                args += [self.score(), self.member()]
        return [self.op("zsets", *args)]

    def c_zread(self) -> list[Op]:
        key = self.key("zset")
        return [
            self.op("zsets", b"ZCARD", key),
            self.op("zsets", b"ZSCORE", key, self.member()),
            self.op("zsets", b"ZMSCORE", key, *self.members()),
            self.op("zsets", self.rng.choice((b"ZRANK", b"ZREVRANK")), key, self.member()),
            self.op("zsets", b"ZCOUNT", key, self.score(), self.score()),
        ]

    def lex_range(self) -> list[bytes]:
        ends = (b"-", b"+", b"[a", b"(b", b"[1", b"(\xff", b"[")
        return [self.rng.choice(ends), self.rng.choice(ends)]

    def c_zincrby(self) -> list[Op]:
        return [self.op("zsets", b"ZINCRBY", self.key("zset"), self.score(), self.member())]

    def c_zrem(self) -> list[Op]:
        return [self.op("zsets", b"ZREM", self.key("zset"), *self.members())]

    def c_zpop(self) -> list[Op]:
        name = self.rng.choice((b"ZPOPMIN", b"ZPOPMAX"))
        count = self.rng.choice(([], [b"2"], [b"0"]))
        return [self.op("zsets", name, self.key("zset"), *count)]

    def c_zrandmember(self) -> list[Op]:
        key = self.key("zset")
        return [
            self.op("zsets", b"ZRANDMEMBER", key, norm="kind"),
            self.op("zsets", b"ZRANDMEMBER", key, b"1000", b"WITHSCORES", norm="pairs"),
        ]

    def c_zrange(self) -> list[Op]:
        rng = self.rng
        key = self.key("zset")
        form = rng.randint(0, 5)
        scores = rng.choice(([], [b"WITHSCORES"]))
        limit = rng.choice(([], [b"LIMIT", b"1", b"2"]))
        if form == 0:
            return [self.op("zsets", b"ZRANGE", key, *self.rng_range(), *scores)]
        if form == 1:
            lo, hi = self.score(), self.score()
            args = [b"ZRANGE", key, lo, hi, b"BYSCORE", *rng.choice(([], [b"REV"])), *limit]
            return [self.op("zsets", *args, *scores)]
        if form == 2:
            return [self.op("zsets", b"ZRANGEBYSCORE", key, self.score(), self.score(), *scores)]
        if form == 3:
            return [self.op("zsets", b"ZREVRANGEBYSCORE", key, self.score(), self.score(), *limit)]
        if form == 4:
            return self.c_zlex()
        return [self.op("zsets", b"ZREVRANGE", key, *self.rng_range(), *scores)]

    def c_zremrange(self) -> list[Op]:
        key = self.key("zset")
        form = self.rng.randint(0, 2)
        if form == 0:
            return [self.op("zsets", b"ZREMRANGEBYRANK", key, *self.rng_range())]
        if form == 1:
            return [self.op("zsets", b"ZREMRANGEBYSCORE", key, self.score(), self.score())]
        return self.c_zlex()

    def c_zlex(self) -> list[Op]:
        """Lex ranges are defined only when every score is equal (with mixed scores the reply
        depends on a skiplist's random levels): a fresh all-zero zset, then lex commands."""
        rng = self.rng
        key = self.key("zset")
        ops = [self.op("zsets", b"DEL", key)]
        members = [x for m in self.members(1, 8) for x in (b"0", m)]
        ops.append(self.op("zsets", b"ZADD", key, *members))
        for _ in range(rng.randint(1, 3)):
            name = rng.choice((b"ZLEXCOUNT", b"ZRANGEBYLEX", b"ZREVRANGEBYLEX", b"ZREMRANGEBYLEX"))
            limit = rng.choice(([], [b"LIMIT", b"1", b"2"])) if b"RANGEBY" in name else []
            if name.startswith(b"ZREM"):
                limit = []
            ops.append(self.op("zsets", name, key, *self.lex_range(), *limit))
        return ops

    def c_zscan(self) -> list[Op]:
        args = [b"ZSCAN", self.key("zset"), b"0", b"COUNT", b"1000"]
        return [self.op("zsets", *args, norm="scan_pairs")]

    def c_zrangestore(self) -> list[Op]:
        src = self.key("zset")
        dst = self.same(src, "zset", 1)[0]
        return [self.op("zsets", b"ZRANGESTORE", dst, src, *self.rng_range())]

    def c_zstore(self) -> list[Op]:
        rng = self.rng
        dst = self.key("zset")
        keys = self.same(dst, "zset", rng.randint(1, 3))
        name = rng.choice((b"ZUNIONSTORE", b"ZINTERSTORE", b"ZDIFFSTORE"))
        args = [name, dst, _i(len(keys)), *keys]
        if name != b"ZDIFFSTORE":
            if rng.random() < 0.4:
                args += [b"WEIGHTS", *(_i(rng.randint(-2, 3)) for _ in keys)]
            args += rng.choice(([], [b"AGGREGATE", b"MIN"], [b"AGGREGATE", b"MAX"]))
        return [self.op("zsets", *args)]

    def c_zsetop(self) -> list[Op]:
        """ZUNION/ZINTER/ZDIFF: nutcracker routes them by the numkeys argument: oracle."""
        rng = self.rng
        first = self.key("zset")
        keys = [first, *self.same(first, "zset", rng.randint(0, 2))]
        name = rng.choice((b"ZUNION", b"ZINTER", b"ZDIFF"))
        args = (name, _i(len(keys)), *keys, *rng.choice(([], [b"WITHSCORES"])))
        return [Op(args, "zsets", oracle="direct", shard=self.shard_of(first))]

    # HyperLogLog
    def c_pfadd(self) -> list[Op]:
        return [self.op("hyperloglog", b"PFADD", self.key("hll"), *self.members(0, 5))]

    def c_pfcount(self) -> list[Op]:
        first = self.key("hll")
        keys = [first, *self.same(first, "hll", self.rng.randint(0, 2))]
        return [self.op("hyperloglog", b"PFCOUNT", *keys)]

    def c_pfmerge(self) -> list[Op]:
        dst = self.key("hll")
        keys = self.same(dst, "hll", self.rng.randint(0, 3))
        return [self.op("hyperloglog", b"PFMERGE", dst, *keys)]

    # geo
    def lonlat(self) -> list[bytes]:
        rng = self.rng
        if rng.random() < 0.05:
            return [b"200", b"91"]  # out of range: an error
        return [b"%.5f" % rng.uniform(13, 16), b"%.5f" % rng.uniform(37, 39)]

    def c_geoadd(self) -> list[Op]:
        rng = self.rng
        args = [b"GEOADD", self.key("geo"), *rng.choice(([], [b"NX"], [b"XX"], [b"CH"]))]
        for _ in range(rng.randint(1, 3)):
            args += [*self.lonlat(), self.member()]
        return [self.op("geo", *args)]

    def c_georead(self) -> list[Op]:
        key = self.key("geo")
        unit = self.rng.choice(((), (b"km",), (b"mi",)))
        return [
            self.op("geo", b"GEODIST", key, self.member(), self.member(), *unit),
            self.op("geo", b"GEOHASH", key, *self.members()),
            self.op("geo", b"GEOPOS", key, *self.members()),
        ]

    def radius_opts(self, key: bytes) -> list[bytes]:
        rng = self.rng
        opts = rng.choice(([], [b"WITHDIST"], [b"WITHCOORD", b"WITHHASH"], [b"WITHDIST"]))
        opts += rng.choice(([b"ASC"], [b"DESC"], [b"COUNT", b"2", b"ASC"]))
        if rng.random() < 0.3:  # with WITH* options Redis rejects STORE: an error both give
            opts += [rng.choice((b"STORE", b"STOREDIST")), self.same(key, "geo", 1)[0]]
        return opts

    def c_georadius(self) -> list[Op]:
        rng = self.rng
        key = self.key("geo")
        radius = _i(rng.choice((10, 100, 300)))
        unit = rng.choice(UNITS[:2])
        if rng.random() < 0.5:
            args = [b"GEORADIUS", key, *self.lonlat(), radius, unit]
        else:
            args = [b"GEORADIUSBYMEMBER", key, self.member(), radius, unit]
        return [self.op("geo", *args, *self.radius_opts(key))]

    def c_geosearch(self) -> list[Op]:
        rng = self.rng
        key = self.key("geo")
        origin = rng.choice(([b"FROMLONLAT", *self.lonlat()], [b"FROMMEMBER", self.member()]))
        shape = rng.choice(([b"BYRADIUS", b"200", b"km"], [b"BYBOX", b"300", b"200", b"km"]))
        order = rng.choice(([b"ASC"], [b"DESC"], [b"ASC", b"COUNT", b"1", b"ANY"]))
        if rng.random() < 0.5:
            extra = rng.choice(([], [b"WITHDIST"], [b"WITHCOORD"]))
            return [self.op("geo", b"GEOSEARCH", key, *origin, *shape, *order, *extra)]
        dst = self.same(key, "geo", 1)[0]
        extra = rng.choice(([], [b"STOREDIST"]))
        return [self.op("geo", b"GEOSEARCHSTORE", dst, key, *origin, *shape, *order, *extra)]

    # scripting
    def c_eval(self) -> list[Op]:
        rng = self.rng
        name = rng.choice(sorted(SCRIPTS))
        fam = {"get": "str", "set": "str", "incr": "str", "pcall": "list"}.get(name, "str")
        first = self.key(fam)
        keys = [first, *self.same(first, fam, rng.randint(0, 2))]
        argv = [self.value() if name == "set" else _i(rng.randint(1, 9))]
        if rng.random() < 0.5:
            return [self.op("scripting", b"EVAL", SCRIPTS[name], _i(len(keys)), *keys, *argv)]
        return [self.op("scripting", b"EVALSHA", SHAS[name], _i(len(keys)), *keys, *argv)]

    # connection, errors
    def c_ping(self) -> list[Op]:
        return [self.op("connection", b"PING")]

    def c_wrong(self) -> list[Op]:
        """Requests nutcracker forwards and Redis rejects: both must give Redis's error."""
        rng = self.rng
        key = rng.choice(self.every)
        args = rng.choice(
            (
                [b"SET", key],
                [b"HSET", key, b"f"],
                [b"HMSET", key, b"f"],
                [b"ZADD", key, b"1"],
                [b"SADD", key],
                [b"LPUSH", key],
                [b"HDEL", key],
                [b"HMGET", key],
                [b"GEOADD", key, b"1", b"2"],
                [b"ZRANGE", key, b"0"],
                [b"SINTERSTORE", key],
                [b"SET", key, b"v", b"EX"],
                [b"SET", key, b"v", b"EX", b"ten"],
                [b"SET", key, b"v", b"NX", b"XX"],
                [b"LPOS", key, b"a", b"RANK", b"0"],
                [b"ZADD", key, b"nan", b"m"],
                [b"BITFIELD", key, b"GET", b"u99", b"0"],
                [b"SORT", key, b"LIMIT", b"x", b"1"],
                [b"RESTORE", key, b"0", b"not a payload"],
                [b"GETEX", key, b"EX", b"-1"],
            )
        )
        return [self.op("errors", *args)]


def count_by(ops: Iterable[Op]) -> tuple[Counter[str], Counter[str]]:
    """(ops per group, ops per command)."""
    groups: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for op in ops:
        groups[op.group] += 1
        names[op.name] += 1
    return groups, names


# -- comparison -----------------------------------------------------------------------------


def _sort_key(value: Value) -> bytes:
    return repr(value).encode()


def normalize(norm: str, value: Value) -> object:
    """A form of `value` that two correct runs of the stream agree on."""
    if norm == "exact" or isinstance(value, (Err, Null)):
        return value
    if norm in ("ttl", "pttl") and isinstance(value, int):
        if value < 0:
            return value
        step = 120 if norm == "ttl" else 120_000  # the two runs are seconds apart
        return ("ttl>=0", value // step)
    if norm == "set" and isinstance(value, list):
        return sorted(value, key=_sort_key)
    if norm == "pairs" and isinstance(value, list):
        pairs = [(value[i], value[i + 1]) for i in range(0, len(value) - 1, 2)]
        return sorted(pairs, key=repr)
    if norm in ("scan", "scan_pairs") and isinstance(value, list) and len(value) == 2:
        cursor, items = value
        if isinstance(items, list):
            return [cursor, normalize("pairs" if norm == "scan_pairs" else "set", items)]
    if norm == "kind":
        return type(value).__name__
    return value


def ttl_close(a: Value, b: Value, norm: str) -> bool:
    """TTL/PTTL replies of the two runs (taken seconds apart) agree."""
    if isinstance(a, int) and isinstance(b, int) and a >= 0 and b >= 0:
        tolerance = 120 if norm == "ttl" else 120_000
        return abs(a - b) <= tolerance
    return a == b


# -- keyspace -------------------------------------------------------------------------------

Canon: TypeAlias = tuple[str, object, int]  # type, canonical value, PTTL


def canonical(client: redis.Redis, key: bytes) -> tuple[str, object]:
    """The type and an order-independent value of `key` (which must exist)."""
    kind = client.type(key).decode()  # type: ignore[union-attr]
    value: object
    if kind == "string":
        value = client.get(key)
    elif kind == "list":
        value = client.lrange(key, 0, -1)
    elif kind == "set":
        value = sorted(client.smembers(key))
    elif kind == "zset":
        value = client.zrange(key, 0, -1, withscores=True)
    elif kind == "hash":
        value = sorted(client.hgetall(key).items())
    elif kind == "stream":  # not DUMP: it holds delivery times
        groups = client.execute_command("XINFO", "GROUPS", key)  # type: ignore[no-untyped-call]
        value = (client.xrange(key), groups)
    else:
        value = client.dump(key)
    return kind, value


def snapshot(client: redis.Redis) -> dict[bytes, Canon]:
    """Every key of one shard: type, canonical value, PTTL."""
    out: dict[bytes, Canon] = {}
    for key in client.scan_iter(count=1000):
        kind, value = canonical(client, key)
        out[key] = (kind, value, client.pttl(key))
    return out


def keyspace_problems(
    nc: dict[str, dict[bytes, Canon]],
    px: dict[str, dict[bytes, Canon]],
    limit: int = 20,
    names: tuple[str, str] = ("nutcracker", "proxy"),
) -> list[str]:
    """Differences between the per-shard keyspaces after two runs (`names`: of the runs)."""
    problems: list[str] = []
    for shard in sorted(set(nc) | set(px)):
        a, b = nc.get(shard, {}), px.get(shard, {})
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                where = names[0] if key in a else names[1]
                problems.append(f"{shard}: key {show(key, 60)} only after the {where} run")
                continue
            (ka, va, ta), (kb, vb, tb) = a[key], b[key]
            if (ka, va) != (kb, vb):
                problems.append(
                    f"{shard}: key {show(key, 60)}: {names[0]} {ka} {show(va)} / {names[1]} "
                    f"{kb} {show(vb)}"
                )
            elif ((ta < 0 or tb < 0) and ta != tb) or abs(ta - tb) > 120_000:
                problems.append(f"{shard}: key {show(key, 60)}: PTTL {ta} / {tb}")
            if len(problems) >= limit:
                return problems
    return problems
