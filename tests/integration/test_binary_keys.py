"""Keys are bytes: the drill's scan/audit/delete path handles keys that are not UTF-8.

One real redis-server holding a non-UTF-8 key beside the drill's own keys: `workload.scan`
lists it (no UnicodeDecodeError), the drill's placement model locates it, the audit sees it,
and `workload.delete` removes exactly the keys it is given, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from redkeeper.drills import workload
from redkeeper.drills.measure import misplaced_keys
from redkeeper.drills.runner import DrillRunner
from redkeeper.model import Address, key_bytes, show_key
from redkeeper.process import ManagedProcess, find_binary, free_port, wait_for_port
from redkeeper.rediskit import sync_client
from tests.support import command, load, write_topology

pytestmark = pytest.mark.integration

BINARY = b"\xff\xfe\x00odd key \x80"


@pytest.fixture
def redis_node(tmp_path: Path) -> Iterator[Address]:
    port = free_port()
    argv = [find_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no"]
    proc = ManagedProcess("redis", argv, tmp_path / "redis", tmp_path / "redis" / "redis.log")
    proc.start()
    try:
        assert wait_for_port("127.0.0.1", port, 10)
        yield Address("127.0.0.1", port)
    finally:
        proc.stop()


def test_scan_locate_and_delete_handle_non_utf8_keys(tmp_path: Path, redis_node: Address) -> None:
    with sync_client(redis_node) as conn:
        conn.set(BINARY, "v")  # the exact bytes
        for i in range(3):
            conn.set(f"drill:x:{i}", "1")
    keys, complete = workload.scan(redis_node, None)
    assert complete and len(keys) == 4
    (odd,) = [k for k in keys if not k.startswith("drill:")]
    assert key_bytes(odd) == BINARY
    assert show_key(odd) == "\\xff\\xfe\\x00odd key \\x80"

    runner = DrillRunner(load(write_topology(tmp_path)))
    shard = runner.locate(odd)
    assert shard in ("shard1", "shard2")
    wrong = misplaced_keys({"shard1": keys}, runner.locate)
    assert all(isinstance(k, str) for k in wrong["shard1"])

    mine = [k for k in keys if k.startswith("drill:x:")]
    assert workload.delete(redis_node, None, mine) == 3
    assert workload.delete(redis_node, None, [odd]) == 1
    assert command(redis_node, "DBSIZE") == 0
