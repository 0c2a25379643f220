"""What a switchover asks of Sentinel: which replica it will promote, and when to ask.

- `replicas(sentinel, shard)`: `SENTINEL REPLICAS` parsed (address, flags, link, offset,
  `slave-priority` as Sentinel last read it, `info-refresh`: ms since its last INFO of it);
- `Steering`: temporary `replica-priority` values that make Sentinel pick the target (1 for
  the target, 2 for any other replica at 1; 0 "never" is left alone), recorded before they
  are set so that they are always restored; `wait_seen` waits until the Sentinel that runs
  the failover has read them (its INFO of each replica: every 10 s);
- `fire_time`: when to send `SENTINEL FAILOVER` so that Sentinel sees the promotion quickly.
  A Sentinel reads INFO of a replica every 10 s, and every 1 s while a failover of its master
  runs; it notices the promoted replica's new role only at that INFO. It sends `REPLICAOF NO
  ONE` about three timer ticks (50–100 ms each) after `SENTINEL FAILOVER`. Sent ~650 ms after
  its last INFO of the target, the failover's first INFO of the target comes just after the
  promotion (the promotion is seen ~0.3–0.4 s after the failover starts) instead of just
  before it (seen ~1.1 s after).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from redkeeper.errors import OperationError
from redkeeper.model import Address
from redkeeper.ops.nodes import Node

PRIORITY = "replica-priority"
FIRE_AFTER_INFO_S = 0.65  # send SENTINEL FAILOVER this long after the target's last INFO
PAUSE_AHEAD_S = 0.05  # pause the master this long before that (catch-up happens meanwhile)
POLL_S = 0.02


@dataclass(frozen=True)
class SentinelReplica:
    address: Address
    flags: frozenset[str]
    link_ok: bool
    offset: int
    priority: int
    info_age_s: float  # since the Sentinel's last INFO reply from it

    @property
    def down(self) -> bool:
        return bool(self.flags & {"s_down", "o_down", "disconnected"})


def parse_replica(raw: object) -> SentinelReplica:
    """One `SENTINEL REPLICAS` entry (flat field/value list or map)."""
    if isinstance(raw, Mapping):
        fields = {str(k): str(v) for k, v in raw.items()}
    elif isinstance(raw, list | tuple) and len(raw) % 2 == 0:
        fields = {str(k): str(v) for k, v in zip(raw[::2], raw[1::2], strict=True)}
    else:
        raise ValueError(f"unexpected SENTINEL REPLICAS entry: {raw!r}")
    try:
        return SentinelReplica(
            Address(fields["ip"], int(fields["port"])),
            frozenset(f for f in fields.get("flags", "").split(",") if f),
            fields.get("master-link-status") == "ok",
            int(fields.get("slave-repl-offset", "0")),
            int(fields.get("slave-priority", fields.get("replica-priority", "100"))),
            int(fields.get("info-refresh", "0")) / 1000,
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"malformed SENTINEL REPLICAS entry ({exc}): {raw!r}") from None


def replicas(sentinel: Node, shard: str) -> dict[Address, SentinelReplica]:
    raw = sentinel.call("SENTINEL", "REPLICAS", shard)
    if not isinstance(raw, list):
        raise OperationError(f"{sentinel.label}: SENTINEL REPLICAS {shard}: {raw!r}")
    try:
        found = [parse_replica(entry) for entry in raw]
    except ValueError as exc:
        raise OperationError(f"{sentinel.label}: {exc}") from None
    return {r.address: r for r in found}


def wanted_priorities(target: Address, current: Mapping[Address, int]) -> dict[Address, int]:
    """The temporary priorities (module docstring): only the values that must change."""
    wanted = {target: 1} if current.get(target) != 1 else {}
    for address, priority in current.items():
        if address != target and priority == 1:
            wanted[address] = 2
    return wanted


class Steering:
    """Set, observe and restore temporary `replica-priority` values."""

    def __init__(self, nodes: Mapping[Address, Node]) -> None:
        self.nodes = nodes

    def originals(self) -> dict[Address, int]:
        """The current values of the replicas that answer (one that does not cannot be set,
        and Sentinel does not promote a replica it cannot reach either)."""
        found: dict[Address, int] = {}
        for address, node in self.nodes.items():
            try:
                found[address] = int(node.config_get(PRIORITY))
            except OperationError:
                continue
        return found

    def apply(self, values: Mapping[Address, int]) -> None:
        for address, value in values.items():
            self.nodes[address].config_set(PRIORITY, str(value))

    def restore(self, originals: Mapping[Address, int]) -> list[str]:
        """Put every recorded value back; the nodes that could not be reached (a restarted
        node has its configured value again anyway)."""
        failed = []
        for address, value in originals.items():
            node = self.nodes.get(address)
            try:
                if node is None:
                    raise OperationError(f"{address} is not a node of the shard")
                if node.config_get(PRIORITY) != str(value):
                    node.config_set(PRIORITY, str(value))
            except OperationError as exc:
                failed.append(str(exc))
        return failed


def wait_seen(sentinel: Node, shard: str, values: Mapping[Address, int], timeout: float) -> None:
    """Wait until `sentinel` reports every value of `values` (its INFO of each replica);
    OperationError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        seen = replicas(sentinel, shard)
        missing = [a for a, v in values.items() if a not in seen or seen[a].priority != v]
        if not missing:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(str(a) for a in missing)
            raise OperationError(
                f"{sentinel.label} has not read the new replica-priority of {shown} after "
                f"{timeout:.0f} s (fix: check that Sentinel reaches the replicas, then retry)"
            )
        time.sleep(0.1)


def fire_time(sentinel: Node, shard: str, target: Address, timeout: float) -> float:
    """The monotonic time to send SENTINEL FAILOVER at (module docstring): FIRE_AFTER_INFO_S
    after `sentinel`'s last INFO of `target`, waiting for its next INFO when the last one is
    too old to aim at. OperationError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        asked = time.monotonic()
        entry = replicas(sentinel, shard).get(target)
        if entry is None:
            raise OperationError(f"{sentinel.label} does not list {target} as a replica")
        last_info = asked - entry.info_age_s
        if asked <= last_info + FIRE_AFTER_INFO_S - PAUSE_AHEAD_S - POLL_S:
            return last_info + FIRE_AFTER_INFO_S
        if time.monotonic() >= deadline:
            return time.monotonic()  # no aim: the promotion is seen within ~1.1 s anyway
        time.sleep(POLL_S)
