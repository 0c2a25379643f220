"""Integration: MULTI/EXEC on one shard through the proxy, as today's clients send it.

Real redis-servers behind a ProxyServer. redis-py's default `pipeline()` (a transaction) over
RESP3 and RESP2, sync and asyncio; the exact replies on the wire (QUEUED, EXECABORT, the
errors Redis gives); atomicity on the shared backend connection under concurrent clients;
a read-only transaction runs on the master; a failover or a server timeout while the block
is in flight answers EXEC with an error; node-redis's and ioredis's `multi().exec()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from redkeeper.server import ProxySettings, resp
from tests.clients import matrix
from tests.server_support import (
    HOST,
    ProxyThread,
    RedisServer,
    keys_on,
    redis_servers,
    shards_of,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_servers(tmp_path_factory.mktemp("txn"), 3) as servers:
        yield servers


@pytest.fixture
def proxy(backends: list[RedisServer]) -> Iterator[ProxyThread]:
    for server in backends:
        server.client().flushall()
    with ProxyThread(shards_of(backends[:2]), hash_tag="{}") as running:
        yield running


def _requests(*lines: str | bytes) -> bytes:
    """Multibulk requests, one per space-separated line (inline after multibulk in one read
    is a protocol error, as documented)."""
    out = b""
    for line in lines:
        text = line.encode() if isinstance(line, str) else line
        out += resp.command(*text.split(b" "))
    return out


def _exchange(sock: socket.socket, payload: bytes, replies: int) -> list[bytes]:
    """Send raw bytes and read exactly `replies` reply frames."""
    sock.sendall(payload)
    data = b""
    frames: list[bytes] = []
    pos = 0
    while len(frames) < replies:
        end = resp.frame_end(data, pos) if pos < len(data) else -1
        if end < 0:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {frames}"
            data += chunk
            continue
        frames.append(data[pos:end])
        pos = end
    return frames


@pytest.mark.parametrize("protocol", [None, 2, 3])
def test_redis_py_default_pipeline_is_a_transaction(
    proxy: ProxyThread, protocol: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    a = keys_on(proxy.ring, "shard1", 3)
    kwargs = {} if protocol is None else {"protocol": protocol}
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        client = redis.Redis(host=HOST, port=proxy.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]
        try:
            pipe = client.pipeline()
            pipe.set(a[0], "1")
            pipe.incr(a[0])
            pipe.get(a[0])
            pipe.mset({a[1]: "x", a[2]: "y"})
            pipe.mget(a[0], a[1], a[2], "{" + a[0].decode() + "}:none")
            pipe.delete(a[1], a[2])
            assert pipe.execute() == [True, 2, b"2", True, [b"2", b"x", b"y", None], 2]
            assert client.get(a[0]) == b"2"
            tagged = client.pipeline()
            tagged.hset("{user7}:h", "f", "1")
            tagged.sadd("{user7}:s", "m")
            tagged.hgetall("{user7}:h")
            assert tagged.execute() == [1, 1, {b"f": b"1"}]
            # a command failing at EXEC time is an error inside the array, the others ran
            typed = client.pipeline()
            typed.set(a[1], "v")
            typed.lpush(a[1], "x")
            typed.get(a[1])
            results = typed.execute(raise_on_error=False)
            assert results[0] is True and results[2] == b"v"
            assert isinstance(results[1], redis.ResponseError) and "WRONGTYPE" in str(results[1])
        finally:
            client.close()
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("protocol", [None, 2])
def test_keys_on_two_shards_are_a_clear_error_and_the_connection_stays_usable(
    proxy: ProxyThread, protocol: int | None
) -> None:
    a = keys_on(proxy.ring, "shard1", 1)[0]
    b = keys_on(proxy.ring, "shard2", 1)[0]
    kwargs = {} if protocol is None else {"protocol": protocol}
    client = redis.Redis(host=HOST, port=proxy.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]
    pipe = client.pipeline()
    pipe.set(a, "1")
    pipe.set(b, "2")
    with pytest.raises(redis.ResponseError, match="a transaction runs on one shard") as failed:
        pipe.execute()
    assert "give the keys a common hash tag, e.g. {user1}:a" in str(failed.value)
    assert client.get(a) is None and client.get(b) is None  # nothing ran
    assert client.set(a, "ok") is True
    plain = client.pipeline(transaction=False)
    plain.set(a, "p")
    plain.get(b)
    assert plain.execute() == [True, None]
    client.close()


def test_asyncio_pipeline_transaction(proxy: ProxyThread) -> None:
    a = keys_on(proxy.ring, "shard2", 2)

    async def scenario() -> None:
        client = redis.asyncio.Redis(host=HOST, port=proxy.port)
        try:
            async with client.pipeline() as pipe:
                pipe.set(a[0], "1")
                pipe.incrby(a[0], 5)
                pipe.get(a[0])
                pipe.exists(a[0], a[1])
                assert await pipe.execute() == [True, 6, b"6", 1]
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_wire_replies_match_redis(backends: list[RedisServer]) -> None:
    """Each reply as Redis gives it; a read-only transaction runs on the master."""
    # read_from replica with no replica: plain reads fail, a transaction still goes to the master
    with ProxyThread(shards_of(backends[:2]), read_from="replica") as proxy:
        a = keys_on(proxy.ring, "shard1", 2)
        backends[0].client().set(a[0], "v")
        get_a = b"GET " + a[0]
        with socket.create_connection((HOST, proxy.port), timeout=5) as sock:
            assert _exchange(sock, b"EXEC\r\nDISCARD\r\nUNWATCH\r\n", 3) == [
                b"-ERR EXEC without MULTI\r\n",
                b"-ERR DISCARD without MULTI\r\n",
                b"+OK\r\n",
            ]
            assert _exchange(sock, _requests(get_a), 1)[0].startswith(
                b"-ERR redkeeper: shard1 has no eligible replica"
            )
            block = _requests("MULTI", get_a, "MULTI", "WATCH x", get_a, "EXEC")
            assert _exchange(sock, block, 6) == [
                b"+OK\r\n",
                b"+QUEUED\r\n",
                b"-ERR MULTI calls can not be nested\r\n",
                b"-ERR WATCH inside MULTI is not allowed\r\n",
                b"+QUEUED\r\n",
                b"*2\r\n$1\r\nv\r\n$1\r\nv\r\n",
            ]
            assert _exchange(sock, _requests("MULTI", "EXEC"), 2) == [b"+OK\r\n", b"*0\r\n"]
            aborted = _requests("MULTI", get_a, "NOSUCH x", "GET", get_a, "EXEC")
            frames = _exchange(sock, aborted, 6)
            assert frames[:2] == [b"+OK\r\n", b"+QUEUED\r\n"]
            assert frames[2].startswith(b"-ERR redkeeper: unknown or unsupported command")
            assert frames[3] == b"-ERR wrong number of arguments for 'get' command\r\n"
            assert frames[4:] == [
                b"+QUEUED\r\n",
                b"-EXECABORT Transaction discarded because of previous errors.\r\n",
            ]
            discarded = _requests("MULTI", b"SET " + a[1] + b" x", "DISCARD", "MULTI", "EXEC")
            assert _exchange(sock, discarded, 5)[2:] == [b"+OK\r\n", b"+OK\r\n", b"*0\r\n"]
        assert backends[0].client().get(a[1]) is None
        with socket.create_connection((HOST, proxy.port), timeout=5) as sock:
            _exchange(sock, b"HELLO 3\r\n", 1)
            block = _requests("MULTI", b"GET " + a[1], "PING", "TIME", "EXEC")
            frames = _exchange(sock, block, 5)
            assert frames[4].startswith(b"*3\r\n_\r\n+PONG\r\n*2\r\n$")  # RESP3 passes through
            refused = _exchange(sock, _requests(b"WATCH " + a[0]), 1)[0]
            assert refused.startswith(b"-ERR redkeeper: WATCH is not supported through the proxy")
            assert _exchange(sock, _requests("MULTI", "RESET", "EXEC"), 3)[1:] == [
                b"+RESET\r\n",
                b"-ERR EXEC without MULTI\r\n",
            ]


def test_transactions_are_atomic_on_the_shared_connection(proxy: ProxyThread) -> None:
    """Concurrent transactions and plain requests share one backend connection; each
    transaction's two INCRs are consecutive, so nothing ran between them."""
    counter = keys_on(proxy.ring, "shard1", 1)[0]
    failures: list[str] = []

    def transactions() -> None:
        client = proxy.client()
        for _ in range(200):
            pipe = client.pipeline()
            pipe.incr(counter)
            pipe.incr(counter)
            first, second = pipe.execute()
            if second != first + 1:
                failures.append(f"{first} then {second}")
        client.close()

    def plain() -> None:
        client = proxy.client(protocol=2)
        for _ in range(50):
            pipe = client.pipeline(transaction=False)
            pipe.incr(counter)
            pipe.incr(counter)
            pipe.execute()
        client.close()

    threads = [threading.Thread(target=transactions) for _ in range(4)]
    threads += [threading.Thread(target=plain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert proxy.client().get(counter) == str(4 * 200 * 2 + 4 * 50 * 2).encode()
    links = [key for key in proxy.server.pool.links if key[0] == proxy.router.routes.masters[0]]
    assert len(links) == 2  # one connection per protocol to the shard: nothing was pinned


def _stall_and_exec(
    proxy: ProxyThread, stalled: RedisServer, key: bytes, then: object
) -> list[object]:
    """Start a transaction while `stalled` is stopped, wait until it is in flight, `then()`."""
    client = proxy.client(protocol=2)
    results: list[object] = []

    def run() -> None:
        try:
            pipe = client.pipeline()
            pipe.set(key, "x")
            pipe.get(key)
            results.append(pipe.execute())
        except redis.ResponseError as exc:
            results.append(exc)

    runner = threading.Thread(target=run)
    stalled.process.signal(signal.SIGSTOP)
    try:
        runner.start()

        def in_flight() -> bool:
            link = proxy.server.pool.links.get((stalled.address, 2))
            return link is not None and link.conn is not None and len(link.conn.pending) >= 4

        wait_for(in_flight, 10, "the transaction in flight")
        then()  # type: ignore[operator]
    finally:
        stalled.process.signal(signal.SIGCONT)
    runner.join(10)
    assert client.ping() is True  # the client connection is still usable
    results.append(client)
    return results


def _set_get(client: redis.Redis, key: bytes) -> list[object]:
    pipe = client.pipeline()
    pipe.set(key, "after")
    pipe.get(key)
    return pipe.execute()


def test_failover_while_the_block_is_in_flight(backends: list[RedisServer]) -> None:
    old, other, new = backends
    shards = {"shard1": old.address, "shard2": other.address}
    with ProxyThread(shards, hash_tag="{}") as proxy:
        key = keys_on(proxy.ring, "shard1", 1, "fo")[0]
        moved = {"shard1": new.address, "shard2": other.address}
        outcome = _stall_and_exec(
            proxy, old, key, lambda: proxy.call(lambda: proxy.router.set_routes(moved))
        )
        failed, client = outcome
        assert isinstance(failed, redis.ResponseError)
        assert "shard1 master moved from" in str(failed)
        assert isinstance(client, redis.Redis)
        assert _set_get(client, key) == [True, b"after"]
        assert new.client().get(key) == b"after"
        client.close()


def test_server_timeout_while_the_block_is_in_flight(backends: list[RedisServer]) -> None:
    with ProxyThread(shards_of(backends[:2]), ProxySettings(timeout=0.3)) as proxy:
        key = keys_on(proxy.ring, "shard1", 1, "to")[0]
        failed, client = _stall_and_exec(proxy, backends[0], key, lambda: time.sleep(1.0))
        assert isinstance(failed, redis.ResponseError)
        assert "timed out after 300 ms" in str(failed)
        assert isinstance(client, redis.Redis)
        assert _set_get(client, key) == [True, b"after"]
        client.close()


NODE_SCRIPT = """
const [kind, port, a0, a1, b0] = process.argv.slice(2);
const out = {};
async function main() {
  if (kind === 'node-redis') {
    const { createClient } = require('redis');
    const client = createClient({ url: `redis://127.0.0.1:${port}` });
    client.on('error', (e) => { out.error = String(e); });
    await client.connect();
    out.ok = await client.multi().set(a0, '1').incr(a0).get(a0).mGet([a0, a1]).exec();
    try { await client.multi().set(a0, '1').set(b0, '2').exec(); out.cross = 'no error'; }
    catch (e) { out.cross = String(e && e.message); }
    out.after = await client.get(a0);
    await client.quit();
  } else {
    const Redis = require('ioredis');
    const client = new Redis(Number(port), '127.0.0.1');
    client.on('error', (e) => { out.error = String(e); });
    out.ok = (await client.multi().set(a0, '1').incr(a0).get(a0).mget(a0, a1).exec());
    try { await client.multi().set(a0, '1').set(b0, '2').exec(); out.cross = 'no error'; }
    catch (e) { out.cross = String(e && e.message); }
    out.after = await client.get(a0);
    await client.quit();
  }
}
main().then(() => console.log(JSON.stringify(out)), (e) => {
  console.log(JSON.stringify({ failed: String(e && e.stack) })); process.exit(1);
});
"""


@pytest.mark.parametrize("client", [matrix.NODE_REDIS, matrix.IOREDIS], ids=str)
def test_node_clients_multi_exec(proxy: ProxyThread, client: matrix.Client, tmp_path: Path) -> None:
    matrix.require_installed(client)
    node = shutil.which("node")
    assert node is not None
    script = tmp_path / "multi.cjs"
    script.write_text(NODE_SCRIPT)
    a = keys_on(proxy.ring, "shard1", 2)
    b = keys_on(proxy.ring, "shard2", 1)
    argv = [node, str(script), client.name, str(proxy.port), *(k.decode() for k in (*a, *b))]
    env = {"PATH": "/usr/bin:/bin", "NODE_PATH": str(matrix.NODE_MODULES)}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if client is matrix.IOREDIS:
        assert report["ok"] == [[None, "OK"], [None, 2], [None, "2"], [None, ["2", None]]]
    else:
        assert report["ok"] == ["OK", 2, "2", ["2", None]]
    assert "EXECABORT" in report["cross"] or "a transaction runs on one shard" in report["cross"]
    assert report["after"] == "2"
    assert "error" not in report, report
