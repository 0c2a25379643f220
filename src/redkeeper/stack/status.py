"""`redkeeper status`: gather what every component says (I/O), then judge health (pure).

The report is plain data (dataclasses → JSON); the CLI renders it as tables.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from redkeeper.agent.health import Health
from redkeeper.core import decide_masters
from redkeeper.model import Address
from redkeeper.process import port_open
from redkeeper.proxy.haproxy import report as haproxy_report
from redkeeper.proxy.haproxy.report import HAProxyStatus
from redkeeper.render import Layout, haproxy_plan
from redkeeper.stack import probe
from redkeeper.topology import Topology


@dataclass
class NodeStatus:
    shard: str
    name: str
    address: str
    up: bool
    role: str | None = None
    master: str | None = None
    link_up: bool | None = None
    lag_bytes: int | None = None
    connected_replicas: int | None = None
    good_replicas: int | None = None  # masters with min-replicas-to-write: online, in lag


@dataclass
class SentinelStatus:
    name: str
    address: str
    up: bool
    masters: dict[str, str] = field(default_factory=dict)  # shard -> address it reports
    epochs: dict[str, int] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)


@dataclass
class ProxyStatus:
    address: str
    up: bool
    mode: str = "restart"
    stats_up: bool = False
    curr_connections: int | None = None
    total_connections: int | None = None
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ProxyHostStatus:
    """One proxy host of several (`proxy.hosts`): its endpoint's /healthz."""

    host: str
    healthz: str  # where it was asked
    up: bool
    ok: bool = False
    verdict: str | None = None
    routes: dict[str, str] = field(default_factory=dict)
    clients: int | None = None


@dataclass
class ShardStatus:
    name: str
    master: str | None  # the verdict of core.decide_masters (None: no master decided)
    nodes: list[NodeStatus]
    write_refusal: str | None = None  # why its master answers -NOREPLICAS to every write

    @property
    def refuses_writes(self) -> bool:
        return self.write_refusal is not None


@dataclass
class StackStatus:
    shards: list[ShardStatus]
    sentinels: list[SentinelStatus]
    proxy: ProxyStatus
    agent: Health | None
    problems: list[str]
    haproxy: HAProxyStatus | None = None  # steady mode only
    running: bool = True  # False: no component of the topology answers at all
    proxy_hosts: list[ProxyHostStatus] = field(default_factory=list)  # several only

    @property
    def healthy(self) -> bool:
        return self.running and not self.problems

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = self.healthy
        for shard, raw in zip(self.shards, data["shards"], strict=True):
            raw["refuses_writes"] = shard.refuses_writes
        return data


