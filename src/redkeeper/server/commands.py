"""The command table of the redkeeper proxy: every command it knows, by class.

Owns, for each command name: its class (how it is routed and split), its arity (Redis's rule:
n > 0 exactly n arguments counting the name, n < 0 at least -n), where its keys are, whether
it only reads (replica reads), and for refused commands the alternative to tell the user.
Adding a command is one line of `_TABLE` (or of `_REFUSED`). Pure: no I/O.

Classes (the `Kind` constants):

* SINGLE: one key at argument `first`; forwarded whole to that key's shard.
* SUM: DEL, UNLINK, EXISTS, TOUCH: split per shard, integer replies summed.
* MGET / MSET: split per shard, merged back in request order (MSET: +OK only if all are).
* SAME: keys at first..last step `step` (last < 0 counts from the end, like Redis) must
  all be on one shard, then the request is forwarded whole.
* EVAL: EVAL-like, numkeys at argument 2, keys after it: same-shard rule, at least one key.
* NUMKEYS: numkeys at argument `first`; the arguments between the name and numkeys are keys
  too (ZUNIONSTORE's destination); same-shard rule.
* STORE: a key at 1 plus the keys after STORE/STOREDIST options (SORT, GEORADIUS): same shard.
* STREAMS: XREAD/XREADGROUP: the keys are the first half after STREAMS; same shard; no BLOCK.
* LOCAL: answered by the proxy itself (`redkeeper.server.local`).
* TXN: MULTI, EXEC, DISCARD, UNWATCH: the client connection buffers a transaction and sends
  it to one shard as one block (`redkeeper.server.transaction`).
* REFUSED: an error reply naming the command and the alternative; the connection stays open.
"""

from __future__ import annotations

from dataclasses import dataclass

from redkeeper.errors import RedkeeperError

SINGLE = 0
SUM = 1
MGET = 2
MSET = 3
SAME = 4
EVAL = 5
NUMKEYS = 6
STORE = 7
STREAMS = 8
LOCAL = 9
REFUSED = 10
TXN = 11

KIND_NAMES: tuple[str, ...] = (
    "single",
    "sum",
    "mget",
    "mset",
    "same",
    "eval",
    "numkeys",
    "store",
    "streams",
    "local",
    "refused",
    "transaction",
)
_KINDS = {name: code for code, name in enumerate(KIND_NAMES)}
_KINDS["txn"] = TXN


class CommandError(RedkeeperError):
    """A request the proxy answers with an error reply (the text is the reply, without '-')."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of the table."""

    name: str  # upper case, as Redis spells it
    kind: int
    arity: int
    first: int = 0
    last: int = 0
    step: int = 0
    readonly: bool = False
    hint: str = ""  # REFUSED: what to use instead

    def arity_ok(self, argc: int) -> bool:
        """True when `argc` arguments (counting the name) fit Redis's arity rule."""
        arity = self.arity
        return argc == arity if arity > 0 else argc >= -arity


