"""The topology's nutcracker pool as a placement `Ring`.

Owns the one mapping from a topology to `redkeeper.placement.Ring`: one `PoolServer` per shard,
named after the shard (as nutcracker.yml names it) with the shard's weight. Because the name,
not the address, is what twemproxy hashes and sorts, the ring does not depend on which node is
the shard's master right now; the address given to each `PoolServer` is the configured master
and is informational only.
"""

from __future__ import annotations

from redkeeper.placement import PoolServer, Ring
from redkeeper.topology import Topology


def ring_for(topology: Topology) -> Ring:
    """The placement of `topology`'s proxy pool (NotDeterministicError for "random")."""
    proxy = topology.spec.proxy
    servers = [
        PoolServer(shard.master.host, shard.master.port, shard.weight, shard.name)
        for shard in topology.shards
    ]
    return Ring(servers, hash=proxy.hash, distribution=proxy.distribution, hash_tag=proxy.hash_tag)


def shard_names(ring: Ring) -> list[str]:
    """Shard name of each ring index (twemproxy's sorted server order)."""
    return [server.hash_name for server in ring.servers]