def collect(
    topology: Topology,
    password: str | None,
    expect_agent: bool = False,
    local_processes: bool = False,
) -> StackStatus:
    """Ask every component; never raises for a component that is down.

    The agent is asked at `agent.metrics` (/healthz); with `expect_agent` (a local stack
    that runs one) an agent that does not answer is a problem. `running` is False when no
    component answers and `local_processes` (live processes recorded in the state dir) is
    False: nothing runs.
    """
    members = topology.sentinel_nodes()
    answers = probe.ask_sentinels([n.address for n in members], password)
    view = decide_masters(answers, [n.address for n in members], [s.name for s in topology.shards])
    sentinels: list[SentinelStatus] = []
    for sentinel, answer in zip(members, answers, strict=True):
        status = SentinelStatus(sentinel.name, str(sentinel.address), answer.answered)
        for name, master in (answer.reports or {}).items():
            status.masters[name] = str(master.reported_address)
            status.epochs[name] = master.config_epoch
            status.flags[name] = ",".join(sorted(master.flags))
        sentinels.append(status)

    shards: list[ShardStatus] = []
    for shard in topology.shards:
        verdict = view.verdicts[shard.name]
        decided = str(verdict.address) if verdict.ok else None
        nodes: list[NodeStatus] = []
        offsets: dict[str, int] = {}
        for index, address in enumerate(shard.nodes, start=1):
            info = probe.replication(address, password)
            name = f"{shard.name}-{index}"
            if info is None:
                nodes.append(NodeStatus(shard.name, name, str(address), False))
                continue
            offsets[str(address)] = info.offset
            nodes.append(
                NodeStatus(
                    shard.name,
                    name,
                    str(address),
                    True,
                    role="master" if info.role == "master" else "replica",
                    master=str(info.master) if info.master else None,
                    link_up=info.link_up,
                    connected_replicas=info.connected_replicas,
                    good_replicas=info.good_replicas,
                )
            )
        for node in nodes:
            if node.role == "replica" and node.master in offsets:
                node.lag_bytes = max(0, offsets[node.master] - offsets[node.address])
        shards.append(
            ShardStatus(shard.name, decided, nodes, write_refusal(topology, decided, nodes))
        )

    metrics = topology.spec.agent.metrics
    hosts = _proxy_hosts(topology)
    agent = next((h for h in hosts.values() if h is not None), None)
    proxy = _proxy_status(topology, agent)
    problems = judge(topology, shards, sentinels, proxy)
    pair: list[ProxyHostStatus] = []
    if len(hosts) > 1:
        pair = [_host_status(topology, host, health) for host, health in hosts.items()]
        problems += judge_proxy_hosts(pair)
    haproxy = None
    if topology.spec.proxy.mode == "steady":
        haproxy = haproxy_report.collect(
            haproxy_plan(topology, Layout.for_local(topology.state_dir))
        )
        problems += haproxy_report.judge(haproxy, {s.name: s.master for s in shards})
    who = "redkeeper proxy" if topology.spec.proxy.mode == "redkeeper" else "agent"
    if agent is not None and not agent.ok:
        problems.append(f"{who}: {agent.verdict} (error: {agent.last_error})")
    elif agent is None and (expect_agent or topology.spec.proxy.mode == "redkeeper") and not pair:
        problems.append(f"{who} ({metrics}) does not answer at /healthz")
    answered = (
        any(n.up for s in shards for n in s.nodes)
        or any(s.up for s in sentinels)
        or proxy.up
        or proxy.stats_up
        or agent is not None
        or (haproxy is not None and haproxy.up)
    )
    return StackStatus(
        shards, sentinels, proxy, agent, problems, haproxy, answered or local_processes, pair
    )


def _proxy_hosts(topology: Topology) -> dict[str, Health | None]:
    """/healthz of every proxy host (in parallel: a silent host costs one timeout)."""
    addresses = topology.health_addresses()
    hosts = list(addresses)
    if len(hosts) <= 1:
        return {h: probe.agent_health(addresses[h]) for h in hosts}
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return dict(zip(hosts, pool.map(lambda h: probe.agent_health(addresses[h]), hosts),
                        strict=True))  # fmt: skip


def _host_status(topology: Topology, host: str, health: Health | None) -> ProxyHostStatus:
    where = str(topology.health_addresses()[host])
    if health is None:
        return ProxyHostStatus(host, where, False)
    return ProxyHostStatus(
        host, where, True, health.ok, health.verdict, dict(health.routes), health.clients
    )


def judge_proxy_hosts(hosts: list[ProxyHostStatus]) -> list[str]:
    """Several proxy hosts: each must answer and be ok, and all route alike (pure)."""
    problems: list[str] = []
    for host in hosts:
        if not host.up:
            problems.append(f"proxy host {host.host}: /healthz ({host.healthz}) does not answer")
        elif not host.ok:
            problems.append(f"proxy host {host.host}: {host.verdict}")
    answering = [h for h in hosts if h.up]
    shards = sorted({s for h in answering for s in h.routes})
    for shard in shards:
        routes = {h.host: h.routes.get(shard, "-") for h in answering}
        if len(set(routes.values())) > 1:
            shown = ", ".join(f"{h} → {r}" for h, r in routes.items())
            problems.append(f"{shard}: the proxy hosts route it differently ({shown})")
    return problems


def write_refusal(topology: Topology, master: str | None, nodes: list[NodeStatus]) -> str | None:
    """Why the shard's master refuses writes (`min-replicas-to-write`), or None (pure).

    The master is Sentinel's (`core.decide_masters`), else the one node reporting role
    master. Redis counts a replica "good" when it is online and acked within
    `min-replicas-max-lag` s (INFO `min_slaves_good_slaves`); below the setting every write
    gets -NOREPLICAS."""
    redis = topology.spec.redis
    required = redis.min_replicas_to_write
    if required <= 0:
        return None
    masters = [n for n in nodes if n.up and n.role == "master"]
    node = next((n for n in masters if n.address == master), None)
    if node is None and master is None and len(masters) == 1:
        node = masters[0]
    if node is None:
        return None
    connected = node.connected_replicas or 0
    good = connected if node.good_replicas is None else node.good_replicas
    if good >= required:
        return None
    if connected >= required:
        return (
            f"master {node.address} has {good} of {required} required replicas connected "
            f"within min_replicas_max_lag ({redis.min_replicas_max_lag} s) "
            "(min_replicas_to_write)"
        )
    return (
        f"master {node.address} has {connected} of {required} required replicas connected "
        "(min_replicas_to_write)"
    )


