"""Integration: placement equals nutcracker's, and routes swap in memory without a restart.

Real redis-servers behind a ProxyServer (and a real nutcracker 0.5.0 with the same named pool):
keys land exactly where `Ring` says, nutcracker and the proxy read each other's writes,
multi-key EXISTS counts across shards, a master swap fails only the moved shard's in-flight
requests, a shard without a route fails static, and a dead backend fails fast and recovers.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redkeeper.model import Address
from redkeeper.process import free_port
from redkeeper.server import ProxySettings
from tests.server_support import (
    ProxyThread,
    RedisServer,
    keys_on,
    nutcracker,
    redis_servers,
    shards_of,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_servers(tmp_path_factory.mktemp("routing"), 3) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _flush(backends: list[RedisServer]) -> None:
    for server in backends:
        server.client().flushall()


def _holders(servers: list[RedisServer], key: bytes) -> list[int]:
    return [i for i, server in enumerate(servers) if server.client().exists(key)]


def test_keys_land_where_the_ring_says_and_nutcracker_agrees(
    backends: list[RedisServer], tmp_path: Path
) -> None:
    shards = shards_of(backends[:2])
    written = [f"proxy:{i}".encode() for i in range(300)] + ["é".encode(), b"\xff\xfe", b""]
    via_nutcracker = [f"nc:{i}".encode() for i in range(300)]
    with ProxyThread(shards) as proxy, nutcracker(tmp_path / "nc", shards) as nc_port:
        client = proxy.client(protocol=2)
        pipe = client.pipeline(transaction=False)
        for key in written:
            pipe.set(key, key)
        assert all(pipe.execute())
        by_address = {s.address: i for i, s in enumerate(backends)}
        for key in written:
            expected = by_address[shards[proxy.ring.locate(key).name]]
            assert _holders(backends, key) == [expected], key
        nc = redis.Redis(port=nc_port, protocol=2, driver_info=None)
        for key in via_nutcracker:
            assert nc.set(key, key)
        # each side reads what the other wrote
        assert client.mget(via_nutcracker) == via_nutcracker
        assert [nc.get(key) for key in written] == written
        # nutcracker 0.5.0 sends a multi-key EXISTS whole to the first key's shard
        assert client.exists(*via_nutcracker) == len(via_nutcracker)
        assert client.exists(*via_nutcracker, b"absent1", b"absent2") == len(via_nutcracker)
        nc_count = nc.exists(*via_nutcracker)
        print(f"EXISTS over {len(via_nutcracker)} keys: proxy 300, nutcracker {nc_count}")
        assert client.delete(*written) == len(written)
        nc.close()
        client.close()


def test_master_swap_fails_only_the_moved_shards_in_flight_requests(
    backends: list[RedisServer],
) -> None:
    old, other, new = backends
    shards = {"shard1": old.address, "shard2": other.address}
    with ProxyThread(shards) as proxy:
        k1 = keys_on(proxy.ring, "shard1", 20, "s1-")
        k2 = keys_on(proxy.ring, "shard2", 20, "s2-")
        client = proxy.client(protocol=2)
        assert client.set(k1[0], "before") is True
        # stall the old master so that requests to it are in flight at the swap
        old.process.signal(signal.SIGSTOP)
        results: list[object] = []

        def pipelined() -> None:
            pipe = client.pipeline(transaction=False)
            for a, b in zip(k1, k2, strict=True):
                pipe.set(a, "x")
                pipe.set(b, "y")
            results.extend(pipe.execute(raise_on_error=False))

        runner = threading.Thread(target=pipelined)
        runner.start()

        def in_flight_on_old_master() -> bool:
            link = proxy.server.pool.links.get((old.address, 2))
            conn = link.conn if link is not None else None
            return conn is not None and sum(w.count for w in conn.pending) >= len(k1)

        wait_for(in_flight_on_old_master, 10, "requests in flight to the stalled master")
        moved = {"shard1": new.address, "shard2": other.address}
        proxy.call(lambda: proxy.router.set_routes(moved))
        old.process.signal(signal.SIGCONT)
        runner.join(10)
        shard1 = results[0::2]
        shard2 = results[1::2]
        assert shard2 == [True] * len(k2), shard2
        assert all(isinstance(r, redis.ResponseError) for r in shard1), shard1
        assert "shard1 master moved from" in str(shard1[0])
        # the same client connection is still open and new requests go to the new master
        assert client.set(k1[1], "after") is True
        assert new.client().get(k1[1]) == b"after"
        # the old master may have run the in-flight SETs, but never a request sent after the swap
        assert old.client().get(k1[1]) in (None, b"x")
        assert client.get(k2[0]) == b"y"
        client.close()


def test_no_route_fails_static_and_other_shards_serve(backends: list[RedisServer]) -> None:
    shards = shards_of(backends[:2])
    with ProxyThread(shards) as proxy:
        k1 = keys_on(proxy.ring, "shard1", 1)[0]
        k2 = keys_on(proxy.ring, "shard2", 1)[0]
        proxy.call(lambda: proxy.router.set_routes({"shard1": None, "shard2": shards["shard2"]}))
        client = proxy.client(protocol=2)
        with pytest.raises(redis.ResponseError, match="shard1 has no master route"):
            client.set(k1, "x")
        assert client.set(k2, "y") is True
        with pytest.raises(redis.ResponseError, match="shard1 has no master route"):
            client.mget(k1, k2)
        client.close()


def test_dead_backend_fails_fast_and_recovers(backends: list[RedisServer]) -> None:
    nowhere = Address("127.0.0.1", free_port())
    shards = {"shard1": nowhere, "shard2": backends[1].address}
    settings = ProxySettings(backoff_min=0.05, backoff_max=0.2)
    with ProxyThread(shards, settings) as proxy:
        k1 = keys_on(proxy.ring, "shard1", 1)[0]
        client = proxy.client(protocol=2)
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(redis.ResponseError, match=r"shard1 backend [\d.:]+ unreachable"):
                client.get(k1)
        assert time.monotonic() - started < 2.0
        live = backends[0].address
        proxy.call(lambda: proxy.router.set_routes({"shard1": live, "shard2": shards["shard2"]}))
        assert client.set(k1, "v") is True
        # the backend dies and comes back: errors, then the next request reconnects
        backends[0].process.stop()
        with pytest.raises(redis.ResponseError, match="shard1 backend"):
            client.get(k1)
        backends[0].process.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.get(k1) is None  # no persistence: the key is gone
                break
            except redis.ResponseError:
                assert time.monotonic() < deadline, "the proxy never reconnected"
                time.sleep(0.05)
        client.close()


def test_server_timeout_errors_and_resets_only_the_stalled_shard(
    backends: list[RedisServer],
) -> None:
    shards = shards_of(backends[:2])
    with ProxyThread(shards, ProxySettings(timeout=0.3)) as proxy:
        k1 = keys_on(proxy.ring, "shard1", 1)[0]
        k2 = keys_on(proxy.ring, "shard2", 1)[0]
        client = proxy.client(protocol=2)
        assert client.set(k1, "1") and client.set(k2, "2")
        backends[0].process.signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(redis.ResponseError, match="timed out after 300 ms"):
                client.get(k1)
            assert time.monotonic() - started < 2.0
            assert client.get(k2) == b"2"
        finally:
            backends[0].process.signal(signal.SIGCONT)
        assert client.get(k1) == b"1"
        client.close()


def test_replica_reads(backends: list[RedisServer]) -> None:
    """read_from replica sends read-only commands to the eligible replica, writes to the master."""
    master, replica = backends[0], backends[2]
    master.client().config_set("repl-diskless-sync-delay", "0")
    replica.client().replicaof(master.address.host, master.address.port)
    try:
        shards = {"shard1": master.address, "shard2": backends[1].address}
        with ProxyThread(shards, read_from="replica-preferred") as proxy:
            k1 = keys_on(proxy.ring, "shard1", 1)[0]
            client = proxy.client(protocol=2)
            proxy.call(lambda: proxy.router.set_routes(shards, {"shard1": [replica.address]}))
            replica.client().config_resetstat()
            master.client().config_resetstat()
            assert client.set(k1, "v") is True
            deadline = time.monotonic() + 5
            while client.get(k1) != b"v":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            info = replica.client().info("commandstats")
            assert info.get("cmdstat_get", {}).get("calls", 0) >= 1
            assert "cmdstat_get" not in master.client().info("commandstats")
            client.close()
    finally:
        replica.client().replicaof("no", "one")
