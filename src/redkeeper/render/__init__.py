"""Pure renderers: topology (+ current masters) → every config file, per host.

`render_all` returns values. `render.diff` compares them with what is on disk (pure);
`render.disk.write_rendered`, the package's only I/O, writes what differs (validated, atomic,
0600 for secrets) for both `render` and `up`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from redkeeper.model import Address
from redkeeper.proxy.strategy import choose_strategy
from redkeeper.render.files import SECRET_MODE, RenderedFile
from redkeeper.render.haproxy import haproxy_argv, haproxy_plan, render_haproxy
from redkeeper.render.keepalived import render_proxy_host
from redkeeper.render.layout import Layout
from redkeeper.render.nutcracker import nutcracker_argv, nutcracker_yaml, render_nutcracker
from redkeeper.render.redis import render_redis, render_sentinel, sentinel_shard_settings
from redkeeper.render.systemd import render_unit, unit_name
from redkeeper.topology import Topology

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_SENTINEL = "/usr/bin/redis-sentinel"
NUTCRACKER = "/usr/sbin/nutcracker"
HAPROXY = "/usr/sbin/haproxy"
REDKEEPER = "/usr/local/bin/redkeeper"

__all__ = [
    "Layout",
    "RenderedFile",
    "haproxy_plan",
    "initial_masters",
    "nutcracker_argv",
    "nutcracker_yaml",
    "render_all",
    "render_nutcracker",
    "render_redis",
    "render_sentinel",
    "sentinel_shard_settings",
]


def initial_masters(topology: Topology) -> dict[str, Address]:
    return {shard.name: shard.master for shard in topology.shards}


def _topology_copy(topology: Topology, layout: Layout, text: str, host: str) -> RenderedFile:
    return RenderedFile(layout.config("topology.yaml"), text, SECRET_MODE, host)


def render_all(
    topology: Topology,
    layout: Layout,
    *,
    masters: Mapping[str, Address] | None = None,
    password: str | None = None,
    host: str | None = None,
    topology_text: str | None = None,
    units: bool = True,
    vrrp_password: str | None = None,
) -> list[RenderedFile]:
    """Every file of the deployment (or of `host` only), in a stable order. Each proxy host
    (`proxy.hosts`) gets the endpoint's files, and with `proxy.vips` keepalived's too
    (`vrrp_password`: its VRRP pass, `Topology.vrrp_password`)."""
    current = dict(initial_masters(topology))
    current.update(masters or {})
    files: list[RenderedFile] = []
    for node in topology.redis_nodes():
        conf = render_redis(topology, node, layout, current, password)
        files.append(conf)
        if units:
            files.append(
                render_unit(
                    node.name,
                    f"redis-server {node.name} (shard {node.shard})",
                    [REDIS_SERVER, str(conf.path)],
                    node.address.host,
                    writable=(layout.workdir(node.name), layout.log_dir),
                )
            )
    for sentinel in topology.sentinel_nodes():
        conf = render_sentinel(topology, sentinel, layout, current, password)
        files.append(conf)
        if units:
            files.append(
                render_unit(
                    sentinel.name,
                    f"redis-sentinel {sentinel.name}",
                    [REDIS_SENTINEL, str(conf.path)],
                    sentinel.address.host,
                    writable=(layout.workdir(sentinel.name), layout.log_dir),
                )
            )
    for proxy_host in topology.proxy_hosts():
        if host is not None and proxy_host != host:
            continue
        endpoint = _endpoint_files(topology, layout, current, password, topology_text, units)
        files += [replace(f, host=proxy_host) for f in endpoint]
        if units:
            files += render_proxy_host(topology, proxy_host, layout, vrrp_password)
    return [f for f in files if host is None or f.host == host]


def _endpoint_files(
    topology: Topology,
    layout: Layout,
    current: Mapping[str, Address],
    password: str | None,
    topology_text: str | None,
    units: bool,
) -> list[RenderedFile]:
    """The endpoint's files of one proxy host (the host field is set by the caller)."""
    mode = topology.spec.proxy.mode
    proxy_host = topology.spec.proxy.listen.host
    files: list[RenderedFile] = []
    if topology_text is not None:
        files.append(_topology_copy(topology, layout, topology_text, proxy_host))
    if mode == "redkeeper":  # the redkeeper proxy reads the topology itself: no nutcracker.yml
        if units:
            files.append(_redkeeper_proxy_unit(layout, proxy_host))
        return files
    # steady: nutcracker's servers are HAProxy's local frontends (never change after render)
    backends = haproxy_plan(topology, layout).frontends() if mode == "steady" else current
    pool = render_nutcracker(topology, layout, backends, password)
    files.append(pool)
    if mode == "steady":
        files.append(render_haproxy(topology, layout, current, password))
    if units:
        files.extend(_proxy_units(topology, layout, pool, proxy_host))
    return files


