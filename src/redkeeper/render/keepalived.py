"""Pure renderers for a proxy host's keepalived: keepalived.conf, the notify script, the
sysctl drop-in for `ip_nonlocal_bind`, and keepalived's systemd unit.

Seed 002's design (a VRRP instance per VIP, `state MASTER` on the preferred host, a track
script, `net.ipv4.ip_nonlocal_bind=1`), with what the lab measured (docs/lab.md):

- priorities 250/249 rather than 101/100: a backup's skew time, (256 − priority)/256 s, is
  added to every takeover (0.6 s at 100, 0.03 s at 249);
- the track scripts ask the local endpoint over HTTP with a timeout (a zombie passes
  `kill -0`): `chk_endpoint` fails when nothing answers (FAULT: the VIP leaves this host),
  `chk_routing` adds `routing_weight` while /healthz says ok (Sentinel majority), so a
  healthy peer takes the VIP from a degraded proxy, and a lone degraded one keeps serving;
- `vrrp_higher_prio_send_advert true`: after a split heals, the lower-priority master
  yields at once and clients learn the right MAC in well under a second (over 40 s without);
- the unit removes a VIP a SIGKILLed keepalived left on the interface (before start and
  after stop) and stale pid files (which block a start).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from redkeeper.render.files import EXEC_MODE, PUBLIC_MODE, SECRET_MODE, RenderedFile, header
from redkeeper.render.layout import Layout
from redkeeper.render.systemd import render_unit
from redkeeper.topology import Topology
from redkeeper.topology.schema import VipSpec

KEEPALIVED = "/usr/sbin/keepalived"
IP = "/usr/sbin/ip"
RM = "/bin/rm"
CURL = "/usr/bin/curl"
CURL_FLAGS = ("--noproxy", "127.0.0.1")  # never via an http_proxy of its environment
KEEPALIVED_DIR = Path("/etc/keepalived")
CONF = KEEPALIVED_DIR / "keepalived.conf"
NOTIFY = KEEPALIVED_DIR / "redkeeper-notify.sh"
SYSCTL = Path("/etc/sysctl.d/60-redkeeper-proxy.conf")
PIDS = ("keepalived", "vrrp", "checkers")
CHECK_USER = "nobody"


def instance_name(vip: VipSpec) -> str:
    return f"redkeeper_{vip.router_id}"


def pid_files(layout: Layout) -> dict[str, Path]:
    """keepalived's three pid files (one set per host: a shared set refuses to start)."""
    return {name: layout.workdir("keepalived") / f"{name}.pid" for name in PIDS}


def keepalived_argv(layout: Layout) -> list[str]:
    """Foreground, console log, no syslog, VRRP only, this host's files."""
    pids = pid_files(layout)
    return [
        KEEPALIVED,
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--no-syslog",
        "--vrrp",
        "--use-file",
        str(CONF),
        "--pid",
        str(pids["keepalived"]),
        "--vrrp_pid",
        str(pids["vrrp"]),
        "--checkers_pid",
        str(pids["checkers"]),
    ]


def _health_url(topology: Topology) -> str:
    metrics = topology.spec.agent.metrics
    port = metrics.port if metrics is not None else 9121
    return f"http://127.0.0.1:{port}/healthz"


def _checks(topology: Topology) -> list[str]:
    """The two track scripts (module docstring). In restart/steady mode the endpoint is
    nutcracker: alive when its stats port answers (read as telnet: nutcracker writes its
    JSON without reading a request, and an unread HTTP request makes it reset the
    connection; keepalived's scripts have /dev/null as stdin)."""
    spec = topology.spec
    keepalived = spec.proxy.keepalived
    seconds = f"{keepalived.check_timeout_ms / 1000:g}"
    url = _health_url(topology)
    if spec.proxy.mode == "redkeeper":
        alive = [CURL, *CURL_FLAGS, "-sS", "-m", seconds, "-o", "/dev/null", url]
    else:
        stats = f"telnet://127.0.0.1:{spec.proxy.stats.port}"
        alive = [CURL, *CURL_FLAGS, "-sS", "-m", seconds, "-o", "/dev/null", stats]
    routing = [CURL, *CURL_FLAGS, "-fsS", "-m", seconds, "-o", "/dev/null", url]
    timeout = keepalived.check_interval_s + 1
    lines: list[str] = []
    for name, argv, weight in (
        ("chk_endpoint", alive, None),
        ("chk_routing", routing, keepalived.routing_weight),
    ):
        if weight == 0:
            continue
        lines += [
            f"vrrp_script {name} {{",
            f'    script "{shlex.join(argv)}"',
            f"    interval {keepalived.check_interval_s}",
            f"    timeout {timeout}",
            "    fall 1",
            "    rise 1",
            *([f"    weight {weight}"] if weight is not None else []),
            f"    user {CHECK_USER}",
            "}",
            "",
        ]
    return lines


