"""Who is master: THE rule, from what the Sentinels answered to one verdict per master name.

Pure; the only code in redkeeper that counts Sentinel votes or compares config-epochs. The
agent, the redkeeper proxy, `status`, `down`'s saved masters and the data tools all call
`decide_masters`. The rule (docs/agent.md, "Who is master"):

- only the answers of *distinct configured* Sentinels count: an address asked twice counts
  once, an answer from an address outside the configured set counts not at all;
- act only when a majority (n//2 + 1) of the configured Sentinels answered (else
  NO_MAJORITY: callers fail static);
- per name, the address reported with the highest config-epoch wins; at the same epoch the
  address more Sentinels report; a remaining tie is CONFLICT (do not act);
- a name that no answering Sentinel knows is UNKNOWN;
- the failover leader's quirk: between `+promoted-slave` and `+failover-end` the leader's
  `SENTINEL MASTERS` shows the *old* address with the *new* epoch. For a master flagged
  `failover_in_progress` the Sentinel edge also records what `GET-MASTER-ADDR-BY-NAME`
  answered (`MasterReport.current_address`), and `reported_address` prefers it.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from redkeeper.model import Address

#: Flags of a master entry meaning its failover is under way (coalescing, status).
FAILOVER_FLAGS = frozenset({"o_down", "failover_in_progress"})


@dataclass(frozen=True)
class MasterReport:
    """What one Sentinel says about one master name.

    `current_address` is what `SENTINEL GET-MASTER-ADDR-BY-NAME` answered, asked only while
    the entry is flagged `failover_in_progress` (None otherwise, or when it did not answer).
    """

    sentinel: Address
    name: str
    address: Address
    config_epoch: int
    flags: frozenset[str]
    num_other_sentinels: int
    quorum: int
    num_replicas: int = 0
    current_address: Address | None = None

    @property
    def reported_address(self) -> Address:
        """The address this Sentinel stands for (the leader's quirk resolved)."""
        if "failover_in_progress" in self.flags and self.current_address is not None:
            return self.current_address
        return self.address


@dataclass(frozen=True)
class SentinelAnswer:
    """One Sentinel's answer: its reports by master name, or None and an error when it
    could not be asked."""

    sentinel: Address
    reports: Mapping[str, MasterReport] | None
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.reports is not None


class Status(enum.Enum):
    OK = "ok"
    NO_MAJORITY = "no-majority"  # fewer than a majority of configured Sentinels answered
    UNKNOWN = "unknown"  # a majority answered but none knows this master name
    CONFLICT = "conflict"  # different addresses tie at the highest epoch: do not act


@dataclass(frozen=True)
class MasterVerdict:
    """The decision for one master name; `address` is set only when status is OK."""

    name: str
    status: Status
    address: Address | None
    config_epoch: int | None
    answered: int
    needed: int
    configured: int
    agreeing: int
    detail: str

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass(frozen=True)
class MastersView:
    """Every verdict of one round of answers, and what the round itself looked like."""

    verdicts: dict[str, MasterVerdict]
    configured: int
    answered: int
    needed: int
    silent: tuple[Address, ...]  # configured Sentinels that did not answer
    flags: dict[str, frozenset[str]] = field(default_factory=dict)  # union over answers

    @property
    def has_majority(self) -> bool:
        return self.answered >= self.needed

    def in_failover(self) -> set[str]:
        """Names some answering Sentinel flags o_down or failover_in_progress."""
        return {name for name, flags in self.flags.items() if flags & FAILOVER_FLAGS}

    def addresses(self) -> dict[str, Address]:
        """name → address of every OK verdict."""
        return {n: v.address for n, v in self.verdicts.items() if v.ok and v.address}


def majority(configured: int) -> int:
    """How many of `configured` Sentinels form a majority."""
    return configured // 2 + 1


def _verdict_for(
    name: str, reports: list[MasterReport], answered: int, needed: int, configured: int
) -> MasterVerdict:
    def verdict(
        status: Status, address: Address | None, epoch: int | None, agreeing: int, detail: str
    ) -> MasterVerdict:
        return MasterVerdict(
            name, status, address, epoch, answered, needed, configured, agreeing, detail
        )

    if not reports:
        return verdict(
            Status.UNKNOWN, None, None, 0, f"none of {answered} answering sentinels knows {name}"
        )
    first = reports[0]
    if all(
        r.config_epoch == first.config_epoch and r.reported_address == first.reported_address
        for r in reports
    ):  # every answer agrees: the usual case, decided without counting
        count = len(reports)
        detail = f"epoch {first.config_epoch} from {count}/{answered} sentinels"
        return verdict(Status.OK, first.reported_address, first.config_epoch, count, detail)
    top_epoch = max(r.config_epoch for r in reports)
    at_top = Counter(r.reported_address for r in reports if r.config_epoch == top_epoch)
    ranked = sorted(at_top.items(), key=lambda item: (-item[1], item[0]))
    best_address, best_count = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == best_count:
        tied = ", ".join(f"{addr} ({count})" for addr, count in ranked if count == best_count)
        return verdict(
            Status.CONFLICT,
            None,
            top_epoch,
            best_count,
            f"epoch {top_epoch}: sentinels disagree, {tied}",
        )
    agreeing = sum(1 for r in reports if r.reported_address == best_address)
    detail = f"epoch {top_epoch} from {agreeing}/{answered} sentinels"
    if len(ranked) > 1:
        others = ", ".join(f"{addr} ({count})" for addr, count in ranked[1:])
        detail += f"; outvoted at the same epoch: {others}"
    lower = sorted(
        {r.reported_address for r in reports if r.config_epoch < top_epoch} - {best_address}
    )
    if lower:
        detail += f"; older epochs say {', '.join(str(a) for a in lower)}"
    return verdict(Status.OK, best_address, top_epoch, agreeing, detail)


def decide_masters(
    answers: Sequence[SentinelAnswer],
    configured: Sequence[Address],
    names: Iterable[str] | None = None,
) -> MastersView:
    """One verdict per master name (`names`, or every name an answering Sentinel reports).

    `configured` is the Sentinels of the topology (or of the agent's command line), not the
    ones asked: a majority of the distinct configured addresses must have answered.
    """
    members = list(dict.fromkeys(configured))
    if not members:
        raise ValueError("at least one Sentinel must be configured")
    needed = majority(len(members))
    member_set = set(members)
    replied: dict[Address, Mapping[str, MasterReport]] = {}
    for answer in answers:
        if answer.reports is not None and answer.sentinel in member_set:
            replied.setdefault(answer.sentinel, answer.reports)
    answered = len(replied)
    silent = tuple(a for a in members if a not in replied)
    if names is None:
        wanted = sorted({name for reports in replied.values() for name in reports})
    else:
        wanted = list(dict.fromkeys(names))
    flags: dict[str, frozenset[str]] = {}
    for reports in replied.values():
        for name, report in reports.items():
            flags[name] = flags.get(name, frozenset()) | report.flags
    verdicts: dict[str, MasterVerdict] = {}
    for name in wanted:
        if answered < needed:
            verdicts[name] = MasterVerdict(
                name=name,
                status=Status.NO_MAJORITY,
                address=None,
                config_epoch=None,
                answered=answered,
                needed=needed,
                configured=len(members),
                agreeing=0,
                detail=f"only {answered}/{len(members)} sentinels answered, {needed} needed",
            )
            continue
        found = [reports[name] for reports in replied.values() if name in reports]
        verdicts[name] = _verdict_for(name, found, answered, needed, len(members))
    return MastersView(verdicts, len(members), answered, needed, silent, flags)