def _proxy_status(topology: Topology, agent: Health | None) -> ProxyStatus:
    spec = topology.spec.proxy
    status = ProxyStatus(str(spec.listen), port_open(spec.listen.host, spec.listen.port), spec.mode)
    if spec.mode == "redkeeper":  # the redkeeper proxy reports through its /healthz
        status.stats_up = agent is not None
        status.curr_connections = agent.clients if agent is not None else None
        return status
    stats = None
    for address in _stats_addresses(topology):
        stats = probe.nutcracker_stats(address)
        if stats is not None:
            break
    if stats is not None:
        status.stats_up = True
        pool = stats.get(spec.pool, {})
        if isinstance(pool, dict):
            status.curr_connections = _int(pool.get("client_connections"))
            status.total_connections = _int(stats.get("total_connections"))
            for shard in topology.shards:
                entry = pool.get(shard.name)
                if isinstance(entry, dict):
                    status.servers[shard.name] = {
                        k: entry[k]
                        for k in ("server_connections", "server_eof", "server_err", "requests")
                        if k in entry
                    }
    return status


def _stats_addresses(topology: Topology) -> list[Address]:
    """nutcracker's stats: `proxy.stats`, or on a wildcard with several proxy hosts, each
    host's address (the first that answers speaks for the pool; the table of proxy hosts
    has each one's health)."""
    stats = topology.spec.proxy.stats
    if stats.host in ("0.0.0.0", "::") and topology.spec.proxy.hosts:
        return [Address(host, stats.port) for host in topology.proxy_hosts()]
    return [stats]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def judge(
    topology: Topology,
    shards: list[ShardStatus],
    sentinels: list[SentinelStatus],
    proxy: ProxyStatus,
) -> list[str]:
    """Every reason the stack is not healthy (pure); shards that refuse writes first."""
    problems = [f"{s.name}: refuses writes: {s.write_refusal}" for s in shards if s.write_refusal]
    for sentinel in sentinels:
        if not sentinel.up:
            problems.append(f"{sentinel.name} ({sentinel.address}) does not answer")
    for shard in shards:
        masters = [n for n in shard.nodes if n.role == "master"]
        for node in shard.nodes:
            if not node.up:
                problems.append(f"{shard.name}: {node.name} ({node.address}) does not answer")
            elif node.role == "replica" and not node.link_up:
                problems.append(f"{shard.name}: replica {node.address} link to {node.master} down")
            elif node.role == "replica" and shard.master and node.master != shard.master:
                problems.append(
                    f"{shard.name}: replica {node.address} follows {node.master}, "
                    f"Sentinel says master is {shard.master}"
                )
        if shard.master is None:
            problems.append(f"{shard.name}: no Sentinel reports a master")
        if len(masters) != 1:
            listed = ", ".join(n.address for n in masters) or "none"
            problems.append(f"{shard.name}: {len(masters)} nodes report role master ({listed})")
        elif shard.master and masters[0].address != shard.master:
            problems.append(
                f"{shard.name}: Sentinel says {shard.master}, but {masters[0].address} is master"
            )
        disagreeing = [
            s.name for s in sentinels if s.up and s.masters.get(shard.name) != shard.master
        ]
        if disagreeing:
            problems.append(f"{shard.name}: {', '.join(disagreeing)} disagree on the master")
    if topology.spec.proxy.mode == "redkeeper":
        if not proxy.up:
            problems.append(f"redkeeper proxy ({proxy.address}) does not answer")
    elif not proxy.up:
        problems.append(f"nutcracker ({proxy.address}) does not answer")
    elif not proxy.stats_up:
        problems.append(f"nutcracker stats ({topology.spec.proxy.stats}) do not answer")
    return problems
