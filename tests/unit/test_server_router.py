"""Unit: the router's placement (== Ring.index_of) and route swaps, and the pool's dispatch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redkeeper.model import Address
from redkeeper.placement import PoolServer, Ring
from redkeeper.server.backend import BackendConnection
from redkeeper.server.metrics import ProxyMetrics
from redkeeper.server.pool import BackendPool, PoolSettings
from redkeeper.server.replies import Client
from redkeeper.server.router import RouteError, Router, RouteTable, cached_index

A1, A2, B1, R1 = (Address("127.0.0.1", p) for p in (7001, 7002, 7003, 7004))
NAMES = ["shard1", "shard2", "shard3"]


def _ring(tag: str | None = None) -> Ring:
    servers = [PoolServer("10.0.0.1", 6379 + i, 1, name) for i, name in enumerate(NAMES)]
    return Ring(servers, "fnv1a_64", "ketama", tag)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=100))
def test_placement_equals_ring(keys: list[bytes]) -> None:
    ring = _ring("{}")
    router = Router(ring, NAMES, hash_cache_size=8)  # tiny cache: evictions happen
    for key in keys + keys:
        assert router.index_of(key) == ring.index_of(key)
        assert router.shard_of(key) == ring.locate(key).name


def test_cache_is_bounded() -> None:
    ring = _ring()
    index_of = cached_index(ring, 16)
    for i in range(1000):
        key = b"k%d" % i
        assert index_of(key) == ring.index_of(key)
    cells = index_of.__closure__ or ()
    cache = [c.cell_contents for c in cells if isinstance(c.cell_contents, dict)]
    assert cache and len(cache[0]) <= 16


def test_names_must_match_the_ring() -> None:
    with pytest.raises(RouteError, match="not the shard names"):
        Router(_ring(), ["shard1", "shard2", "other"])


def test_set_routes_swaps_one_immutable_table() -> None:
    router = Router(_ring(), NAMES)
    seen: list[tuple[RouteTable, RouteTable]] = []
    router.subscribe(lambda old, new: seen.append((old, new)))
    first = router.routes
    assert first.masters == (None, None, None)
    router.set_routes({"shard1": A1, "shard2": B1}, {"shard1": [R1]})
    table = router.routes
    assert table is not first and table.version == first.version + 1
    index = table.index("shard1")
    assert table.masters[index] == A1 and table.masters[table.index("shard3")] is None
    assert seen == [(first, table)]
    with pytest.raises(RouteError, match="unknown shards"):
        router.set_routes({"shard9": A1})
    assert router.routes is table
    assert table.no_route_error(table.index("shard3"), False) == (
        "ERR redkeeper: shard3 has no master route (fail static)"
    )


def test_read_policies() -> None:
    router = Router(_ring(), NAMES, read_from="replica-preferred")
    router.set_routes({"shard1": A1, "shard2": B1}, {"shard1": [R1]})
    table = router.routes
    s1, s2 = table.index("shard1"), table.index("shard2")
    assert table.read_targets(s1) == (R1,)
    assert table.read_targets(s2) == (B1,)  # no eligible replica: the master
    router.set_read_from("replica")
    assert router.routes.read_targets(s2) == ()
    assert "no eligible replica" in router.routes.no_route_error(s2, True)
    router.set_read_from("master")
    assert router.routes.read_targets(s1) == (A1,)
    with pytest.raises(RouteError):
        router.set_read_from("nearest")


def test_set_ring_keeps_routes_by_name() -> None:
    router = Router(_ring(), NAMES)
    router.set_routes({"shard1": A1, "shard2": B1, "shard3": A2})
    ring = Ring(
        [PoolServer("h", 1, 1, "shard1"), PoolServer("h", 2, 1, "shard2")], "fnv1a_64", "ketama"
    )
    router.set_ring(ring, ["shard1", "shard2"])
    table = router.routes
    assert set(table.names) == {"shard1", "shard2"}
    assert table.masters[table.index("shard1")] == A1
    assert router.index_of(b"x") == ring.index_of(b"x")


class _Sink:
    """A waiter that records its reply."""

    touched = False
    count = 1

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def complete(self, frames: bytes) -> Client | None:
        self.frames.append(frames)
        return None

    def flush(self) -> None:
        pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def test_master_swap_fails_in_flight_reroutes_unsent_and_leaves_other_shards(
    loop: asyncio.AbstractEventLoop,
) -> None:
    router = Router(_ring(), NAMES)
    router.set_routes({"shard1": A1, "shard2": B1, "shard3": A2})
    pool = BackendPool(router, PoolSettings(), ProxyMetrics(), loop)
    s1, s2 = router.routes.index("shard1"), router.routes.index("shard2")
    old_link = pool.dispatch.writes[2][s1][0]
    other_link = pool.dispatch.writes[2][s2][0]
    conn = BackendConnection(old_link)
    old_link.conn = conn  # as if connected
    sent, unsent = _Sink(), _Sink()
    conn.write(b"*1\r\n$4\r\nPING\r\n", sent)
    conn.out.clear()  # written to the socket: in flight
    conn.write(b"*1\r\n$4\r\nPING\r\n", unsent)  # still in the output buffer: not sent
    router.set_routes({"shard1": A2, "shard2": B1, "shard3": A2})
    assert old_link.closed and old_link.conn is None
    assert sent.frames and sent.frames[0].startswith(b"-ERR redkeeper: shard1 master moved from")
    assert unsent.frames == []  # routed again, to the new master
    new_link = pool.dispatch.writes[2][s1][0]
    assert new_link.address == A2 and [w for _, w in new_link.waiting] == [unsent]
    assert pool.dispatch.writes[2][s2][0] is other_link and not other_link.closed


def test_no_route_shard_has_no_links(loop: asyncio.AbstractEventLoop) -> None:
    router = Router(_ring(), NAMES)
    pool = BackendPool(router, PoolSettings(), ProxyMetrics(), loop)
    router.set_routes({"shard1": A1})
    s2 = router.routes.index("shard2")
    assert pool.dispatch.writes[3][s2] == ()
    assert pool.dispatch.writes[3][router.routes.index("shard1")][0].proto == 3
