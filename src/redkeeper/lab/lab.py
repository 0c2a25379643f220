"""The lab (composition): a topology's hosts as network namespaces on a private bridge,
each running exactly the files `render --host` wrote for it.

`up` refuses without root, or while a lab of the same prefix exists; it writes the state
file before it creates anything, renders every host fresh (Redis and Sentinel rewrite their
configs), builds the network, starts every unit and waits (bounded) until Redis replicates,
the Sentinels agree, every proxy host's /healthz is ok and exactly one host holds each VIP.
Any failure, or an interruption (the CLI's SIGINT/SIGTERM handler sets `cancel`, checked
between steps), runs `down`: no namespace, process, pid file or address is left behind.
`down` stops the recorded processes by PID and process group (Sentinels first, so no
failover starts), kills whatever still lives in the lab's namespaces, deletes them (their
addresses, the VIP included, go with them) and removes the pid files.

Probes run as threads of this process inside the client host (`net.enter`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from redkeeper.errors import EXIT_INTERRUPTED, LabError
from redkeeper.lab import checks, net
from redkeeper.lab.hosts import HostRunner, ancestors
from redkeeper.lab.plan import LabHost, LabPlan, build_commands, partition_rules, plan_lab, ruleset
from redkeeper.lab.state import HostProcess, LabState, clear_state, read_state, write_state
from redkeeper.lab.units import HOST_DIRS, OVERLAY_DIR, Unit
from redkeeper.process import find_binary
from redkeeper.render import Layout, render_all
from redkeeper.render.disk import write_rendered
from redkeeper.render.keepalived import SYSCTL
from redkeeper.topology import Topology, load_topology
from redkeeper.waiting import poll

Log = Callable[[str], None]
DEFAULT_DIR = Path(".redkeeper-lab")
TOPOLOGY_FILE = "topology.yaml"
VRRP_PASS_FILE = "vrrp.pass"
BINARIES = ("ip", "iptables-restore", "redis-server", "redis-sentinel", "sysctl")
STOP_ORDER = ("sentinel", "keepalived", "proxy", "agent", "nutcracker", "haproxy", "shard")


class LabInterruptedError(LabError):
    """`lab up` was interrupted; everything it had built is taken down again."""

    exit_code = EXIT_INTERRUPTED


@dataclass(frozen=True)
class LabTimings:
    ready: float = 30.0  # each readiness wait of `up`
    stop: float = 5.0  # SIGTERM -> SIGKILL of one process


def default_topology_text() -> str:
    from importlib import resources  # noqa: PLC0415

    return resources.files("redkeeper.lab").joinpath("lab.yaml").read_text()


def _stop_rank(unit: str) -> int:
    return next((i for i, p in enumerate(STOP_ORDER) if unit.startswith(p)), len(STOP_ORDER))


class Lab:
    """One lab, kept in `lab_dir` (its state file, the hosts' roots and logs)."""

    def __init__(
        self,
        lab_dir: Path = DEFAULT_DIR,
        *,
        prefix: str = "rk",
        log: Log = lambda _m: None,
        cancel: threading.Event | None = None,
        timings: LabTimings = LabTimings(),
    ) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", prefix):
            raise LabError(f"bad lab prefix {prefix!r} (fix: 1-6 lowercase letters or digits)")
        self.lab_dir = lab_dir.resolve()
        self.prefix = prefix
        self.log = log
        self.cancel = cancel
        self.timings = timings
        self.runner = HostRunner(self.lab_dir, log=log)

    # ------------------------------------------------------------------ state
    def state(self) -> LabState | None:
        return read_state(self.lab_dir)

    def require(self) -> LabState:
        state = self.state()
        if state is None:
            raise LabError(f"no lab runs from {self.lab_dir} (fix: redkeeper lab up)")
        return state

    def topology(self, state: LabState) -> Topology:
        return load_topology(Path(state.topology))

    def _save(self, state: LabState) -> LabState:
        write_state(self.lab_dir, state)
        return state

    def _record(self, process: HostProcess) -> None:
        self._save(self.require().with_process(process))

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise LabInterruptedError("interrupted; the lab is taken down again")

    def leftovers(self) -> list[str]:
        """Namespaces of this prefix's lab that exist now."""
        pattern = re.compile(rf"{re.escape(self.prefix)}-(sw|client|r\d+|p\d+)")
        return [n for n in net.namespaces() if pattern.fullmatch(n)]

    # ------------------------------------------------------------------ up
    def up(self, topology_file: Path | None = None) -> LabState:
        net.require_root()
        if self.state() is not None or self.leftovers():
            raise LabError(
                f"a lab already runs (state in {self.lab_dir}, namespaces "
                f"{', '.join(self.leftovers()) or 'none'}) (fix: redkeeper lab down)"
            )
        path = self._topology_file(topology_file)
        topology = load_topology(path)
        for binary in (*BINARIES, *self._binaries(topology)):
            find_binary(binary)
        plan = plan_lab(topology, self.prefix)
        self._save(LabState(plan, str(path), time.time()))
        try:
            self._render(topology, path, plan)
            for argv in build_commands(plan):
                self._check_cancel()
                net.run(argv)
            for host in plan.with_role("proxy"):
                drop_in = self.runner.root(host) / SYSCTL.relative_to("/")
                if drop_in.exists():
                    net.sysctl_file(host.namespace, drop_in)
            self.log(f"network built: {len(plan.hosts)} hosts on {plan.subnet}")
            with net.enter(plan.client.namespace):
                self.wait_ready(topology, plan)
        except BaseException:
            self.log("lab up failed or was interrupted: taking the lab down again")
            self.down()
            raise
        return self.require()

    def _binaries(self, topology: Topology) -> list[str]:
        spec = topology.spec
        needed = ["keepalived", "curl"] if spec.proxy.vips else []
        if spec.proxy.mode != "redkeeper":
            needed.append("nutcracker")
        if spec.proxy.mode == "steady":
            needed.append("haproxy")
        return needed

    def _topology_file(self, given: Path | None) -> Path:
        """The topology the lab runs: `given`, or the embedded lab topology written to the
        lab dir (with a fresh VRRP pass when none is there)."""
        if given is not None:
            return given.resolve()
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        path = self.lab_dir / TOPOLOGY_FILE
        path.write_text(default_topology_text())
        secret = self.lab_dir / VRRP_PASS_FILE
        if not secret.exists():
            secret.touch(mode=0o600)
            secret.write_text(secrets.token_hex(4) + "\n")
        return path

    def _render(self, topology: Topology, path: Path, plan: LabPlan) -> None:
        """Every host's root, rendered fresh (`render --host`), with the dirs its units
        write in (as an operator creates them on a real host)."""
        hosts_dir = self.lab_dir / "hosts"
        shutil.rmtree(hosts_dir, ignore_errors=True)
        text = path.read_text()
        password = topology.password()
        vrrp = topology.vrrp_password()
        for host in plan.hosts:
            root = self.runner.root(host)
            for folder in (*HOST_DIRS, Path("/") / OVERLAY_DIR):
                (root / folder.relative_to("/")).mkdir(parents=True, exist_ok=True)
            if host.name == plan.client.name:  # runs nothing; `status` reads the topology
                (root / "etc/redkeeper" / TOPOLOGY_FILE).write_text(text)
                continue
            files = render_all(
                topology,
                Layout.for_system(),
                password=password,
                host=host.address,
                topology_text=text,
                vrrp_password=vrrp,
            )
            write_rendered(files, root=root, backup=False, require_validators=False)
            for unit in self.runner.units(host):
                for folder in unit.writable:
                    (root / folder.relative_to("/")).mkdir(parents=True, exist_ok=True)

    def _poll(self, check: Callable[[], str | None], what: str) -> None:
        def checked() -> str | None:
            self._check_cancel()
            return check()

        reason = poll(checked, self.timings.ready, 0.1)
        if reason is not None:
            raise LabError(
                f"{what} not ready within {self.timings.ready:g} s: {reason} (fix: see the "
                f"logs under {self.lab_dir}/hosts/<host>/var/log/redkeeper/)"
            )

    def _start_units(self, plan: LabPlan, redis: bool) -> int:
        """Start the Redis units of every host (`redis`), or every other unit."""
        count = 0
        for host in plan.hosts:
            for unit in self.runner.units(host):
                if unit.name.startswith("shard") == redis:
                    self._check_cancel()
                    self._record(self.runner.start(host, unit))
                    count += 1
        return count

    def wait_ready(self, topology: Topology, plan: LabPlan) -> None:
        """Start every unit and wait for each readiness condition (inside the client host).
        Sentinels start once the replicas are linked: a Sentinel learns the replicas from
        the master's INFO, which it asks again only every 10 s."""
        password = topology.password()
        count = self._start_units(plan, redis=True)
        self._poll(lambda: checks.redis_up(topology, password), "Redis")
        self.log(f"Redis: {count} nodes, every replica linked")
        count = self._start_units(plan, redis=False)
        self.log(f"{count} Sentinel, proxy and keepalived processes started")
        self._poll(lambda: checks.sentinels_agree(topology, password), "the Sentinels")
        self.log("Sentinels agree (CKQUORUM OK for every shard)")
        self._poll(lambda: checks.proxies_ok(topology), "the proxy hosts")
        self.log("every proxy host's /healthz is ok")
        self._poll(lambda: checks.vip_served(topology, plan, password), "the virtual IP")
        self.log(f"VIP {', '.join(plan.vips) or '-'}: one holder, serving")

    # ------------------------------------------------------------------ down
    def down(self) -> int:
        """Take the lab down; how many processes it stopped. Idempotent."""
        net.require_root()
        state = self.state()
        names = set(self.leftovers())
        stopped = 0
        if state is not None:
            names |= set(state.plan.namespaces)
            processes = sorted(state.processes, key=lambda p: _stop_rank(p.unit))
            for process in processes:
                if process.record.alive():
                    stopped += 1
                self.runner.stop(state.plan.host(process.host), process, self.timings.stop)
        stopped += self.runner.sweep(sorted(names))
        for name in sorted(names):
            net.delete_namespace(name)
        for pid_file in (self.lab_dir / "hosts").rglob("*.pid"):
            pid_file.unlink(missing_ok=True)
        clear_state(self.lab_dir)
        left = [n for n in names if n in net.namespaces()]
        if left:
            raise LabError(f"namespaces {', '.join(left)} could not be deleted (fix: ip netns del)")
        return stopped

    # ------------------------------------------------------------------ hosts
    def kill_host(self, name: str) -> int:
        """SIGKILL every process of a host (as a power loss does; the kernel keeps what a
        killed keepalived left on the interface); how many."""
        state = self.require()
        host = state.plan.host(name)
        killed = 0
        for process in state.of_host(name):
            if self.runner.alive(process):
                killed += 1
            self.runner.kill(process)
        return killed + self.runner.sweep([host.namespace])

    def start_host(self, name: str) -> list[str]:
        """Start every unit of a host that does not run (its ExecStartPre lines first: a
        leftover VIP and stale pid files go); the units started."""
        state = self.require()
        host = state.plan.host(name)
        started: list[str] = []
        for unit in self.runner.units(host):
            process = state.process(name, unit.name)
            if process is not None and self.runner.alive(process):
                continue
            self._record(self.runner.start(host, unit))
            started.append(unit.name)
        return started

    def start_unit(self, name: str, unit: Unit) -> HostProcess:
        """Start a unit that is not rendered (a drill's comparison endpoint); recorded, so
        `down` stops it too."""
        host = self.require().plan.host(name)
        process = self.runner.start(host, unit)
        self._record(process)
        return process

    def stop_unit(self, name: str, unit: str) -> None:
        state = self.require()
        process = state.process(name, unit)
        if process is not None:
            self.runner.stop(state.plan.host(name), process, self.timings.stop)
            self._save(self.require().without_process(name, unit))

    def endpoint_pids(self, name: str) -> list[int]:
        """Every process of a proxy host but keepalived's: the endpoint (the redkeeper proxy
        and its workers, or the agent and the nutcracker it runs in its own session)."""
        state = self.require()
        host = state.plan.host(name)
        keepalived = state.process(name, "keepalived")
        root = keepalived.record.pid if keepalived else None
        pids = net.processes_in([host.namespace])
        return sorted(p for p in pids if root is None or root not in ancestors(p))

    def signal_endpoint(self, name: str, sig: int) -> int:
        """Send `sig` to the endpoint's processes (`endpoint_pids`); how many."""
        pids = self.endpoint_pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return len(pids)

    def signal_unit(self, name: str, unit: str, sig: int) -> HostProcess:
        state = self.require()
        process = state.process(name, unit)
        if process is None:
            raise LabError(f"{name} runs no {unit} (fix: see `redkeeper lab status`)")
        self.runner.signal(process, sig)
        return process

    def kill_unit(self, name: str, unit: str) -> None:
        state = self.require()
        process = state.process(name, unit)
        if process is not None:
            self.runner.kill(process)

    # ------------------------------------------------------------------ network
    def partition(self, groups: list[list[str]]) -> None:
        state = self.require()
        rules = partition_rules(state.plan, groups)
        for host in state.plan.hosts:
            net.apply_rules(host.namespace, rules[host.name])
        self._save(replace(state, partition=tuple(tuple(g) for g in groups)))

    def heal(self) -> None:
        """Remove every partition and bring every cut link up again."""
        state = self.require()
        for host in state.plan.hosts:
            net.apply_rules(host.namespace, ruleset([]))
        for name in state.links_down:
            net.set_link(state.plan, name, True)
        self._save(replace(state, partition=None, links_down=()))

    def set_link(self, name: str, up: bool) -> None:
        state = self.require()
        net.set_link(state.plan, name, up)
        down = [h for h in state.links_down if h != name] + ([] if up else [name])
        self._save(replace(state, links_down=tuple(down)))

    def exec_argv(self, name: str, command: list[str]) -> list[str]:
        """The command line that runs `command` inside host `name` (its files mounted)."""
        from redkeeper.lab.units import host_argv  # noqa: PLC0415

        state = self.require()
        host: LabHost = state.plan.host(name)
        return host_argv(host.namespace, self.runner.root(host), command)
