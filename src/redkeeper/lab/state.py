"""The lab's state file, `<lab dir>/lab.json`: the plan (hosts, namespaces, subnet), every
process the lab started (host, unit, PID, start time), and the partition in force.

Written atomically after every change, so `lab down` (or a later command) can always stop
exactly what runs, also after a crash of the command that started it. Processes are also
found by namespace membership (`net.processes_in`), so even one whose record never made it
to disk cannot escape `down`.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redkeeper.fsutil import atomic_write
from redkeeper.lab.plan import LabHost, LabPlan
from redkeeper.process import ProcessRecord

STATE_FILE = "lab.json"


@dataclass(frozen=True)
class HostProcess:
    """A process of a lab host: `unit` is the unit's process name (shard1-1, keepalived)."""

    host: str
    unit: str
    record: ProcessRecord

    @property
    def name(self) -> str:
        return f"{self.host}/{self.unit}"

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "unit": self.unit, **self.record.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostProcess:
        return cls(str(data["host"]), str(data["unit"]), ProcessRecord.from_json(data))


@dataclass(frozen=True)
class LabState:
    plan: LabPlan
    topology: str  # the topology file the lab runs
    started: float
    processes: tuple[HostProcess, ...] = ()
    partition: tuple[tuple[str, ...], ...] | None = None
    links_down: tuple[str, ...] = field(default=())

    def with_process(self, process: HostProcess) -> LabState:
        kept = tuple(p for p in self.processes if p.name != process.name)
        return replace(self, processes=(*kept, process))

    def without_process(self, host: str, unit: str) -> LabState:
        kept = tuple(p for p in self.processes if (p.host, p.unit) != (host, unit))
        return replace(self, processes=kept)

    def process(self, host: str, unit: str) -> HostProcess | None:
        return next((p for p in self.processes if p.host == host and p.unit == unit), None)

    def of_host(self, host: str) -> list[HostProcess]:
        return [p for p in self.processes if p.host == host]


def plan_to_json(plan: LabPlan) -> dict[str, Any]:
    return {
        "prefix": plan.prefix,
        "subnet": str(plan.subnet),
        "interface": plan.interface,
        "vips": list(plan.vips),
        "hosts": {h.name: h.to_json() for h in plan.hosts},
    }


def plan_from_json(data: dict[str, Any]) -> LabPlan:
    hosts = tuple(
        LabHost(
            str(name),
            str(entry["address"]),
            tuple(str(r) for r in entry["roles"]),
            str(entry["namespace"]),
        )
        for name, entry in data["hosts"].items()
    )
    return LabPlan(
        str(data["prefix"]),
        ipaddress.IPv4Network(str(data["subnet"])),
        str(data["interface"]),
        hosts,
        tuple(str(v) for v in data.get("vips", [])),
    )


def read_state(lab_dir: Path) -> LabState | None:
    """The lab of `lab_dir`, or None when there is none (or its file is unreadable)."""
    try:
        data: Any = json.loads((lab_dir / STATE_FILE).read_text())
        partition = data.get("partition")
        return LabState(
            plan_from_json(data["plan"]),
            str(data["topology"]),
            float(data["started"]),
            tuple(HostProcess.from_json(p) for p in data.get("processes", [])),
            None if partition is None else tuple(tuple(str(h) for h in g) for g in partition),
            tuple(str(h) for h in data.get("links_down", [])),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_state(lab_dir: Path, state: LabState) -> None:
    payload = {
        "plan": plan_to_json(state.plan),
        "topology": state.topology,
        "started": state.started,
        "processes": [p.to_json() for p in state.processes],
        "partition": None if state.partition is None else [list(g) for g in state.partition],
        "links_down": list(state.links_down),
    }
    lab_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(lab_dir / STATE_FILE, json.dumps(payload, indent=2) + "\n", backup=False)


def clear_state(lab_dir: Path) -> None:
    (lab_dir / STATE_FILE).unlink(missing_ok=True)
