"""The lab's plan (pure): which network-namespace hosts a topology needs, their names and
addresses, and the commands that build, cut and heal their network.

Hosts come from the topology's addresses: every Redis/Sentinel host is `r1`, `r2`, … (in
address order), every proxy host `p1`, `p2`, … (in `proxy.hosts` order), plus one `client`
host that runs nothing (workloads and `redkeeper status` run there). Each host is a
namespace `<prefix>-<name>` with one interface (the VIP's, `eth0` by default) on a veth pair
to a bridge `br0` that lives in a namespace of its own (`<prefix>-sw`): the subnet exists
only there, no namespace has a default route, and the root namespace is never touched.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from redkeeper.errors import LabError
from redkeeper.topology import Topology

BRIDGE = "br0"
CLIENT = "client"
CLIENT_OFFSET = 31  # the client's address: the first free one from .31 of the subnet


@dataclass(frozen=True)
class LabHost:
    """One host: a network namespace with one address on the lab's bridge."""

    name: str  # r1, p1, client
    address: str
    roles: tuple[str, ...]  # "redis", "sentinel", "proxy"; () for the client
    namespace: str

    @property
    def veth(self) -> str:
        """The bridge end of the host's veth pair (in the switch namespace)."""
        return f"v-{self.name}"[:15]

    def to_json(self) -> dict[str, object]:
        return {"address": self.address, "roles": list(self.roles), "namespace": self.namespace}


@dataclass(frozen=True)
class LabPlan:
    prefix: str
    subnet: ipaddress.IPv4Network
    interface: str
    hosts: tuple[LabHost, ...]
    vips: tuple[str, ...] = field(default=())

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def namespaces(self) -> list[str]:
        return [self.switch, *(h.namespace for h in self.hosts)]

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(
            f"no lab host named {name!r} (fix: one of {', '.join(h.name for h in self.hosts)})"
        )

    def by_address(self, address: str) -> LabHost | None:
        return next((h for h in self.hosts if h.address == address), None)

    @property
    def client(self) -> LabHost:
        return self.host(CLIENT)

    def with_role(self, role: str) -> list[LabHost]:
        return [h for h in self.hosts if role in h.roles]


