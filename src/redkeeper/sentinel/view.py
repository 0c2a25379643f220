"""Who is master: the majority/epoch view over several Sentinels' answers.

Pure. Owns the types of a Sentinel's answer (`MasterReport`, `SentinelAnswer`), the parsing
of a raw `SENTINEL MASTERS` reply into them, and the rule that turns the answers of all
configured Sentinels into one `MasterVerdict` per master name (architecture §3, rule 3):

- act only when a majority of the *configured* Sentinels answered (else NO_MAJORITY);
- among the reports for a name, the address with the highest config-epoch wins;
- at the same epoch, the address reported by more Sentinels wins; a remaining tie is
  CONFLICT (do not act);
- a name no answering Sentinel knows is UNKNOWN.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from redkeeper.model import Address


@dataclass(frozen=True)
class MasterReport:
    """What one Sentinel says about one master name."""

    sentinel: Address
    name: str
    address: Address
    config_epoch: int
    flags: frozenset[str]
    num_other_sentinels: int
    quorum: int
    num_replicas: int = 0


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
    top_epoch = max(r.config_epoch for r in reports)
    at_top = Counter(r.address for r in reports if r.config_epoch == top_epoch)
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
    agreeing = sum(1 for r in reports if r.address == best_address)
    detail = f"epoch {top_epoch} from {agreeing}/{answered} sentinels"
    if len(ranked) > 1:
        others = ", ".join(f"{addr} ({count})" for addr, count in ranked[1:])
        detail += f"; outvoted at the same epoch: {others}"
    lower = sorted({r.address for r in reports if r.config_epoch < top_epoch} - {best_address})
    if lower:
        detail += f"; older epochs say {', '.join(str(a) for a in lower)}"
    return verdict(Status.OK, best_address, top_epoch, agreeing, detail)


def decide(
    answers: Sequence[SentinelAnswer], configured: int, names: Iterable[str] | None = None
) -> dict[str, MasterVerdict]:
    """One verdict per master name (`names`, or every name any answering Sentinel reports).

    `configured` is the number of Sentinels in the topology, not the number asked: a
    majority of it must have answered. Several answers from one Sentinel count once.
    """
    if configured < 1:
        raise ValueError(f"configured must be at least 1, got {configured}")
    needed = majority(configured)
    replied: dict[Address, Mapping[str, MasterReport]] = {}
    for answer in answers:
        if answer.reports is not None and answer.sentinel not in replied:
            replied[answer.sentinel] = answer.reports
    answered = len(replied)
    if names is None:
        wanted = sorted({name for reports in replied.values() for name in reports})
    else:
        wanted = list(dict.fromkeys(names))
    result: dict[str, MasterVerdict] = {}
    for name in wanted:
        if answered < needed:
            result[name] = MasterVerdict(
                name=name,
                status=Status.NO_MAJORITY,
                address=None,
                config_epoch=None,
                answered=answered,
                needed=needed,
                configured=configured,
                agreeing=0,
                detail=f"only {answered}/{configured} sentinels answered, {needed} needed",
            )
            continue
        reports = [reports[name] for reports in replied.values() if name in reports]
        result[name] = _verdict_for(name, reports, answered, needed, configured)
    return result


# --- parsing boundary: a raw `SENTINEL MASTERS` reply ------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _fields(entry: object) -> dict[str, str]:
    if isinstance(entry, Mapping):  # RESP3 maps
        return {_text(k): _text(v) for k, v in entry.items()}
    if not isinstance(entry, list | tuple) or len(entry) % 2:
        raise ValueError("a master entry is not a list of field/value pairs")
    return {_text(entry[i]): _text(entry[i + 1]) for i in range(0, len(entry), 2)}


def _int(fields: Mapping[str, str], key: str) -> int:
    if key not in fields:
        raise ValueError(f"field {key!r} is missing")
    try:
        return int(fields[key])
    except ValueError:
        raise ValueError(f"field {key!r} is not a number: {fields[key]!r}") from None


def parse_master_entry(sentinel: Address, entry: object) -> MasterReport:
    """One entry of `SENTINEL MASTERS` (or the reply of `SENTINEL MASTER <name>`)."""
    fields = _fields(entry)
    for key in ("name", "ip", "flags"):
        if key not in fields:
            raise ValueError(f"field {key!r} is missing")
    port = _int(fields, "port")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return MasterReport(
        sentinel=sentinel,
        name=fields["name"],
        address=Address(fields["ip"], port),
        config_epoch=_int(fields, "config-epoch"),
        flags=frozenset(f for f in fields["flags"].split(",") if f),
        num_other_sentinels=_int(fields, "num-other-sentinels"),
        quorum=_int(fields, "quorum"),
        num_replicas=_int(fields, "num-slaves"),
    )


def parse_masters_reply(sentinel: Address, raw: object) -> dict[str, MasterReport]:
    """The reports in a raw `SENTINEL MASTERS` reply; ValueError names what is malformed."""
    if not isinstance(raw, list | tuple):
        raise ValueError(f"SENTINEL MASTERS reply is not a list: {type(raw).__name__}")
    reports: dict[str, MasterReport] = {}
    for entry in raw:
        report = parse_master_entry(sentinel, entry)
        reports[report.name] = report
    return reports
