"""When is a process of the local stack ready? One check per kind, for `up` and `start`.

Each check returns None when ready, else the reason it is not (what `waiting.poll` shows
when its bound passes). They only read (bounded probes); they never start or stop anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from redkeeper.core import decide_masters
from redkeeper.model import Address
from redkeeper.process import port_open
from redkeeper.sentinel.client import query_replicas
from redkeeper.stack import probe
from redkeeper.topology import RedisNode, SentinelNode, Topology

Check = Callable[[], str | None]


def replicas_linked(
    nodes: Sequence[RedisNode], masters: dict[str, Address], password: str | None
) -> str | None:
    """Every node of `nodes` that is not its shard's master has master_link_status:up."""
    for node in nodes:
        if node.address == masters[node.shard]:
            continue
        info = probe.replication(node.address, password)
        if info is None or not info.link_up:
            return f"replica {node.name} ({node.address}) has no link to its master"
    return None


def sentinels_ready(
    topology: Topology, nodes: Sequence[SentinelNode], password: str | None
) -> str | None:
    """Each Sentinel of `nodes` monitors every shard, knows the other Sentinels and every
    replica, and CKQUORUM passes."""
    others = len(topology.sentinel_nodes()) - 1
    for node in nodes:
        masters = probe.sentinel_masters(node.address, password)
        if masters is None:
            return f"{node.name} does not answer"
        for shard in topology.shards:
            info = masters.get(shard.name)
            if info is None:
                return f"{node.name} does not monitor {shard.name}"
            if info.num_other_sentinels < others:
                return (
                    f"{node.name} knows {info.num_other_sentinels} of {others} other "
                    f"Sentinels for {shard.name}"
                )
            if info.num_replicas < len(shard.replicas):
                return f"{node.name} knows {info.num_replicas} replicas of {shard.name}"
            reason = probe.ckquorum(node.address, shard.name, password)
            if reason:
                return f"{node.name}: CKQUORUM {shard.name}: {reason}"
    return None


def proxy_serving(listen: Address, password: str | None) -> str | None:
    """A GET through the proxy answers."""
    try:
        with probe.client(listen, password, 0.5) as conn:
            conn.get("redkeeper:ready-probe")
    except Exception as exc:  # any failure means: not serving yet
        return f"{type(exc).__name__}: {exc}"
    return None


def redis_node_ready(topology: Topology, node: RedisNode, password: str | None) -> str | None:
    """A (re)started Redis node is back in its shard: it answers; it is the master Sentinel
    names, or a replica of that master with its link up that no answering Sentinel flags
    down. (A returning old master says role master until Sentinel demotes it, ~8 s.)"""
    info = probe.replication(node.address, password)
    if info is None:
        return f"{node.name} ({node.address}) does not answer"
    sentinels = topology.spec.sentinel.nodes
    view = decide_masters(probe.ask_sentinels(sentinels, password), sentinels, [node.shard])
    verdict = view.verdicts[node.shard]
    master = verdict.address if verdict.ok else None
    if master is None:
        return f"no Sentinel majority names a master of {node.shard}"
    if info.role == "master":
        if node.address == master:
            return None
        return f"{node.name} still says role master; Sentinel makes it a replica of {master}"
    if info.master != master or not info.link_up:
        return f"{node.name} has no link to the master {master} yet"
    for sentinel in sentinels:
        replicas = asyncio.run(query_replicas(sentinel, [node.shard], password=password))
        if replicas is None:
            continue  # a silent Sentinel does not block; the majority above answered
        listed = {r.address: r for r in replicas.get(node.shard, [])}
        report = listed.get(node.address)
        if report is None:
            return f"Sentinel {sentinel} does not list {node.name} as a replica yet"
        if report.down:
            return f"Sentinel {sentinel} still flags {node.name} down"
    return None


def port_ready(address: Address) -> str | None:
    return None if port_open(address.host, address.port) else f"{address} is closed"


def agent_answers(topology: Topology) -> str | None:
    """The agent's /healthz answers (whatever it says), when it has a metrics address."""
    metrics = topology.spec.agent.metrics
    if metrics is not None and probe.agent_health(metrics) is None:
        return f"the agent's /healthz ({metrics}) does not answer yet"
    return None


def agent_ready(topology: Topology, password: str | None) -> str | None:
    """The agent answers /healthz with ok, and the proxy it runs serves."""
    metrics = topology.spec.agent.metrics
    if metrics is not None:
        health = probe.agent_health(metrics)
        if health is None:
            return f"the agent ({metrics}) does not answer"
        if not health.ok:
            return f"the agent says {health.verdict}"
    return proxy_serving(topology.spec.proxy.listen, password)
