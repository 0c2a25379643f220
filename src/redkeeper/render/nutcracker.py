"""Pure renderer for nutcracker.yml and nutcracker's command line.

Every server is named after its shard (== Sentinel master name), so placement depends only on
names and weights and repointing a shard never moves keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from redkeeper.model import Address
from redkeeper.render.files import PUBLIC_MODE, SECRET_MODE, RenderedFile, header
from redkeeper.render.layout import Layout
from redkeeper.topology import Topology

NUTCRACKER = "nutcracker"


def _yaml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def nutcracker_yaml(
    topology: Topology, backends: Mapping[str, Address], password: str | None
) -> str:
    """The pool: one named server per shard, pointing at `backends[shard]`."""
    proxy = topology.spec.proxy
    if proxy.mode == "steady":
        about = [
            "# Servers are 'host:port:weight name'; name = Sentinel master name. Steady mode: each",
            "# server is its shard's local HAProxy frontend; failovers never change this file.",
        ]
    else:
        about = [
            "# Servers are 'host:port:weight name'; name = Sentinel master name. The agent edits",
            "# only host:port on failover.",
        ]
    lines = [
        header("nutcracker pool", topology.source).rstrip(),
        *about,
        f"{proxy.pool}:",
        f"  listen: {proxy.listen}",
        f"  hash: {proxy.hash}",
        f"  distribution: {proxy.distribution}",
    ]
    if proxy.hash_tag:
        lines.append(f"  hash_tag: {_yaml_str(proxy.hash_tag)}")
    if proxy.timeout_ms is not None:
        lines.append(f"  timeout: {proxy.timeout_ms}")
    lines += [
        f"  backlog: {proxy.backlog}",
        "  redis: true",
    ]
    if password:
        lines.append(f"  redis_auth: {_yaml_str(password)}")
    lines += [
        f"  redis_db: {proxy.redis_db}",
        f"  preconnect: {str(proxy.preconnect).lower()}",
        f"  auto_eject_hosts: {str(proxy.auto_eject_hosts).lower()}",
        f"  server_connections: {proxy.server_connections}",
        f"  server_retry_timeout: {proxy.server_retry_timeout_ms}",
        f"  server_failure_limit: {proxy.server_failure_limit}",
        f"  tcpkeepalive: {str(proxy.tcpkeepalive).lower()}",
        "  servers:",
    ]
    for shard in topology.shards:
        backend = backends[shard.name]
        lines.append(f"    - {backend}:{shard.weight} {shard.name}")
    return "\n".join(lines) + "\n"


def render_nutcracker(
    topology: Topology, layout: Layout, backends: Mapping[str, Address], password: str | None
) -> RenderedFile:
    return RenderedFile(
        layout.config("nutcracker.yml"),
        nutcracker_yaml(topology, backends, password),
        SECRET_MODE if password else PUBLIC_MODE,
        topology.spec.proxy.listen.host,
    )


def nutcracker_argv(
    topology: Topology, binary: str, config: Path, log: Path | None = None
) -> list[str]:
    """nutcracker's command line: config, stats listener and interval (not in the YAML)."""
    proxy = topology.spec.proxy
    argv = [
        binary,
        "-c",
        str(config),
        "-s",
        str(proxy.stats.port),
        "-a",
        proxy.stats.host,
        "-i",
        str(proxy.stats_interval_ms),
    ]
    if proxy.mbuf_size:
        argv += ["-m", str(proxy.mbuf_size)]
    if log is not None:
        argv += ["-o", str(log)]
    return argv
