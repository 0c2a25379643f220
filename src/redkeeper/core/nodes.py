"""Facts about the Redis nodes themselves (pure): what `INFO replication` says, which
replicas may serve reads, and whether a master refuses writes (`refuses_writes`).

The agent's observation step gathers `NodeFacts` for every node of every shard when its
target asks for them (steady mode's read and write pools, the redkeeper proxy's replica
reads); the rules that use them live here and in `proxy.haproxy.pools`.

A replica is **eligible for reads** of a shard when: it is not the shard's master; its own
INFO says role slave of exactly that master with `master_link_status:up`; no answering
Sentinel flags it s_down/o_down; and, when a maximum lag is given, the master lists it
`state=online` with `lag` (seconds since its last REPLCONF ACK, as min-replicas-max-lag
uses) at most that. Reads it serves are therefore at most about `max_lag + 1` s stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

from redkeeper.model import Address


@dataclass(frozen=True)
class NodeFacts:
    """One node's replication state. `link` is "connected" for a replica whose link to its
    master is up (the word ROLE uses), else the state it reports; `lags` (masters only):
    each online replica's lag in seconds."""

    role: str  # "master" | "slave"
    master: Address | None = None
    link: str | None = None
    lags: Mapping[Address, int] = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: Mapping[str, object]) -> NodeFacts | None:
        """From redis-py's parsed `INFO replication` (a dict); None when it is not one."""
        role = str(info.get("role", ""))
        if role == "slave":
            try:
                master = Address(str(info["master_host"]), int(str(info["master_port"])))
            except (KeyError, ValueError):
                return cls(role)
            up = str(info.get("master_link_status")) == "up"
            return cls(role, master, "connected" if up else "down")
        if role != "master":
            return None
        lags: dict[Address, int] = {}
        for key, value in info.items():
            if not key.startswith("slave") or not isinstance(value, Mapping):
                continue
            try:
                address = Address(str(value["ip"]), int(str(value["port"])))
                lag = int(str(value.get("lag", -1)))
            except (KeyError, ValueError):
                continue
            if str(value.get("state")) == "online" and lag >= 0:
                lags[address] = lag
        return cls(role, lags=lags)


@dataclass(frozen=True)
class NodesView:
    """The latest facts about every node (None: it did not answer), and the replicas each
    answering Sentinel flags down, per shard."""

    facts: Mapping[Address, NodeFacts | None]
    down: Mapping[str, Set[Address]] = field(default_factory=dict)


def read_verdict(
    node: Address,
    master: Address,
    facts: Mapping[Address, NodeFacts | None],
    down: Set[Address],
    max_lag: int | None = None,
) -> tuple[bool, str]:
    """May `node` serve reads of the shard whose master is `master`? And why (for logs).
    The rule of the module docstring, in one place (steady's read pools and the proxy)."""
    if node == master:
        return False, "it is the master"
    if node in down:
        return False, "a Sentinel flags it down"
    own = facts.get(node)
    if own is None:
        return False, "INFO replication: no answer"
    if own.role != "slave":
        return False, f"INFO says role {own.role}"
    if own.master != master:
        return False, f"it follows {own.master}, not the master {master}"
    if own.link != "connected":
        return False, f"its link to {master} is {own.link}"
    if max_lag is not None:
        master_facts = facts.get(master)
        lag = None if master_facts is None else master_facts.lags.get(node)
        if lag is None:
            return False, f"the master {master} does not list it online"
        if lag > max_lag:
            return False, f"lag {lag} s > {max_lag} s"
    return True, f"replica of {master}, link connected"


def readable_replicas(
    shard: str,
    master: Address | None,
    nodes: Sequence[Address],
    view: NodesView,
    max_lag: int | None = None,
) -> list[Address]:
    """The replicas of `shard` that may serve reads now (`read_verdict`), in `nodes` order."""
    if master is None:
        return []
    down = view.down.get(shard, frozenset())
    return [n for n in nodes if read_verdict(n, master, view.facts, down, max_lag)[0]]


def refuses_writes(
    master: Address,
    facts: Mapping[Address, NodeFacts | None],
    required: int,
    max_lag: int,
) -> bool | None:
    """Does `master` answer writes with -NOREPLICAS? Redis counts the replicas that are
    online with a lag ≤ `max_lag` (min-replicas-max-lag) and refuses below `required`
    (min-replicas-to-write). None when `master` did not answer as a master."""
    if required <= 0:
        return False
    own = facts.get(master)
    if own is None or own.role != "master":
        return None
    return sum(1 for lag in own.lags.values() if lag <= max_lag) < required
