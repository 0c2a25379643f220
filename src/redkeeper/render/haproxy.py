"""Pure renderer for steady mode's haproxy.cfg, and the names the agent and `status` share.

`haproxy_plan` names every frontend, backend and server of a topology (the agent, `up` and
`status` build the same plan, so they always agree with the rendered file):

- per shard, frontend + backend named after the shard (= Sentinel master name = nutcracker
  server name) on a local port; its ONE server, `master`, is the address the agent sets at
  run time from Sentinel's majority;
- per shard, `<shard>:read` over every node of the shard (replicas pass the check);
- with one shard, optionally `<shard>:write` over every node (seed 002's setup, but the
  agent keeps every node that is not Sentinel's master in maintenance);
- `redkeeper:stats`, the stats page.

Every server starts `disabled`: nothing is routed until the agent says so. Only the read
backends come back from the server-state file after a restart: a shard's own backend does
not (HAProxy 2.6 restores a server's port from that file but not its IP), nor the write
backend (a stale file could make a returning old master writable again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from redkeeper.model import Address
from redkeeper.render.files import PUBLIC_MODE, SECRET_MODE, RenderedFile, header
from redkeeper.render.layout import Layout
from redkeeper.topology import Topology

SHARD_SERVER = "master"
STATS_PROXY = "redkeeper:stats"


@dataclass(frozen=True)
class NodeServer:
    """A server of a read or write backend: one Redis node, named like the node."""

    name: str
    address: Address


@dataclass(frozen=True)
class ShardPlan:
    shard: str
    frontend: Address  # what nutcracker's server `shard` points at
    backend: str
    read_frontend: Address | None
    read_backend: str | None
    nodes: tuple[NodeServer, ...]  # every node of the shard (the inventory)
    server: str = SHARD_SERVER


@dataclass(frozen=True)
class HAProxyPlan:
    shards: tuple[ShardPlan, ...]
    admin_socket: Path
    state_file: Path
    stats: Address | None
    check_interval_ms: int
    write_frontend: Address | None = None
    write_backend: str | None = None  # serves shards[0] (a write frontend needs one shard)

    def shard(self, name: str) -> ShardPlan:
        for plan in self.shards:
            if plan.shard == name:
                return plan
        raise KeyError(name)

    def frontends(self) -> dict[str, Address]:
        """shard → the local frontend nutcracker's named server points at."""
        return {plan.shard: plan.frontend for plan in self.shards}

    def listeners(self) -> list[tuple[str, Address]]:
        """(what, address) of everything HAProxy listens on."""
        found = [(f"haproxy {p.shard}", p.frontend) for p in self.shards]
        found += [
            (f"haproxy {p.read_backend}", p.read_frontend)
            for p in self.shards
            if p.read_frontend is not None
        ]
        if self.write_frontend is not None:
            found.append((f"haproxy {self.write_backend}", self.write_frontend))
        if self.stats is not None:
            found.append(("haproxy stats", self.stats))
        return found

    def backends(self) -> dict[str, tuple[str, ...]]:
        """Every backend the agent drives → its server names."""
        found: dict[str, tuple[str, ...]] = {}
        for plan in self.shards:
            found[plan.backend] = (plan.server,)
            if plan.read_backend is not None:
                found[plan.read_backend] = tuple(n.name for n in plan.nodes)
        if self.write_backend is not None:
            found[self.write_backend] = tuple(n.name for n in self.shards[0].nodes)
        return found


def _under(state_dir: Path, path: Path | None, default: str) -> Path:
    if path is None:
        return state_dir / "haproxy" / default
    return path if path.is_absolute() else state_dir / path


def haproxy_plan(topology: Topology, layout: Layout) -> HAProxyPlan:
    """Names and addresses of everything steady mode's HAProxy serves (pure)."""
    spec = topology.spec.proxy.haproxy
    host = topology.spec.proxy.listen.host
    shards = []
    for index, shard in enumerate(topology.shards):
        nodes = tuple(
            NodeServer(f"{shard.name}-{n}", address) for n, address in enumerate(shard.nodes, 1)
        )
        read = spec.read_frontend(index, shard.name, host)
        shards.append(
            ShardPlan(
                shard=shard.name,
                frontend=spec.frontend(index, shard.name),
                backend=shard.name,
                read_frontend=read,
                read_backend=None if read is None else f"{shard.name}:read",
                nodes=nodes,
            )
        )
    write = spec.write_frontend
    return HAProxyPlan(
        shards=tuple(shards),
        admin_socket=_under(layout.state_dir, spec.admin_socket, "admin.sock"),
        state_file=_under(layout.state_dir, spec.server_state_file, "server-state"),
        stats=spec.stats,
        check_interval_ms=spec.check_interval_ms,
        write_frontend=write,
        write_backend=None if write is None else f"{shards[0].shard}:write",
    )