def _redkeeper_proxy_unit(layout: Layout, proxy_host: str) -> RenderedFile:
    """`proxy.mode: redkeeper`: one unit, the proxy (it follows Sentinel itself); reload =
    SIGHUP, which re-reads the topology without dropping clients."""
    argv = [
        REDKEEPER,
        "proxy",
        "-c",
        str(layout.config("topology.yaml")),
        "--state-dir",
        str(layout.state_dir),
    ]
    return render_unit(
        "proxy",
        "proxy (the client endpoint; follows Sentinel in-process)",
        argv,
        proxy_host,
        user="redkeeper",
        writable=(layout.state_dir, layout.log_dir),
        reload_signal="HUP",
    )


def _proxy_units(
    topology: Topology, layout: Layout, pool: RenderedFile, proxy_host: str
) -> list[RenderedFile]:
    agent = topology.spec.agent
    topo_path = str(layout.config("topology.yaml"))
    nutcracker_log = layout.log("nutcracker")
    units: list[RenderedFile] = []
    steady = topology.spec.proxy.mode == "steady"
    agent_writable: tuple[Path, ...] = (layout.config_dir, layout.log_dir)
    if steady:
        haproxy_dir = layout.workdir("haproxy")  # admin socket and server-state file
        agent_writable = (*agent_writable, haproxy_dir)
        units.append(
            render_unit(
                "haproxy",
                "HAProxy (steady mode: the agent repoints it at run time)",
                haproxy_argv(HAPROXY, layout.config("haproxy.cfg")),
                proxy_host,
                user="redkeeper",  # the 0600 admin socket is the agent's
                writable=(haproxy_dir,),
            )
        )
    agent_argv = [
        REDKEEPER,
        "agent",
        "-c",
        topo_path,
        "--nutcracker-config",
        str(pool.path),
        "--state-dir",
        str(layout.state_dir),
    ]
    strategy = choose_strategy(agent, source=topology.source)
    if strategy.kind != "managed":
        units.append(
            render_unit(
                "nutcracker",
                "nutcracker (twemproxy) pool",
                nutcracker_argv(topology, NUTCRACKER, pool.path, nutcracker_log),
                proxy_host,
                user="nutcracker",
                writable=(layout.log_dir,),
            )
        )
    if strategy.kind == "managed" or not steady:
        # steady mode never restarts nutcracker for a failover: no restart strategy
        agent_argv += strategy.agent_flags()
    if strategy.kind == "staging" and not steady:
        units.append(
            render_unit(
                "apply-staged",
                "privileged watcher applying staged nutcracker.yml",
                [
                    REDKEEPER,
                    "apply-staged",
                    "--staging",
                    str(agent.staging),
                    "--config",
                    str(pool.path),
                    "--restart-cmd",
                    "systemctl",
                    "restart",
                    unit_name("nutcracker"),
                ],
                proxy_host,
                user="root",
            )
        )
    units.append(
        render_unit(
            "agent",
            "agent (keeps nutcracker on Sentinel's masters)",
            agent_argv,
            proxy_host,
            user="redkeeper",
            after=(unit_name("haproxy"),) if steady else (),
            writable=agent_writable,
        )
    )
    return units