# name        class    arity first last step  r(ead-only)/w(rite)
_TABLE = """
GET           single   2     1     1    1     r
SET           single   -3    1     1    1     w
SETNX         single   3     1     1    1     w
SETEX         single   4     1     1    1     w
PSETEX        single   4     1     1    1     w
GETSET        single   3     1     1    1     w
GETDEL        single   2     1     1    1     w
GETEX         single   -2    1     1    1     w
APPEND        single   3     1     1    1     w
STRLEN        single   2     1     1    1     r
GETRANGE      single   4     1     1    1     r
SUBSTR        single   4     1     1    1     r
SETRANGE      single   4     1     1    1     w
INCR          single   2     1     1    1     w
DECR          single   2     1     1    1     w
INCRBY        single   3     1     1    1     w
DECRBY        single   3     1     1    1     w
INCRBYFLOAT   single   3     1     1    1     w
GETBIT        single   3     1     1    1     r
SETBIT        single   4     1     1    1     w
BITCOUNT      single   -2    1     1    1     r
BITPOS        single   -3    1     1    1     r
BITFIELD      single   -2    1     1    1     w
BITFIELD_RO   single   -2    1     1    1     r
LCS           same     -3    1     2    1     r
EXPIRE        single   -3    1     1    1     w
EXPIREAT      single   -3    1     1    1     w
PEXPIRE       single   -3    1     1    1     w
PEXPIREAT     single   -3    1     1    1     w
EXPIRETIME    single   2     1     1    1     r
PEXPIRETIME   single   2     1     1    1     r
PERSIST       single   2     1     1    1     w
TTL           single   2     1     1    1     r
PTTL          single   2     1     1    1     r
TYPE          single   2     1     1    1     r
DUMP          single   2     1     1    1     r
RESTORE       single   -4    1     1    1     w
SORT          store    -2    1     1    1     w
SORT_RO       single   -2    1     1    1     r
OBJECT        single   -3    2     2    1     r
MEMORY        single   -3    2     2    1     r
COPY          same     -3    1     2    1     w
RENAME        same     3     1     2    1     w
RENAMENX      same     3     1     2    1     w
DEL           sum      -2    1     -1   1     w
UNLINK        sum      -2    1     -1   1     w
EXISTS        sum      -2    1     -1   1     r
TOUCH         sum      -2    1     -1   1     r
MGET          mget     -2    1     -1   1     r
MSET          mset     -3    1     -1   2     w
MSETNX        same     -3    1     -1   2     w
HDEL          single   -3    1     1    1     w
HEXISTS       single   3     1     1    1     r
HGET          single   3     1     1    1     r
HGETALL       single   2     1     1    1     r
HINCRBY       single   4     1     1    1     w
HINCRBYFLOAT  single   4     1     1    1     w
HKEYS         single   2     1     1    1     r
HLEN          single   2     1     1    1     r
HMGET         single   -3    1     1    1     r
HMSET         single   -4    1     1    1     w
HSET          single   -4    1     1    1     w
HSETNX        single   4     1     1    1     w
HSTRLEN       single   3     1     1    1     r
HVALS         single   2     1     1    1     r
HRANDFIELD    single   -2    1     1    1     r
HSCAN         single   -3    1     1    1     r
LINDEX        single   3     1     1    1     r
LINSERT       single   5     1     1    1     w
LLEN          single   2     1     1    1     r
LPOP          single   -2    1     1    1     w
LPOS          single   -3    1     1    1     r
LPUSH         single   -3    1     1    1     w
LPUSHX        single   -3    1     1    1     w
LRANGE        single   4     1     1    1     r
LREM          single   4     1     1    1     w
LSET          single   4     1     1    1     w
LTRIM         single   4     1     1    1     w
RPOP          single   -2    1     1    1     w
RPUSH         single   -3    1     1    1     w
RPUSHX        single   -3    1     1    1     w
RPOPLPUSH     same     3     1     2    1     w
LMOVE         same     5     1     2    1     w
LMPOP         numkeys  -4    1     0    0     w
SADD          single   -3    1     1    1     w
SCARD         single   2     1     1    1     r
SISMEMBER     single   3     1     1    1     r
SMISMEMBER    single   -3    1     1    1     r
SMEMBERS      single   2     1     1    1     r
SPOP          single   -2    1     1    1     w
SRANDMEMBER   single   -2    1     1    1     r
SREM          single   -3    1     1    1     w
SSCAN         single   -3    1     1    1     r
SDIFF         same     -2    1     -1   1     r
SDIFFSTORE    same     -3    1     -1   1     w
SINTER        same     -2    1     -1   1     r
SINTERSTORE   same     -3    1     -1   1     w
SUNION        same     -2    1     -1   1     r
SUNIONSTORE   same     -3    1     -1   1     w
SMOVE         same     4     1     2    1     w
SINTERCARD    numkeys  -3    1     0    0     r
ZADD          single   -4    1     1    1     w
ZCARD         single   2     1     1    1     r
ZCOUNT        single   4     1     1    1     r
ZINCRBY       single   4     1     1    1     w
ZLEXCOUNT     single   4     1     1    1     r
ZMSCORE       single   -3    1     1    1     r
ZPOPMIN       single   -2    1     1    1     w
ZPOPMAX       single   -2    1     1    1     w
ZRANDMEMBER   single   -2    1     1    1     r
ZRANGE        single   -4    1     1    1     r
ZRANGEBYLEX   single   -4    1     1    1     r
ZRANGEBYSCORE single   -4    1     1    1     r
ZRANK         single   -3    1     1    1     r
ZREM          single   -3    1     1    1     w
ZREMRANGEBYLEX single  4     1     1    1     w
ZREMRANGEBYRANK single 4     1     1    1     w
ZREMRANGEBYSCORE single 4    1     1    1     w
ZREVRANGE     single   -4    1     1    1     r
ZREVRANGEBYLEX single  -4    1     1    1     r
ZREVRANGEBYSCORE single -4   1     1    1     r
ZREVRANK      single   -3    1     1    1     r
ZSCORE        single   3     1     1    1     r
ZSCAN         single   -3    1     1    1     r
ZRANGESTORE   same     -5    1     2    1     w
ZUNIONSTORE   numkeys  -4    2     0    0     w
ZINTERSTORE   numkeys  -4    2     0    0     w
ZDIFFSTORE    numkeys  -4    2     0    0     w
ZUNION        numkeys  -3    1     0    0     r
ZINTER        numkeys  -3    1     0    0     r
ZDIFF         numkeys  -3    1     0    0     r
ZINTERCARD    numkeys  -3    1     0    0     r
ZMPOP         numkeys  -4    1     0    0     w
PFADD         single   -2    1     1    1     w
PFCOUNT       same     -2    1     -1   1     r
PFMERGE       same     -2    1     -1   1     w
GEOADD        single   -5    1     1    1     w
GEODIST       single   -4    1     1    1     r
GEOHASH       single   -2    1     1    1     r
GEOPOS        single   -2    1     1    1     r
GEORADIUS     store    -6    1     1    1     w
GEORADIUSBYMEMBER store -5   1     1    1     w
GEORADIUS_RO  single   -6    1     1    1     r
GEORADIUSBYMEMBER_RO single -5 1   1    1     r
GEOSEARCH     single   -7    1     1    1     r
GEOSEARCHSTORE same    -8    1     2    1     w
BITOP         same     -4    2     -1   1     w
EVAL          eval     -3    0     0    0     w
EVALSHA       eval     -3    0     0    0     w
EVAL_RO       eval     -3    0     0    0     r
EVALSHA_RO    eval     -3    0     0    0     r
FCALL         eval     -3    0     0    0     w
FCALL_RO      eval     -3    0     0    0     r
XADD          single   -5    1     1    1     w
XLEN          single   2     1     1    1     r
XRANGE        single   -4    1     1    1     r
XREVRANGE     single   -4    1     1    1     r
XDEL          single   -3    1     1    1     w
XTRIM         single   -4    1     1    1     w
XACK          single   -4    1     1    1     w
XPENDING      single   -3    1     1    1     r
XCLAIM        single   -6    1     1    1     w
XAUTOCLAIM    single   -6    1     1    1     w
XSETID        single   -3    1     1    1     w
XGROUP        single   -3    2     2    1     w
XINFO         single   -3    2     2    1     r
XREAD         streams  -4    0     0    0     r
XREADGROUP    streams  -7    0     0    0     w
PING          local    -1    0     0    0     r
ECHO          local    2     0     0    0     r
QUIT          local    -1    0     0    0     r
RESET         local    1     0     0    0     r
AUTH          local    -2    0     0    0     r
HELLO         local    -1    0     0    0     r
CLIENT        local    -2    0     0    0     r
SELECT        local    2     0     0    0     r
COMMAND       local    -1    0     0    0     r
READONLY      local    1     0     0    0     r
READWRITE     local    1     0     0    0     r
INFO          local    -1    0     0    0     r
TIME          local    1     0     0    0     r
MULTI         txn      1     0     0    0     r
EXEC          txn      1     0     0    0     w
DISCARD       txn      1     0     0    0     r
UNWATCH       txn      1     0     0    0     r
"""

