"""Which HAProxy server should take traffic (pure): steady mode's routing rules.

- A shard's own backend (the one nutcracker's server points at) routes to the address the
  agent set from Sentinel's majority; a server in maintenance routes nowhere (`UNROUTED`,
  e.g. right after HAProxy started), which the agent treats like any other wrong route.
- A read backend: a node takes reads only when `core.nodes.read_verdict` says it may (a
  replica of exactly the master, link up, not flagged down by a Sentinel). A demoted old
  master therefore joins only once its own INFO says it follows the new one.
- The write backend: only the shard's master is ready; every other node is in maintenance
  (the guard against the returning old master that still says `role:master`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

from redkeeper.core.nodes import NodeFacts, read_verdict
from redkeeper.model import Address
from redkeeper.proxy.base import UNROUTED
from redkeeper.proxy.haproxy.runtime import ServerState
from redkeeper.render.haproxy import HAProxyPlan


@dataclass(frozen=True)
class Wanted:
    """The state one server should be in, and why (for the log)."""

    backend: str
    server: str
    address: Address
    ready: bool
    reason: str


def index_rows(rows: Iterable[ServerState]) -> dict[tuple[str, str], ServerState]:
    return {(row.backend, row.server): row for row in rows}


def missing_servers(plan: HAProxyPlan, rows: Iterable[ServerState]) -> list[str]:
    """`backend/server` of the plan that HAProxy does not have (it runs another config)."""
    have = index_rows(rows)
    return [
        f"{backend}/{server}"
        for backend, servers in plan.backends().items()
        for server in servers
        if (backend, server) not in have
    ]


def routes_of(plan: HAProxyPlan, rows: Iterable[ServerState]) -> dict[str, Address]:
    """shard → where HAProxy sends its traffic now (`UNROUTED` when in maintenance)."""
    have = index_rows(rows)
    routes: dict[str, Address] = {}
    for shard in plan.shards:
        row = have.get((shard.backend, shard.server))
        routes[shard.shard] = UNROUTED if row is None or row.maint else row.address
    return routes


def wanted_pools(
    plan: HAProxyPlan,
    routes: Mapping[str, Address],
    roles: Mapping[Address, NodeFacts | None],
    down: Mapping[str, Set[Address]],
) -> list[Wanted]:
    """The wanted state of every read and write backend server.

    `roles`: the facts of each node (None: no answer); `down`: per shard, the nodes some answering
    Sentinel flags s_down / o_down / disconnected.
    """
    wanted: list[Wanted] = []
    for shard in plan.shards:
        master = routes.get(shard.shard, UNROUTED)
        if shard.read_backend is not None:
            for node in shard.nodes:
                ready, reason = (
                    (False, "the shard has no route yet")
                    if master == UNROUTED
                    else read_verdict(node.address, master, roles, down.get(shard.shard, set()))
                )
                wanted.append(Wanted(shard.read_backend, node.name, node.address, ready, reason))
    if plan.write_backend is not None:
        shard = plan.shards[0]
        master = routes.get(shard.shard, UNROUTED)
        for node in shard.nodes:
            ready = master != UNROUTED and node.address == master
            reason = "Sentinel's master" if ready else f"not Sentinel's master ({master})"
            wanted.append(Wanted(plan.write_backend, node.name, node.address, ready, reason))
    return wanted


def pool_changes(wanted: Iterable[Wanted], rows: Iterable[ServerState]) -> list[Wanted]:
    """The servers whose maintenance state differs from the wanted one: maint first."""
    have = index_rows(rows)
    changes = [
        w
        for w in wanted
        if (row := have.get((w.backend, w.server))) is not None and row.maint == w.ready
    ]
    return sorted(changes, key=lambda w: (w.ready, w.backend, w.server))
