"""The contract every proxy target keeps: how the agent's runner repoints a data plane.

A *target* is whatever routes client traffic to each shard's master: nutcracker.yml plus a
restart strategy (`proxy.twemproxy.targets`), HAProxy's Runtime API in steady mode
(`proxy.haproxy.steady`), or the redkeeper proxy's in-memory route table
(`redkeeper.server`). The runner (`agent.runner`) calls, in this order:

1. `prepare()` once at start-up;
2. per cycle `routes()`, then — depending on `core.decide` — either `apply(changes)` then
   `verify(changes)`, or `repair(nodes)`.

Each method's promise, and what it may raise (all subclasses of `RedkeeperError`; anything
else is a bug and is logged as one):

- `prepare()`: check that the target can be driven (its config parses, the layout is the
  rendered one) and start what the target owns (a managed nutcracker). Raises ConfigError
  (NutcrackerConfigError …) for a config that can never work: the agent stops with a
  one-line error. A component that is merely down is not an error here.
- `routes()`: shard → the address the data plane routes it to *now*, read from the data
  plane itself (the file on disk, HAProxy's state, the route table) so the loop stays
  level-triggered. Never changes anything. Raises ConfigError (corrupt config) or ApplyError
  (the data plane cannot be asked): the cycle fails and is retried.
- `apply(changes)`: make the data plane route every shard in `changes` to its address, and
  touch nothing else. Idempotent; when it returns, `routes()` includes `changes`. Returns
  an `ApplyOutcome` (was anything written, did a restart happen and how long it took).
  Raises ApplyError when the change could not be made (a failed restart is an outcome with
  `restart.ok` False, not an exception: the change is on disk and `repair` finishes it).
- `verify(changes)`: check, from the data plane, that `changes` are in effect (nutcracker
  serving, HAProxy reporting the new address, the route table holding it); raise ApplyError
  if not. Bounded in time.
- `repair(nodes)`: on a cycle without changes, converge what the last apply may have left
  unfinished (a pending restart, a nutcracker that is not running) and secondary state
  (steady's read/write pools, the proxy's replica reads) from `nodes` — the runner's latest
  `NodesView`, or None when the target did not ask for node facts or none was gathered yet.
  Returns a `RestartResult` when it restarted or started something, else None.

`needs_nodes` tells the runner to gather `NodesView` (INFO replication of every node,
Sentinel's replica flags) in the background of its cycles; it never delays an apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from redkeeper.core.nodes import NodesView
from redkeeper.model import Address

__all__ = ["UNROUTED", "ApplyOutcome", "RestartResult", "Target"]

#: What `routes()` reports for a shard the data plane routes nowhere (an HAProxy server in
#: maintenance, a proxy started without a decision yet): any verdict differs from it.
UNROUTED = Address("0.0.0.0", 0)


@dataclass(frozen=True)
class RestartResult:
    """The outcome of one restart: ok, how long it took, what it said, the new PID if known."""

    ok: bool
    duration_ms: float
    output: str
    pid: int | None = None


@dataclass(frozen=True)
class ApplyOutcome:
    """What `Target.apply` did: whether it wrote anything, and the restart if it made one."""

    written: bool
    restart: RestartResult | None = None


class Target(Protocol):
    """See the module docstring for what each method promises."""

    description: str
    needs_nodes: bool

    async def prepare(self) -> None: ...

    async def routes(self) -> dict[str, Address]: ...

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome: ...

    async def verify(self, changes: Mapping[str, Address]) -> None: ...

    async def repair(self, nodes: NodesView | None) -> RestartResult | None: ...