_SCAN_EACH = "use `redkeeper check` or SCAN each master directly"
_ONE_SHARD_SCRIPT = "use EVAL with keys on one shard"
_NO_STATE = (
    "the proxy shares its backend connections, so it cannot keep per-connection state; "
    "connect to the shard's master directly"
)
_BLOCKING = "blocking commands would stall a shared backend connection; poll with the "
_REFUSED = {
    "KEYS": _SCAN_EACH,
    "SCAN": _SCAN_EACH,
    "RANDOMKEY": _SCAN_EACH,
    "DBSIZE": "use `redkeeper check` or DBSIZE on each master",
    "FLUSHDB": "run it on each master directly",
    "FLUSHALL": "run it on each master directly",
    "SWAPDB": "run it on each master directly",
    "MIGRATE": "use `redkeeper reshard`",
    "MOVE": "only database 0 is served",
    "WAIT": "run it on the shard's master directly",
    "SCRIPT": "EVAL loads scripts on the shard that runs them; " + _ONE_SHARD_SCRIPT,
    "FUNCTION": "load functions on each master directly",
    "CONFIG": "configure each redis-server directly",
    "DEBUG": "run it on a redis-server directly",
    "SAVE": "run it on each master directly",
    "BGSAVE": "run it on each master directly",
    "BGREWRITEAOF": "run it on each master directly",
    "LASTSAVE": "run it on each master directly",
    "SHUTDOWN": "stop redis-servers with their own tools",
    "SLAVEOF": "replication is managed by Sentinel",
    "REPLICAOF": "replication is managed by Sentinel",
    "FAILOVER": "failover is managed by Sentinel",
    "ROLE": "ask Sentinel or the master directly",
    "MONITOR": "run MONITOR on a redis-server directly",
    "SLOWLOG": "run it on each master directly",
    "LATENCY": "run it on each master directly",
    "ACL": "configure ACLs on each redis-server directly",
    "MODULE": "load modules on each redis-server directly",
    "CLUSTER": "this is not Redis Cluster; keys are placed like twemproxy",
    "ASKING": "this is not Redis Cluster; keys are placed like twemproxy",
    "WATCH": (
        "WATCH needs a backend connection of its own, and the proxy shares them; MULTI/EXEC "
        "with keys on one shard works without it, and for check-and-set " + _ONE_SHARD_SCRIPT
    ),
    "SUBSCRIBE": "pub/sub needs its own connection; " + _NO_STATE,
    "PSUBSCRIBE": "pub/sub needs its own connection; " + _NO_STATE,
    "SSUBSCRIBE": "pub/sub needs its own connection; " + _NO_STATE,
    "UNSUBSCRIBE": "pub/sub needs its own connection; " + _NO_STATE,
    "PUNSUBSCRIBE": "pub/sub needs its own connection; " + _NO_STATE,
    "SUNSUBSCRIBE": "pub/sub needs its own connection; " + _NO_STATE,
    "PUBLISH": "pub/sub needs its own connection; " + _NO_STATE,
    "SPUBLISH": "pub/sub needs its own connection; " + _NO_STATE,
    "PUBSUB": "pub/sub needs its own connection; " + _NO_STATE,
    "BLPOP": _BLOCKING + "non-blocking LPOP",
    "BRPOP": _BLOCKING + "non-blocking RPOP",
    "BRPOPLPUSH": _BLOCKING + "non-blocking RPOPLPUSH",
    "BLMOVE": _BLOCKING + "non-blocking LMOVE",
    "BLMPOP": _BLOCKING + "non-blocking LMPOP",
    "BZPOPMIN": _BLOCKING + "non-blocking ZPOPMIN",
    "BZPOPMAX": _BLOCKING + "non-blocking ZPOPMAX",
    "BZMPOP": _BLOCKING + "non-blocking ZMPOP",
    "SYNC": "replicate from the master directly",
    "PSYNC": "replicate from the master directly",
    "LOLWUT": "ask a redis-server directly",
}


