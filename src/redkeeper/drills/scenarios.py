"""The drill scenarios (pure): a registry of named fault scripts and the bars each must meet.

A `Scenario` is data: an ordered list of `Step`s (kill, stop, cont, restart, sleep, wait …)
whose targets are symbolic ("master:1" = the node that was master of the first shard when the
scenario started, "replica:*", "sentinels:majority", "agent"), and the `Bars` that decide
pass/fail. The runner resolves targets against the live stack; `measure` evaluates the bars.
`describe()` is what `redkeeper drill --list` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from redkeeper.core import majority
from redkeeper.errors import RedkeeperError
from redkeeper.model import Address

Action = Literal[
    "kill",  # SIGKILL
    "stop",  # SIGSTOP
    "cont",  # SIGCONT
    "restart",  # start a killed process again with the same argv
    "sleep",  # seconds + dam × down-after
    "wait-failover",  # a majority of Sentinels reports a new master for the shard(s)
    "wait-writes",  # the workload's writes succeed again on the shard(s)
    "wait-event",  # some Sentinel published one of `events` about the shard(s)
    "wait-fail-static",  # the agent reports fail_static
    "watch-old-master",  # read what the old (resumed) master accepts until it is demoted
]

WuBound = Literal["dam+5s", "dam+2ft+5s", "none"]


class DrillError(RedkeeperError):
    """A drill could not run (unknown scenario, a stack that does not recover, …)."""

    exit_code = 7


class DrillFailedError(RedkeeperError):
    """Every scenario ran, and at least one missed one of its bars."""

    exit_code = 1


@dataclass(frozen=True)
class Step:
    """One step of a scenario. Durations: `seconds` + `dam` × down-after."""

    action: Action
    targets: tuple[str, ...] = ()
    seconds: float = 0.0
    dam: float = 0.0
    events: tuple[str, ...] = ()
    timeout: float = 0.0  # extra seconds for waits (beyond the runner's default bound)

    def duration(self, down_after_s: float) -> float:
        return self.seconds + self.dam * down_after_s

    def describe(self) -> str:
        what = ", ".join(self.targets)
        if self.action == "sleep":
            parts = [f"{self.seconds:g} s"] if self.seconds else []
            parts += [f"{self.dam:g} × down-after"] if self.dam else []
            return "hold " + " + ".join(parts)
        if self.action == "wait-event":
            return f"wait for {' / '.join(self.events)} on {what}"
        return f"{self.action} {what}".strip()


@dataclass(frozen=True)
class Bars:
    """What a scenario must show to pass (evaluated by `measure.evaluate`).

    failover_shards: shard selectors ("1", "2", "*") that must fail over exactly once; every
    other shard must not fail over at all. masters_at_risk: how many masters lose their
    unreplicated writes (killed or frozen and replaced); the lost-writes bound is
    connections × masters_at_risk (docs/drills.md). wu: bound on the failed shards' write
    unavailability ("none": the shard stays down until restored, WU is only reported).
    """

    failover_shards: tuple[str, ...]
    masters_at_risk: int | Literal["*"]
    wu: WuBound = "dam+5s"
    fail_static: bool = False
    healthy_errors_zero: bool = False
    old_master_quiet: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    steps: tuple[Step, ...]
    bars: Bars
    notes: tuple[str, ...] = field(default=())

    def bars_text(self) -> list[str]:
        return describe_bars(self.bars)

    def describe(self) -> str:
        lines = [f"{self.name}: {self.summary}"]
        lines.append("  steps: " + "; ".join(s.describe() for s in self.steps))
        lines.append("  bars:  " + "; ".join(describe_bars(self.bars)))
        lines += [f"  note:  {n}" for n in self.notes]
        return "\n".join(lines)


def describe_bars(bars: Bars) -> list[str]:
    if bars.failover_shards:
        failing = ", ".join(
            "every shard" if s == "*" else f"shard {s}" for s in bars.failover_shards
        )
        out = [f"exactly 1 failover on {failing}, 0 elsewhere"]
    else:
        out = ["0 failovers"]
    risk = bars.masters_at_risk
    if risk == 0:
        out.append("0 acknowledged writes lost")
    else:
        masters = "shards" if risk == "*" else str(risk)
        out.append(f"acknowledged writes lost ≤ connections × {masters}")
    out.append("0 keys on the wrong shard")
    if bars.wu == "dam+5s":
        out.append("write unavailability of the faulted shard ≤ down-after + 5 s, in one outage")
    elif bars.wu == "dam+2ft+5s":
        out.append("write unavailability ≤ down-after + 2 × failover-timeout + 5 s, in one outage")
    else:
        out.append("write unavailability reported only (the shard stays unwritable until restored)")
    if bars.fail_static:
        out.append("agent fail_static observed")
    if bars.healthy_errors_zero:
        out.append("0 errors on the healthy shard")
    if bars.old_master_quiet:
        out.append("0 writes accepted by the old master after the switch")
    return out


RACE_NOTE = (
    "with down-after ≤ 1000 ms Sentinel sometimes fails over the master it has just promoted "
    "(a second failover, a second outage): docs/drills.md"
)

# Targets: "master:N" / "replica:N" (N = 1-based shard index or "*"), "sentinel:K",
# "sentinels:minority" (the most that may fail), "sentinels:majority" (enough to lose it),
# "agent". Shard selectors of waits: "1", "2", "*".
_KILL_M1 = Step("kill", ("master:1",))
_WAIT_F1 = Step("wait-failover", ("1",))
_WAIT_W1 = Step("wait-writes", ("1",))

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "kill-master",
        "SIGKILL the master of shard 1; once writes are back, the master of shard 2",
        (
            _KILL_M1,
            _WAIT_F1,
            _WAIT_W1,
            Step("kill", ("master:2",)),
            Step("wait-failover", ("2",)),
            Step("wait-writes", ("2",)),
        ),
        Bars(("1", "2"), 2),
        (RACE_NOTE,),
    ),
    Scenario(
        "kill-both-masters",
        "SIGKILL every shard's master at once (the agent coalesces: one nutcracker restart)",
        (
            Step("kill", ("master:*",)),
            Step("wait-failover", ("*",)),
            Step("wait-writes", ("*",)),
        ),
        Bars(("*",), "*"),
        (RACE_NOTE,),
    ),
    Scenario(
        "kill-master-and-replica",
        "SIGKILL the master and one replica of every shard; the last replica "
        "is promoted but, with min-replicas-to-write 1, refuses writes (NOREPLICAS) until the "
        "killed nodes are restarted and one of them replicates from it",
        (
            Step("kill", ("master:*", "replica:*")),
            Step("wait-failover", ("*",)),
            Step("sleep", seconds=3.0),
            Step("restart", ("master:*", "replica:*")),
            Step("wait-writes", ("*",), timeout=40.0),
        ),
        Bars(("*",), "*", wu="none"),
        (
            "Write unavailability includes the NOREPLICAS period: Sentinel converts a returning "
            "old master to a replica only after it reported role master for 8 s "
            "(4 × publish period)",
        ),
    ),
    Scenario(
        "freeze-master",
        "SIGSTOP the master of shard 1 until it is replaced and writes are back, then SIGCONT "
        "it and read what it accepts until Sentinel demotes it",
        (
            Step("stop", ("master:1",)),
            _WAIT_F1,
            _WAIT_W1,
            Step("cont", ("master:1",)),
            Step("watch-old-master", ("1",)),
        ),
        Bars(("1",), 1, old_master_quiet=True),
    ),
    Scenario(
        "stall-master",
        "SIGSTOP the master of shard 1 for half of down-after, then SIGCONT: no failover",
        (
            Step("stop", ("master:1",)),
            Step("sleep", dam=0.5),
            Step("cont", ("master:1",)),
            Step("sleep", seconds=2.0, dam=2.0),
        ),
        Bars((), 0),
    ),
    Scenario(
        "sentinel-minority-down",
        "SIGKILL the largest minority of Sentinels (1 of 3), then the master of shard 1",
        (
            Step("kill", ("sentinels:minority",)),
            Step("sleep", seconds=0.5),
            _KILL_M1,
            _WAIT_F1,
            _WAIT_W1,
        ),
        Bars(("1",), 1),
    ),
    Scenario(
        "no-sentinel-majority",
        "SIGKILL a majority of Sentinels (2 of 3), wait for the agent to fail static, then "
        "SIGKILL the master of shard 1: no failover may happen; the shard stays down",
        (
            Step("kill", ("sentinels:majority",)),
            Step("wait-fail-static"),
            _KILL_M1,
            Step("sleep", seconds=5.0, dam=1.0),
        ),
        Bars((), 0, wu="none", fail_static=True, healthy_errors_zero=True),
        (
            "lost-writes bound 0: the killed master is not replaced but restarted from its "
            "AOF (appendonly: yes), which holds every write it acknowledged",
        ),
    ),
    Scenario(
        "agent-restart",
        "SIGKILL the master of shard 1; at the first +odown SIGKILL the agent; restart the agent "
        "once Sentinel has promoted a replica (nutcracker keeps running and is adopted)",
        (
            _KILL_M1,
            Step("wait-event", ("1",), events=("+odown",)),
            Step("kill", ("agent",)),
            _WAIT_F1,
            Step("restart", ("agent",)),
            _WAIT_W1,
        ),
        Bars(("1",), 1),
    ),
    Scenario(
        "sentinel-restart",
        "SIGKILL the master of shard 1; at the first +try-failover SIGKILL sentinel-1 and start "
        "it again at once (mid-failover)",
        (
            _KILL_M1,
            Step("wait-event", ("1",), events=("+try-failover",)),
            Step("kill", ("sentinel:1",)),
            Step("restart", ("sentinel:1",)),
            Step("wait-failover", ("1",), timeout=25.0),
            Step("wait-writes", ("1",), timeout=25.0),
        ),
        Bars(("1",), 1, wu="dam+2ft+5s"),
        (
            "when the restarted Sentinel was the elected leader and had not promoted yet, the "
            "others may only retry after 2 × failover-timeout (Sentinel's rule): write "
            "unavailability grows by that",
        ),
    ),
)

BY_NAME: dict[str, Scenario] = {s.name: s for s in SCENARIOS}


def select(names: Sequence[str]) -> list[Scenario]:
    """The scenarios named (all of them, in registry order, when none is named)."""
    if not names:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise DrillError(
            f"unknown scenario(s): {', '.join(unknown)} "
            f"(fix: one of {', '.join(BY_NAME)}; see `redkeeper drill --list`)"
        )
    return [BY_NAME[n] for n in names]


def resolve_shards(selectors: Sequence[str], shards: Sequence[str]) -> list[str]:
    """Shard names for selectors "1", "2", "*" (1-based); indexes past the end are skipped."""
    found: list[str] = []
    for selector in selectors:
        if selector == "*":
            picked = list(shards)
        else:
            index = int(selector) - 1
            picked = [shards[index]] if 0 <= index < len(shards) else []
        found += [s for s in picked if s not in found]
    return found


def sentinel_group(kind: str, count: int) -> list[int]:
    """1-based Sentinel numbers: "minority" = the most that may fail and leave a majority
    (at least 1), "majority" = the fewest whose loss leaves no majority (`core.majority`)."""
    spare = count - majority(count)
    size = max(1, spare) if kind == "minority" else spare + 1
    return list(range(1, min(size, count) + 1))


@dataclass(frozen=True)
class Target:
    """A process a step acts on, as resolved when the scenario starts."""

    process: str  # shard1-1, sentinel-2, agent
    shard: str | None = None
    role: str | None = None  # "master" | "replica" at the start
    address: Address | None = None


def resolve_targets(
    nodes: Sequence[tuple[str, str, Address]], masters: Mapping[str, Address], sentinels: int
) -> dict[str, list[Target]]:
    """Every symbolic target ("master:1", "replica:*", "sentinels:majority", "agent"…) for a
    stack whose Redis nodes are (name, shard, address) and whose masters are `masters`.
    "replica:N" is the first node of shard N that is not its master."""
    shards = list(dict.fromkeys(shard for _, shard, _ in nodes))
    found: dict[str, list[Target]] = {"agent": [Target("agent")]}
    for selector in ["*", *(str(i + 1) for i in range(len(shards)))]:
        picked = resolve_shards([selector], shards)
        found[f"master:{selector}"] = [
            Target(name, shard, "master", address)
            for name, shard, address in nodes
            if shard in picked and address == masters[shard]
        ]
        found[f"replica:{selector}"] = [
            next(
                Target(name, shard, "replica", address)
                for name, s, address in nodes
                if s == shard and address != masters[shard]
            )
            for shard in picked
            if any(s == shard and a != masters[shard] for _, s, a in nodes)
        ]
    for kind in ("minority", "majority"):
        found[f"sentinels:{kind}"] = [
            Target(f"sentinel-{i}") for i in sentinel_group(kind, sentinels)
        ]
    for i in range(1, sentinels + 1):
        found[f"sentinel:{i}"] = [Target(f"sentinel-{i}")]
    return found
