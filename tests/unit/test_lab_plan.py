"""The lab's pure parts: hosts from a topology, network commands, partitions, units."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from redkeeper.errors import LabError
from redkeeper.lab.lab import default_topology_text
from redkeeper.lab.plan import build_commands, partition_rules, plan_lab, ruleset
from redkeeper.lab.state import plan_from_json, plan_to_json
from redkeeper.lab.units import host_argv, mount_script, parse_unit, resolve, unit_process
from redkeeper.render import REDKEEPER, Layout, render_all
from redkeeper.topology import Topology, parse_topology


def lab_topology() -> Topology:
    return parse_topology(default_topology_text(), source="lab.yaml", base_dir=Path("/lab"))


def test_default_lab_hosts() -> None:
    plan = plan_lab(lab_topology(), "rkt")
    names = {h.name: (h.address, h.roles, h.namespace) for h in plan.hosts}
    assert names == {
        "r1": ("10.213.0.11", ("redis", "sentinel"), "rkt-r1"),
        "r2": ("10.213.0.12", ("redis", "sentinel"), "rkt-r2"),
        "r3": ("10.213.0.13", ("redis", "sentinel"), "rkt-r3"),
        "p1": ("10.213.0.21", ("proxy",), "rkt-p1"),
        "p2": ("10.213.0.22", ("proxy",), "rkt-p2"),
        "client": ("10.213.0.31", (), "rkt-client"),
    }
    assert str(plan.subnet) == "10.213.0.0/24" and plan.vips == ("10.213.0.100",)
    assert plan.switch == "rkt-sw" and plan.namespaces[0] == "rkt-sw"
    assert plan_from_json(plan_to_json(plan)) == plan
    with pytest.raises(LabError, match="no lab host named 'p3'"):
        plan.host("p3")


def test_build_commands_keep_everything_in_the_lab_namespaces() -> None:
    plan = plan_lab(lab_topology(), "rkt")
    commands = build_commands(plan)
    for argv in commands:
        assert argv[0] == "ip"
        assert argv[1:3] == ["netns", "add"] or argv[1] == "-n", argv
        assert "route" not in argv  # no default route anywhere
    assert ["ip", "-n", "rkt-sw", "link", "set", "dev", "br0", "type", "bridge",
            "mcast_snooping", "0"] in commands  # fmt: skip
    assert ["ip", "-n", "rkt-p1", "addr", "add", "10.213.0.21/24", "dev", "eth0"] in commands


def test_addresses_outside_one_subnet_are_refused() -> None:
    text = default_topology_text().replace(
        "replicas: [10.213.0.11:6381, 10.213.0.12:6381]", "replicas: [10.99.0.11:6381]"
    )
    topology = parse_topology(text, source="x.yaml", base_dir=Path("/x"))
    outside = re.escape("10.99.0.11 outside the lab's subnet 10.213.0.0/24")
    with pytest.raises(LabError, match=outside):
        plan_lab(topology)


def test_partition_rules() -> None:
    plan = plan_lab(lab_topology(), "rkt")
    rules = partition_rules(plan, [["r1", "p1"], ["r2", "r3", "p2"]])
    assert "-A INPUT -s 10.213.0.12 -j DROP" in rules["r1"]
    assert "-A OUTPUT -d 10.213.0.22 -j DROP" in rules["p1"]
    assert "-A INPUT -s 10.213.0.21 -j DROP" in rules["p2"]
    assert rules["client"] == ruleset([])  # the client reaches both sides
    assert "10.213.0.11" not in rules["p1"]  # same side
    alone = partition_rules(plan, [["r1"]])  # one group: cut from everyone
    assert all(f"-s {h.address} " in alone["r1"] for h in plan.hosts if h.name != "r1")
    assert "-A INPUT -s 10.213.0.11 -j DROP" in alone["client"]
    assert "-A INPUT -i lo -j ACCEPT" in alone["r1"]
    with pytest.raises(LabError, match="in two groups"):
        partition_rules(plan, [["r1"], ["r1", "r2"]])
    with pytest.raises(LabError, match="no lab host named 'x9'"):
        partition_rules(plan, [["x9"]])


def test_units_of_a_proxy_host_parse_and_run_inside_the_host() -> None:
    topology = lab_topology()
    files = render_all(topology, Layout.for_system(), host="10.213.0.21", topology_text="x",
                       vrrp_password="pw")  # fmt: skip
    units = {
        unit_process(f.path.name): parse_unit(unit_process(f.path.name), f.text)
        for f in files
        if f.path.name.endswith(".service")
    }
    assert set(units) == {"proxy", "keepalived"}
    keepalived = units["keepalived"]
    assert keepalived.start[0] == "/usr/sbin/keepalived" and "--dont-fork" in keepalived.start
    assert keepalived.pre[0].argv == ("/usr/sbin/ip", "addr", "del", "10.213.0.100/24", "dev",
                                      "eth0")  # fmt: skip
    assert all(c.ignore_failure for c in (*keepalived.pre, *keepalived.post))
    assert Path("/var/lib/redkeeper/keepalived") in keepalived.writable
    proxy = units["proxy"]
    assert resolve(proxy.start, {})[:3] == [sys.executable, "-m", "redkeeper"]
    assert proxy.start[0] == REDKEEPER
    argv = host_argv("rkt-p1", Path("/lab/hosts/p1"), ["redis-cli", "ping"])
    assert argv[:6] == ["ip", "netns", "exec", "rkt-p1", "sh", "-c"]
    assert argv[-3:] == ["sh", "redis-cli", "ping"]
    with pytest.raises(ValueError, match="no ExecStart"):
        parse_unit("x", "[Service]\nType=simple\n")


def test_mount_script_binds_the_host_root_and_never_creates_dirs_outside() -> None:
    script = mount_script(Path("/lab/hosts/r1"))
    assert "mount --bind /lab/hosts/r1/etc/redkeeper /etc/redkeeper" in script
    assert "mount --bind /lab/hosts/r1/var/lib/redkeeper /var/lib/redkeeper" in script
    assert script.rstrip().endswith('exec "$@"')
    # a missing target dir is made on a tmpfs overlay of its parent, not on the real disk
    first = script.index("mkdir -p /etc/redkeeper")
    assert script.rindex("mount -t overlay overlay -o lowerdir=/etc", 0, first) < first
