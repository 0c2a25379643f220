"""What the client endpoint routes, as its own /healthz says.

The endpoint is nutcracker (its agent answers /healthz at `agent.metrics`) or the redkeeper
proxy (it answers there itself); either way `Health.routes` is shard → the address it sends
that shard's requests to now. An operation waits on it (bounded) before it lets writes
through again. Switching the endpoint to a new ring is `reshard_switch`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redkeeper.agent.health import Health
from redkeeper.stack import probe
from redkeeper.topology import Topology

POLL_S = 0.005


def health(topology: Topology, timeout: float = 0.5) -> Health | None:
    """The endpoint's /healthz, or None (no `agent.metrics`, or it does not answer)."""
    metrics = topology.spec.agent.metrics
    return None if metrics is None else probe.agent_health(metrics, timeout)


def wait_health(
    topology: Topology, done: Callable[[Health], bool], timeout: float, poll: float = POLL_S
) -> Health | None:
    """Poll /healthz until `done(health)`; the last health seen (None if none) when `timeout`
    passes first. The caller tells the two apart with `done` again."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        seen = health(topology, timeout=min(0.5, max(0.05, timeout)))
        if seen is not None:
            last = seen
            if done(seen):
                return seen
        if time.monotonic() >= deadline:
            return last
        time.sleep(poll)
