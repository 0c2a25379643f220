"""Pure renderers for redis.conf (one per node) and sentinel.conf (one per Sentinel)."""

from __future__ import annotations

from collections.abc import Mapping

from redkeeper.model import Address
from redkeeper.render.files import PUBLIC_MODE, SECRET_MODE, RenderedFile, header
from redkeeper.render.layout import Layout
from redkeeper.topology import RedisNode, SentinelNode, Topology


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _process_lines(
    what: str, name: str, address: Address, layout: Layout, source: str
) -> list[str]:
    """What redis.conf and sentinel.conf share: listener, foreground, working dir, log, pid."""
    return [
        header(what, source).rstrip(),
        f"bind {address.host}",
        f"port {address.port}",
        "daemonize no",
        f"dir {layout.workdir(name)}",
        'logfile ""' if layout.local else f"logfile {layout.log(name)}",
        f"pidfile {layout.pidfile(name)}",
    ]


def render_redis(
    topology: Topology,
    node: RedisNode,
    layout: Layout,
    masters: Mapping[str, Address],
    password: str | None,
) -> RenderedFile:
    """redis.conf for `node`; a replica of the shard's current master unless it is that master."""
    spec = topology.spec.redis
    master = masters[node.shard]
    delay = spec.repl_diskless_sync_delay
    if delay is None:
        delay = 0 if layout.local else 5
    lines = [
        *_process_lines(
            f"redis-server {node.name} (shard {node.shard})",
            node.name,
            node.address,
            layout,
            topology.source,
        ),
        f"appendonly {'yes' if spec.appendonly else 'no'}",
        f'save "{spec.save}"' if spec.save else 'save ""',
        "dbfilename dump.rdb",
        "repl-diskless-sync yes",
        f"repl-diskless-sync-delay {delay}",
        "replica-read-only yes",
        f"min-replicas-to-write {spec.min_replicas_to_write}",
        f"min-replicas-max-lag {spec.min_replicas_max_lag}",
        f"maxmemory-policy {spec.maxmemory_policy}",
    ]
    if spec.maxmemory:
        lines.append(f"maxmemory {spec.maxmemory}")
    if password:
        lines += [f"requirepass {_quote(password)}", f"masterauth {_quote(password)}"]
    elif not node.address.is_loopback:
        # Without a password Redis 7 answers only loopback clients (-DENIED): replicas,
        # Sentinels and proxies on other hosts could not connect (validate warns).
        lines.append("protected-mode no")
    if node.address != master:
        lines.append(f"replicaof {master.host} {master.port}")
    return RenderedFile(
        layout.self_rewriting_config(node.name),
        "\n".join(lines) + "\n",
        SECRET_MODE if password else PUBLIC_MODE,
        node.address.host,
    )


def sentinel_shard_settings(topology: Topology, password: str | None) -> list[tuple[str, str]]:
    """(option, value) of every per-shard Sentinel setting besides `monitor`, in file order:
    the lines of sentinel.conf, and what `SENTINEL SET <name> <option> <value>` sends when a
    shard is added to running Sentinels (`redkeeper reshard add`)."""
    spec = topology.spec.sentinel
    settings = [
        ("down-after-milliseconds", str(spec.down_after_ms)),
        ("failover-timeout", str(spec.failover_timeout_ms)),
        ("parallel-syncs", str(spec.parallel_syncs)),
    ]
    if password:
        settings.append(("auth-pass", password))
    return settings


def render_sentinel(
    topology: Topology,
    node: SentinelNode,
    layout: Layout,
    masters: Mapping[str, Address],
    password: str | None,
) -> RenderedFile:
    """sentinel.conf: monitors every shard under its name, with the topology's timings."""
    spec = topology.spec.sentinel
    lines = [
        *_process_lines(
            f"redis-sentinel {node.name}", node.name, node.address, layout, topology.source
        ),
        "sentinel resolve-hostnames no",
        "sentinel deny-scripts-reconfig yes",
    ]
    if password:
        lines += [f"requirepass {_quote(password)}", f"sentinel sentinel-pass {_quote(password)}"]
    for shard in topology.shards:
        master = masters[shard.name]
        name = shard.name
        lines.append(f"sentinel monitor {name} {master.host} {master.port} {spec.quorum}")
        for option, value in sentinel_shard_settings(topology, password):
            shown = _quote(value) if option == "auth-pass" else value
            lines.append(f"sentinel {option} {name} {shown}")
    return RenderedFile(
        layout.self_rewriting_config(node.name),
        "\n".join(lines) + "\n",
        SECRET_MODE if password else PUBLIC_MODE,
        node.address.host,
    )
