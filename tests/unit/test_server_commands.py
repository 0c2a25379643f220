"""Unit: the proxy's command table (classes, arity, key positions, refusals)."""

from __future__ import annotations

import pytest

from redkeeper.server import commands
from redkeeper.server.commands import CommandError, keys_of, lookup

# twemproxy 0.5.0's supported set (notes/redis.md), which the proxy must route
TWEMPROXY = [
    "DEL",
    "EXISTS",
    "EXPIRE",
    "EXPIREAT",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PTTL",
    "TTL",
    "TYPE",
    "SORT",
    "DUMP",
    "RESTORE",
    "APPEND",
    "BITCOUNT",
    "BITPOS",
    "DECR",
    "DECRBY",
    "GET",
    "GETBIT",
    "GETRANGE",
    "GETSET",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "MGET",
    "MSET",
    "PSETEX",
    "SET",
    "SETBIT",
    "SETEX",
    "SETNX",
    "SETRANGE",
    "STRLEN",
    "HDEL",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HSET",
    "HSETNX",
    "HVALS",
    "HSCAN",
    "HSTRLEN",
    "LINDEX",
    "LINSERT",
    "LLEN",
    "LPOP",
    "LPUSH",
    "LPUSHX",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "RPOP",
    "RPOPLPUSH",
    "RPUSH",
    "RPUSHX",
    "SADD",
    "SCARD",
    "SDIFF",
    "SDIFFSTORE",
    "SINTER",
    "SINTERSTORE",
    "SISMEMBER",
    "SMEMBERS",
    "SMOVE",
    "SPOP",
    "SRANDMEMBER",
    "SREM",
    "SUNION",
    "SUNIONSTORE",
    "SSCAN",
    "ZADD",
    "ZCARD",
    "ZCOUNT",
    "ZINCRBY",
    "ZINTERSTORE",
    "ZLEXCOUNT",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZREVRANGE",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCORE",
    "ZUNIONSTORE",
    "ZSCAN",
    "PFADD",
    "PFCOUNT",
    "PFMERGE",
    "EVAL",
    "EVALSHA",
    "GEOADD",
    "GEODIST",
    "GEOHASH",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GEOPOS",
    "UNLINK",
    "TOUCH",
    "PING",
    "QUIT",
    "AUTH",
]
REDIS7_SINGLE_KEY = [
    "GETDEL",
    "GETEX",
    "LPOS",
    "SMISMEMBER",
    "EXPIRETIME",
    "PEXPIRETIME",
    "OBJECT",
    "ZMSCORE",
]


@pytest.mark.parametrize("name", TWEMPROXY + REDIS7_SINGLE_KEY)
def test_supported(name: str) -> None:
    spec = lookup(name.encode())
    assert spec is not None and spec.kind != commands.REFUSED, name


@pytest.mark.parametrize(
    "name", ["KEYS", "SCAN", "BLPOP", "SUBSCRIBE", "WATCH", "SCRIPT", "FLUSHALL", "WAIT"]
)
def test_refused_with_an_alternative(name: str) -> None:
    spec = lookup(name.encode())
    assert spec is not None and spec.kind == commands.REFUSED
    text = commands.refused_error(spec)
    assert text.startswith(f"ERR redkeeper: {name} is not supported through the proxy: ")
    assert len(spec.hint) > 10


@pytest.mark.parametrize("name", ["MULTI", "EXEC", "DISCARD", "UNWATCH"])
def test_transaction_commands(name: str) -> None:
    spec = lookup(name.encode())
    assert spec is not None and spec.kind == commands.TXN and spec.arity == 1


def test_lookup_any_case_and_unknown() -> None:
    assert lookup(b"get") is lookup(b"GET") is lookup(b"GeT")
    assert lookup(b"NOPE") is None
    assert commands.unknown_error(b"nope") == "ERR redkeeper: unknown or unsupported command 'nope'"
    assert commands.arity_error(b"GET") == "ERR wrong number of arguments for 'get' command"


def test_arity() -> None:
    get, set_, mset = lookup(b"GET"), lookup(b"SET"), lookup(b"MSET")
    assert get is not None and set_ is not None and mset is not None
    assert get.arity_ok(2) and not get.arity_ok(1) and not get.arity_ok(3)
    assert set_.arity_ok(3) and set_.arity_ok(6) and not set_.arity_ok(2)
    assert mset.arity_ok(3) and not mset.arity_ok(2)


def _keys(*args: bytes) -> list[bytes]:
    spec = lookup(args[0])
    assert spec is not None
    return keys_of(spec, list(args))


def test_key_positions() -> None:
    assert _keys(b"GET", b"k") == [b"k"]
    assert _keys(b"OBJECT", b"ENCODING", b"k") == [b"k"]
    assert _keys(b"MSET", b"a", b"1", b"b", b"2") == [b"a", b"b"]
    assert _keys(b"MSETNX", b"a", b"1", b"b", b"2") == [b"a", b"b"]
    assert _keys(b"RENAME", b"a", b"b") == [b"a", b"b"]
    assert _keys(b"BITOP", b"AND", b"d", b"a", b"b") == [b"d", b"a", b"b"]
    assert _keys(b"EVAL", b"s", b"2", b"a", b"b", b"arg") == [b"a", b"b"]
    assert _keys(b"ZUNIONSTORE", b"d", b"2", b"a", b"b", b"WEIGHTS", b"1", b"2") == [
        b"d",
        b"a",
        b"b",
    ]
    assert _keys(b"ZUNION", b"2", b"a", b"b") == [b"a", b"b"]
    assert _keys(b"SORT", b"k", b"LIMIT", b"0", b"1", b"STORE", b"d") == [b"k", b"d"]
    assert _keys(b"XREAD", b"COUNT", b"1", b"STREAMS", b"a", b"b", b"0", b"0") == [b"a", b"b"]


def test_key_errors() -> None:
    with pytest.raises(CommandError, match="EVAL with 0 keys cannot be routed"):
        _keys(b"EVAL", b"s", b"0")
    with pytest.raises(CommandError, match="can't be greater"):
        _keys(b"EVAL", b"s", b"5", b"a")
    with pytest.raises(CommandError, match="not an integer"):
        _keys(b"EVALSHA", b"s", b"x", b"a")
    with pytest.raises(CommandError, match="BLOCK is not supported"):
        _keys(b"XREAD", b"BLOCK", b"0", b"STREAMS", b"a", b"0")


def test_every_row_is_consistent() -> None:
    for spec in commands.COMMANDS.values():
        assert spec.name == spec.name.upper()
        if spec.kind == commands.SINGLE:
            assert spec.first >= 1 and abs(spec.arity) > spec.first, spec