def _word(path: Path) -> str:
    """A path as one haproxy.cfg word: quoted when it has blanks, quotes, '#', '$' or '\\'."""
    text = str(path)
    if not any(c.isspace() or c in "\"'#$\\" for c in text):
        return text
    if "'" not in text:
        return f"'{text}'"  # single quotes: nothing inside is special
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _resp(*words: str) -> str:
    """A command in RESP as hex, for `tcp-check send-binary` (no escaping of any password)."""
    parts = [f"*{len(words)}\r\n"]
    for word in words:
        parts.append(f"${len(word.encode())}\r\n{word}\r\n")
    return "".join(parts).encode().hex()


def _check(expect: str, password: str | None, comment: str) -> list[str]:
    lines = ["    option tcp-check", f"    # health check: {comment}", "    tcp-check connect"]
    if password:
        lines += [
            "    # AUTH <password>, as RESP in hex",
            f"    tcp-check send-binary {_resp('AUTH', password)}",
            "    tcp-check expect string +OK",
        ]
    lines += [
        # QUIT in the same send: a reply that does not match fails at once, not on timeout
        '    tcp-check send "INFO replication\\r\\nQUIT\\r\\n"',
        f"    tcp-check expect rstring {expect}",
    ]
    return lines


MASTER_CHECK = "(?s)role:master"
REPLICA_CHECK = "(?s)role:slave.*master_link_status:up"


def _server(name: str, address: Address, inter: int) -> str:
    return (
        f"    server {name} {address} check inter {inter}ms fall 2 rise 1 "
        "on-marked-down shutdown-sessions disabled"
    )


def haproxy_cfg(
    topology: Topology,
    plan: HAProxyPlan,
    masters: Mapping[str, Address],
    password: str | None,
) -> str:
    """haproxy.cfg for steady mode. `masters`: the address each shard's server starts with
    (disabled until the agent confirms it)."""
    inter = plan.check_interval_ms
    lines = [
        header("haproxy.cfg (steady mode)", topology.source).rstrip(),
        "# The agent sets each shard's server address and every server's state over the admin",
        "# socket at run time; HAProxy is never reloaded for a failover.",
        "global",
        f"    stats socket {_word(plan.admin_socket)} mode 600 level admin",
        "    stats timeout 10s",
        f"    server-state-file {_word(plan.state_file)}",
        "",
        "defaults",
        "    mode tcp",
        "    option tcpka",
        "    timeout connect 1s",
        "    timeout client 24h",
        "    timeout server 24h",
        "    timeout check 1s",
        "    load-server-state-from-file global",
    ]
    for shard in plan.shards:
        lines += [
            "",
            f"# {shard.shard}: nutcracker's server {shard.shard!r} -> here -> the master the "
            "agent sets",
            f"frontend {shard.shard}",
            f"    bind {shard.frontend}",
            f"    default_backend {shard.backend}",
            "",
            f"backend {shard.backend}",
            "    # the address is the agent's alone: the state file would restore the port only",
            "    load-server-state-from-file none",
            *_check(MASTER_CHECK, password, "a master"),
            _server(shard.server, masters[shard.shard], inter),
        ]
        if shard.read_frontend is not None and shard.read_backend is not None:
            lines += [
                "",
                f"# {shard.shard}: reads spread over the replicas that follow the master",
                f"frontend {shard.read_backend}",
                f"    bind {shard.read_frontend}",
                f"    default_backend {shard.read_backend}",
                "",
                f"backend {shard.read_backend}",
                "    balance roundrobin",
                *_check(REPLICA_CHECK, password, "a replica whose link to its master is up"),
                *(_server(n.name, n.address, inter) for n in shard.nodes),
            ]
    if plan.write_frontend is not None and plan.write_backend is not None:
        shard = plan.shards[0]
        lines += [
            "",
            f"# {shard.shard}: writes; every node but Sentinel's master is kept in maintenance",
            f"frontend {plan.write_backend}",
            f"    bind {plan.write_frontend}",
            f"    default_backend {plan.write_backend}",
            "",
            f"backend {plan.write_backend}",
            "    # after a restart, nothing takes writes until the agent says who is master",
            "    load-server-state-from-file none",
            *_check(MASTER_CHECK, password, "a master (the agent's maintenance decides)"),
            *(_server(n.name, n.address, inter) for n in shard.nodes),
        ]
    if plan.stats is not None:
        lines += [
            "",
            f"listen {STATS_PROXY}",
            f"    bind {plan.stats}",
            "    mode http",
            "    stats enable",
            "    stats uri /",
            "    stats refresh 5s",
        ]
    return "\n".join(lines) + "\n"


def render_haproxy(
    topology: Topology,
    layout: Layout,
    masters: Mapping[str, Address],
    password: str | None,
) -> RenderedFile:
    plan = haproxy_plan(topology, layout)
    return RenderedFile(
        layout.config("haproxy.cfg"),
        haproxy_cfg(topology, plan, masters, password),
        SECRET_MODE if password else PUBLIC_MODE,
        topology.spec.proxy.listen.host,
    )


def haproxy_argv(binary: str, config: Path) -> list[str]:
    """HAProxy in the foreground (-db), one process: what `up` and the systemd unit run."""
    return [binary, "-db", "-f", str(config)]
