"""Each shard's current master for the data tools, or a clear SentinelError.

Owns the synchronous "who is master now" question the data tools ask before talking to
shards directly: every configured Sentinel is asked in parallel (`probe.ask_sentinels`,
bounded), and `redkeeper.core.decide_masters` applies the one rule of the project. When it
gives no master for a shard, this module explains why in one line (the Sentinels that did
not answer, or did not monitor the shard) and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redkeeper.core import SentinelAnswer, decide_masters
from redkeeper.errors import SentinelError
from redkeeper.model import Address
from redkeeper.stack import probe
from redkeeper.topology import Topology

FIX = "start them or check `redkeeper status`, then retry"


@dataclass(frozen=True)
class Masters:
    """The current master of every shard, with the config-epoch that made it so."""

    addresses: dict[str, Address]
    epochs: dict[str, int]
    answered: int
    configured: int

    def __getitem__(self, shard: str) -> Address:
        return self.addresses[shard]


def ask_all(topology: Topology, password: str | None, timeout: float) -> list[SentinelAnswer]:
    """Every configured Sentinel's answer, asked in parallel."""
    return probe.ask_sentinels(topology.spec.sentinel.nodes, password, timeout)


def decide_masters_or_explain(topology: Topology, answers: Sequence[SentinelAnswer]) -> Masters:
    """`core.decide_masters` over the topology's Sentinels; SentinelError when it gives no
    master for some shard."""
    nodes = topology.sentinel_nodes()
    names = [shard.name for shard in topology.shards]
    label = {node.address: f"{node.name} ({node.address})" for node in nodes}
    view = decide_masters(answers, [node.address for node in nodes], names)
    if not view.has_majority:
        silent = ", ".join(label.get(a, str(a)) for a in view.silent)
        raise SentinelError(
            f"only {view.answered} of {view.configured} Sentinels answered ({view.needed} "
            f"needed), so the current masters are unknown; not answering: {silent} (fix: {FIX})"
        )
    addresses: dict[str, Address] = {}
    epochs: dict[str, int] = {}
    for name in names:
        verdict = view.verdicts[name]
        if not verdict.ok or verdict.address is None:
            unknown = [
                label.get(a.sentinel, str(a.sentinel))
                for a in answers
                if a.reports is not None and name not in a.reports
            ]
            blame = f"; not monitoring it: {', '.join(unknown)}" if unknown else ""
            raise SentinelError(
                f"Sentinels give no master for shard {name}: {verdict.detail}{blame} "
                "(fix: wait for a running failover to finish, check `redkeeper status`, "
                "then retry)"
            )
        addresses[name] = verdict.address
        epochs[name] = verdict.config_epoch or 0
    return Masters(addresses, epochs, view.answered, view.configured)


def current_masters(topology: Topology, password: str | None, timeout: float = 0.5) -> Masters:
    """Ask every Sentinel and decide each shard's master; SentinelError when it cannot."""
    return decide_masters_or_explain(topology, ask_all(topology, password, timeout))
