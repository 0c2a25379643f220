"""One scenario run across the lab's hosts (I/O): its targets, its steps, what they record.

`ScenarioRun` holds what one scenario needs while it runs: the lab, the resolved targets
(which proxy holds the VIP, which host holds shard 1's master), the workload, the
observers, and the times that the figures are measured from (the cut, the heal).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redkeeper.data import current_masters
from redkeeper.drills import Fault, ScenarioRecord
from redkeeper.drills import workload as wl
from redkeeper.drills.scenarios import DrillError
from redkeeper.drills.timeline import Timeline
from redkeeper.errors import SentinelError
from redkeeper.lab import net
from redkeeper.lab.lab import Lab
from redkeeper.lab.observe import OldMasterProbe, old_master_keys, role_of
from redkeeper.lab.plan import LabPlan
from redkeeper.lab.scenarios import LabStep
from redkeeper.model import Address
from redkeeper.topology import Topology

Log = Callable[[str], None]
_POLL = 0.05


class StepTimeoutError(DrillError):
    """A wait step did not see what it waits for in time (the scenario fails)."""


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


@dataclass
class Targets:
    active: str  # the proxy host holding the VIP at the start
    standby: str | None
    master_host: str  # the host of shard 1's master
    old_master: Address  # shard 1's master
    rest: list[str]  # the Redis/Sentinel hosts but the master's
    cut_shards: list[str]  # every shard whose master is on `master_host` (not only shard 1)

    def hosts(self, selector: str) -> list[str]:
        table = {
            "proxy:active": [self.active],
            "proxy:standby": [self.standby] if self.standby else [],
            "master-host:1": [self.master_host],
            "rest:r": self.rest,
        }
        if selector not in table:
            raise DrillError(f"unknown lab target {selector!r}")
        return table[selector]


def resolve(lab: Lab, topology: Topology, plan: LabPlan, password: str | None) -> Targets:
    vip = plan.vips[0] if plan.vips else None
    proxies = [h.name for h in plan.with_role("proxy")]
    holders = net.vip_holders(plan, vip) if vip else proxies[:1]
    if len(holders) != 1:
        raise DrillError(f"the VIP is held by {len(holders)} hosts at the start: {holders}")
    active = holders[0]
    standby = next((p for p in proxies if p != active), None)
    shard = topology.shards[0].name
    masters = current_masters(topology, password).addresses
    master = masters[shard]
    host = plan.by_address(master.host)
    if host is None:
        raise DrillError(f"{shard}'s master {master} is on no lab host")
    rest = [h.name for h in plan.with_role("redis") if h.name != host.name]
    cut = [s.name for s in topology.shards if masters[s.name].host == master.host]
    return Targets(active, standby, host.name, master, rest, cut)


@dataclass
class ScenarioRun:
    lab: Lab
    topology: Topology
    plan: LabPlan
    password: str | None
    targets: Targets
    record: ScenarioRecord
    load: wl.Workload
    timeline: Timeline
    probe_keys: wl.KeyMaker
    prefix: str
    bound: float  # seconds a wait step may take
    log: Log
    probe: OldMasterProbe | None = None
    cut_time: float | None = None
    heal_time: float | None = None
    stopped: list[tuple[str, str]] = field(default_factory=list)  # (host, unit) SIGSTOPped

    @property
    def shard(self) -> str:
        return self.topology.shards[0].name

    def fault(self, group: int, action: str, process: str, shard: str | None = None) -> None:
        self.record.faults.append(Fault(time.time(), group, action, process, shard))

    def step(self, index: int, step: LabStep, probe_old_master: bool) -> None:
        self.log(f"  {step.describe()}")
        hosts = (
            [h for t in step.targets for h in self.targets.hosts(t)]
            if step.targets
            and step.action
            not in ("wait-failover", "wait-refusal", "wait-demoted", "snapshot-old-master")
            else []
        )
        action = step.action
        if action == "crash-host":
            for host in hosts:
                self.fault(index, "kill", f"{host}/*")
                self.lab.set_link(host, False)
                self.lab.kill_host(host)
        elif action in ("kill-unit", "stop-unit", "cont-unit"):
            sig = {
                "kill-unit": signal.SIGKILL,
                "stop-unit": signal.SIGSTOP,
                "cont-unit": signal.SIGCONT,
            }[action]
            for host in hosts:
                self.fault(index, action.removesuffix("-unit"), f"{host}/{step.unit}")
                if step.unit == "endpoint":
                    self.lab.signal_endpoint(host, sig)
                elif action == "kill-unit":
                    self.lab.kill_unit(host, step.unit)
                else:
                    self.lab.signal_unit(host, step.unit, sig)
                if action == "stop-unit":
                    self.stopped.append((host, step.unit))
                elif action == "cont-unit":
                    self.stopped.remove((host, step.unit))
        elif action in ("isolate", "partition"):
            groups = (
                [hosts]
                if action == "isolate"
                else [[h for t in g for h in self.targets.hosts(t)] for g in step.groups]
            )
            self.fault(
                index, "stop", f"{action} {' | '.join(','.join(g) for g in groups)}", self.shard
            )
            self.lab.partition(groups)
            if any(self.targets.master_host in g for g in groups):
                self.cut_time = time.time()
                if probe_old_master:
                    self._start_probe()
        elif action == "heal":
            self.fault(index, "heal", "network")
            self.lab.heal()
            self.heal_time = time.time()
        elif action == "sleep":
            advert = float(self.topology.spec.proxy.keepalived.advert_int)
            down_after = self.topology.spec.sentinel.down_after_ms / 1000.0
            time.sleep(step.duration(advert, down_after))
        else:
            self._wait(action, hosts)

    def _start_probe(self) -> None:
        host = self.plan.host(self.targets.master_host)
        self.probe = OldMasterProbe(
            host.namespace, self.targets.old_master, self.password, self.probe_keys, self.shard
        )
        self.probe.start()

    def _moved(self) -> bool:
        try:
            return current_masters(self.topology, self.password).addresses[self.shard] != (
                self.targets.old_master
            )
        except SentinelError:
            return False

    def _refused(self) -> bool:
        ops = self.probe.ops() if self.probe is not None else []
        return any(not op.ok and op.error.startswith("NOREPLICAS") for op in ops)

    def _wait(self, action: str, hosts: list[str]) -> None:
        checks: dict[str, Callable[[], bool]] = {
            "wait-vip": lambda: net.vip_holders(self.plan, self.plan.vips[0]) == hosts,
            "wait-failover": self._moved,
            "wait-writes": lambda: all(
                self.load.resumed(s, max((f.time for f in self.record.faults), default=0.0))
                for s in self.record.shards
            ),
            "wait-refusal": self._refused,
            "wait-demoted": lambda: role_of(self.targets.old_master, self.password) == "slave",
        }
        if action == "snapshot-old-master":
            host = self.plan.host(self.targets.master_host)
            self.record.old_master_values[self.shard] = old_master_keys(
                host.namespace, self.targets.old_master, self.password, f"{self.prefix}:*"
            )
            return
        if not wait_for(checks[action], self.bound):
            raise StepTimeoutError(f"{action} {' '.join(hosts)}: not seen within {self.bound:g} s")
