"""What nutcracker 0.5.0 (Debian 12's `0.5.0+dfsg-2` binary) does with each command, as measured.

The integration test `tests/integration/test_proxy_differential.py` checks every set here
against the real binary, and the unit test `tests/unit/test_proxy_commands_doc.py` checks that
`docs/proxy-commands.md` says the same. Source of the first list: the request parser of
twemproxy 0.5.0 (`src/proto/nc_redis.c`); where it and the binary disagree the binary wins
(`MOVE` is parsed there, yet the binary closes the connection on it).
"""

from __future__ import annotations

#: Commands nutcracker parses and serves (forwards, splits or answers). On any other command
#: it closes the client's connection, without a reply and dropping the replies still owed.
_KNOWN = """
    APPEND AUTH BITCOUNT BITFIELD BITPOS COMMAND COPY DECR DECRBY DEL DUMP EVAL EVALSHA EXISTS
    EXPIRE EXPIREAT GEOADD GEODIST GEOHASH GEOPOS GEORADIUS GEORADIUSBYMEMBER GEOSEARCH
    GEOSEARCHSTORE GET GETBIT GETDEL GETEX GETRANGE GETSET HDEL HEXISTS HGET HGETALL HINCRBY
    HINCRBYFLOAT HKEYS HLEN HMGET HMSET HRANDFIELD HSCAN HSET HSETNX HSTRLEN HVALS INCR INCRBY
    INCRBYFLOAT LINDEX LINSERT LLEN LMOVE LOLWUT LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM
    MGET MSET PERSIST PEXPIRE PEXPIREAT PFADD PFCOUNT PFMERGE PING PSETEX PTTL QUIT RESTORE RPOP
    RPOPLPUSH RPUSH RPUSHX SADD SCARD SDIFF SDIFFSTORE SET SETBIT SETEX SETNX SETRANGE SINTER
    SINTERSTORE SISMEMBER SMEMBERS SMISMEMBER SMOVE SORT SPOP SRANDMEMBER SREM SSCAN STRLEN
    SUNION SUNIONSTORE TOUCH TTL TYPE UNLINK ZADD ZCARD ZCOUNT ZDIFF ZDIFFSTORE ZINCRBY ZINTER
    ZINTERSTORE ZLEXCOUNT ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE
    ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE
    ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNION ZUNIONSTORE
"""
KNOWN: frozenset[str] = frozenset(_KNOWN.split())

#: Commands nutcracker splits per shard and merges (all others go whole to one shard).
SPLIT: frozenset[str] = frozenset({"MGET", "MSET", "DEL", "UNLINK", "TOUCH"})

#: Where nutcracker gives a wrong answer for keys it can route, and the proxy the right one.
WRONG: dict[str, str] = {
    "EXISTS": "a multi-key EXISTS goes whole to the first key's shard: it counts only the keys "
    "that happen to live there",
    "ZUNION": "routed by its numkeys argument (it hashes the string '2'), not by its keys",
    "ZINTER": "routed by its numkeys argument (it hashes the string '2'), not by its keys",
    "ZDIFF": "routed by its numkeys argument (it hashes the string '2'), not by its keys",
}

#: Known commands that nutcracker answers itself (never a shard), or forwards anywhere.
NO_KEY: dict[str, str] = {
    "PING": "answers +PONG itself; PING with a message closes the connection",
    "QUIT": "closes the connection without the +OK reply",
    "AUTH": "answers itself ('-ERR Client sent AUTH, but no password is set' without redis_auth)",
    "COMMAND": "forwards it to a random shard: Redis's own command table; COMMAND with a "
    "subcommand (COUNT, DOCS, INFO ...) closes the connection",
    "LOLWUT": "forwards it to a random shard",
}

#: Fixed-arity commands in nutcracker's parser that Redis 7 extends with options: nutcracker
#: closes the connection on the longer forms (and on any wrong argument count of them).
FIXED_ARITY: dict[str, str] = {
    "EXPIRE": "EXPIRE key seconds NX|XX|GT|LT",
    "EXPIREAT": "EXPIREAT key timestamp NX|XX|GT|LT",
    "PEXPIRE": "PEXPIRE key ms NX|XX|GT|LT",
    "PEXPIREAT": "PEXPIREAT key ms-timestamp NX|XX|GT|LT",
}

#: Keys this long (bytes) or longer make nutcracker reset the connection (a key must fit in
#: one 16 KiB mbuf: `mbuf_data_size()` = 16384 - 48). The proxy has no key-length limit of its
#: own (Redis's 512 MB applies).
MAX_KEY_BYTES = 16336
