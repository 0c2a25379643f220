"""Key placement: exactly where nutcracker (twemproxy 0.5.0) sends a key, in pure Python.

`hashes` owns the 12 hashkit functions, `ring` the pool rules (naming, order, hash tags,
ketama, modula). Tools that talk to shards directly (check, reshard) use `Ring` to know
which shard a key belongs to.
"""

from redkeeper.placement.hashes import HASHES, hash_key
from redkeeper.placement.ring import (
    DISTRIBUTIONS,
    NotDeterministicError,
    Placement,
    PoolServer,
    Ring,
    ketama_point_count,
    tag_content,
)

__all__ = [
    "DISTRIBUTIONS",
    "HASHES",
    "NotDeterministicError",
    "Placement",
    "PoolServer",
    "Ring",
    "hash_key",
    "ketama_point_count",
    "tag_content",
]
