"""Steady mode's HAProxy as `up` and `status` see it: short, bounded, synchronous probes.

`collect` asks the admin socket for every shard's route and every read/write pool; `judge`
(pure) names what is wrong, a route that disagrees with Sentinel's majority above all.
Never raises for an HAProxy that is down: the status says so instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from redkeeper.errors import ApplyError
from redkeeper.model import Address
from redkeeper.proxy.base import UNROUTED
from redkeeper.proxy.haproxy.pools import index_rows, routes_of
from redkeeper.proxy.haproxy.runtime import RuntimeAPI, ServerState
from redkeeper.render.haproxy import HAProxyPlan


@dataclass
class HAProxyShard:
    shard: str
    frontend: str
    route: str | None  # the address HAProxy sends the shard's traffic to; None: no route
    state: str  # UP, DOWN, MAINT… of that server
    readers: list[str] = field(default_factory=list)  # read pool servers that are ready + UP
    read_frontend: str | None = None
    replicas: int = 0  # nodes of the shard besides its master


@dataclass
class HAProxyStatus:
    admin_socket: str
    up: bool
    error: str | None = None
    shards: list[HAProxyShard] = field(default_factory=list)
    writers: list[str] = field(default_factory=list)  # the write pool's routable servers
    write_frontend: str | None = None


def servers(plan: HAProxyPlan, timeout: float = 0.5) -> list[ServerState]:
    """`show servers state`; raises ApplyError (HAProxy down, or another config)."""
    return asyncio.run(RuntimeAPI(plan.admin_socket, timeout).servers_state())


def not_ready(plan: HAProxyPlan, expected: Mapping[str, Address]) -> str | None:
    """None when HAProxy routes every shard to `expected` and every read pool of a shard
    with replicas has a server taking reads, else why not (what `up` waits for)."""
    try:
        rows = servers(plan)
    except ApplyError as exc:
        return str(exc)
    routes = routes_of(plan, rows)
    wrong = [
        f"{shard} -> {'nothing' if route == UNROUTED else route}"
        for shard, route in routes.items()
        if route != expected.get(shard)
    ]
    if wrong:
        return f"HAProxy routes {', '.join(wrong)}"
    have = index_rows(rows)
    empty = [
        shard.read_backend
        for shard in plan.shards
        if shard.read_backend is not None
        and len(shard.nodes) > 1
        and not any(
            (row := have.get((shard.read_backend, n.name))) is not None and row.routable
            for n in shard.nodes
        )
    ]
    return f"no replica takes reads in {', '.join(empty)}" if empty else None


def collect(plan: HAProxyPlan) -> HAProxyStatus:
    status = HAProxyStatus(str(plan.admin_socket), False)
    try:
        rows = servers(plan)
    except ApplyError as exc:
        status.error = str(exc)
        return status
    status.up = True
    have = index_rows(rows)
    routes = routes_of(plan, rows)
    for shard in plan.shards:
        row = have.get((shard.backend, shard.server))
        route = routes[shard.shard]
        entry = HAProxyShard(
            shard.shard,
            str(shard.frontend),
            None if route == UNROUTED else str(route),
            row.state if row is not None else "MISSING",
            read_frontend=None if shard.read_frontend is None else str(shard.read_frontend),
            replicas=len(shard.nodes) - 1,
        )
        if shard.read_backend is not None:
            for node in shard.nodes:
                read = have.get((shard.read_backend, node.name))
                if read is not None and read.routable:
                    entry.readers.append(str(node.address))
        status.shards.append(entry)
    if plan.write_backend is not None and plan.write_frontend is not None:
        status.write_frontend = str(plan.write_frontend)
        for node in plan.shards[0].nodes:
            row = have.get((plan.write_backend, node.name))
            if row is not None and row.routable:
                status.writers.append(str(node.address))
    return status


def judge(status: HAProxyStatus, sentinel_view: Mapping[str, str | None]) -> list[str]:
    """Every reason steady mode's HAProxy is not healthy (pure)."""
    if not status.up:
        return [f"haproxy: {status.error}"]
    problems: list[str] = []
    for shard in status.shards:
        master = sentinel_view.get(shard.shard)
        if shard.route is None:
            problems.append(f"{shard.shard}: HAProxy routes it nowhere (server in maintenance)")
        elif master is not None and shard.route != master:
            problems.append(
                f"{shard.shard}: HAProxy routes to {shard.route}, Sentinel says {master}"
            )
        elif shard.state != "UP":
            problems.append(f"{shard.shard}: HAProxy's server {shard.route} is {shard.state}")
        if shard.read_frontend is not None and master is not None and master in shard.readers:
            problems.append(f"{shard.shard}: the master {master} is in the read pool")
        elif shard.read_frontend is not None and shard.replicas and not shard.readers:
            problems.append(f"{shard.shard}: no replica takes reads at {shard.read_frontend}")
    if status.write_frontend is not None and status.shards:
        master = sentinel_view.get(status.shards[0].shard)
        if master is not None and status.writers != [master]:
            problems.append(
                f"write frontend {status.write_frontend} routes to "
                f"{', '.join(status.writers) or 'nothing'}, Sentinel says {master}"
            )
    return problems
