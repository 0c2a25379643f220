"""Integration: the redkeeper proxy against nutcracker 0.5.0, command for command.

Two plain redis-servers are the shards; nutcracker (a named pool, fnv1a_64, ketama, with and
without `hash_tag: "{}"`) and the proxy (in this process, on its own loop thread) serve the
same pool. A seeded random command stream (`tests/differential.py`; seed in every failure,
pinned with REDKEEPER_DIFF_SEED) runs through nutcracker, then, on a flushed keyspace, through
the proxy: the replies and each shard's whole keyspace must agree. Where nutcracker answers
wrong (multi-key EXISTS, ZUNION/ZINTER/ZDIFF) the proxy is checked against the shards instead.

Other tests here: keys written through one endpoint are read through the other; every command
of the proxy's table is sent to nutcracker (which closes the connection on what it does not
support, as `tests/nutcracker_facts.py` records), to the proxy (which answers, or refuses
naming the command, and stays open) and straight to the shard (the proxy must answer the
same); the connection-level commands; the cross-shard cases nutcracker gets wrong.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from redkeeper.model import Address
from redkeeper.placement import Ring
from redkeeper.server import commands
from tests import nutcracker_facts as facts
from tests.command_samples import CLOSING_FORMS, ODD_FORMS, SAMPLES, SEEDS, Sample
from tests.differential import (
    GROUPS,
    NULL_BULK,
    Canon,
    Err,
    Op,
    PeerClosedError,
    RespConn,
    Status,
    StreamGen,
    Value,
    canonical,
    count_by,
    encode,
    keyspace_problems,
    normalize,
    show,
    snapshot,
    ttl_close,
)
from tests.server_support import (
    HOST,
    ProxyThread,
    RedisServer,
    keys_on,
    nutcracker,
    redis_servers,
    shards_of,
)

pytestmark = pytest.mark.integration

N_OPS = int(os.environ.get("REDKEEPER_DIFF_OPS", "8000"))
SCRATCH = b"__redkeeper_diff_scratch__"


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_servers(tmp_path_factory.mktemp("differential"), 2) as servers:
        yield servers


@dataclass
class Pool:
    """Both endpoints over the same two shards, and direct connections to the shards."""

    shards: dict[str, Address]
    clients: dict[str, redis.Redis]
    ring: Ring
    nc_port: int
    proxy: ProxyThread

    def shard_of(self, key: bytes) -> str:
        name = self.ring.locate(key).name
        assert name is not None
        return name

    def reset(self) -> None:
        """An empty keyspace and script cache on every shard."""
        for client in self.clients.values():
            client.flushall()
            client.script_flush()


@contextlib.contextmanager
def pool(backends: list[RedisServer], root: Path, hash_tag: str | None) -> Iterator[Pool]:
    shards = shards_of(backends)
    clients = {name: s.client() for name, s in zip(shards, backends, strict=True)}
    try:
        with (
            nutcracker(root, shards, hash_tag) as nc_port,
            ProxyThread(shards, hash_tag=hash_tag) as proxy,
        ):
            result = Pool(dict(shards), clients, proxy.ring, nc_port, proxy)
            result.reset()
            yield result
    finally:
        for client in clients.values():
            client.close()


# -- the differential run -------------------------------------------------------------------


def _oracle(op: Op, direct: Mapping[str, RespConn], ring: Ring) -> Value:
    """The right reply for `op`, asked of the shards directly (read-only ops only)."""
    if op.oracle == "sum":  # EXISTS: each shard counts its own keys
        by_shard: dict[str, list[bytes]] = {}
        for key in op.args[1:]:
            name = ring.locate(key).name
            assert name is not None
            by_shard.setdefault(name, []).append(key)
        total = 0
        for name, keys in by_shard.items():
            reply = direct[name].call(b"EXISTS", *keys)
            assert isinstance(reply, int), reply
            total += reply
        return total
    assert op.oracle == "direct", op
    return direct[op.shard].call(*op.args)


def run_stream(
    label: str, port: int, ops: list[Op], pool_: Pool, seed: int
) -> tuple[list[Value], dict[int, Value]]:
    """Replies to `ops` through one endpoint, and the oracle replies of the oracle ops."""
    conn = RespConn(HOST, port)
    direct = {name: RespConn(a.host, a.port) for name, a in pool_.shards.items()}
    replies: list[Value] = []
    oracles: dict[int, Value] = {}
    i = 0
    try:
        while i < len(ops):
            if ops[i].oracle:
                oracles[i] = _oracle(ops[i], direct, pool_.ring)
                batch = [ops[i]]
            else:
                batch, size = [], 0
                for op in ops[i:]:
                    if op.oracle or len(batch) >= 64 or size > (2 << 20):
                        break
                    batch.append(op)
                    size += sum(len(a) for a in op.args)
            try:
                replies += conn.pipeline([op.args for op in batch])
            except PeerClosedError as exc:
                shown = "\n  ".join(f"#{i + j} {op.show()}" for j, op in enumerate(batch))
                raise AssertionError(
                    f"seed={seed}: {label} closed the connection ({exc}) in the batch:\n  {shown}"
                ) from None
            i += len(batch)
    finally:
        conn.close()
        for c in direct.values():
            c.close()
    return replies, oracles


class CanonDump:
    """DUMP payloads compared by value (a hash table's DUMP order may differ between runs)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def __call__(self, payload: bytes) -> object:
        try:
            self.client.restore(SCRATCH, 0, payload, replace=True)
        except redis.ResponseError as exc:
            return ("error", str(exc))
        try:
            return canonical(self.client, SCRATCH)
        finally:
            self.client.delete(SCRATCH)


def _same(op: Op, a: Value, b: Value, canon_dump: CanonDump) -> bool:
    if op.norm in ("ttl", "pttl"):
        return ttl_close(a, b, op.norm)
    if op.norm == "dump" and isinstance(a, bytes) and isinstance(b, bytes) and a != b:
        return canon_dump(a) == canon_dump(b)
    return normalize(op.norm, a) == normalize(op.norm, b)


def _payloads(client: redis.Redis) -> list[bytes]:
    """DUMP payloads of one value of each type, for RESTORE in the stream."""
    client.set(SCRATCH, "a string")
    client.rpush(SCRATCH + b"l", "x", "y", "3")
    client.hset(SCRATCH + b"h", mapping={"f": "1", "é": "2"})
    client.sadd(SCRATCH + b"s", "1", "2", "10")
    client.zadd(SCRATCH + b"z", {"a": 1.5, "b": -2})
    payloads = []
    for suffix in (b"", b"l", b"h", b"s", b"z"):
        payload = client.dump(SCRATCH + suffix)
        assert isinstance(payload, bytes)
        payloads.append(payload)
        client.delete(SCRATCH + suffix)
    return payloads


def _seed() -> int:
    pinned = os.environ.get("REDKEEPER_DIFF_SEED")
    return int(pinned) if pinned else random.SystemRandom().randrange(1 << 32)


#: commands of the table both endpoints serve, which the stream must cover.
STREAM_COMMANDS = frozenset(
    name
    for name, spec in commands.COMMANDS.items()
    if name in facts.KNOWN and spec.kind not in (commands.LOCAL, commands.REFUSED)
) | {"PING"}


@pytest.mark.parametrize("hash_tag", [None, "{}"], ids=["plain", "hash_tag"])
def test_stream_matches_nutcracker(
    backends: list[RedisServer], tmp_path: Path, hash_tag: str | None
) -> None:
    seed = _seed()
    started = time.monotonic()
    print(f"\ndifferential seed={seed} hash_tag={hash_tag} (pin with REDKEEPER_DIFF_SEED={seed})")
    with pool(backends, tmp_path / "nc", hash_tag) as p:
        payloads = _payloads(p.clients["shard1"])
        gen = StreamGen(seed, p.shard_of, payloads, int(time.time()))
        ops = gen.ops(N_OPS, STREAM_COMMANDS)
        groups, names = count_by(ops)
        missing = STREAM_COMMANDS - set(names)
        assert not missing, f"seed={seed}: the stream misses {sorted(missing)}"
        assert set(groups) == set(GROUPS), groups
        biggest = max(len(a) for op in ops for a in op.args)
        assert biggest == 1 << 20, biggest

        p.reset()
        nc_replies, nc_oracles = run_stream("nutcracker", p.nc_port, ops, p, seed)
        nc_keys = {name: snapshot(c) for name, c in p.clients.items()}
        p.reset()
        px_replies, px_oracles = run_stream("the proxy", p.proxy.port, ops, p, seed)
        px_keys = {name: snapshot(c) for name, c in p.clients.items()}

        canon_dump = CanonDump(p.clients["shard1"])
        problems: list[str] = []
        nc_wrong: Counter[str] = Counter()
        oracle_ops: Counter[str] = Counter()
        for i, op in enumerate(ops):
            a, b = nc_replies[i], px_replies[i]
            if op.oracle:
                oracle_ops[op.name] += 1
                if not _same(op, px_oracles[i], b, canon_dump):
                    problems.append(
                        f"#{i} {op.show()}\n    proxy {show(b)}\n    shards {show(px_oracles[i])}"
                    )
                if not _same(op, nc_oracles[i], a, canon_dump):
                    nc_wrong[op.name] += 1
                continue
            if not _same(op, a, b, canon_dump):
                problems.append(f"#{i} {op.show()}\n    nutcracker {show(a)}\n    proxy {show(b)}")
        p.reset()

        key_problems = keyspace_problems(nc_keys, px_keys)
        misplaced = [
            f"{show(key, 60)} on {shard}, the ring says {p.shard_of(key)}"
            for shard, keys in px_keys.items()
            for key in keys
            if p.shard_of(key) != shard
        ]
    elapsed = time.monotonic() - started
    errors = sum(isinstance(r, Err) for r in px_replies)
    keys_after = sum(len(k) for k in px_keys.values())
    print(
        f"{len(ops)} ops in {elapsed:.1f} s; per class {dict(sorted(groups.items()))}; "
        f"{len(names)} commands; {errors} error replies; {keys_after} keys at the end "
        f"({', '.join(f'{n} {len(k)}' for n, k in px_keys.items())})"
    )
    print(f"checked against the shards: {dict(oracle_ops)}; nutcracker wrong: {dict(nc_wrong)}")
    hint = f"seed={seed} (rerun with REDKEEPER_DIFF_SEED={seed})"
    assert not problems, f"{hint}: {len(problems)} replies differ:\n" + "\n".join(problems[:25])
    assert not key_problems, f"{hint}: keyspaces differ:\n" + "\n".join(key_problems)
    assert not misplaced, f"{hint}: keys off the ring:\n" + "\n".join(misplaced[:20])
    assert keys_after > 50, f"{hint}: the stream left only {keys_after} keys"


# -- every command of the table -------------------------------------------------------------


def _bind(sample: Sample, keys: list[bytes], payload: bytes) -> list[bytes]:
    """The sample's request with K1..K4 replaced by real keys (and PAYLOAD by `payload`)."""
    names = {f"K{i + 1}": key for i, key in enumerate(keys)}
    out = []
    for arg in sample.args:
        if arg in names:
            out.append(names[arg])
        elif arg == "PAYLOAD":
            out.append(payload)
        else:
            out.append(arg.encode())
    return out


@dataclass
class Outcome:
    reply: Value | None  # None: the connection was closed before the reply
    keys: dict[str, dict[bytes, Canon]]


def _seed_data(p: Pool, family: str, keys: list[bytes]) -> None:
    """An empty keyspace, then `SEEDS[family]`, each request on its key's shard."""
    p.reset()
    for seed in SEEDS[family]:
        request = _bind(Sample("", "", seed), keys, b"")
        if seed[0] in ("SCRIPT", "FUNCTION"):
            targets = list(p.clients)
        else:  # the shard of its first key
            first = next(i for i, arg in enumerate(seed) if arg in ("K1", "K2", "K3", "K4"))
            targets = [p.shard_of(request[first])]
        for name in targets:
            p.clients[name].execute_command(*request)  # type: ignore[no-untyped-call]


def _run_sample(
    p: Pool,
    conn: RespConn | None,
    port: int,
    sample: Sample,
    request: list[bytes],
    keys: list[bytes],
) -> Outcome:
    """Seed, then send `request` and a PING on `conn` (or a fresh connection to `port`)."""
    _seed_data(p, sample.family, keys)
    own = conn is None
    target = conn if conn is not None else RespConn(HOST, port)
    try:
        reply, pong = target.pipeline([request, [b"PING"]])
    except PeerClosedError:
        reply, pong = None, None
    finally:
        if own:
            target.close()
    if reply is not None:
        assert pong == Status(b"PONG"), (sample, pong)
    return Outcome(reply, {name: snapshot(c) for name, c in p.clients.items()})


def test_every_table_command_against_nutcracker_and_the_shard(
    backends: list[RedisServer], tmp_path: Path
) -> None:
    """Each keyed command of the proxy's table, once: nutcracker closes the connection on
    exactly the commands `nutcracker_facts.KNOWN` lacks; the proxy answers every one as the
    shard does, and stays open; nutcracker answers the ones it knows as the shard does, but
    for `nutcracker_facts.WRONG`. Then the argument forms nutcracker closes on, and odd
    forms (unroutable key counts the proxy answers itself; names that look like options)."""
    # Transactions (MULTI/EXEC/DISCARD/UNWATCH) are state of the connection, not one request:
    # test_proxy_stack's transaction tests cover them with stock clients.
    table = {
        n
        for n, s in commands.COMMANDS.items()
        if s.kind not in (commands.LOCAL, commands.REFUSED, commands.TXN)
    }
    assert {s.name for s in SAMPLES} == table, "every keyed command of the table needs a sample"
    runs = [("sample", s) for s in SAMPLES]
    runs += [("closing", s) for s in CLOSING_FORMS] + [("odd", s) for s in ODD_FORMS]
    closed: set[str] = set()
    closed_forms: list[str] = []
    problems: list[str] = []
    with pool(backends, tmp_path / "nc", None) as p:
        home = "shard1"
        keys = keys_on(p.ring, home, 4, "cmd:")
        assert p.shard_of(b"2") != home  # nutcracker routes ZUNION 2 ... by the "2"
        p.clients[home].rpush(keys[0], "x", "é")
        payload = p.clients[home].dump(keys[0])
        assert isinstance(payload, bytes)
        address = p.shards[home]
        proxy = RespConn(HOST, p.proxy.port)
        direct = RespConn(address.host, address.port)
        for kind, sample in runs:
            request = _bind(sample, keys, payload)
            shown = show([a[:40] for a in request], 200)
            want = _run_sample(p, direct, 0, sample, request, keys)
            assert want.reply is not None, f"the shard closed the connection on {shown}"
            got = _run_sample(p, proxy, 0, sample, request, keys)
            assert got.reply is not None, f"the proxy closed the connection on {shown}"
            nc = _run_sample(p, None, p.nc_port, sample, request, keys)
            if kind == "sample" and nc.reply is None:
                closed.add(sample.name)
            if kind == "closing":
                closed_forms.append(shown)
                if nc.reply is not None:
                    problems.append(f"{shown}: nutcracker answered {show(nc.reply)}")
            if sample.proxy_error:
                if not (isinstance(got.reply, Err) and got.reply.text.startswith(b"ERR")):
                    problems.append(f"{shown}: proxy {show(got.reply)}, not an error")
                elif sample.proxy_error.encode() not in got.reply.text:
                    problems.append(f"{shown}: proxy {show(got.reply)}, not {sample.proxy_error}")
                print(f"{shown}: proxy {show(got.reply)} / shard {show(want.reply)}")
                continue
            if normalize(sample.norm, got.reply) != normalize(sample.norm, want.reply):
                problems.append(f"{shown}: proxy {show(got.reply)} / shard {show(want.reply)}")
            problems += [
                f"{shown}: {x}"
                for x in keyspace_problems(want.keys, got.keys, names=("shard", "proxy"))
            ]
            if (
                kind == "sample"
                and nc.reply is not None
                and sample.name not in facts.WRONG
                and normalize(sample.norm, nc.reply) != normalize(sample.norm, want.reply)
            ):
                problems.append(f"{shown}: nutcracker {show(nc.reply)} / shard {show(want.reply)}")
        proxy.close()
        direct.close()
    print(f"nutcracker closes on {len(closed)} of {len(table)} keyed commands: {sorted(closed)}")
    assert not problems, "\n".join(problems)
    assert closed == table - facts.KNOWN
    assert len(closed_forms) == len(CLOSING_FORMS)


# -- where nutcracker is wrong -----------------------------------------------------------------


def test_nutcracker_wrong_the_proxy_right(backends: list[RedisServer], tmp_path: Path) -> None:
    """Multi-key EXISTS (nutcracker: first key's shard only) and ZUNION/ZINTER/ZDIFF
    (nutcracker: routed by the numkeys argument), each checked against the shards directly;
    the multi-key commands nutcracker does split agree with the shards on both."""
    with pool(backends, tmp_path / "nc", None) as p:
        keys = [f"exists:{i}".encode() for i in range(40)]
        by_shard = {name: [k for k in keys if p.shard_of(k) == name] for name in p.shards}
        assert all(by_shard.values()), by_shard
        proxy = RespConn(HOST, p.proxy.port)
        nc = RespConn(HOST, p.nc_port)
        assert proxy.call(b"MSET", *(x for k in keys for x in (k, k))) == Status(b"OK")
        direct = sum(int(p.clients[name].exists(*ks)) for name, ks in by_shard.items())
        assert direct == 40
        assert proxy.call(b"EXISTS", *keys) == 40
        assert proxy.call(b"EXISTS", *keys, b"absent", keys[0]) == 41
        first_shard = len(by_shard[p.shard_of(keys[0])])
        assert nc.call(b"EXISTS", *keys) == first_shard < 40
        # the commands nutcracker splits: both right
        for endpoint in (proxy, nc):
            assert endpoint.call(b"TOUCH", *keys, b"absent") == 40
            assert endpoint.call(b"MGET", *keys) == keys
        assert nc.call(b"UNLINK", *keys[:20]) == 20
        assert proxy.call(b"DEL", *keys) == 20

        # ZUNION/ZINTER/ZDIFF: nutcracker hashes the numkeys argument, "2"
        numkeys_shard = p.shard_of(b"2")
        other = next(name for name in p.shards if name != numkeys_shard)
        z1, z2 = keys_on(p.ring, other, 2, "z:")
        assert proxy.call(b"ZADD", z1, b"1", b"a", b"2", b"b") == 2
        assert proxy.call(b"ZADD", z2, b"5", b"b", b"1", b"c") == 2
        shard = RespConn(p.shards[other].host, p.shards[other].port)
        for name in (b"ZUNION", b"ZINTER", b"ZDIFF"):
            request = (name, b"2", z1, z2, b"WITHSCORES")
            right = shard.call(*request)
            assert right, request  # not empty: b is in both, a in z1 only
            assert proxy.call(*request) == right, request
            assert nc.call(*request) == [], request  # read on the shard without the keys
        for c in (proxy, nc, shard):
            c.close()


def _spanning(sample: Sample, keys: list[bytes], p: Pool) -> bool:
    """True when the sample's keys (bound to `keys`) live on more than one shard."""
    spec = commands.COMMANDS[sample.name]
    try:
        found = commands.keys_of(spec, _bind(sample, keys, b""))
    except commands.CommandError:
        return False
    return len({p.shard_of(k) for k in found}) > 1


#: Same-shard commands nutcracker routes by their first key, whatever shard the others are on.
SAME_SHARD_KINDS = (commands.SAME, commands.EVAL, commands.NUMKEYS, commands.STORE)
EVAL_SPANNING = Sample(
    "EVAL", "str", ("EVAL", "return redis.call('MGET', KEYS[1], KEYS[2])", "2", "K1", "K2")
)


def test_keys_across_shards_proxy_refuses_nutcracker_runs_on_one_shard(
    backends: list[RedisServer], tmp_path: Path
) -> None:
    """Every same-shard command nutcracker knows, with K1 on one shard and K2..K4 on the
    other: the proxy answers "keys span shards" naming both, changes nothing and stays open;
    nutcracker runs it on one shard (wrong answers, keys off the ring)."""
    with pool(backends, tmp_path / "nc", None) as p:
        keys = keys_on(p.ring, "shard1", 1, "x:") + keys_on(p.ring, "shard2", 3, "x:")
        chosen = [
            s
            for s in [*SAMPLES, EVAL_SPANNING]
            if s.name in facts.KNOWN
            and commands.COMMANDS[s.name].kind in SAME_SHARD_KINDS
            and _spanning(s, keys, p)
        ]
        want = {
            n
            for n in facts.KNOWN
            if n in commands.COMMANDS and commands.COMMANDS[n].kind in SAME_SHARD_KINDS
        }
        assert {s.name for s in chosen} == want - {"EVALSHA", "GEORADIUS"}  # samples: one key
        proxy = RespConn(HOST, p.proxy.port)
        for sample in chosen:
            request = _bind(sample, keys, b"")
            _seed_data(p, sample.family, keys)
            before = {name: snapshot(c) for name, c in p.clients.items()}
            got = _run_sample(p, proxy, 0, sample, request, keys)
            assert isinstance(got.reply, Err), (sample, got.reply)
            prefix = f"ERR redkeeper: {sample.name} keys span shards (shard1, shard2); "
            assert got.reply.text.startswith(prefix.encode()), got.reply
            assert not keyspace_problems(before, got.keys, names=("before", "after")), sample
            nc = _run_sample(p, None, p.nc_port, sample, request, keys)
            assert nc.reply is not None, f"nutcracker closed the connection on {sample}"
            assert not (isinstance(nc.reply, Err) and b"redkeeper" in nc.reply.text)
        ran = sorted({s.name for s in chosen})
        print(f"\nkeys on 2 shards: the proxy refused, nutcracker ran {ran}")

        # nutcracker writes keys where the ring does not place them
        src, dst = keys[0], keys[1]  # on shard1, on shard2
        raw = RespConn(HOST, p.nc_port)
        p.reset()
        assert raw.call(b"SET", src, b"v") == Status(b"OK")
        assert raw.call(b"COPY", src, dst) == 1
        assert p.clients["shard1"].get(dst) == b"v"  # the copy sits on shard1 ...
        assert raw.call(b"GET", dst) == NULL_BULK  # ... where nobody finds it
        assert raw.call(b"DEL", src) == 1
        assert raw.call(b"RPUSH", src, b"b", b"a") == 2
        assert raw.call(b"SORT", src, b"ALPHA", b"STORE", keys[2]) == 2
        assert p.clients["shard1"].lrange(keys[2], 0, -1) == [b"a", b"b"]
        assert p.clients["shard2"].exists(keys[2]) == 0
        assert proxy.call(b"COPY", src, dst) == Err(
            b"ERR redkeeper: COPY keys span shards (shard1, shard2); this pool has no hash_tag, "
            b"so only keys that happen to share a shard can be used"
        )
        for c in (proxy, raw):
            c.close()
        p.reset()


# -- what nutcracker closes the connection on ------------------------------------------------

#: Arguments for refused commands, harmless should they ever run.
REFUSED_ARGS: dict[str, list[bytes]] = {
    "KEYS": [b"*"],
    "SCAN": [b"0"],
    "SWAPDB": [b"0", b"0"],
    "MIGRATE": [b"127.0.0.1", b"1", b"k", b"0", b"10"],
    "MOVE": [b"k", b"1"],
    "WAIT": [b"0", b"0"],
    "SCRIPT": [b"FLUSH"],
    "FUNCTION": [b"LIST"],
    "CONFIG": [b"GET", b"maxmemory"],
    "DEBUG": [b"HELP"],
    "SHUTDOWN": [b"ABORT"],
    "SLAVEOF": [b"NO", b"ONE"],
    "REPLICAOF": [b"NO", b"ONE"],
    "FAILOVER": [b"ABORT"],
    "SLOWLOG": [b"LEN"],
    "LATENCY": [b"LATEST"],
    "ACL": [b"WHOAMI"],
    "MODULE": [b"LIST"],
    "CLUSTER": [b"INFO"],
    "WATCH": [b"k"],
    "SUBSCRIBE": [b"ch"],
    "PSUBSCRIBE": [b"ch*"],
    "SSUBSCRIBE": [b"ch"],
    "PUBLISH": [b"ch", b"m"],
    "SPUBLISH": [b"ch", b"m"],
    "PUBSUB": [b"CHANNELS"],
    "BLPOP": [b"k", b"0"],
    "BRPOP": [b"k", b"0"],
    "BRPOPLPUSH": [b"k", b"j", b"0"],
    "BLMOVE": [b"k", b"j", b"LEFT", b"LEFT", b"0"],
    "BLMPOP": [b"0", b"1", b"k", b"LEFT"],
    "BZPOPMIN": [b"k", b"0"],
    "BZPOPMAX": [b"k", b"0"],
    "BZMPOP": [b"0", b"1", b"k", b"MIN"],
    "PSYNC": [b"?", b"-1"],
}


def test_refused_commands_error_and_stay_open(backends: list[RedisServer], tmp_path: Path) -> None:
    """Every refused command: the proxy answers an error naming it and its alternative and
    keeps the connection (and the keyspace); nutcracker closes the connection on each, but
    for LOLWUT, which it forwards."""
    refused = [s for s in commands.COMMANDS.values() if s.kind == commands.REFUSED]
    nc_answered: list[str] = []
    with pool(backends, tmp_path / "nc", None) as p:
        proxy = RespConn(HOST, p.proxy.port)
        assert proxy.call(b"SET", b"survivor", b"1") == Status(b"OK")
        for spec in refused:
            request = [spec.name.encode(), *REFUSED_ARGS.get(spec.name, [])]
            reply, pong = proxy.pipeline([request, [b"PING"]])
            assert reply == Err(commands.refused_error(spec).encode()), (spec.name, reply)
            assert pong == Status(b"PONG"), spec.name
            nc = RespConn(HOST, p.nc_port)
            try:
                nc_reply: Value | None = nc.pipeline([request, [b"PING"]])[0]
            except PeerClosedError:
                nc_reply = None
            nc.close()
            if nc_reply is not None:
                nc_answered.append(spec.name)
        assert proxy.call(b"GET", b"survivor") == b"1"
        assert p.clients[p.shard_of(b"survivor")].get(b"survivor") == b"1"
        proxy.close()
    print(
        f"\n{len(refused)} refused commands; nutcracker answered {nc_answered}, closed on the rest"
    )
    assert sorted(nc_answered) == sorted(s.name for s in refused if s.name in facts.KNOWN)
    assert nc_answered == ["LOLWUT"]


#: (request, what the proxy answers): "shard" = exactly as the shard does.
LOCAL_CASES: list[tuple[list[bytes], str]] = [
    ([b"PING"], "shard"),
    ([b"PING", b"h\xc3\xa9llo"], "shard"),
    ([b"ECHO", b"h\xc3\xa9llo"], "shard"),
    ([b"SELECT", b"0"], "shard"),
    ([b"AUTH", b"secret"], "shard"),
    ([b"QUIT"], "shard"),
    ([b"RESET"], "shard"),
    ([b"HELLO", b"2"], "hello"),
    ([b"CLIENT", b"SETNAME", b"diff"], "shard"),
    ([b"CLIENT", b"GETNAME"], "shard"),
    ([b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py"], "ok"),
    ([b"CLIENT", b"ID"], "int"),
    ([b"COMMAND", b"COUNT"], "count"),
    ([b"COMMAND"], "array"),
    ([b"READONLY"], "ok"),
    ([b"READWRITE"], "ok"),
    ([b"INFO"], "info"),
    ([b"TIME"], "time"),
]


def _exchange(port: int, request: list[bytes]) -> tuple[Value | None, bool]:
    """(the reply or None when the connection closed first, open afterwards)."""
    conn = RespConn(HOST, port)
    try:
        reply, pong = conn.pipeline([request, [b"PING"]])
    except PeerClosedError:
        conn.close()
        conn = RespConn(HOST, port)
        try:  # QUIT: the reply comes, then the close
            reply = conn.pipeline([request])[0]
        except PeerClosedError:
            return None, False
        finally:
            conn.close()
        return reply, False
    conn.close()
    assert pong == Status(b"PONG")
    return reply, True


def test_connection_commands(backends: list[RedisServer], tmp_path: Path) -> None:
    """The commands the proxy answers itself: as Redis does (or in Redis's shape); nutcracker
    closes the connection on each but PING without a message, AUTH and COMMAND."""
    local = {n for n, s in commands.COMMANDS.items() if s.kind == commands.LOCAL}
    assert {r[0].decode() for r, _ in LOCAL_CASES} == local
    seen: dict[str, str] = {}
    with pool(backends, tmp_path / "nc", None) as p:
        shard = p.shards["shard1"]
        for request, expect in LOCAL_CASES:
            shown = b" ".join(request).decode(errors="replace")
            got, open_ = _exchange(p.proxy.port, request)
            assert open_ == (request[0] != b"QUIT"), shown
            assert got is not None, shown
            if expect == "shard":
                want, _ = _exchange(shard.port, request)
                assert got == want, (shown, got, want)
            elif expect == "ok":
                assert got == Status(b"OK"), (shown, got)
            elif expect == "int":
                assert isinstance(got, int), (shown, got)
            elif expect == "count":
                known = [s for s in commands.COMMANDS.values() if s.kind != commands.REFUSED]
                assert got == len(known), got
            elif expect == "array":
                assert isinstance(got, list) and len(got) > 100, shown
            elif expect == "hello":
                want, _ = _exchange(shard.port, request)
                assert isinstance(got, list) and isinstance(want, list)
                assert got[0::2] == want[0::2]  # the same fields: server, version, proto ...
                assert got[:2] == want[:2] and got[4:6] == want[4:6] == [b"proto", 2]
            elif expect == "info":
                assert isinstance(got, bytes) and b"loading:0" in got, got
            else:
                assert expect == "time" and isinstance(got, list) and len(got) == 2, got
            nc, _ = _exchange(p.nc_port, request)
            seen[shown] = "closed" if nc is None else f"answered {show(nc, 50)}"
    for shown, what in seen.items():
        print(f"nutcracker on {shown}: {what}")
    answered = {s for s, what in seen.items() if what.startswith("answered")}
    assert answered == {"PING", "AUTH secret", "COMMAND"}, answered


def test_requests_nutcracker_closes_on_the_proxy_answers(
    backends: list[RedisServer], tmp_path: Path
) -> None:
    """Unknown and empty command names, inline commands, keys of 16336 bytes or more, and a
    pipeline whose last request nutcracker does not know (it drops the replies owed)."""
    with pool(backends, tmp_path / "nc", None) as p:
        cases: list[tuple[bytes, list[Value]]] = [
            (encode([b"FOO", b"k"]), [Err(b"ERR redkeeper: unknown or unsupported command 'FOO'")]),
            (encode([b""]), [Err(b"ERR redkeeper: unknown or unsupported command ''")]),
            (b"PING\r\nSET inline v\r\nGET inline\r\n", [Status(b"PONG"), Status(b"OK"), b"v"]),
            (
                encode([b"SET", b"k", b"v"]) + encode([b"MOVE", b"k", b"1"]),
                [
                    Status(b"OK"),
                    Err(commands.refused_error(commands.COMMANDS["MOVE"]).encode()),
                ],
            ),
        ]
        for size in (facts.MAX_KEY_BYTES - 1, facts.MAX_KEY_BYTES, 100_000):
            key = b"K" * size
            cases.append(
                (encode([b"SET", key, b"long"]) + encode([b"GET", key]), [Status(b"OK"), b"long"])
            )
        for data, want in cases:
            p.reset()
            proxy = RespConn(HOST, p.proxy.port)
            proxy.send_raw(data + encode([b"PING"]))
            got = [proxy.read() for _ in want]
            assert got == want, (data[:60], got)
            assert proxy.read() == Status(b"PONG")
            proxy.close()
            p.reset()
            nc = RespConn(HOST, p.nc_port)
            nc.send_raw(data + encode([b"PING"]))
            try:
                nc_got = [nc.read() for _ in want]
            except PeerClosedError:
                nc_got = []
            nc.close()
            long_ok = data.startswith(b"*3\r\n$3\r\nSET\r\n$%d\r\n" % (facts.MAX_KEY_BYTES - 1))
            if long_ok:
                assert nc_got == want, "nutcracker takes keys shorter than MAX_KEY_BYTES"
            else:
                assert nc_got == [], (data[:60], nc_got)


# -- placement ----------------------------------------------------------------------------------


def _placement_keys(seed: int) -> list[bytes]:
    """About 3,000 distinct keys: random binary, every single byte, UTF-8, hash-tagged (well
    and badly formed), long, the stream's special keys."""
    rng = random.Random(seed)
    keys: list[bytes] = [bytes([b]) for b in range(256)]
    keys += [rng.randbytes(rng.randint(1, 40)) for _ in range(1000)]
    keys += [
        "".join(rng.choice("aé日本語ключ🔑z{}: ") for _ in range(rng.randint(1, 12))).encode()
        for _ in range(600)
    ]
    keys += [b"{user%d}:%d" % (rng.randint(0, 50), i) for i in range(500)]
    keys += [rng.randbytes(3) + b"{" + rng.randbytes(rng.randint(0, 3)) + b"}" for _ in range(300)]
    keys += [b"x" * rng.randint(100, 4000) + b"%d" % i for i in range(50)]
    keys += StreamGen(seed, lambda key: "", [], 0).every
    return list(dict.fromkeys(keys))


@pytest.mark.parametrize("hash_tag", [None, "{}"], ids=["plain", "hash_tag"])
def test_keys_written_through_one_are_read_through_the_other(
    backends: list[RedisServer], tmp_path: Path, hash_tag: str | None
) -> None:
    seed = _seed()
    keys = _placement_keys(seed)
    half = len(keys) // 2
    with pool(backends, tmp_path / "nc", hash_tag) as p:
        nc = RespConn(HOST, p.nc_port)
        proxy = RespConn(HOST, p.proxy.port)
        for writer, part in ((nc, keys[:half]), (proxy, keys[half:])):
            replies = writer.pipeline([[b"SET", k, b"v:" + k] for k in part])
            assert replies == [Status(b"OK")] * len(part), f"seed={seed}"
        for reader in (nc, proxy):
            for i in range(0, len(keys), 200):
                chunk = keys[i : i + 200]
                assert reader.call(b"MGET", *chunk) == [b"v:" + k for k in chunk], f"seed={seed}"
        assert nc.pipeline([[b"GET", k] for k in keys[half:]]) == [b"v:" + k for k in keys[half:]]
        assert proxy.pipeline([[b"GET", k] for k in keys[:half]]) == [
            b"v:" + k for k in keys[:half]
        ]
        where = {name: set(c.scan_iter(count=1000)) for name, c in p.clients.items()}
        off = [k for k in keys if k not in where[p.shard_of(k)]]
        assert not off, f"seed={seed}: {len(off)} keys off the ring, e.g. {show(off[:5])}"
        assert sum(len(w) for w in where.values()) == len(keys)
        counts = {name: len(w) for name, w in where.items()}
        nc.close()
        proxy.close()
        p.reset()
    print(f"\n{len(keys)} keys (seed={seed}, hash_tag={hash_tag}), per shard {counts}")


def _split_points(data: bytes) -> list[int]:
    """Every element boundary of a multibulk request, and a few byte offsets within."""
    points = [i + 2 for i in range(len(data) - 1) if data[i : i + 2] == b"\r\n"][:-1]
    return sorted(set(points) | {1, 3, len(data) // 2, len(data) - 1})


def test_requests_split_across_reads(backends: list[RedisServer], tmp_path: Path) -> None:
    """A request that reaches the proxy in two reads, cut at every element boundary and some
    byte offsets, gets the same reply as through nutcracker. Found by the differential stream:
    the proxy took a read that began between two elements ("$1\\r\\nv\\r\\n") for inline
    commands, since hiredis's has_data() is False there."""
    with pool(backends, tmp_path / "nc", None) as p:
        keys = keys_on(p.ring, "shard1", 2, "s:") + keys_on(p.ring, "shard2", 1, "s:")
        requests = [
            [b"SET", keys[0], b"v\r\n$1"],
            [b"MSET", keys[0], b"1", keys[2], "é".encode(), keys[1], b""],
            [b"MGET", keys[2], keys[0], keys[1]],
            [b"EVAL", b"return redis.call('GET', KEYS[1])", b"1", keys[1]],
        ]
        for request in requests:
            data = encode(request)
            for cut in _split_points(data):
                replies = []
                for port in (p.nc_port, p.proxy.port):
                    conn = RespConn(HOST, port)
                    conn.send_raw(data[:cut])
                    time.sleep(0.02)  # two reads on the other side
                    conn.send_raw(data[cut:] + encode([b"PING"]))
                    replies.append([conn.read(), conn.read()])
                    conn.close()
                nc, px = replies
                assert px == nc, (request, cut, nc, px)
                assert px[1] == Status(b"PONG")
        p.reset()


def test_a_long_pipeline_read_in_pieces(backends: list[RedisServer], tmp_path: Path) -> None:
    """20,000 SETs of 1 KB (20 MB) written in pieces of 997 bytes, replies read while
    writing: the proxy reads them cut anywhere and must answer all, like nutcracker (before the
    fix it closed the connection after a few hundred)."""
    with pool(backends, tmp_path / "nc", None) as p:
        requests = [[b"SET", b"pipe:%d" % i, b"%d:" % i + b"v" * 1000] for i in range(20_000)]
        requests.append([b"MGET", *(r[1] for r in requests[-50:])])
        for port in (p.nc_port, p.proxy.port):
            p.reset()
            conn = RespConn(HOST, port)
            replies = conn.pipeline(requests, piece=997)
            conn.close()
            assert replies[:-1] == [Status(b"OK")] * 20_000, port
            assert replies[-1] == [r[2] for r in requests[-51:-1]]
            assert sum(c.dbsize() for c in p.clients.values()) == 20_000
        p.reset()