def _parse_table(text: str) -> dict[str, CommandSpec]:
    table: dict[str, CommandSpec] = {}
    for line in text.strip().splitlines():
        name, kind, arity, first, last, step, mode = line.split()
        table[name] = CommandSpec(
            name, _KINDS[kind], int(arity), int(first), int(last), int(step), mode == "r"
        )
    for name, hint in _REFUSED.items():
        table[name] = CommandSpec(name, REFUSED, -1, hint=hint)
    return table


#: upper-case name -> spec.
COMMANDS: dict[str, CommandSpec] = _parse_table(_TABLE)
# Lookups by the raw bytes a client sent: upper and lower case precomputed, others upper-cased.
_BY_BYTES: dict[bytes, CommandSpec] = {}
for _spec in COMMANDS.values():
    _BY_BYTES[_spec.name.encode()] = _spec
    _BY_BYTES[_spec.name.lower().encode()] = _spec


def lookup(name: bytes) -> CommandSpec | None:
    """The spec for a command name as sent (any case), or None when the proxy does not know it."""
    spec = _BY_BYTES.get(name)
    if spec is None:
        spec = _BY_BYTES.get(name.upper())
    return spec


def arity_error(name: bytes) -> str:
    """Redis's reply text for a wrong argument count."""
    return f"ERR wrong number of arguments for '{name.decode(errors='replace').lower()}' command"


