"""The topology: one YAML file describing shards, Sentinels, the proxy and the agent."""

from redkeeper.topology.loader import (
    DEFAULT_SOURCE,
    RedisNode,
    SentinelNode,
    Topology,
    default_text,
    load_topology,
    parse_topology,
)

__all__ = [
    "DEFAULT_SOURCE",
    "RedisNode",
    "SentinelNode",
    "Topology",
    "default_text",
    "load_topology",
    "parse_topology",
]
