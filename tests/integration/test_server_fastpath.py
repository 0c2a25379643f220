"""Integration: the fast path (raw runs of single-key requests) and the general path agree.

Real redis-servers behind a ProxyServer, once with the C extension and once with the
pure-Python fallbacks (what a machine without a compiler runs): pipelines that mix
single-key commands over two shards with multi-key, local and refused ones, binary and large
values, requests dribbled a few bytes at a time, RESP2 and RESP3, and replica reads.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest
import redis

from redkeeper.server import backend as backend_module
from redkeeper.server import client as client_module
from redkeeper.server import fastpath, resp
from tests.server_support import HOST, ProxyThread, RedisServer, keys_on, redis_servers, shards_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_servers(tmp_path_factory.mktemp("fastpath"), 2) as servers:
        yield servers


@pytest.fixture(params=["compiled", "pure-python"])
def proxy(
    request: pytest.FixtureRequest,
    backends: list[RedisServer],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ProxyThread]:
    if request.param == "compiled":
        if not fastpath.COMPILED:
            pytest.skip("the optional C extension redkeeper.server._speedups is not built")
    else:
        monkeypatch.setattr(client_module, "_ROUTE", None)
        monkeypatch.setattr(backend_module, "_SCAN_HERE", True)
        monkeypatch.setattr(fastpath, "frames", fastpath.frames_py)
        monkeypatch.setattr(fastpath, "interleave", fastpath.interleave_py)
    for server in backends:
        server.client().flushall()
    with ProxyThread(shards_of(backends)) as running:
        yield running


@pytest.mark.parametrize("protocol", [2, 3])
def test_mixed_pipelines_match_redis(proxy: ProxyThread, protocol: int) -> None:
    a = keys_on(proxy.ring, "shard1", 40, "a")
    b = keys_on(proxy.ring, "shard2", 40, "b")
    client = proxy.client(protocol=protocol)
    rnd = random.Random(7)
    values = {k: bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40))) for k in a + b}
    values[a[0]] = b"x" * 200_000  # large: split over several reads
    values[b[0]] = b"\r\n$3\r\n*1\r\n"  # looks like RESP
    pipe = client.pipeline(transaction=False)
    expected: list[object] = []
    for i, (ka, kb) in enumerate(zip(a, b, strict=True)):
        pipe.set(ka, values[ka])
        pipe.set(kb, values[kb])
        expected += [True, True]
        if i % 7 == 3:
            pipe.mget(ka, kb, b"missing")
            expected.append([values[ka], values[kb], None])
        if i % 11 == 5:
            pipe.ping()
            pipe.execute_command("KEYS", "*")  # type: ignore[no-untyped-call]
            expected += [True, "refused"]
        pipe.get(kb)
        pipe.strlen(ka)
        expected += [values[kb], len(values[ka])]
    results = pipe.execute(raise_on_error=False)
    assert len(results) == len(expected)
    for got, want in zip(results, expected, strict=True):
        if want == "refused":
            assert isinstance(got, redis.ResponseError) and "KEYS is not supported" in str(got)
        else:
            assert got == want
    assert client.delete(*a, *b) == len(a) + len(b)
    client.close()


def test_requests_dribbled_byte_by_byte(proxy: ProxyThread) -> None:
    a = keys_on(proxy.ring, "shard1", 3, "d")
    b = keys_on(proxy.ring, "shard2", 3, "e")
    requests = [resp.command("SET", k, k + b"-v") for k in a + b]
    requests += [resp.command("GET", k) for k in a + b]
    requests += [resp.command("MGET", a[0], b[0]), resp.command("GET", "nope")]
    payload = b"".join(requests)
    expected = [b"+OK\r\n"] * 6 + [resp.bulk(k + b"-v") for k in a + b]
    expected += [resp.array([resp.bulk(a[0] + b"-v"), resp.bulk(b[0] + b"-v")]), b"$-1\r\n"]
    with socket.create_connection((HOST, proxy.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        step = 3
        for start in range(0, len(payload), step):
            sock.sendall(payload[start : start + step])
        data = b""
        want = b"".join(expected)
        while len(data) < len(want):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert data == want


def test_many_clients_many_shards_in_one_run(proxy: ProxyThread) -> None:
    """One write that spreads over both shards, read back in request order, from 20 clients."""
    clients = [proxy.client(protocol=2 + (i % 2)) for i in range(20)]
    keys = [f"m{i}".encode() for i in range(300)]
    for n, client in enumerate(clients):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key + b"%d" % n, key)
        for key in keys:
            pipe.get(key + b"%d" % n)
        results = pipe.execute()
        assert results == [True] * len(keys) + keys
    for client in clients:
        client.close()
