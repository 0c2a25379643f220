"""One valid request (or a few) for every keyed command of the proxy's table, with seed data.

`K1`..`K4` stand for four keys on one shard. `SEEDS[family]` is written straight to that shard
before the sample runs, so the sample meets data of its type. Used by the differential test
to send every command to nutcracker, to the proxy and straight to the shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

GET_SCRIPT = "return redis.call('GET', KEYS[1])"
GET_SHA = hashlib.sha1(GET_SCRIPT.encode()).hexdigest()
LIBRARY = (
    "#!lua name=rkdiff\n"
    "redis.register_function('rkget', function(keys, args) return redis.call('GET', keys[1]) end)\n"
    "redis.register_function{function_name='rkget_ro', callback=function(keys, args) "
    "return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n"
)

#: Family -> requests that build its data (keys K1..K4; run on the samples' shard).
SEEDS: dict[str, list[tuple[str, ...]]] = {
    "none": [],
    "str": [("SET", "K1", "10"), ("SET", "K2", "hello world"), ("SET", "K3", "hallo welt")],
    "list": [("RPUSH", "K1", "c", "a", "b"), ("RPUSH", "K2", "x")],
    "nums": [("RPUSH", "K1", "3", "1", "2")],
    "hash": [("HSET", "K1", "f", "1", "g", "2")],
    "set": [("SADD", "K1", "a", "b", "c"), ("SADD", "K2", "b", "c", "d")],
    "zset": [("ZADD", "K1", "1", "a", "2", "b", "3", "c"), ("ZADD", "K2", "1", "b", "5", "d")],
    "hll": [("PFADD", "K1", "a", "b", "c"), ("PFADD", "K2", "c", "d")],
    "geo": [
        ("GEOADD", "K1", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")
    ],
    "stream": [
        ("XADD", "K1", "1-1", "f", "v"),
        ("XADD", "K1", "2-1", "g", "w"),
        ("XGROUP", "CREATE", "K1", "grp", "0"),
        ("XREADGROUP", "GROUP", "grp", "alice", "STREAMS", "K1", ">"),
        ("XADD", "K2", "1-5", "h", "x"),
    ],
    "names": [
        ("XADD", "K1", "1-1", "f", "v"),
        ("XGROUP", "CREATE", "K1", "streams", "0"),
        ("GEOADD", "K2", "13.361389", "38.115556", "store", "15.087269", "37.502669", "Catania"),
        ("SADD", "K4", "b", "a", "c"),
    ],
    "script": [("SCRIPT", "LOAD", GET_SCRIPT), ("SET", "K1", "scripted")],
    "function": [("FUNCTION", "LOAD", "REPLACE", LIBRARY), ("SET", "K1", "called")],
}


@dataclass(frozen=True)
class Sample:
    name: str
    family: str
    args: tuple[str, ...]
    norm: str = "exact"
    proxy_error: str = ""  # set: the proxy answers this error instead of running it


def _s(family: str, *args: str, norm: str = "exact", proxy_error: str = "") -> Sample:
    return Sample(args[0], family, args, norm, proxy_error)


SAMPLES: list[Sample] = [
    # strings
    _s("str", "GET", "K2"),
    _s("str", "SET", "K1", "v", "GET"),
    _s("str", "SETNX", "K4", "v"),
    _s("str", "SETEX", "K4", "100", "v"),
    _s("str", "PSETEX", "K4", "100000", "v"),
    _s("str", "GETSET", "K1", "v"),
    _s("str", "GETDEL", "K2"),
    _s("str", "GETEX", "K2", "PERSIST"),
    _s("str", "APPEND", "K2", "!"),
    _s("str", "STRLEN", "K2"),
    _s("str", "GETRANGE", "K2", "0", "4"),
    _s("str", "SUBSTR", "K2", "0", "4"),
    _s("str", "SETRANGE", "K2", "6", "W"),
    _s("str", "INCR", "K1"),
    _s("str", "DECR", "K1"),
    _s("str", "INCRBY", "K1", "5"),
    _s("str", "DECRBY", "K1", "5"),
    _s("str", "INCRBYFLOAT", "K1", "1.5"),
    _s("str", "GETBIT", "K2", "1"),
    _s("str", "SETBIT", "K2", "7", "1"),
    _s("str", "BITCOUNT", "K2", "0", "-1", "BIT"),
    _s("str", "BITPOS", "K2", "1"),
    _s("str", "BITFIELD", "K2", "GET", "u8", "0", "INCRBY", "u4", "4", "3"),
    _s("str", "BITFIELD_RO", "K2", "GET", "i16", "8"),
    _s("str", "LCS", "K2", "K3"),
    _s("str", "BITOP", "AND", "K4", "K2", "K3"),
    # keys and TTL
    _s("str", "EXPIRE", "K1", "100"),
    _s("str", "EXPIREAT", "K1", "4102444800"),
    _s("str", "PEXPIRE", "K1", "100000"),
    _s("str", "PEXPIREAT", "K1", "4102444800000"),
    _s("str", "EXPIRETIME", "K1"),
    _s("str", "PEXPIRETIME", "K1"),
    _s("str", "PERSIST", "K1"),
    _s("str", "TTL", "K1"),
    _s("str", "PTTL", "K1"),
    _s("list", "TYPE", "K1"),
    _s("list", "DUMP", "K1"),
    _s("none", "RESTORE", "K3", "0", "PAYLOAD"),  # a DUMP payload made by the test
    _s("list", "SORT", "K1", "ALPHA", "STORE", "K3"),
    _s("nums", "SORT_RO", "K1", "DESC"),
    _s("list", "OBJECT", "ENCODING", "K1"),
    _s("str", "MEMORY", "USAGE", "K2", norm="kind"),
    _s("str", "COPY", "K1", "K4"),
    _s("str", "RENAME", "K2", "K4"),
    _s("str", "RENAMENX", "K2", "K3"),
    _s("str", "DEL", "K1", "K2", "K4"),
    _s("str", "UNLINK", "K1", "K4"),
    _s("str", "EXISTS", "K1", "K2", "K4", "K1"),
    _s("str", "TOUCH", "K1", "K2", "K4"),
    _s("str", "MGET", "K1", "K4", "K2"),
    _s("str", "MSET", "K1", "a", "K4", "b"),
    _s("str", "MSETNX", "K3", "a", "K4", "b"),
    # hashes
    _s("hash", "HDEL", "K1", "f", "x"),
    _s("hash", "HEXISTS", "K1", "g"),
    _s("hash", "HGET", "K1", "g"),
    _s("hash", "HGETALL", "K1", norm="pairs"),
    _s("hash", "HINCRBY", "K1", "f", "2"),
    _s("hash", "HINCRBYFLOAT", "K1", "f", "0.5"),
    _s("hash", "HKEYS", "K1", norm="set"),
    _s("hash", "HLEN", "K1"),
    _s("hash", "HMGET", "K1", "f", "x", "g"),
    _s("hash", "HMSET", "K1", "h", "3"),
    _s("hash", "HSET", "K1", "h", "3", "i", "4"),
    _s("hash", "HSETNX", "K1", "f", "9"),
    _s("hash", "HSTRLEN", "K1", "g"),
    _s("hash", "HVALS", "K1", norm="set"),
    _s("hash", "HRANDFIELD", "K1", "10", "WITHVALUES", norm="pairs"),
    _s("hash", "HSCAN", "K1", "0", "COUNT", "100", norm="scan_pairs"),
    # lists
    _s("list", "LINDEX", "K1", "-1"),
    _s("list", "LINSERT", "K1", "BEFORE", "a", "z"),
    _s("list", "LLEN", "K1"),
    _s("list", "LPOP", "K1", "2"),
    _s("list", "LPOS", "K1", "b"),
    _s("list", "LPUSH", "K1", "y", "z"),
    _s("list", "LPUSHX", "K3", "y"),
    _s("list", "LRANGE", "K1", "0", "-1"),
    _s("list", "LREM", "K1", "0", "a"),
    _s("list", "LSET", "K1", "0", "z"),
    _s("list", "LTRIM", "K1", "1", "-1"),
    _s("list", "RPOP", "K1"),
    _s("list", "RPUSH", "K1", "y"),
    _s("list", "RPUSHX", "K2", "y"),
    _s("list", "RPOPLPUSH", "K1", "K2"),
    _s("list", "LMOVE", "K1", "K2", "LEFT", "RIGHT"),
    _s("list", "LMPOP", "2", "K3", "K1", "RIGHT", "COUNT", "2"),
    # sets
    _s("set", "SADD", "K1", "d", "a"),
    _s("set", "SCARD", "K1"),
    _s("set", "SISMEMBER", "K1", "b"),
    _s("set", "SMISMEMBER", "K1", "b", "z"),
    _s("set", "SMEMBERS", "K1", norm="set"),
    _s("set", "SPOP", "K1", "10", norm="set"),
    _s("set", "SRANDMEMBER", "K1", "10", norm="set"),
    _s("set", "SREM", "K1", "a", "z"),
    _s("set", "SSCAN", "K1", "0", "COUNT", "100", norm="scan"),
    _s("set", "SDIFF", "K1", "K2", norm="set"),
    _s("set", "SDIFFSTORE", "K3", "K1", "K2"),
    _s("set", "SINTER", "K1", "K2", norm="set"),
    _s("set", "SINTERSTORE", "K3", "K1", "K2"),
    _s("set", "SUNION", "K1", "K2", norm="set"),
    _s("set", "SUNIONSTORE", "K3", "K1", "K2"),
    _s("set", "SMOVE", "K1", "K2", "a"),
    _s("set", "SINTERCARD", "2", "K1", "K2"),
    # sorted sets
    _s("zset", "ZADD", "K1", "CH", "5", "a", "4", "d"),
    _s("zset", "ZCARD", "K1"),
    _s("zset", "ZCOUNT", "K1", "2", "+inf"),
    _s("zset", "ZINCRBY", "K1", "2.5", "a"),
    _s("zset", "ZLEXCOUNT", "K1", "[b", "+"),
    _s("zset", "ZMSCORE", "K1", "a", "z"),
    _s("zset", "ZPOPMIN", "K1"),
    _s("zset", "ZPOPMAX", "K1", "2"),
    _s("zset", "ZRANDMEMBER", "K1", "10", "WITHSCORES", norm="pairs"),
    _s("zset", "ZRANGE", "K1", "0", "-1", "WITHSCORES"),
    _s("zset", "ZRANGEBYLEX", "K1", "-", "[b"),
    _s("zset", "ZRANGEBYSCORE", "K1", "(1", "+inf"),
    _s("zset", "ZRANK", "K1", "c"),
    _s("zset", "ZREM", "K1", "a", "z"),
    _s("zset", "ZREMRANGEBYLEX", "K1", "[a", "[b"),
    _s("zset", "ZREMRANGEBYRANK", "K1", "0", "0"),
    _s("zset", "ZREMRANGEBYSCORE", "K1", "2", "3"),
    _s("zset", "ZREVRANGE", "K1", "0", "1"),
    _s("zset", "ZREVRANGEBYLEX", "K1", "+", "-"),
    _s("zset", "ZREVRANGEBYSCORE", "K1", "+inf", "-inf", "WITHSCORES"),
    _s("zset", "ZREVRANK", "K1", "c"),
    _s("zset", "ZSCORE", "K1", "b"),
    _s("zset", "ZSCAN", "K1", "0", norm="scan_pairs"),
    _s("zset", "ZRANGESTORE", "K3", "K1", "0", "1"),
    _s("zset", "ZUNIONSTORE", "K3", "2", "K1", "K2", "WEIGHTS", "1", "2"),
    _s("zset", "ZINTERSTORE", "K3", "2", "K1", "K2"),
    _s("zset", "ZDIFFSTORE", "K3", "2", "K1", "K2"),
    _s("zset", "ZUNION", "2", "K1", "K2", "WITHSCORES"),
    _s("zset", "ZINTER", "2", "K1", "K2"),
    _s("zset", "ZDIFF", "2", "K1", "K2"),
    _s("zset", "ZINTERCARD", "2", "K1", "K2"),
    _s("zset", "ZMPOP", "2", "K3", "K1", "MIN"),
    # HyperLogLog
    _s("hll", "PFADD", "K1", "z"),
    _s("hll", "PFCOUNT", "K1", "K2"),
    _s("hll", "PFMERGE", "K3", "K1", "K2"),
    # geo
    _s("geo", "GEOADD", "K1", "2.349014", "48.864716", "Paris"),
    _s("geo", "GEODIST", "K1", "Palermo", "Catania", "km"),
    _s("geo", "GEOHASH", "K1", "Palermo", "nowhere"),
    _s("geo", "GEOPOS", "K1", "Catania"),
    _s("geo", "GEORADIUS", "K1", "15", "37", "200", "km", "WITHDIST", "ASC"),
    _s("geo", "GEORADIUSBYMEMBER", "K1", "Palermo", "200", "km", "ASC", "STORE", "K3"),
    _s("geo", "GEORADIUS_RO", "K1", "15", "37", "200", "km", "WITHCOORD", "ASC"),
    _s("geo", "GEORADIUSBYMEMBER_RO", "K1", "Palermo", "200", "km", "DESC"),
    _s("geo", "GEOSEARCH", "K1", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
    _s("geo", "GEOSEARCHSTORE", "K3", "K1", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km"),
    # scripting
    _s("str", "EVAL", "return {KEYS[1], redis.call('GET', KEYS[1]), ARGV[1]}", "1", "K2", "a"),
    _s("script", "EVALSHA", GET_SHA, "1", "K1"),
    _s("str", "EVAL_RO", "return redis.call('STRLEN', KEYS[1])", "1", "K2"),
    _s("script", "EVALSHA_RO", GET_SHA, "1", "K1"),
    _s("function", "FCALL", "rkget", "1", "K1"),
    _s("function", "FCALL_RO", "rkget_ro", "1", "K1"),
    # streams
    _s("stream", "XADD", "K1", "3-1", "f", "v"),
    _s("stream", "XLEN", "K1"),
    _s("stream", "XRANGE", "K1", "-", "+"),
    _s("stream", "XREVRANGE", "K1", "+", "-", "COUNT", "1"),
    _s("stream", "XDEL", "K1", "1-1"),
    _s("stream", "XTRIM", "K1", "MAXLEN", "1"),
    _s("stream", "XACK", "K1", "grp", "1-1"),
    _s("stream", "XPENDING", "K1", "grp"),
    _s("stream", "XCLAIM", "K1", "grp", "bob", "0", "1-1", "JUSTID"),
    _s("stream", "XAUTOCLAIM", "K1", "grp", "bob", "0", "0-0", "JUSTID"),
    _s("stream", "XSETID", "K1", "9-9"),
    _s("stream", "XGROUP", "CREATE", "K1", "other", "$"),
    _s("stream", "XINFO", "STREAM", "K1"),
    _s("stream", "XREAD", "COUNT", "5", "STREAMS", "K1", "K2", "0", "1-1"),
    _s("stream", "XREADGROUP", "GROUP", "grp", "carol", "COUNT", "1", "STREAMS", "K1", "0"),
]

#: Argument forms of supported commands that nutcracker closes the connection on, and the
#: proxy serves like Redis (checked against the shard).
CLOSING_FORMS: list[Sample] = [
    _s("str", "EXPIRE", "K1", "100", "NX"),
    _s("str", "EXPIREAT", "K1", "4102444800", "GT"),
    _s("str", "PEXPIRE", "K1", "100000", "XX"),
    _s("str", "PEXPIREAT", "K1", "4102444800000", "LT"),
    _s("str", "GET", "K1", "extra"),
    _s("str", "INCRBY", "K1"),
    _s("zset", "ZRANK", "K1", "c", "WITHSCORE"),
    _s("str", "MSET", "K1", "a", "K2"),
    _s("str", "DEL"),
    _s("str", "EVAL", "return 1", "-1", "K1", proxy_error="ERR Number of keys can't be negative"),
    _s("str", "EVAL", "return 1", "0", proxy_error="EVAL with 0 keys cannot be routed to a shard"),
]

#: Odd argument forms. With `proxy_error`: requests the proxy cannot route (a malformed key
#: count, or none) and answers with an error of its own, whose text differs from the shard's
#: (or the shard would run them). Without: arguments that look like options (a member, group
#: or consumer named "store", "block", "streams"), answered as the shard answers them.
ODD_FORMS: list[Sample] = [
    _s("str", "EVAL", "return 1", "5", "K1", proxy_error="ERR Number of keys can't be greater"),
    _s("str", "FCALL", "rkget", "0", proxy_error="FCALL with 0 keys cannot be routed to a shard"),
    _s("zset", "ZUNION", "0", "K1", proxy_error="ERR numkeys should be greater than 0"),
    _s("zset", "ZUNIONSTORE", "K3", "0", "K1", proxy_error="ERR numkeys should be greater than 0"),
    _s("zset", "ZINTERCARD", "0", "K1", proxy_error="ERR numkeys should be greater than 0"),
    _s("zset", "ZINTER", "-1", "K1", proxy_error="ERR Number of keys can't be negative (ZINTER)"),
    _s("zset", "ZUNIONSTORE", "K3", "5", "K1", proxy_error="ERR Number of keys can't be greater"),
    _s(
        "str",
        "OBJECT",
        "ENCODING",
        proxy_error="ERR wrong number of arguments for 'object' command",
    ),
    _s("str", "MEMORY", "USAGE", proxy_error="ERR wrong number of arguments for 'memory' command"),
    _s(
        "stream", "XINFO", "STREAM", proxy_error="ERR wrong number of arguments for 'xinfo' command"
    ),
    _s(
        "stream",
        "XGROUP",
        "CREATE",
        proxy_error="ERR wrong number of arguments for 'xgroup' command",
    ),
    _s("str", "EVALSHA", GET_SHA, "x", "K1"),
    _s("stream", "XREAD", "COUNT", "1", "K1", "0"),
    _s("stream", "XREAD", "STREAMS", "K1", "K2", "0"),
    _s("names", "XREADGROUP", "GROUP", "streams", "block", "COUNT", "1", "STREAMS", "K1", ">"),
    _s("names", "XREADGROUP", "GROUP", "streams", "c", "STREAMS", "K1", "K2", ">"),
    _s("names", "GEORADIUSBYMEMBER", "K2", "store", "200", "km", "ASC"),
    _s("names", "GEORADIUSBYMEMBER", "K2", "store", "200", "km", "STORE", "K3"),
    _s("names", "SORT", "K4", "BY", "store", "GET", "#", "ALPHA"),
    _s("names", "SORT", "K4", "GET", "store", "STORE", "K3"),
]
