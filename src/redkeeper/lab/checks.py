"""Is the lab ready? One bounded check per layer (None when ready, else why not), run
inside the client host: Redis, the Sentinels, every proxy host's /healthz, the VIP.

Also `proxy_health`: each proxy host's /healthz on its own address (`status`, drills).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from redkeeper.agent.health import Health
from redkeeper.lab import net
from redkeeper.lab.plan import LabPlan
from redkeeper.process import port_open
from redkeeper.render import initial_masters
from redkeeper.stack import probe, ready
from redkeeper.topology import Topology


def redis_up(topology: Topology, password: str | None) -> str | None:
    for node in topology.redis_nodes():
        if not port_open(node.address.host, node.address.port, 0.3):
            return f"{node.name} ({node.address}) is closed"
    return ready.replicas_linked(topology.redis_nodes(), initial_masters(topology), password)


def sentinels_agree(topology: Topology, password: str | None) -> str | None:
    return ready.sentinels_ready(topology, topology.sentinel_nodes(), password)


def proxy_health(topology: Topology, timeout: float = 0.5) -> dict[str, Health | None]:
    """Each proxy host's /healthz (None: it does not answer), asked in parallel."""
    addresses = topology.health_addresses()
    hosts = list(addresses)
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        answers = pool.map(lambda h: probe.agent_health(addresses[h], timeout), hosts)
        return dict(zip(hosts, answers, strict=True))


def proxies_ok(topology: Topology) -> str | None:
    for host, health in proxy_health(topology).items():
        if health is None:
            return f"proxy host {host}: /healthz does not answer"
        if not health.ok:
            return f"proxy host {host}: {health.verdict}"
    return None


def vip_served(topology: Topology, plan: LabPlan, password: str | None) -> str | None:
    """Exactly one host holds each VIP, and a request through `proxy.listen` is served."""
    for vip in plan.vips:
        holders = net.vip_holders(plan, vip)
        if len(holders) != 1:
            return f"VIP {vip} held by {len(holders)} hosts ({', '.join(holders) or 'none'})"
    return ready.proxy_serving(topology.spec.proxy.listen, password)


def preferred_holder(topology: Topology, plan: LabPlan) -> str | None:
    """The lab host that holds the first VIP when all is well: the highest priority (with
    preempt; None without it, or without a VIP)."""
    proxy = topology.spec.proxy
    if not proxy.vips or not proxy.keepalived.preempt:
        return None
    priorities = proxy.priorities(0)
    best = proxy.proxy_hosts()[priorities.index(max(priorities))]
    host = plan.by_address(best)
    return None if host is None else host.name
