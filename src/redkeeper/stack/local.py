"""LocalStack: the whole topology as real processes on loopback, under one state dir.

`up` checks everything first (binaries, ports, no running stack), renders the configs, starts
Redis masters, replicas, Sentinels and the proxy in order, and waits until the stack is really
ready. Any failure stops what was started: no half stack is left behind. `down` stops exactly
the recorded PIDs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redkeeper.core import decide_masters
from redkeeper.errors import ApplyError, ConfigError, PortInUseError, ProcessError, StackError
from redkeeper.model import Address
from redkeeper.process import ManagedProcess, ProcessRecord, find_binary, stop_pid
from redkeeper.process.ports import port_bindable, port_open
from redkeeper.proxy.haproxy import report as haproxy_report
from redkeeper.render import Layout, haproxy_plan, initial_masters, nutcracker_argv, render_all
from redkeeper.render.disk import write_rendered
from redkeeper.render.haproxy import haproxy_argv
from redkeeper.stack import probe, state
from redkeeper.topology import DEFAULT_SOURCE, Topology
from redkeeper.waiting import poll

Log = Callable[[str], None]
MAX_UNIX_PATH = 107  # sun_path is 108 bytes with the final NUL


@dataclass(frozen=True)
class Timings:
    """Bounds on every wait of `up` and `down` (seconds)."""

    port: float = 10.0
    replication: float = 20.0
    sentinels: float = 30.0
    proxy: float = 10.0
    stop: float = 5.0


class LocalStack:
    """Start, stop and locate the processes of a topology on this machine."""

    def __init__(
        self,
        topology: Topology,
        *,
        log: Log = lambda _msg: None,
        timings: Timings = Timings(),
        with_agent: bool = True,
    ) -> None:
        self.topology = topology
        self.state_dir = topology.state_dir
        self.layout = Layout.for_local(self.state_dir)
        self.log = log
        self.timings = timings
        self.with_agent = with_agent
        self._started: list[ManagedProcess] = []

    # ----------------------------------------------------------------- checks
    def running_records(self) -> list[ProcessRecord]:
        return [r for r in state.read_records(self.state_dir) if r.alive()]

    def _addresses(self) -> list[tuple[str, Address]]:
        spec = self.topology.spec
        found = [(n.name, n.address) for n in self.topology.redis_nodes()]
        found += [(s.name, s.address) for s in self.topology.sentinel_nodes()]
        if self.native:
            found.append(("redkeeper proxy", spec.proxy.listen))
            if spec.agent.metrics is not None:
                found.append(("redkeeper proxy metrics", spec.agent.metrics))
            return found
        found += [("nutcracker", spec.proxy.listen), ("nutcracker stats", spec.proxy.stats)]
        if self.with_agent and spec.agent.metrics is not None:
            found.append(("agent metrics", spec.agent.metrics))
        if self.steady:
            found += haproxy_plan(self.topology, self.layout).listeners()
        return found

    @property
    def steady(self) -> bool:
        return self.topology.spec.proxy.mode == "steady"

    @property
    def native(self) -> bool:
        """`proxy.mode: redkeeper`: the redkeeper proxy is the endpoint (no nutcracker)."""
        return self.topology.spec.proxy.mode == "redkeeper"

    def preflight(self) -> dict[str, str]:
        """Binaries by name; raises before anything is started or written."""
        running = self.running_records()
        if running:
            pids = ", ".join(f"{r.name}={r.pid}" for r in running)
            raise StackError(
                f"a stack is already running from {self.state_dir} ({pids}); "
                "run `redkeeper down` first"
            )
        names = ["redis-server", "redis-sentinel"] + ([] if self.native else ["nutcracker"])
        if self.steady:
            names.append("haproxy")
            self._preflight_steady()
        binaries = {name: find_binary(name) for name in names}
        remote = [f"{n} {a}" for n, a in self._addresses() if not a.is_loopback]
        if remote:
            raise StackError(
                f"{self.topology.source}: `up` runs a local stack, but "
                f"{', '.join(remote)} is not on 127.0.0.0/8 (fix: use `render --host` and "
                "systemd for real hosts)"
            )
        busy = [f"{n} {a}" for n, a in self._addresses() if not port_bindable(a.host, a.port)]
        if busy:
            raise PortInUseError(
                f"port(s) in use: {', '.join(busy)} (fix: stop what holds them, or change the "
                f"ports in the topology file; nothing was started)"
            )
        return binaries

    def _preflight_steady(self) -> None:
        if not self.with_agent:
            raise StackError(
                f"{self.topology.source}: proxy.mode: steady needs the agent (it is what "
                "routes HAProxy's servers)"
            )
        socket = haproxy_plan(self.topology, self.layout).admin_socket
        if len(str(socket).encode()) > MAX_UNIX_PATH:
            raise StackError(
                f"{self.topology.source}: HAProxy's admin socket {socket} is longer than "
                f"{MAX_UNIX_PATH} bytes, the limit of a unix socket path (fix: a shorter "
                "state_dir, or set proxy.haproxy.admin_socket)"
            )

    # ----------------------------------------------------------------- up
    def current_masters(self) -> dict[str, Address]:
        """Saved masters from the last `down` when they belong to this topology."""
        masters = initial_masters(self.topology)
        inventory = self.topology.inventory()
        for shard, address in state.read_masters(self.state_dir).items():
            if shard in inventory and address in inventory[shard]:
                masters[shard] = address
        return masters

    def up(self) -> list[ProcessRecord]:
        """Start everything and wait until ready; on failure stop it all and raise."""
        binaries = self.preflight()
        password = self.topology.password()
        masters = self.current_masters()
        started_at = time.monotonic()
        try:
            self._write_configs(masters, password)
            self._start_redis(binaries, masters, password)
            self._start_sentinels(binaries, password)
            if self.steady:
                self._start_haproxy(binaries["haproxy"])
            self._start_proxy(binaries, password)
            if self.steady:
                self._wait_haproxy_routes(masters)
        except BaseException:
            self.log("start-up failed; stopping what was started")
            self._stop_started()
            raise
        self.log(f"stack ready in {time.monotonic() - started_at:.1f} s")
        return [p.record for p in self._started]

    def _write_configs(self, masters: dict[str, Address], password: str | None) -> None:
        """Through `render.disk.write_rendered`, the write path `render` uses too: only what
        differs is written, nutcracker.yml and haproxy.cfg validated first."""
        files = render_all(
            self.topology, self.layout, masters=masters, password=password, units=False
        )
        write_rendered(files, backup=False)

    def _launch(self, name: str, argv: list[str], address: Address) -> ManagedProcess:
        workdir = self.layout.workdir(name)
        proc = ManagedProcess(name, argv, workdir, self.layout.log(name))
        proc.start()
        self._started.append(proc)
        state.write_records(self.state_dir, [p.record for p in self._started])
        return proc

    def _wait_port(self, proc: ManagedProcess, address: Address, timeout: float) -> None:
        def ready() -> str | None:
            if proc.exited() is not None:
                raise ProcessError(
                    f"{proc.name} exited during start-up; last log lines:\n{proc.tail_log()}"
                )
            return None if port_open(address.host, address.port) else "port closed"

        if poll(ready, timeout) is not None:
            raise ProcessError(f"{proc.name} did not open {address} within {timeout:.0f} s")

    def _start_redis(
        self, binaries: dict[str, str], masters: dict[str, Address], password: str | None
    ) -> None:
        nodes = self.topology.redis_nodes()
        ordered = sorted(nodes, key=lambda n: n.address != masters[n.shard])  # masters first
        procs = []
        for node in ordered:
            conf = self.layout.self_rewriting_config(node.name)
            procs.append(
                (node, self._launch(node.name, [binaries["redis-server"], str(conf)], node.address))
            )
        for node, proc in procs:
            self._wait_port(proc, node.address, self.timings.port)
        self.log(f"{len(procs)} redis-server processes listening")

        def replicas_linked() -> str | None:
            for node in nodes:
                if node.address == masters[node.shard]:
                    continue
                info = probe.replication(node.address, password)
                if info is None or not info.link_up:
                    return f"replica {node.name} ({node.address}) has no link to its master"
            return None

        reason = poll(replicas_linked, self.timings.replication)
        if reason:
            raise ProcessError(f"{reason} after {self.timings.replication:.0f} s")
        self.log("every replica has master_link_status:up")

    def _start_sentinels(self, binaries: dict[str, str], password: str | None) -> None:
        sentinels = self.topology.sentinel_nodes()
        procs = []
        for node in sentinels:
            conf = self.layout.self_rewriting_config(node.name)
            procs.append(
                (
                    node,
                    self._launch(node.name, [binaries["redis-sentinel"], str(conf)], node.address),
                )
            )
        for node, proc in procs:
            self._wait_port(proc, node.address, self.timings.port)
        others = len(sentinels) - 1

        def sentinels_ready() -> str | None:
            for node in sentinels:
                masters = probe.sentinel_masters(node.address, password)
                if masters is None:
                    return f"{node.name} does not answer"
                for shard in self.topology.shards:
                    info = masters.get(shard.name)
                    if info is None:
                        return f"{node.name} does not monitor {shard.name}"
                    if info.num_other_sentinels < others:
                        return (
                            f"{node.name} knows {info.num_other_sentinels} of {others} other "
                            f"Sentinels for {shard.name}"
                        )
                    if info.num_replicas < len(shard.replicas):
                        return f"{node.name} knows {info.num_replicas} replicas of {shard.name}"
                    reason = probe.ckquorum(node.address, shard.name, password)
                    if reason:
                        return f"{node.name}: CKQUORUM {shard.name}: {reason}"
            return None

        reason = poll(sentinels_ready, self.timings.sentinels, interval=0.1)
        if reason:
            raise ProcessError(
                f"Sentinels not ready after {self.timings.sentinels:.0f} s: {reason}"
            )
        self.log(f"{len(sentinels)} Sentinels agree (CKQUORUM OK for every shard)")

    def _start_haproxy(self, binary: str) -> None:
        plan = haproxy_plan(self.topology, self.layout)
        plan.admin_socket.parent.mkdir(parents=True, exist_ok=True)
        argv = haproxy_argv(binary, self.layout.config("haproxy.cfg"))
        proc = self._launch("haproxy", argv, plan.shards[0].frontend)
        for shard in plan.shards:
            self._wait_port(proc, shard.frontend, self.timings.proxy)

        def answers() -> str | None:
            if proc.exited() is not None:
                raise ProcessError(f"haproxy exited; last log lines:\n{proc.tail_log()}")
            try:
                haproxy_report.servers(plan)
            except ApplyError as exc:
                return str(exc)
            return None

        reason = poll(answers, self.timings.proxy)
        if reason:
            raise ProcessError(f"haproxy's admin socket does not answer: {reason}")
        self.log(f"haproxy listening on {len(plan.shards)} shard frontend(s), admin socket up")

    def _wait_haproxy_routes(self, masters: dict[str, Address]) -> None:
        """Steady mode is ready when HAProxy routes every shard (the agent's first apply)."""
        plan = haproxy_plan(self.topology, self.layout)
        reason = poll(lambda: haproxy_report.not_ready(plan, masters), self.timings.proxy)
        if reason:
            raise ProcessError(f"{reason} after {self.timings.proxy:.0f} s (see the agent's log)")
        self.log("haproxy routes every shard to its master and reads to replicas (the agent)")

    def proxy_argv(self, binary: str) -> list[str]:
        return nutcracker_argv(self.topology, binary, self.layout.config("nutcracker.yml"))

    def _agent_argv(self) -> list[str]:
        return [sys.executable, "-m", "redkeeper", "agent", "--managed", *self._topology_args()]

    def _topology_args(self) -> list[str]:
        argv = ["--state-dir", str(self.state_dir)]
        if self.topology.source != DEFAULT_SOURCE:
            argv += ["-c", str(Path(self.topology.source).resolve())]
        return argv

    def _start_proxy(self, binaries: dict[str, str], password: str | None) -> None:
        listen = self.topology.spec.proxy.listen
        if self.native:
            # The redkeeper proxy: the endpoint itself, following Sentinel in-process.
            argv = [sys.executable, "-m", "redkeeper", "proxy", *self._topology_args()]
            proc = self._launch("proxy", argv, listen)
        elif self.with_agent:
            # The agent runs nutcracker as its managed child and keeps it on Sentinel's masters.
            proc = self._launch("agent", self._agent_argv(), listen)
        else:
            proc = self._launch("nutcracker", self.proxy_argv(binaries["nutcracker"]), listen)
        self._wait_port(proc, listen, self.timings.proxy)

        def serving() -> str | None:
            if proc.exited() is not None:
                raise ProcessError(f"{proc.name} exited; last log lines:\n{proc.tail_log()}")
            try:
                with probe.client(listen, password, 0.5) as conn:
                    conn.get("redkeeper:ready-probe")
            except Exception as exc:  # any failure means: not serving yet
                return f"{type(exc).__name__}: {exc}"
            return None

        reason = poll(serving, self.timings.proxy)
        what = "the redkeeper proxy" if self.native else "nutcracker"
        if reason:
            raise ProcessError(f"{what} on {listen} does not serve requests: {reason}")
        by_agent = " (run by the agent)" if self.with_agent and not self.native else ""
        self.log(f"{what} serving on {listen}{by_agent}")

    # ----------------------------------------------------------------- faults
    def record(self, name: str) -> ProcessRecord:
        """The live record of process `name` (shard1-1, sentinel-2, agent, nutcracker…)."""
        records = state.read_records(self.state_dir)
        proxy = state.read_proxy_record(self.state_dir)
        for record in [*records, *([proxy] if proxy else [])]:
            if record.name == name:
                return record
        raise StackError(f"no process named {name!r} in {self.state_dir}")

    def signal(self, name: str, sig: int) -> ProcessRecord:
        """Send `sig` (SIGKILL, SIGSTOP, SIGCONT…) to a recorded process: for drills and tests."""
        record = self.record(name)
        if record.alive():
            os.kill(record.pid, sig)
        return record

    def restart_process(self, name: str) -> ProcessRecord:
        """Start a recorded (stopped or killed) process again with the same command line."""
        old = self.record(name)
        if old.alive():
            raise StackError(f"{name} (pid {old.pid}) is still running")
        proc = ManagedProcess(
            name, list(old.argv), self.layout.workdir(name), self.layout.log(name)
        )
        new = proc.start()
        records = [new if r.name == name else r for r in state.read_records(self.state_dir)]
        state.write_records(self.state_dir, records)
        return new

    # ----------------------------------------------------------------- down
    def _stop_started(self) -> None:
        for proc in reversed(self._started):
            proc.stop(self.timings.stop)
        state.clear_records(self.state_dir)
        self._started.clear()

    def save_masters(self, password: str | None) -> dict[str, Address]:
        """Record Sentinel's current masters (`core.decide_masters`) for the next `up`; a
        shard without a verdict keeps what was saved before."""
        addresses = self.topology.spec.sentinel.nodes
        names = [shard.name for shard in self.topology.shards]
        view = decide_masters(probe.ask_sentinels(addresses, password), addresses, names)
        current = {**state.read_masters(self.state_dir), **view.addresses()}
        if view.addresses():
            state.write_masters(self.state_dir, current)
        return current

    def down(self) -> list[ProcessRecord]:
        """Stop the recorded processes (and only those): the agent, then the nutcracker it
        ran (re-read after the agent is gone: it may have restarted it), the Sentinels (so no
        failover starts while Redis stops), then Redis."""
        records = state.read_records(self.state_dir)
        try:
            password = self.topology.password()
        except ConfigError:
            password = None  # without it Sentinels refuse; masters.json is kept as is
        if any(r.name.startswith("sentinel-") and r.alive() for r in records):
            self.save_masters(password)
        stopped: list[ProcessRecord] = []
        stages: list[Callable[[ProcessRecord], bool]] = [
            lambda r: r.name in ("agent", "proxy"),
            lambda r: r.name == "nutcracker",
            lambda r: r.name == "haproxy",
            lambda r: r.name.startswith("sentinel-"),
            lambda r: True,
        ]
        for in_stage in stages:
            proxy = state.read_proxy_record(self.state_dir)
            current = [*records, *([proxy] if proxy else [])]
            group = [r for r in current if r.alive() and in_stage(r) and r not in stopped]
            for record in group:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signal.SIGTERM)
            for record in group:
                stop_pid(record.pid, record.start_ticks, self.timings.stop)
            stopped.extend(group)
        state.clear_records(self.state_dir)
        state.write_proxy_record(self.state_dir, None)
        return stopped
