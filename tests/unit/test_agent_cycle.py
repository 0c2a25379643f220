"""`Agent.cycle` driven directly: one row per rule of docs/agent.md, with a fake target and
injected Sentinel answers and ROLE replies (no sockets). Plus the pure timing policy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest

from redkeeper.agent import Agent, AgentSettings
from redkeeper.core import (
    Decision,
    MasterReport,
    Memory,
    Outcome,
    RefusalReason,
    SentinelAnswer,
    timing_for,
)
from redkeeper.core.nodes import NodesView
from redkeeper.model import Address
from redkeeper.proxy.base import ApplyOutcome, RestartResult

S1, S2, S3 = SENTINELS = tuple(Address("127.0.0.1", 26379 + i) for i in range(3))
A1, A2, A3 = (Address("127.0.0.1", p) for p in (6666, 6667, 6668))
B1, B2 = Address("127.0.0.1", 7666), Address("127.0.0.1", 7667)
ROGUE = Address("10.9.9.9", 6379)
INVENTORY = {"shard1": frozenset({A1, A2, A3}), "shard2": frozenset({B1, B2})}
ROUTES = {"shard1": A1, "shard2": B1}


@dataclass
class FakeTarget:
    """Routes in memory; records what the runner asked."""

    current: dict[str, Address]
    description: str = "fake"
    needs_nodes: bool = False
    applied: list[dict[str, Address]] = field(default_factory=list)
    verified: list[dict[str, Address]] = field(default_factory=list)
    repairs: int = 0

    async def prepare(self) -> None:
        return None

    async def routes(self) -> dict[str, Address]:
        return dict(self.current)

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome:
        self.applied.append(dict(changes))
        self.current.update(changes)
        return ApplyOutcome(True, RestartResult(True, 1.0, "restarted"))

    async def verify(self, changes: Mapping[str, Address]) -> None:
        self.verified.append(dict(changes))

    async def repair(self, nodes: NodesView | None) -> RestartResult | None:
        self.repairs += 1
        return None


def report(
    sentinel: Address,
    name: str,
    address: Address,
    epoch: int,
    flags: Sequence[str] = ("master",),
    current: Address | None = None,
) -> MasterReport:
    return MasterReport(sentinel, name, address, epoch, frozenset(flags), 2, 2, 2, current)


def says(
    sentinel: Address,
    shard1: Address,
    epoch1: int = 1,
    flags1: Sequence[str] = ("master",),
    current1: Address | None = None,
) -> SentinelAnswer:
    """A Sentinel reporting `shard1` at `epoch1` and shard2 at B1 (epoch 0)."""
    reports = {
        "shard1": report(sentinel, "shard1", shard1, epoch1, flags1, current1),
        "shard2": report(sentinel, "shard2", B1, 0),
    }
    return SentinelAnswer(sentinel, reports)


def silent(sentinel: Address) -> SentinelAnswer:
    return SentinelAnswer(sentinel, None, "ConnectionError: refused")


@dataclass(frozen=True)
class Row:
    rule: str
    answers: list[SentinelAnswer]
    expected: Outcome
    changes: dict[str, Address] = field(default_factory=dict)
    reasons: tuple[RefusalReason, ...] = ()
    roles: Mapping[Address, str | None] = field(default_factory=dict)
    inventory: bool = True
    retry_soon: bool = False


ROWS = [
    Row("in sync: every Sentinel agrees with the routes", [says(s, A1) for s in SENTINELS],
        Outcome.IN_SYNC),
    Row("majority + verdict moves shard1", [says(S1, A2, 2), says(S2, A2, 2), silent(S3)],
        Outcome.APPLY, {"shard1": A2}, roles={A2: "master"}),
    Row("highest config-epoch wins over more votes",
        [says(S1, A3, 5), says(S2, A2, 4), says(S3, A2, 4)], Outcome.APPLY, {"shard1": A3}),
    Row("leader quirk: old address with the new epoch, GET-MASTER-ADDR-BY-NAME says the new",
        [says(S1, A1, 2, flags1=("master", "failover_in_progress"), current1=A2),
         says(S2, A1, 1), says(S3, A1, 1)], Outcome.APPLY, {"shard1": A2}),
    Row("duplicate Sentinel addresses count once: no majority",
        [says(S1, A2, 2), says(S1, A2, 2), silent(S2), silent(S3)], Outcome.FAIL_STATIC),
    Row("no majority: fail static, routes kept", [says(S1, A2, 2), silent(S2), silent(S3)],
        Outcome.FAIL_STATIC),
    Row("an address outside the inventory is refused", [says(s, ROGUE, 2) for s in SENTINELS],
        Outcome.REFUSE, reasons=(RefusalReason.OUTSIDE_INVENTORY,)),
    Row("without an inventory (standalone) any address is followed",
        [says(s, ROGUE, 2) for s in SENTINELS], Outcome.APPLY, {"shard1": ROGUE},
        inventory=False),
    Row("ROLE: a candidate that still says slave waits, retried soon",
        [says(s, A2, 2) for s in SENTINELS], Outcome.REFUSE, reasons=(RefusalReason.NOT_MASTER,),
        roles={A2: "slave"}, retry_soon=True),
    Row("ROLE: an unreachable candidate is trusted to the majority",
        [says(s, A2, 2) for s in SENTINELS], Outcome.APPLY, {"shard1": A2}, roles={A2: None}),
    Row("a tie at the top epoch is a conflict: no action",
        [says(S1, A2, 3), says(S2, A3, 3), silent(S3)], Outcome.REFUSE,
        reasons=(RefusalReason.CONFLICT,)),
    Row("a shard no answering Sentinel monitors is refused",
        [SentinelAnswer(s, {"shard2": report(s, "shard2", B1, 0)}) for s in SENTINELS],
        Outcome.REFUSE, reasons=(RefusalReason.UNKNOWN_MASTER,)),
]  # fmt: skip


def run_cycle(
    row: Row, settings: AgentSettings | None = None, notice: float = 0.0
) -> tuple[Agent, FakeTarget, Decision]:
    target = FakeTarget(dict(ROUTES))

    async def query(
        addrs: Sequence[Address], *, password: str | None, timeout: float
    ) -> list[SentinelAnswer]:
        assert list(addrs) == list(SENTINELS)
        return row.answers

    async def role(address: Address, password: str | None, timeout: float) -> str | None:
        return row.roles.get(address, "master")

    agent = Agent(
        SENTINELS,
        target,
        inventory=INVENTORY if row.inventory else None,
        settings=settings if settings is not None else AgentSettings(coalesce=0.0),
        query=query,
        role=role,
    )
    decision = asyncio.run(agent.cycle(notice=notice))
    return agent, target, decision


@pytest.mark.parametrize("row", ROWS, ids=[r.rule for r in ROWS])
def test_agent_cycle_rule(row: Row) -> None:
    agent, target, decision = run_cycle(row)
    assert decision.outcome is row.expected, decision.summary
    assert decision.changes == row.changes
    assert tuple(r.reason for r in decision.refusals) == row.reasons
    assert decision.retry_soon is row.retry_soon
    if row.expected is Outcome.APPLY:
        assert target.applied == [row.changes] and target.verified == [row.changes]
        assert target.current == {**ROUTES, **row.changes}
        assert agent.memory == Memory() and agent.state.applies == 1
        assert agent.health().history[0].changes == {k: str(v) for k, v in row.changes.items()}
    else:
        assert target.applied == [] and target.current == ROUTES
    # repair runs only when nothing is to change and a majority answered
    assert target.repairs == (1 if row.expected in (Outcome.IN_SYNC, Outcome.REFUSE) else 0)
    health = agent.health()
    assert health.fail_static is (row.expected is Outcome.FAIL_STATIC)
    assert health.routes == {k: str(v) for k, v in {**ROUTES, **row.changes}.items()}
    assert health.verdict == decision.summary


def test_coalescing_holds_while_another_shard_fails_over_then_applies_together() -> None:
    odown = [
        SentinelAnswer(
            s,
            {
                "shard1": report(s, "shard1", A2, 2),
                "shard2": report(s, "shard2", B1, 0, ("master", "o_down")),
            },
        )
        for s in SENTINELS
    ]
    row = Row("hold", odown, Outcome.HOLD, {"shard1": A2})
    noticed = time.monotonic()
    agent, target, decision = run_cycle(row, AgentSettings(coalesce=10.0), noticed)
    assert decision.outcome is Outcome.HOLD and decision.held_for == ("shard2",)
    assert decision.retry_soon and target.applied == []
    assert agent.memory.pending_since == noticed  # the notice time of the first sighting
    # the window is counted from the first notice: with it expired, the change goes out
    agent, target, decision = run_cycle(row, AgentSettings(coalesce=10.0), noticed - 11.0)
    assert decision.outcome is Outcome.APPLY and target.applied == [{"shard1": A2}]


def test_a_failed_restart_keeps_the_change_pending() -> None:
    row = ROWS[1]
    target = FakeTarget(dict(ROUTES))

    async def failing(changes: Mapping[str, Address]) -> ApplyOutcome:
        return ApplyOutcome(True, RestartResult(False, 3.0, "bind: address in use"))

    target.apply = failing  # type: ignore[method-assign]

    async def query(
        addrs: Sequence[Address], *, password: str | None, timeout: float
    ) -> list[SentinelAnswer]:
        return row.answers

    agent = Agent(SENTINELS, target, inventory=INVENTORY, query=query, role=_master)
    asyncio.run(agent.cycle(notice=5.0))
    assert agent.memory.pending_since == 5.0
    assert agent.state.last_error is not None and "address in use" in agent.state.last_error
    assert not agent.health().ok and agent.state.applies == 0


async def _master(address: Address, password: str | None, timeout: float) -> str | None:
    return "master"


@pytest.mark.parametrize(
    ("mode", "explicit", "debounce", "coalesce"),
    [
        ("restart", set(), 0.05, 1.5),
        ("steady", set(), 0.0, 0.0),
        ("redkeeper", set(), 0.0, 0.0),
        ("steady", {"coalesce_ms"}, 0.0, 1.5),
        ("redkeeper", {"debounce_ms", "coalesce_ms"}, 0.05, 1.5),
    ],
)
def test_timing_per_mode(mode: str, explicit: set[str], debounce: float, coalesce: float) -> None:
    timing = timing_for(mode, debounce_ms=50, coalesce_ms=1500, period_ms=1000, explicit=explicit)
    assert (timing.debounce, timing.coalesce, timing.period) == (debounce, coalesce, 1.0)


def test_refused_changes_are_not_pending() -> None:
    _agent, _target, refused = run_cycle(replace(ROWS[1], roles={A2: "slave"}))
    assert refused.outcome is Outcome.REFUSE and refused.memory == Memory()
