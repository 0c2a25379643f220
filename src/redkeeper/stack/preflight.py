"""What `up` checks before it starts or writes anything: no stack already running from the
state dir, every binary installed, every address on loopback and every port free."""

from __future__ import annotations

from collections.abc import Sequence

from redkeeper.errors import PortInUseError, StackError
from redkeeper.model import Address
from redkeeper.process import ProcessRecord, find_binary
from redkeeper.process.ports import port_bindable
from redkeeper.render import Layout, haproxy_plan
from redkeeper.topology import Topology

MAX_UNIX_PATH = 107  # sun_path is 108 bytes with the final NUL


def listeners(topology: Topology, layout: Layout, with_agent: bool) -> list[tuple[str, Address]]:
    """(what, address) of every socket a local stack of `topology` listens on."""
    spec = topology.spec
    found = [(n.name, n.address) for n in topology.redis_nodes()]
    found += [(s.name, s.address) for s in topology.sentinel_nodes()]
    if spec.proxy.mode == "redkeeper":
        found.append(("redkeeper proxy", spec.proxy.listen))
        if spec.agent.metrics is not None:
            found.append(("redkeeper proxy metrics", spec.agent.metrics))
        return found
    found += [("nutcracker", spec.proxy.listen), ("nutcracker stats", spec.proxy.stats)]
    if with_agent and spec.agent.metrics is not None:
        found.append(("agent metrics", spec.agent.metrics))
    if spec.proxy.mode == "steady":
        found += haproxy_plan(topology, layout).listeners()
    return found


def check(
    topology: Topology, layout: Layout, with_agent: bool, running: Sequence[ProcessRecord]
) -> dict[str, str]:
    """Binaries by name; raises before anything is started or written."""
    if running:
        pids = ", ".join(f"{r.name}={r.pid}" for r in running)
        raise StackError(
            f"a stack is already running from {topology.state_dir} ({pids}); "
            "run `redkeeper down` first"
        )
    steady = topology.spec.proxy.mode == "steady"
    names = ["redis-server", "redis-sentinel"]
    if topology.spec.proxy.mode != "redkeeper":  # the redkeeper proxy replaces nutcracker
        names.append("nutcracker")
    if steady:
        names.append("haproxy")
        _check_steady(topology, layout, with_agent)
    binaries = {name: find_binary(name) for name in names}
    addresses = listeners(topology, layout, with_agent)
    remote = [f"{n} {a}" for n, a in addresses if not a.is_loopback]
    if remote:
        raise StackError(
            f"{topology.source}: `up` runs a local stack, but "
            f"{', '.join(remote)} is not on 127.0.0.0/8 (fix: use `render --host` and "
            "systemd for real hosts)"
        )
    busy = [f"{n} {a}" for n, a in addresses if not port_bindable(a.host, a.port)]
    if busy:
        raise PortInUseError(
            f"port(s) in use: {', '.join(busy)} (fix: stop what holds them, or change the "
            f"ports in the topology file; nothing was started)"
        )
    return binaries


def _check_steady(topology: Topology, layout: Layout, with_agent: bool) -> None:
    if not with_agent:
        raise StackError(
            f"{topology.source}: proxy.mode: steady needs the agent (it is what "
            "routes HAProxy's servers)"
        )
    socket = haproxy_plan(topology, layout).admin_socket
    if len(str(socket).encode()) > MAX_UNIX_PATH:
        raise StackError(
            f"{topology.source}: HAProxy's admin socket {socket} is longer than "
            f"{MAX_UNIX_PATH} bytes, the limit of a unix socket path (fix: a shorter "
            "state_dir, or set proxy.haproxy.admin_socket)"
        )
