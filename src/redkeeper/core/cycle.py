"""One reconcile cycle's decision: `decide(observation, memory, settings) -> Decision`. Pure.

The runner (`redkeeper.agent.runner`) only observes, applies and records; every policy of a
cycle lives here (docs/agent.md names each rule's function):

- **fail static** without a majority of configured Sentinels (`MastersView.has_majority`);
- per shard, the verdict of `core.masters` against the target's current route:
  unknown name, conflict → refused; same address → nothing to do;
- **inventory guard**: an address that is not a node of that shard is refused;
- **ROLE guard**: a candidate that answers ROLE with anything but master is refused for now
  and the cycle asks to be retried soon; one that does not answer is trusted to the majority;
- **coalescing**: a ready change is held while another shard's failover is in flight, for at
  most `settings.coalesce` seconds since the change was first noticed (one restart for N
  shards); restartless proxies (steady, redkeeper) default to no hold (`timing_for`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from redkeeper.core.masters import MastersView, Status
from redkeeper.model import Address


class Outcome(enum.Enum):
    IN_SYNC = "in-sync"  # the target routes every shard where the verdicts say
    APPLY = "apply"  # repoint `changes` now
    HOLD = "hold"  # changes are known but postponed (coalescing)
    FAIL_STATIC = "fail-static"  # no Sentinel majority: keep every route as it is
    REFUSE = "refuse"  # no change can be made; `refusals` say why


class RefusalReason(enum.Enum):
    OUTSIDE_INVENTORY = "outside-inventory"
    NOT_MASTER = "not-master"
    CONFLICT = "conflict"
    UNKNOWN_MASTER = "unknown-master"


@dataclass(frozen=True)
class Refusal:
    """A shard that is not repointed now, and why (logs, metrics, /healthz)."""

    shard: str
    reason: RefusalReason
    detail: str
    address: Address | None = None

    def __str__(self) -> str:
        return f"{self.shard}: {self.reason.value}: {self.detail}"


@dataclass(frozen=True)
class Observation:
    """What one cycle saw. `roles`: ROLE of the candidate addresses (`candidates`): "master",
    "slave", or None when the node did not answer. Times are monotonic seconds."""

    masters: MastersView
    routes: Mapping[str, Address]
    roles: Mapping[Address, str | None]
    now: float
    noticed: float  # when the wake-up that started this cycle was first noticed


@dataclass(frozen=True)
class Memory:
    """What a cycle hands to the next: since when a change has been known and not applied."""

    pending_since: float | None = None


@dataclass(frozen=True)
class CycleSettings:
    inventory: Mapping[str, Set[Address]] | None = None  # None: no guard (standalone)
    coalesce: float = 0.0  # seconds a ready change may wait for other shards' failovers


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    changes: dict[str, Address]
    refusals: tuple[Refusal, ...]
    summary: str
    memory: Memory  # for the next cycle when nothing gets applied (runner: Memory() after)
    retry_soon: bool = False  # re-run after the short retry delay, not the period
    held_for: tuple[str, ...] = field(default=())

    def latency(self, now: float) -> float | None:
        """Seconds from the first notice of these changes to `now`."""
        since = self.memory.pending_since
        return None if since is None else now - since


def candidates(masters: MastersView, routes: Mapping[str, Address]) -> set[Address]:
    """Addresses the verdicts would move a shard to: the ones worth a ROLE probe."""
    return {
        verdict.address
        for shard, verdict in masters.verdicts.items()
        if verdict.ok and verdict.address is not None and verdict.address != routes.get(shard)
    }


def _refusal(
    shard: str,
    masters: MastersView,
    routes: Mapping[str, Address],
    roles: Mapping[Address, str | None],
    inventory: Mapping[str, Set[Address]] | None,
) -> Refusal | Address | None:
    """The new address for `shard`, a Refusal, or None when it is already routed right."""
    verdict = masters.verdicts.get(shard)
    if verdict is None or verdict.status is Status.UNKNOWN:
        return Refusal(shard, RefusalReason.UNKNOWN_MASTER, "no answering Sentinel monitors it")
    if verdict.status is not Status.OK or verdict.address is None:
        return Refusal(shard, RefusalReason.CONFLICT, verdict.detail)
    target = verdict.address
    if target == routes[shard]:
        return None
    if inventory is not None and target not in inventory.get(shard, frozenset()):
        return Refusal(
            shard,
            RefusalReason.OUTSIDE_INVENTORY,
            f"Sentinel says {target} ({verdict.detail}), which is not a node of {shard} "
            "in the topology; not routing there",
            target,
        )
    role = roles.get(target)
    if role is not None and role != "master":
        return Refusal(
            shard, RefusalReason.NOT_MASTER, f"{target} reports role {role}; waiting", target
        )
    return target


def decide(observation: Observation, memory: Memory, settings: CycleSettings) -> Decision:
    """What to do in this cycle (see the module docstring for the rules, in order)."""
    masters, routes = observation.masters, observation.routes
    if not masters.has_majority:
        return Decision(
            Outcome.FAIL_STATIC,
            {},
            (),
            f"fail static: {masters.answered}/{masters.configured} Sentinels answered "
            f"(need {masters.needed}); keeping current routes",
            memory,
        )
    changes: dict[str, Address] = {}
    refusals: list[Refusal] = []
    for shard in sorted(routes):
        found = _refusal(shard, masters, routes, observation.roles, settings.inventory)
        if isinstance(found, Refusal):
            refusals.append(found)
        elif found is not None:
            changes[shard] = found
    retry_soon = any(r.reason is RefusalReason.NOT_MASTER for r in refusals)
    if not changes:
        if refusals:
            summary = "no change; " + "; ".join(str(r) for r in refusals)
            return Decision(Outcome.REFUSE, {}, tuple(refusals), summary, Memory(), retry_soon)
        summary = (
            f"in sync ({len(routes)} shards, {masters.answered}/{masters.configured} Sentinels)"
        )
        return Decision(Outcome.IN_SYNC, {}, (), summary, Memory(), retry_soon)
    pending = Memory(
        memory.pending_since if memory.pending_since is not None else observation.noticed
    )
    assert pending.pending_since is not None
    waited = observation.now - pending.pending_since
    others = sorted(s for s in masters.in_failover() if s in routes and s not in changes)
    if others and waited < settings.coalesce:
        return Decision(
            Outcome.HOLD,
            changes,
            tuple(refusals),
            f"hold {describe(changes)}: waiting up to {settings.coalesce - waited:.2f} s "
            f"for failover of {', '.join(others)}",
            pending,
            retry_soon=True,
            held_for=tuple(others),
        )
    return Decision(
        Outcome.APPLY, changes, tuple(refusals), f"repoint {describe(changes)}", pending, retry_soon
    )


def describe(changes: Mapping[str, Address]) -> str:
    return ", ".join(f"{shard} -> {address}" for shard, address in sorted(changes.items()))


# --- timing policy ---------------------------------------------------------------------------

#: Proxy modes that repoint without restarting anything: holding a change saves nothing.
RESTARTLESS_MODES = frozenset({"steady", "redkeeper"})


@dataclass(frozen=True)
class Timing:
    """When cycles run. `debounce`: wait after a waking event so a burst becomes one cycle;
    `period`: between cycles otherwise; `retry`: after a cycle that asked to retry soon."""

    debounce: float
    coalesce: float
    period: float = 1.0
    retry: float = 0.1


def timing_for(
    mode: str,
    *,
    debounce_ms: int,
    coalesce_ms: int,
    period_ms: int,
    explicit: Set[str] = frozenset(),
) -> Timing:
    """The cycle timing for a proxy mode. Debounce and coalescing exist to make N failovers
    cost one restart; a restartless mode turns both off unless `explicit` names them (the
    topology or command line set them on purpose)."""
    restartless = mode in RESTARTLESS_MODES
    debounce = 0 if restartless and "debounce_ms" not in explicit else debounce_ms
    coalesce = 0 if restartless and "coalesce_ms" not in explicit else coalesce_ms
    return Timing(debounce / 1000, coalesce / 1000, period_ms / 1000)


def next_wait(decision: Decision | None, timing: Timing) -> float:
    """Seconds until the next cycle when nothing wakes the loop earlier."""
    return timing.retry if decision is not None and decision.retry_soon else timing.period
