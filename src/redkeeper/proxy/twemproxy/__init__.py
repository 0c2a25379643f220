"""twemproxy (nutcracker 0.5.0): reading and safely repointing nutcracker.yml."""

from redkeeper.proxy.twemproxy.config import (
    DISTRIBUTIONS,
    HASHES,
    POOL_KEYS,
    PoolView,
    ServerEntry,
    load_pools,
    plan_repoint,
    repoint_file,
    validate_with_nutcracker,
)

__all__ = [
    "DISTRIBUTIONS",
    "HASHES",
    "POOL_KEYS",
    "PoolView",
    "ServerEntry",
    "load_pools",
    "plan_repoint",
    "repoint_file",
    "validate_with_nutcracker",
]
