"""Unit tests of `redkeeper.data.ring`: the topology's pool as a placement ring."""

from __future__ import annotations

from pathlib import Path

import pytest

from redkeeper.data import ring_for, shard_names
from redkeeper.placement import NotDeterministicError, PoolServer, Ring
from redkeeper.topology import Topology, parse_topology

TOPOLOGY = """
sentinel: {nodes: [127.0.0.1:26379], quorum: 1}
shards:
  - {name: shard10, master: 127.0.0.1:6666, weight: 3}
  - {name: shard9, master: 127.0.0.1:7666}
  - {name: a, master: 127.0.0.1:8666}
proxy: {hash: crc32a, distribution: DIST, hash_tag: "{}"}
"""


def topology(tmp_path: Path, distribution: str = "ketama", text: str = TOPOLOGY) -> Topology:
    return parse_topology(text.replace("DIST", distribution), source="t.yaml", base_dir=tmp_path)


@pytest.mark.parametrize("distribution", ["ketama", "modula"])
def test_servers_are_the_shards_by_name_and_weight(tmp_path: Path, distribution: str) -> None:
    ring = ring_for(topology(tmp_path, distribution))
    assert shard_names(ring) == ["a", "shard9", "shard10"]  # shorter names first
    assert [s.weight for s in ring.servers] == [1, 1, 3]
    assert (ring.hash, ring.distribution, ring.hash_tag) == ("crc32a", distribution, "{}")
    expected = Ring(
        [
            PoolServer("h", 1, 3, "shard10"),
            PoolServer("h", 2, 1, "shard9"),
            PoolServer("h", 3, 1, "a"),
        ],
        hash="crc32a",
        distribution=distribution,
        hash_tag="{}",
    )
    keys = [b"user:%d" % i for i in range(2000)] + [b"{tag}x", b"a{tag}b"]
    assert [ring.index_of(k) for k in keys] == [expected.index_of(k) for k in keys]


def test_placement_does_not_depend_on_the_master_addresses(tmp_path: Path) -> None:
    moved = TOPOLOGY.replace("127.0.0.1:6666", "10.1.1.1:7000").replace(":7666", ":7777")
    before, after = ring_for(topology(tmp_path)), ring_for(topology(tmp_path, text=moved))
    keys = [b"k%d" % i for i in range(2000)]
    assert [before.index_of(k) for k in keys] == [after.index_of(k) for k in keys]


def test_random_distribution_is_not_deterministic(tmp_path: Path) -> None:
    with pytest.raises(NotDeterministicError, match="random"):
        ring_for(topology(tmp_path, "random"))
