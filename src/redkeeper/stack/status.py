"""`redkeeper status`: gather what every component says (I/O), then judge health (pure).

The report is plain data (dataclasses → JSON); the CLI renders it as tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from redkeeper.agent.health import Health
from redkeeper.core import decide_masters
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
    stats_up: bool = False
    curr_connections: int | None = None
    total_connections: int | None = None
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ShardStatus:
    name: str
    master: str | None  # the verdict of core.decide_masters (None: no master decided)
    nodes: list[NodeStatus]


@dataclass
class StackStatus:
    shards: list[ShardStatus]
    sentinels: list[SentinelStatus]
    proxy: ProxyStatus
    agent: Health | None
    problems: list[str]
    haproxy: HAProxyStatus | None = None  # steady mode only

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = self.healthy
        return data


def collect(topology: Topology, password: str | None, expect_agent: bool = False) -> StackStatus:
    """Ask every component; never raises for a component that is down.

    The agent is asked at `agent.metrics` (/healthz); with `expect_agent` (a local stack
    that runs one) an agent that does not answer is a problem.
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
                )
            )
        for node in nodes:
            if node.role == "replica" and node.master in offsets:
                node.lag_bytes = max(0, offsets[node.master] - offsets[node.address])
        shards.append(ShardStatus(shard.name, decided, nodes))

    metrics = topology.spec.agent.metrics
    agent = probe.agent_health(metrics) if metrics is not None else None
    proxy = _proxy_status(topology, agent)
    problems = judge(topology, shards, sentinels, proxy)
    haproxy = None
    if topology.spec.proxy.mode == "steady":
        haproxy = haproxy_report.collect(
            haproxy_plan(topology, Layout.for_local(topology.state_dir))
        )
        problems += haproxy_report.judge(haproxy, {s.name: s.master for s in shards})
    who = "redkeeper proxy" if topology.spec.proxy.mode == "redkeeper" else "agent"
    if agent is not None and not agent.ok:
        problems.append(f"{who}: {agent.verdict} (error: {agent.last_error})")
    elif agent is None and (expect_agent or topology.spec.proxy.mode == "redkeeper"):
        problems.append(f"{who} ({metrics}) does not answer at /healthz")
    return StackStatus(shards, sentinels, proxy, agent, problems, haproxy)


def _proxy_status(topology: Topology, agent: Health | None) -> ProxyStatus:
    spec = topology.spec.proxy
    status = ProxyStatus(str(spec.listen), port_open(spec.listen.host, spec.listen.port))
    if spec.mode == "redkeeper":  # the redkeeper proxy reports through its /healthz
        status.stats_up = agent is not None
        status.curr_connections = agent.clients if agent is not None else None
        return status
    stats = probe.nutcracker_stats(spec.stats)
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


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def judge(
    topology: Topology,
    shards: list[ShardStatus],
    sentinels: list[SentinelStatus],
    proxy: ProxyStatus,
) -> list[str]:
    """Every reason the stack is not healthy (pure)."""
    problems: list[str] = []
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