def refused_error(spec: CommandSpec) -> str:
    """The reply text for a command the proxy refuses."""
    return f"ERR redkeeper: {spec.name} is not supported through the proxy: {spec.hint}"


def unknown_error(name: bytes) -> str:
    """The reply text for a command the proxy does not know at all."""
    shown = name[:64].decode(errors="replace")
    return f"ERR redkeeper: unknown or unsupported command '{shown}'"


def _numkeys(args: list[bytes], at: int, name: str) -> int:
    try:
        count = int(args[at])
    except (ValueError, IndexError):
        raise CommandError("ERR value is not an integer or out of range") from None
    if count < 0:
        raise CommandError(f"ERR Number of keys can't be negative ({name})")
    if count > len(args) - at - 1:
        raise CommandError(f"ERR Number of keys can't be greater than number of args ({name})")
    return count


_SORT_SKIP = {b"LIMIT": 2, b"GET": 1, b"BY": 1}  # SORT options and their argument counts
_XREAD_OPTIONS = {b"COUNT": 2, b"GROUP": 3, b"NOACK": 1}  # XREAD[GROUP] options, their widths


def keys_of(spec: CommandSpec, args: list[bytes]) -> list[bytes]:
    """The keys of a request of any keyed class (its arity already checked).

    Raises CommandError for a malformed numkeys, an EVAL without keys, or XREAD ... BLOCK.
    """
    kind = spec.kind
    if kind in (SINGLE,):
        return [args[spec.first]]
    if kind in (SUM, MGET, MSET, SAME):
        last = spec.last if spec.last >= 0 else len(args) + spec.last
        return args[spec.first : last + 1 : spec.step]
    if kind == EVAL:
        count = _numkeys(args, 2, spec.name)
        if count == 0:
            raise CommandError(
                f"ERR redkeeper: {spec.name} with 0 keys cannot be routed to a shard; "
                "pass the keys the script touches (all on one shard)"
            )
        return args[3 : 3 + count]
    if kind == NUMKEYS:
        at = spec.first
        count = _numkeys(args, at, spec.name)
        if count == 0:
            raise CommandError("ERR numkeys should be greater than 0")
        return args[1:at] + args[at + 1 : at + 1 + count]
    if kind == STORE:
        # Options start where Redis's getkeys looks for them (georadiusGetKeys: argument 5;
        # sortGetKeys: 2, skipping the arguments of LIMIT, GET and BY), so a member or a
        # pattern spelled "store" is not taken for the option.
        keys = [args[1]]
        skip = _SORT_SKIP if spec.name == "SORT" else {}
        i = 2 if spec.name == "SORT" else 5
        while i < len(args) - 1:
            option = args[i].upper()
            if option in (b"STORE", b"STOREDIST"):
                keys.append(args[i + 1])
                i += 2
            else:
                i += 1 + skip.get(option, 0)
        return keys
    if kind == STREAMS:
        # Options read in order, as xreadCommand does, so that a group, consumer or stream
        # named "block" or "streams" is not taken for an option.
        group = spec.name == "XREADGROUP"
        i = 1
        while i < len(args) and args[i].upper() != b"STREAMS":
            option = args[i].upper()
            if option == b"BLOCK":
                raise CommandError(
                    f"ERR redkeeper: {spec.name} BLOCK is not supported through the proxy: "
                    "blocking commands would stall a shared backend connection; poll without "
                    "BLOCK"
                )
            step = _XREAD_OPTIONS.get(option)
            if step is None or (option != b"COUNT" and not group):
                raise CommandError("ERR syntax error")
            i += step
        if i >= len(args):
            raise CommandError("ERR syntax error")
        rest = args[i + 1 :]
        if not rest or len(rest) % 2:
            raise CommandError(  # Redis 7.0's text, for XREADGROUP too
                "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
                "specified."
            )
        return rest[: len(rest) // 2]
    return []
