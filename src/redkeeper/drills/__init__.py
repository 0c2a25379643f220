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

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.ok for c in self.bars)
