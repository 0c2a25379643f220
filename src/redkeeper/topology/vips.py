"""Cross-field rules of the proxy hosts and their virtual IPs (pure; `checks.check` calls it).

What keepalived needs to work, and what would make a VIP unsafe: at least two proxy hosts
per VIP, IPv4 host addresses in the VIP's own subnet, a VIP that is no host's address and
not its subnet's network or broadcast address, unique router ids and addresses, one
priority per host, a `proxy.listen` on the VIP, and a /healthz every host serves on its own
address (the track script asks it on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress

from redkeeper.errors import Problem
from redkeeper.topology.resolve import WILDCARDS
from redkeeper.topology.schema import TopologySpec, VipSpec

MAX_PRIORITY = 254  # VRRP: 255 is reserved for the address owner


def _ipv4(host: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        return None


def _host_addresses(spec: TopologySpec) -> dict[str, str]:
    """Every host of the topology → the first field that names it."""
    found: dict[str, str] = {}
    for i, shard in enumerate(spec.shards):
        found.setdefault(shard.master.host, f"shards[{i}].master")
        for j, replica in enumerate(shard.replicas):
            found.setdefault(replica.host, f"shards[{i}].replicas[{j}]")
    for i, node in enumerate(spec.sentinel.nodes):
        found.setdefault(node.host, f"sentinel.nodes[{i}]")
    for i, host in enumerate(spec.proxy.hosts):
        found.setdefault(host, f"proxy.hosts[{i}]")
    return found


def _check_vip(
    spec: TopologySpec, index: int, vip: VipSpec, source: str
) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    field = f"proxy.vips[{index}]"
    address = ipaddress.IPv4Address(vip.address)
    network = ipaddress.IPv4Network(f"{vip.address}/{vip.prefix}", strict=False)
    owner = _host_addresses(spec).get(vip.address)
    if owner is not None:
        errors.append(
            Problem(
                source,
                f"{field}.address",
                f"{vip.address} is a host's own address ({owner}): the VIP would be taken "
                "from that host whenever keepalived moves it",
                "choose a free address in the proxy hosts' subnet",
            )
        )
    ends = {network.network_address: "network", network.broadcast_address: "broadcast"}
    if vip.prefix < 31 and address in ends:
        errors.append(
            Problem(
                source,
                f"{field}.address",
                f"{vip.address} is the {ends[address]} address of {network}",
                "choose a host address inside the subnet",
            )
        )
    for i, host in enumerate(spec.proxy.hosts):
        ip = _ipv4(host)
        if ip is not None and ip not in network:
            errors.append(
                Problem(
                    source,
                    f"proxy.hosts[{i}]",
                    f"{host} is outside {network}, the subnet of {field} ({vip.address}/"
                    f"{vip.prefix}): VRRP adverts and ARP for the VIP stay on one link",
                    "choose a VIP in the proxy hosts' subnet, or correct its prefix",
                )
            )
    count = len(spec.proxy.proxy_hosts())
    priorities = spec.proxy.priorities(index)
    if len(priorities) != count:
        errors.append(
            Problem(
                source,
                f"{field}.priorities",
                f"{len(priorities)} priorities for {count} proxy hosts",
                "give one priority per proxy host, in proxy.hosts order",
            )
        )
    elif len(set(priorities)) != len(priorities):
        errors.append(
            Problem(
                source,
                f"{field}.priorities",
                f"equal priorities {priorities}: VRRP then prefers the higher IP address",
                "give every proxy host its own priority (the preferred host the highest)",
            )
        )
    weight = spec.proxy.keepalived.routing_weight
    bad = [p for p in priorities if not 1 <= p <= MAX_PRIORITY - weight]
    if bad:
        errors.append(
            Problem(
                source,
                f"{field}.priorities",
                f"{bad}: a priority plus keepalived.routing_weight ({weight}) must stay "
                f"within 1-{MAX_PRIORITY}",
                f"use priorities between 1 and {MAX_PRIORITY - weight}",
            )
        )
    if len(set(priorities)) > 1 and weight <= max(priorities) - min(priorities):
        warnings.append(
            Problem(
                source,
                "proxy.keepalived.routing_weight",
                f"{weight} is not above the spread of {field}'s priorities {priorities}: a "
                "proxy without a Sentinel majority keeps the VIP although a healthy peer "
                "could serve",
                f"set routing_weight above {max(priorities) - min(priorities)}",
            )
        )
    return errors, warnings


def check_proxy_hosts(spec: TopologySpec, source: str) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) about `proxy.hosts`, `proxy.vips` and `proxy.keepalived`."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    proxy = spec.proxy
    seen: dict[str, int] = {}
    for i, host in enumerate(proxy.hosts):
        if host in seen:
            errors.append(
                Problem(
                    source,
                    f"proxy.hosts[{i}]",
                    f"{host} is listed twice (also proxy.hosts[{seen[host]}])",
                    "list every proxy host once",
                )
            )
        seen.setdefault(host, i)
    if not proxy.vips:
        if "keepalived" in proxy.model_fields_set:
            warnings.append(
                Problem(
                    source,
                    "proxy.keepalived",
                    "ignored: no proxy.vips",
                    "add a virtual IP under proxy.vips, or remove proxy.keepalived",
                )
            )
        if len(proxy.hosts) > 1:
            warnings.append(
                Problem(
                    source,
                    "proxy.vips",
                    f"{len(proxy.hosts)} proxy hosts and no virtual IP: every client must know "
                    "every proxy host and fail over itself",
                    "add a virtual IP (proxy.vips) that keepalived moves between them",
                )
            )
        if len(proxy.hosts) < 2:
            return errors, warnings
    elif len(proxy.hosts) < 2:
        errors.append(
            Problem(
                source,
                "proxy.hosts",
                f"a virtual IP needs at least 2 proxy hosts (got {len(proxy.hosts)}): "
                "keepalived would have nowhere to move it",
                "list both proxy hosts under proxy.hosts, or remove proxy.vips",
            )
        )
    for i, host in enumerate(proxy.hosts):
        if proxy.vips and _ipv4(host) is None:
            errors.append(
                Problem(
                    source,
                    f"proxy.hosts[{i}]",
                    f"{host!r} is not an IPv4 address: keepalived's peers and the VIP's "
                    "subnet need the hosts' addresses",
                    "write the proxy hosts as IPv4 addresses",
                )
            )
    errors += _duplicates(spec, source)
    for i, vip in enumerate(proxy.vips):
        vip_errors, vip_warnings = _check_vip(spec, i, vip, source)
        errors += vip_errors
        warnings += vip_warnings
    addresses = {vip.address for vip in proxy.vips}
    if proxy.vips and proxy.listen.host not in addresses and proxy.listen.host not in WILDCARDS:
        errors.append(
            Problem(
                source,
                "proxy.listen",
                f"{proxy.listen.host} is not a virtual IP: clients would not follow a failover",
                f"listen on the virtual IP ({proxy.vips[0].address}:{proxy.listen.port}), or "
                f"on 0.0.0.0:{proxy.listen.port} to serve every VIP",
            )
        )
    errors += _health_endpoints(spec, source)
    keepalived = proxy.keepalived
    if keepalived.auth_pass_env and keepalived.auth_pass_file:
        errors.append(
            Problem(
                source,
                "proxy.keepalived",
                "both auth_pass_env and auth_pass_file are set",
                "keep only one source for the VRRP password",
            )
        )
    if keepalived.check_timeout_ms >= keepalived.check_interval_s * 1000:
        errors.append(
            Problem(
                source,
                "proxy.keepalived.check_timeout_ms",
                f"{keepalived.check_timeout_ms} ms is not below check_interval_s "
                f"({keepalived.check_interval_s} s): checks would overlap",
                "lower check_timeout_ms or raise check_interval_s",
            )
        )
    return errors, warnings


def _duplicates(spec: TopologySpec, source: str) -> list[Problem]:
    """Two VIPs with one router id (one VRRP instance) or one address."""
    problems: list[Problem] = []
    for what in ("router_id", "address"):
        first: dict[object, int] = {}
        for i, vip in enumerate(spec.proxy.vips):
            value = getattr(vip, what)
            if value in first:
                problems.append(
                    Problem(
                        source,
                        f"proxy.vips[{i}].{what}",
                        f"duplicate {what} {value} (also proxy.vips[{first[value]}])",
                        f"give every virtual IP its own {what}",
                    )
                )
            first.setdefault(value, i)
    return problems


def _health_endpoints(spec: TopologySpec, source: str) -> list[Problem]:
    """Several proxy hosts share one topology file: their /healthz (and nutcracker's
    stats) must listen on a wildcard, so each serves on its own address and 127.0.0.1."""
    problems: list[Problem] = []
    metrics = spec.agent.metrics
    if metrics is None or metrics.host not in WILDCARDS:
        shown = "unset" if metrics is None else str(metrics)
        problems.append(
            Problem(
                source,
                "agent.metrics",
                f"{shown}: every proxy host serves /healthz here, for keepalived's track "
                "script (on 127.0.0.1) and for `status` (on the host's address)",
                f"set agent.metrics: 0.0.0.0:{metrics.port if metrics else 9121}",
            )
        )
    if spec.proxy.mode != "redkeeper" and spec.proxy.stats.host not in WILDCARDS:
        problems.append(
            Problem(
                source,
                "proxy.stats",
                f"{spec.proxy.stats}: keepalived's track script asks nutcracker's stats on "
                "127.0.0.1 of each proxy host",
                f"set proxy.stats: 0.0.0.0:{spec.proxy.stats.port}",
            )
        )
    return problems