def _instance(topology: Topology, index: int, host: str, vrrp_password: str | None) -> list[str]:
    proxy = topology.spec.proxy
    keepalived = proxy.keepalived
    vip = proxy.vips[index]
    hosts = proxy.proxy_hosts()
    priorities = proxy.priorities(index)
    mine = priorities[hosts.index(host)]
    state = "MASTER" if keepalived.preempt and mine == max(priorities) else "BACKUP"
    lines = [
        f"vrrp_instance {instance_name(vip)} {{",
        f"    state {state}",
        f"    interface {vip.interface}",
        f"    virtual_router_id {vip.router_id}",
        f"    priority {mine}",
        f"    advert_int {keepalived.advert_int}",
    ]
    if not keepalived.preempt:
        lines.append("    nopreempt")
    if keepalived.unicast:
        peers = [h for h in hosts if h != host]
        lines += [f"    unicast_src_ip {host}", "    unicast_peer {"]
        lines += [f"        {peer}" for peer in peers]
        lines.append("    }")
    if vrrp_password is not None:
        lines += [
            "    authentication {",
            "        auth_type PASS",
            f"        auth_pass {vrrp_password}",
            "    }",
        ]
    lines += [
        "    virtual_ipaddress {",
        f"        {vip.address}/{vip.prefix} dev {vip.interface}",
        "    }",
        "    track_script {",
        "        chk_endpoint",
        *(["        chk_routing"] if keepalived.routing_weight else []),
        "    }",
        f"    notify {NOTIFY}",
        "}",
        "",
    ]
    return lines


def render_keepalived(topology: Topology, host: str, vrrp_password: str | None) -> RenderedFile:
    """keepalived.conf of proxy host `host` (one VRRP instance per VIP)."""
    lines = [
        header(f"keepalived of proxy host {host}", topology.source).rstrip(),
        "global_defs {",
        f"    router_id redkeeper_{host.replace('.', '_')}",
        "    enable_script_security",
        "    script_user root",
        "    vrrp_higher_prio_send_advert true",
        "}",
        "",
        *_checks(topology),
    ]
    for index in range(len(topology.spec.proxy.vips)):
        lines += _instance(topology, index, host, vrrp_password)
    mode = SECRET_MODE if vrrp_password is not None else PUBLIC_MODE
    return RenderedFile(CONF, "\n".join(lines), mode, host)


def render_notify(topology: Topology, host: str, layout: Layout) -> RenderedFile:
    """The notify script: one dated line per VRRP transition, to a log file and syslog."""
    log = layout.log("vrrp")
    text = "\n".join(
        [
            "#!/bin/sh",
            header(f"keepalived notify script of proxy host {host}", topology.source).rstrip(),
            "# keepalived calls it with: INSTANCE|GROUP <name> MASTER|BACKUP|FAULT|STOP <priority>",
            f'line="$(date "+%Y-%m-%d %H:%M:%S") {host} vrrp $2: $3 (priority ${{4:-?}})"',
            f'echo "$line" >> {shlex.quote(str(log))} 2>/dev/null',
            'logger -t redkeeper-vrrp -- "$line" 2>/dev/null',
            "exit 0",
            "",
        ]
    )
    return RenderedFile(NOTIFY, text, EXEC_MODE, host)


def render_sysctl(topology: Topology, host: str) -> RenderedFile:
    """The proxy binds the VIP also while another host holds it (seed 002)."""
    text = header("sysctl of a proxy host", topology.source) + "net.ipv4.ip_nonlocal_bind = 1\n"
    return RenderedFile(SYSCTL, text, PUBLIC_MODE, host)


def render_keepalived_unit(topology: Topology, host: str, layout: Layout) -> RenderedFile:
    """keepalived's unit: a leftover VIP and stale pid files removed before it starts, the
    VIP removed again after it stops (also after a crash)."""
    drops = [
        (IP, "addr", "del", f"{vip.address}/{vip.prefix}", "dev", vip.interface)
        for vip in topology.spec.proxy.vips
    ]
    pids = tuple(str(p) for p in pid_files(layout).values())
    return render_unit(
        "keepalived",
        "keepalived (moves the proxy's virtual IP)",
        keepalived_argv(layout),
        host,
        user="root",
        pre=(*drops, (RM, "-f", *pids)),
        post=tuple(drops),
        writable=(layout.workdir("keepalived"), layout.log_dir),
    )


def render_proxy_host(
    topology: Topology, host: str, layout: Layout, vrrp_password: str | None
) -> list[RenderedFile]:
    """Every keepalived file of one proxy host (none without a VIP)."""
    if not topology.spec.proxy.vips:
        return []
    return [
        render_keepalived(topology, host, vrrp_password),
        render_notify(topology, host, layout),
        render_sysctl(topology, host),
        render_keepalived_unit(topology, host, layout),
    ]
