"""A reshard's data model: its journal record, settings, result, and the context one run
works with (`build_context`: the two topologies, rings, sources and destinations, refusing a
change whose sources and destinations overlap). The phases are in `reshard`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redkeeper.data.ring import ring_for
from redkeeper.errors import OperationError, UsageError
from redkeeper.ops.interrupt import Interrupts
from redkeeper.ops.journal import Journal
from redkeeper.ops.reshard_plan import Plan, Rings, possible_moves
from redkeeper.stack import LocalStack
from redkeeper.topology import DEFAULT_SOURCE, Topology
from redkeeper.topology.schema import ShardSpec

KIND = "reshard"
PHASES = ("planned", "shard-up", "copying", "switching", "signaled", "switched", "deleted")
Log = Callable[[str], None]
OnTotal = Callable[[str, int], None]
Advance = Callable[[int], None]


@dataclass(frozen=True)
class ReshardSettings:
    max_pause_ms: int = 1000  # per cutover attempt, before the switch is committed
    safety_pause_ms: int = 30_000  # the sources' pause once the switch is committed
    tolerance: float = 0.01  # moved keys may exceed the plan by this share…
    tolerance_keys: int = 100  # …plus this many (keys written meanwhile)
    catch_up_rounds: int = 20
    cutover_dirty: int = 2000  # pause only when at most this many keys wait for a copy
    cutover_attempts: int = 3
    switch_timeout: float = 10.0


@dataclass
class ReshardRecord:
    """The journal of one reshard."""

    op: str  # add | remove
    shard: str
    topology: str  # the topology file's path
    old_shards: list[dict[str, Any]]
    new_shards: list[dict[str, Any]]
    planned: dict[str, Any]
    phase: str = "planned"
    notify: dict[str, str] = field(default_factory=dict)  # master → original setting
    pause_until: float | None = None  # unix time the committed cutover's pause ends
    moved: int = 0
    deleted: int = 0
    copied: int = 0
    bytes: int = 0
    copy_keys: int = 0  # keys copied by the full pass, and its duration
    copy_seconds: float = 0.0
    pauses_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    resumed: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, journal: Journal, data: dict[str, Any]) -> ReshardRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            record = cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise journal.problem(f"malformed: {exc}") from None
        if record.phase not in PHASES or record.op not in ("add", "remove"):
            raise journal.problem(f"unknown phase or operation: {record.phase}, {record.op}")
        return record

    @property
    def plan(self) -> Plan:
        return Plan.from_json(self.planned)


@dataclass
class ReshardResult:
    op: str
    shard: str
    planned: int
    moved: int
    deleted: int
    copied: int
    bytes: int
    keys_per_second: float
    pauses_ms: list[float]
    seconds: float
    resumed: int
    warnings: list[str] = field(default_factory=list)

    @property
    def longest_pause_ms(self) -> float:
        return max(self.pauses_ms, default=0.0)

    @property
    def total_pause_ms(self) -> float:
        return sum(self.pauses_ms)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["longest_pause_ms"] = self.longest_pause_ms
        data["total_pause_ms"] = self.total_pause_ms
        return data


@dataclass
class Hooks:
    """How an operation reports: log lines, and a progress bar (start a total, advance)."""

    log: Log = lambda _m: None
    on_total: OnTotal | None = None
    advance: Advance | None = None


def with_shards(topology: Topology, shards: list[dict[str, Any]] | list[ShardSpec]) -> Topology:
    specs = [s if isinstance(s, ShardSpec) else ShardSpec.model_validate(s) for s in shards]
    return dataclasses.replace(topology, spec=topology.spec.model_copy(update={"shards": specs}))


def shard_json(shard: ShardSpec) -> dict[str, Any]:
    return shard.model_dump(mode="json")


@dataclass
class Context:
    """Everything one run of a reshard works with."""

    topology: Topology  # as loaded from the file now
    path: Path
    old: Topology
    new: Topology
    record: ReshardRecord
    journal: Journal
    stack: LocalStack
    settings: ReshardSettings
    hooks: Hooks
    interrupts: Interrupts
    rings: Rings
    sources: list[str]
    destinations: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def union(self) -> Topology:
        """The topology that has every shard involved (Sentinel monitors them all)."""
        return self.new if self.record.op == "add" else self.old

    @property
    def password(self) -> str | None:
        return self.topology.password()

    @property
    def db(self) -> int:
        return self.topology.spec.proxy.redis_db

    def save(self, phase: str | None = None) -> None:
        if phase is not None:
            self.record.phase = phase
        self.journal.write(self.record.to_json())

    def log(self, message: str) -> None:
        self.hooks.log(message)


def build_context(
    topology: Topology,
    record: ReshardRecord,
    journal: Journal,
    settings: ReshardSettings,
    hooks: Hooks,
    interrupts: Interrupts,
) -> Context:
    """The rings, sources and destinations of `record` (refusing what cannot be done)."""
    old = with_shards(topology, record.old_shards)
    new = with_shards(topology, record.new_shards)
    pairs = possible_moves(ring_for(old), ring_for(new))
    if pairs is None:
        raise OperationError(
            "reshard: distribution modula moves keys between every pair of shards, which "
            "cannot be paused apart (fix: use ketama)"
        )
    sources = sorted({src for src, _ in pairs})
    destinations = sorted({dst for _, dst in pairs})
    both = set(sources) & set(destinations)
    if both:
        raise OperationError(
            f"reshard: keys would move between existing shards ({', '.join(sorted(both))} "
            "both lose and gain keys: their weights differ) (fix: give every shard the same "
            "weight, or the new shard the weight the others share)"
        )
    return Context(
        topology,
        Path(topology.source),
        old,
        new,
        record,
        journal,
        LocalStack(topology),
        settings,
        hooks,
        interrupts,
        Rings(ring_for(old), ring_for(new)),
        sources,
        destinations,
    )


def require_file(topology: Topology) -> Path:
    if topology.source == DEFAULT_SOURCE:
        raise UsageError(
            "reshard edits the topology file: pass -c FILE, the file the stack was started "
            "with (fix: `redkeeper init topology.yaml`, then `redkeeper up -c topology.yaml`)"
        )
    return Path(topology.source)
