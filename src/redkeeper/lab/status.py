"""`redkeeper lab status`: what the lab runs, who holds the VIP, and (seen from the client
host) whether the stack is healthy. Plain data for the table and `--json`."""

from __future__ import annotations

from typing import Any

from redkeeper.errors import ConfigError
from redkeeper.lab import net
from redkeeper.lab.lab import Lab


def collect(lab: Lab, *, full: bool = True) -> dict[str, Any]:
    """The lab's report. `full`: also the stack's health (`redkeeper status`'s problems),
    asked from inside the client host. LabError when no lab runs."""
    state = lab.require()
    plan = state.plan
    topology = lab.topology(state)
    listen = topology.spec.proxy.listen
    vip = plan.vips[0] if plan.vips else listen.host
    hosts: dict[str, Any] = {}
    for host in plan.hosts:
        processes = {
            p.unit: {"pid": p.record.pid, "alive": lab.runner.alive(p)}
            for p in state.of_host(host.name)
        }
        hosts[host.name] = {
            **host.to_json(),
            "link_up": net.link_up(plan, host.name),
            "processes": processes,
        }
    holders = net.vip_holders(plan, vip) if plan.vips else []
    report: dict[str, Any] = {
        "lab_dir": str(lab.lab_dir),
        "topology": state.topology,
        "subnet": str(plan.subnet),
        "vip": f"{vip}:{listen.port}",
        "vip_holders": holders,
        "hosts": hosts,
        "partition": None if state.partition is None else [list(g) for g in state.partition],
        "links_down": list(state.links_down),
    }
    problems: list[str] = []
    for name, host in hosts.items():
        problems += [
            f"{name}: {u} is not running" for u, p in host["processes"].items() if not p["alive"]
        ]
    if plan.vips and len(holders) != 1:
        problems.append(f"VIP {vip} held by {len(holders)} hosts ({', '.join(holders) or 'none'})")
    if full:
        from redkeeper.stack.status import collect as collect_stack  # noqa: PLC0415

        try:
            password = topology.password()
        except ConfigError:
            password = None
        with net.enter(plan.client.namespace):
            stack = collect_stack(topology, password)
        problems += stack.problems
        report["stack"] = stack.to_json()
    report["problems"] = problems
    report["healthy"] = not problems
    return report
