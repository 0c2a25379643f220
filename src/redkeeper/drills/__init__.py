"""Failover drills: fault scenarios under a write workload, with measured figures, and bench.

- `scenarios`: the registry (steps and pass bars), pure;
- `measure`: the drill's data model and every figure (WU, lost writes, healthy-shard errors,
  apply latency, failovers, wrong-shard keys, bars and targets), pure;
- `workload`: writer threads through the proxy, read-back and scans of the shards;
- `timeline`: Sentinel events (PSUBSCRIBE *) and the agent's applies;
- `runner`: the stack's life, the steps, restore between scenarios;
- `report`: rich table and JSON; `plots` (timeline PNGs) and `html_report` need the
  `report` extra (matplotlib);
- `bench`: redis-benchmark against a master and the proxy.

This module owns the data model the others share: what a scenario run recorded (`Op`,
`EventRecord`, `ApplyRecord` (the agent's `health.Apply`), `AgentSample`, `Fault`,
`ScenarioRecord`) and what `measure` makes of it (`ShardFigures`, `Check`,
`ScenarioFigures`). It imports no submodule on purpose: the CLI loads every command module
at start-up (the agent too), and the plots pull in matplotlib. Import the submodule you
need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redkeeper.agent.health import Apply as ApplyRecord

__all__ = [
    "AgentSample",
    "ApplyRecord",
    "Check",
    "EventRecord",
    "Fault",
    "LabFigures",
    "Op",
    "ScenarioFigures",
    "ScenarioRecord",
    "ShardFigures",
]


@dataclass(frozen=True)
class Op:
    """One write of the workload: which connection, shard and key; when; the outcome."""

    conn: int
    shard: str
    key: str
    start: float  # unix time the command was sent
    end: float  # unix time the reply (or the error) came
    ok: bool
    error: str = ""  # "<kind>: <message>" when not ok


@dataclass(frozen=True)
class EventRecord:
    """One Sentinel pub/sub message. `shard`: the master name it concerns (None if none);
    `about_master`: the instance is that master (or it is a +switch-master)."""

    time: float
    sentinel: str
    channel: str
    payload: str
    shard: str | None
    about_master: bool


@dataclass(frozen=True)
class AgentSample:
    time: float
    answered: bool
    fail_static: bool
    verdict: str


@dataclass(frozen=True)
class Fault:
    """A step's action on one process. Faults of one step share `group`."""

    time: float
    group: int
    action: str  # kill | stop | cont | restart
    process: str  # shard1-1, sentinel-2, agent
    shard: str | None = None  # set for Redis nodes
    role: str | None = None  # "master" | "replica" when the scenario started


@dataclass
class ScenarioRecord:
    """Everything the runner recorded for one scenario run."""

    scenario: str
    shards: list[str]
    down_after_ms: int
    failover_timeout_ms: int
    connections: int
    started: float
    ended: float
    ops: list[Op] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    applies: list[ApplyRecord] = field(default_factory=list)
    samples: list[AgentSample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    present: dict[str, set[str]] = field(default_factory=dict)  # acked keys found, per shard
    misplaced: dict[str, int] = field(default_factory=dict)  # wrong-shard keys per master
    keys_scanned: int = 0
    scan_complete: bool = True
    old_master_values: dict[str, dict[str, str]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class ShardFigures:
    shard: str
    faulted: bool
    writes_ok: int
    writes_failed: int
    wu_ms: float | None  # WU of the fault's own outage
    wu_window_ms: float | None  # first failure to last failure of the window: every outage
    outages: int
    recovered: bool
    acked: int
    lost: int
    lost_sample: list[str]
    healthy_errors: int
    healthy_errors_max_per_conn: int
    failovers: int
    switches: list[str]
    apply_latency_ms: list[float]
    client_apply_ms: float | None
    misplaced: int
    old_master_writes_after_switch: int | None
    errors_by_kind: dict[str, int]
    max_write_ms: float | None


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class LabFigures:
    """What a drill across the lab's hosts adds (`redkeeper drill --lab`): the VIP, the two
    proxies, the isolated old master, and the comparison with a role:master check."""

    vip: str
    active_proxy: str  # the VIP's holder when the scenario started
    standby_proxy: str | None
    wu_ms: float | None  # write unavailability through the VIP: the worst shard
    wu_bound_ms: float | None
    vip_holders_end: list[str]
    vip_both_ms: float  # time with the VIP on two hosts (links up)
    vip_both_after_heal_ms: float | None
    vip_none_ms: float
    vip_resolution_ms: float  # how often the holders were sampled
    routes_always_agreed: bool  # in every sample, both proxies routed every shard alike
    routes_disagree_ms: float
    old_master: str | None = None  # shard 1's master when the scenario started
    min_replicas_max_lag_s: int | None = None
    refusal_after_cut_ms: float | None = None  # the old master's first -NOREPLICAS
    acked_after_cut: int | None = None  # writes it acknowledged after the cut (all lost)
    last_ack_after_cut_ms: float | None = None
    heal_errors: int | None = None  # writes through the VIP failed after the heal
    compare: dict[str, dict[str, int]] | None = None  # writer -> ok/failed/after-heal errors


@dataclass
class ScenarioFigures:
    scenario: str
    started: float
    duration_s: float
    ops: int
    lost_bound: int
    fail_static_observed: bool
    applies: int
    apply_latency_ms: list[float]
    apply_log: list[str]  # "+3.21 s shard1 -> 127.0.0.1:6667 (76 ms after the notice)"
    shards: list[ShardFigures]
    bars: list[Check]
    targets: list[Check]
    error: str | None = None
    lab: LabFigures | None = None  # drills across the lab's hosts only

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.ok for c in self.bars)
