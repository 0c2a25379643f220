"""The agent's decision (pure): Sentinel's verdicts + current routes → what to change.

Rules (docs/agent.md): act only with a majority of configured Sentinels answering (else fail
static); per shard take the verdict's address (highest config-epoch); never route outside the
inventory; hold while a reachable candidate does not say ROLE master; coalesce with other
shards whose failover is in flight, for a bounded time, so N failovers cost one restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from redkeeper.model import Address
from redkeeper.sentinel import MasterVerdict, Status


@dataclass(frozen=True)
class Refusal:
    """A shard the agent will not repoint now, and why (exposed in logs and metrics)."""

    shard: str
    reason: str  # "outside-inventory" | "not-master" | "conflict" | "unknown-master"
    detail: str
    address: Address | None = None


@dataclass(frozen=True)
class Decision:
    changes: dict[str, Address]
    refusals: tuple[Refusal, ...] = ()
    fail_static: bool = False
    hold: bool = False  # changes are known but deliberately postponed (coalescing)
    retry_soon: bool = False  # re-run shortly (a candidate not yet master, a hold)
    summary: str = ""
    held_for: tuple[str, ...] = field(default=())


def decide_routes(
    verdicts: Mapping[str, MasterVerdict],
    routes: Mapping[str, Address],
    *,
    answered: int,
    configured: int,
    inventory: Mapping[str, Set[Address]] | None = None,
    roles: Mapping[Address, str | None] | None = None,
    in_failover: Set[str] = frozenset(),
    pending_for: float = 0.0,
    coalesce_window: float = 0.0,
) -> Decision:
    """What to repoint. `routes`: shard → address the proxy routes to now.

    `roles`: ROLE of candidate addresses ("master", "slave", or None when unreachable).
    `in_failover`: shards some Sentinel reports in o_down / failover_in_progress.
    `pending_for`: seconds since a change was first known but not applied (for coalescing).
    """
    needed = configured // 2 + 1
    if answered < needed:
        return Decision(
            {},
            fail_static=True,
            summary=f"fail static: {answered}/{configured} Sentinels answered (need {needed}); "
            "keeping current routes",
        )
    roles = roles or {}
    changes: dict[str, Address] = {}
    refusals: list[Refusal] = []
    for shard in sorted(routes):
        verdict = verdicts.get(shard)
        if verdict is None or verdict.status is Status.UNKNOWN:
            refusals.append(
                Refusal(shard, "unknown-master", "no answering Sentinel monitors this name")
            )
            continue
        if verdict.status is not Status.OK or verdict.address is None:
            refusals.append(Refusal(shard, "conflict", verdict.detail))
            continue
        target = verdict.address
        if target == routes[shard]:
            continue
        if inventory is not None and target not in inventory.get(shard, frozenset()):
            refusals.append(
                Refusal(
                    shard,
                    "outside-inventory",
                    f"Sentinel says {target} ({verdict.detail}), which is not a node of {shard} "
                    "in the topology; not routing there",
                    target,
                )
            )
            continue
        role = roles.get(target)
        if role is not None and role != "master":
            refusals.append(
                Refusal(shard, "not-master", f"{target} reports role {role}; waiting", target)
            )
            continue
        changes[shard] = target

    retry_soon = any(r.reason == "not-master" for r in refusals)
    others = sorted(s for s in in_failover if s in routes and s not in changes)
    if changes and others and pending_for < coalesce_window:
        return Decision(
            changes,
            tuple(refusals),
            hold=True,
            retry_soon=True,
            held_for=tuple(others),
            summary=f"hold {_describe(changes)}: waiting up to "
            f"{coalesce_window - pending_for:.2f} s for failover of {', '.join(others)}",
        )
    if changes:
        summary = f"repoint {_describe(changes)}"
    elif refusals:
        summary = "no change; " + "; ".join(f"{r.shard}: {r.reason}: {r.detail}" for r in refusals)
    else:
        summary = f"in sync ({len(routes)} shards, {answered}/{configured} Sentinels)"
    return Decision(changes, tuple(refusals), retry_soon=retry_soon, summary=summary)


def _describe(changes: Mapping[str, Address]) -> str:
    return ", ".join(f"{shard} -> {address}" for shard, address in sorted(changes.items()))


def in_failover_shards(flags_by_shard: Mapping[str, Set[str]]) -> set[str]:
    """Shards whose master some Sentinel flags o_down or failover_in_progress."""
    busy = {"o_down", "failover_in_progress"}
    return {shard for shard, flags in flags_by_shard.items() if flags & busy}