def _ipv4(host: str, where: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        raise LabError(
            f"{where}: {host!r} is not an IPv4 address; lab hosts are namespaces with one "
            "address each (fix: write every address of the topology as an IPv4 address)"
        ) from None


def plan_lab(topology: Topology, prefix: str = "rk") -> LabPlan:
    """The lab for `topology`; LabError when its addresses do not fit one subnet."""
    spec = topology.spec
    roles: dict[str, set[str]] = {}
    for node in topology.redis_nodes():
        roles.setdefault(node.address.host, set()).add("redis")
    for sentinel in topology.sentinel_nodes():
        roles.setdefault(sentinel.address.host, set()).add("sentinel")
    proxies = topology.proxy_hosts()
    for host in proxies:
        roles.setdefault(host, set()).add("proxy")
    addresses = {host: _ipv4(host, topology.source) for host in roles}
    if spec.proxy.vips:
        vip = spec.proxy.vips[0]
        subnet = ipaddress.IPv4Network(f"{vip.address}/{vip.prefix}", strict=False)
        interface = vip.interface
    else:
        first = min(addresses.values())
        subnet = ipaddress.IPv4Network(f"{first}/24", strict=False)
        interface = "eth0"
    outside = sorted(str(a) for a in addresses.values() if a not in subnet)
    if outside:
        raise LabError(
            f"{topology.source}: {', '.join(outside)} outside the lab's subnet {subnet} (fix: "
            "put every host of the topology in one subnet, the VIP's)"
        )
    hosts: list[LabHost] = []
    data_hosts = sorted((h for h in roles if h not in proxies), key=lambda h: addresses[h])
    for i, host in enumerate(data_hosts, start=1):
        kinds = tuple(sorted(roles[host]))
        hosts.append(LabHost(f"r{i}", host, kinds, f"{prefix}-r{i}"))
    for i, host in enumerate(proxies, start=1):
        kinds = tuple(sorted(roles[host]))
        hosts.append(LabHost(f"p{i}", host, kinds, f"{prefix}-p{i}"))
    taken = set(addresses.values()) | {ipaddress.IPv4Address(v.address) for v in spec.proxy.vips}
    client = next(
        (a for a in subnet.hosts() if a not in taken and int(a) - int(subnet[0]) >= CLIENT_OFFSET),
        None,
    ) or next((a for a in subnet.hosts() if a not in taken), None)
    if client is None:
        raise LabError(f"no free address in {subnet} for the client host (fix: a wider prefix)")
    hosts.append(LabHost(CLIENT, str(client), (), f"{prefix}-{CLIENT}"))
    return LabPlan(
        prefix, subnet, interface, tuple(hosts), tuple(v.address for v in spec.proxy.vips)
    )


# ---------------------------------------------------------------- commands (argv lists)
def build_commands(plan: LabPlan) -> list[list[str]]:
    """`ip` commands that build the lab, in order (run by `lab.net`)."""
    sw = plan.switch
    cmds = [
        ["ip", "netns", "add", sw],
        ["ip", "-n", sw, "link", "set", "lo", "up"],
        ["ip", "-n", sw, "link", "add", "name", BRIDGE, "type", "bridge"],
        ["ip", "-n", sw, "link", "set", "dev", BRIDGE, "type", "bridge", "mcast_snooping", "0"],
        ["ip", "-n", sw, "link", "set", "dev", BRIDGE, "up"],
    ]

    def cidr(address: str) -> str:
        return f"{address}/{plan.subnet.prefixlen}"

    for host in plan.hosts:
        ns = host.namespace
        cmds += [
            ["ip", "netns", "add", ns],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            [
                *("ip", "-n", sw, "link", "add", "name", host.veth, "type", "veth"),
                *("peer", "name", plan.interface, "netns", ns),
            ],
            ["ip", "-n", sw, "link", "set", "dev", host.veth, "master", BRIDGE],
            ["ip", "-n", sw, "link", "set", "dev", host.veth, "up"],
            ["ip", "-n", ns, "addr", "add", cidr(host.address), "dev", plan.interface],
            ["ip", "-n", ns, "link", "set", "dev", plan.interface, "up"],
        ]
    return cmds


def partition_rules(plan: LabPlan, groups: list[list[str]]) -> dict[str, str]:
    """iptables-restore input per host for a partition (every other host: an empty ruleset).

    One group: it is cut off from every other host. Several groups: no host of a group
    reaches a host of another group; hosts in no group still reach everyone. Packets are
    dropped (a silent partition: timeouts, not refusals); `lo` always passes. ARP is not
    filtered, as between real hosts behind a switch whose uplink is cut by a firewall.
    """
    names = [name for group in groups for name in group]
    for name in names:
        plan.host(name)  # LabError for an unknown name
    if len(set(names)) != len(names):
        raise LabError("a host is in two groups of the partition (fix: list each host once)")
    if len(groups) == 1:
        groups = [groups[0], [h.name for h in plan.hosts if h.name not in groups[0]]]
    cut: dict[str, set[str]] = {h.name: set() for h in plan.hosts}
    for i, group in enumerate(groups):
        others = {n for j, g in enumerate(groups) if j != i for n in g}
        for name in group:
            cut[name] |= others
    return {
        name: ruleset([plan.host(o).address for o in sorted(others)])
        for name, others in cut.items()
    }


def ruleset(drop: list[str]) -> str:
    """An iptables-restore filter table dropping traffic from and to `drop` (none: open)."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += ["-A INPUT -i lo -j ACCEPT", "-A OUTPUT -o lo -j ACCEPT"] if drop else []
    for address in drop:
        lines += [f"-A INPUT -s {address} -j DROP", f"-A OUTPUT -d {address} -j DROP"]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
