"""Each shard's current master, as a majority of the configured Sentinels sees it.

Owns the synchronous "who is master now" question the data tools ask before talking to shards
directly: every configured Sentinel is asked in parallel (`probe.sentinel_masters`, bounded by a
timeout), and `redkeeper.sentinel.view.decide` applies the one rule of the project: a majority of
the configured Sentinels must answer, and per shard the address with the highest config-epoch
wins. Anything else raises `SentinelError` with a one-line message naming the Sentinels that
failed and the fix: without Sentinel, the data tools cannot know the masters.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from redkeeper.errors import SentinelError
from redkeeper.model import Address
from redkeeper.sentinel.view import SentinelAnswer, Status, decide, majority
from redkeeper.stack import probe
from redkeeper.topology import SentinelNode, Topology

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
    """Every configured Sentinel's SENTINEL MASTERS, asked in parallel (None when silent)."""
    nodes = topology.sentinel_nodes()

    def ask(node: SentinelNode) -> SentinelAnswer:
        masters = probe.sentinel_masters(node.address, password, timeout)
        if masters is None:
            return SentinelAnswer(node.address, None, "did not answer")
        return SentinelAnswer(node.address, masters)

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        return list(pool.map(ask, nodes))


def decide_masters(topology: Topology, answers: list[SentinelAnswer]) -> Masters:
    """Apply the majority/highest-epoch rule to `answers`; SentinelError when it cannot."""
    nodes = topology.sentinel_nodes()
    names = [shard.name for shard in topology.shards]
    configured = len(nodes)
    label = {node.address: f"{node.name} ({node.address})" for node in nodes}
    silent = [label.get(a.sentinel, str(a.sentinel)) for a in answers if not a.answered]
    answered = configured - len(silent)
    needed = majority(configured)
    if answered < needed:
        raise SentinelError(
            f"only {answered} of {configured} Sentinels answered ({needed} needed), "
            f"so the current masters are unknown; not answering: {', '.join(silent)} "
            f"(fix: {FIX})"
        )
    verdicts = decide(answers, configured, names)
    addresses: dict[str, Address] = {}
    epochs: dict[str, int] = {}
    for name in names:
        verdict = verdicts[name]
        if verdict.status is not Status.OK or verdict.address is None:
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
    return Masters(addresses, epochs, answered, configured)


def current_masters(topology: Topology, password: str | None, timeout: float = 0.5) -> Masters:
    """Ask every Sentinel and decide each shard's master; SentinelError when it cannot."""
    return decide_masters(topology, ask_all(topology, password, timeout))
