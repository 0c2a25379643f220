"""The lab's drill scenarios (pure): faults across hosts, and the bars each must meet.

Targets are symbolic and resolved when a scenario starts: `proxy:active` (the proxy host
that holds the VIP), `proxy:standby` (the other one), `master-host:1` (the host of shard 1's
master), `rest:r` (every Redis/Sentinel host but that one). Durations are `seconds` +
`advert` × keepalived's advert_int + `dam` × Sentinel's down-after. `describe()` is what
`redkeeper drill --lab --list` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from redkeeper.drills.scenarios import DrillError

Action = Literal[
    "crash-host",  # SIGKILL every process of the host and cut its link (a power loss)
    "kill-unit",  # SIGKILL one unit of the host (`endpoint`: the proxy / the agent)
    "stop-unit",  # SIGSTOP it
    "cont-unit",  # SIGCONT it
    "isolate",  # iptables inside the host: it reaches no other host
    "partition",  # groups cut from each other (hosts in no group reach everyone)
    "heal",  # remove every partition, links up
    "sleep",
    "wait-vip",  # the VIP is held by the target only, and served
    "wait-failover",  # a Sentinel majority names a new master of shard N
    "wait-writes",  # writes through the VIP succeed again on every shard
    "wait-refusal",  # the isolated old master answers -NOREPLICAS to the probe
    "wait-demoted",  # the old master of shard N reports role slave
    "snapshot-old-master",  # read what the old master holds (before a heal discards it)
]


@dataclass(frozen=True)
class LabStep:
    action: Action
    targets: tuple[str, ...] = ()
    unit: str = ""
    groups: tuple[tuple[str, ...], ...] = ()
    seconds: float = 0.0
    advert: float = 0.0
    dam: float = 0.0

    def duration(self, advert_s: float, down_after_s: float) -> float:
        return self.seconds + self.advert * advert_s + self.dam * down_after_s

    def describe(self) -> str:
        what = ", ".join(self.targets)
        if self.action == "sleep":
            parts = [f"{self.seconds:g} s"] if self.seconds else []
            parts += [f"{self.advert:g} × advert_int"] if self.advert else []
            parts += [f"{self.dam:g} × down-after"] if self.dam else []
            return "hold " + " + ".join(parts)
        if self.action == "partition":
            return "partition " + " | ".join("+".join(g) for g in self.groups)
        if self.unit:
            return f"{self.action} {self.unit} on {what}"
        return f"{self.action} {what}".strip()


@dataclass(frozen=True)
class LabBars:
    """What a lab scenario must show (evaluated by `lab.figures`).

    wu: bound on write unavailability through the VIP ("advert": 3 × advert_int + 1 s,
    "dam": down-after + 5 s, "none": reported only). lost: "zero", "inflight" (≤ connections
    per master cut off: the in-flight bound of drills.md) or "report" (a split where the old
    master keeps acknowledging: counted, no bar). failover: every shard whose master is on
    shard 1's master's host fails over exactly once (the masters move between hosts from
    one scenario to the next), no other shard (else no failover at all). refusal: the
    isolated old master refuses writes within min_replicas_max_lag + 1.5 s.
    vip_after_heal: the VIP is on both hosts for at most 2 × advert_int after the heal.
    routes_agree: both proxies always route every shard alike (a partition's minority side
    excepted). heal_errors_zero: no write through the VIP fails after the heal.
    """

    wu: Literal["advert", "dam", "none"] = "advert"
    lost: Literal["zero", "inflight", "report"] = "zero"
    failover: bool = False
    refusal: bool = False
    vip_after_heal: bool = False
    routes_agree: bool = True
    heal_errors_zero: bool = False
    vip_moves: bool = False  # the VIP ends on the standby proxy

    def describe(self) -> list[str]:
        out: list[str] = []
        if self.wu == "advert":
            out.append("write unavailability through the VIP ≤ 3 × advert_int + 1 s")
        elif self.wu == "dam":
            out.append("write unavailability through the VIP ≤ down-after + 5 s")
        else:
            out.append("write unavailability through the VIP reported only")
        out.append(
            "exactly 1 failover of each shard whose master was on the cut host, 0 elsewhere"
            if self.failover
            else "0 failovers"
        )
        if self.vip_moves:
            out.append("the VIP moves to the standby proxy")
        if self.refusal:
            out.append("the isolated old master refuses writes within min_replicas_max_lag + 1.5 s")
        if self.vip_after_heal:
            out.append("the VIP is on both hosts ≤ 2 × advert_int after the heal")
        if self.routes_agree:
            out.append("both proxies always route each shard to the same master")
        if self.heal_errors_zero:
            out.append("0 write errors through the VIP after the heal (returning old master)")
        return out


@dataclass(frozen=True)
class LabScenario:
    name: str
    summary: str
    steps: tuple[LabStep, ...]
    bars: LabBars
    notes: tuple[str, ...] = field(default=())
    probe_old_master: bool = False  # write to shard 1's old master from inside its host
    compare_seed002: bool = False  # the same run through HAProxy with a role:master check

    def bars_text(self) -> list[str]:
        return self.bars.describe()

    def describe(self) -> str:
        lines = [f"{self.name}: {self.summary}"]
        lines.append("  steps: " + "; ".join(s.describe() for s in self.steps))
        lines.append("  bars:  " + "; ".join(self.bars.describe()))
        lines += [f"  note:  {n}" for n in self.notes]
        return "\n".join(lines)


_ACTIVE = ("proxy:active",)
_STANDBY = ("proxy:standby",)
_MASTER_HOST = ("master-host:1",)
_WAIT_WRITES = LabStep("wait-writes")
_ISOLATE = (
    LabStep("isolate", _MASTER_HOST),
    LabStep("wait-failover", ("1",)),
    _WAIT_WRITES,
    LabStep("wait-refusal", ("1",)),
)

SCENARIOS: tuple[LabScenario, ...] = (
    LabScenario(
        "proxy-host-dies",
        "the active proxy host dies: every process on it SIGKILLed and its link cut (a "
        "power loss); the standby takes the VIP",
        (
            LabStep("crash-host", _ACTIVE),
            LabStep("wait-vip", _STANDBY),
            _WAIT_WRITES,
            LabStep("sleep", seconds=1.0),
        ),
        LabBars(vip_moves=True),
    ),
    LabScenario(
        "proxy-dies",
        "only the endpoint on the active proxy host is SIGKILLed; keepalived lives and its "
        "track script moves the VIP",
        (
            LabStep("kill-unit", _ACTIVE, unit="endpoint"),
            LabStep("wait-vip", _STANDBY),
            _WAIT_WRITES,
            LabStep("sleep", seconds=1.0),
        ),
        LabBars(vip_moves=True),
    ),
    LabScenario(
        "proxy-frozen",
        "the endpoint on the active proxy host is SIGSTOPped for 30 s (its /healthz times "
        "out), then SIGCONTed: it takes the VIP back (preempt)",
        (
            LabStep("stop-unit", _ACTIVE, unit="endpoint"),
            LabStep("wait-vip", _STANDBY),
            _WAIT_WRITES,
            LabStep("sleep", seconds=30.0),
            LabStep("cont-unit", _ACTIVE, unit="endpoint"),
            LabStep("wait-vip", _ACTIVE),
            _WAIT_WRITES,
            LabStep("sleep", seconds=1.0),
        ),
        LabBars(),
        (
            "the workload's connections to the frozen proxy wait for their 2 s timeout; the "
            "return of the VIP after SIGCONT (preempt) cuts the connections to the standby once",
        ),
    ),
    LabScenario(
        "master-host-isolated",
        "the host of shard 1's master is cut off by iptables inside it; Sentinel's majority "
        "promotes a replica, both proxies follow",
        (*_ISOLATE, LabStep("snapshot-old-master", ("1",)), LabStep("heal")),
        LabBars(wu="dam", lost="inflight", failover=True, refusal=True),
        probe_old_master=True,
    ),
    LabScenario(
        "jepsen-split",
        "partition: shard 1's master host + the active proxy host on one side; the Sentinel "
        "majority, the replicas and the standby proxy on the other; the client reaches both",
        (
            LabStep(
                "partition", groups=(("master-host:1", "proxy:active"), ("rest:r", "proxy:standby"))
            ),
            LabStep("wait-failover", ("1",)),
            LabStep("wait-refusal", ("1",)),
            _WAIT_WRITES,
            LabStep("sleep", seconds=2.0),
            LabStep("snapshot-old-master", ("1",)),
            LabStep("heal"),
            LabStep("wait-demoted", ("1",)),
        ),
        LabBars(wu="none", lost="report", failover=True, refusal=True, routes_agree=False),
        (
            "the active proxy keeps the old routes (fail static: no Sentinel majority) and, "
            "alone on its side, the VIP: the client follows the standby's gratuitous ARP",
        ),
        probe_old_master=True,
    ),
    LabScenario(
        "proxy-pair-split",
        "partition the two proxy hosts from each other for 5 s (both take the VIP), then heal",
        (
            LabStep("partition", groups=(_ACTIVE, _STANDBY)),
            LabStep("sleep", seconds=5.0, advert=3.0),
            LabStep("heal"),
            LabStep("sleep", seconds=2.0, advert=3.0),
        ),
        LabBars(wu="advert", vip_after_heal=True),
    ),
    LabScenario(
        "heal-returns-old-master",
        "isolate shard 1's master host until the failover is done, heal, and watch the old "
        "master until Sentinel demotes it; side by side, the same writes through HAProxy "
        "with a role:master health check",
        (
            *_ISOLATE,
            LabStep("sleep", seconds=2.0),
            LabStep("heal"),
            LabStep("wait-demoted", ("1",)),
            LabStep("sleep", seconds=1.0),
        ),
        LabBars(wu="dam", lost="inflight", failover=True, heal_errors_zero=True),
        (
            "comparison: reconnecting writers (one connection per write) through the VIP and "
            "through HAProxy checking `role:master`, which admits the returning old master",
        ),
        probe_old_master=True,
        compare_seed002=True,
    ),
)

BY_NAME: dict[str, LabScenario] = {s.name: s for s in SCENARIOS}
CI_SUBSET = ("proxy-host-dies", "master-host-isolated")


def select(names: Sequence[str]) -> list[LabScenario]:
    """The scenarios named (all, in registry order, when none is named)."""
    if not names:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise DrillError(
            f"unknown lab scenario(s): {', '.join(unknown)} "
            f"(fix: one of {', '.join(BY_NAME)}; see `redkeeper drill --lab --list`)"
        )
    return [BY_NAME[n] for n in names]
