"""LocalStack: the whole topology as real processes on loopback, under one state dir.

`up` checks everything first (binaries, ports, no running stack), renders the configs, starts
Redis masters, replicas, Sentinels and the proxy in order, and waits until the stack is really
ready. Any failure, or an interruption (`cancel`: the CLI's SIGINT/SIGTERM handler sets it;
checked between steps, so a process is always recorded before the interruption takes
effect), stops what was started: no half stack is left behind. `down` stops exactly the
recorded PIDs (`teardown`); each process is recorded before it can escape (`launch`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from redkeeper.core import decide_masters
from redkeeper.errors import (
    EXIT_INTERRUPTED,
    ApplyError,
    ConfigError,
    ProcessError,
    StackError,
)
from redkeeper.model import Address
from redkeeper.process import ManagedProcess, ProcessRecord
from redkeeper.process.ports import port_open
from redkeeper.proxy.haproxy import report as haproxy_report
from redkeeper.render import Layout, haproxy_plan, initial_masters, nutcracker_argv, render_all
from redkeeper.render.disk import write_rendered
from redkeeper.render.haproxy import haproxy_argv
from redkeeper.stack import preflight, probe, ready, state, teardown
from redkeeper.stack.launch import launch, orphans
from redkeeper.topology import DEFAULT_SOURCE, Topology
from redkeeper.waiting import poll

Log = Callable[[str], None]


class StackInterruptedError(StackError):
    """`up` (or `start`) was interrupted; everything it had started is stopped again."""

    exit_code = EXIT_INTERRUPTED


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
        cancel: threading.Event | None = None,
    ) -> None:
        self.topology = topology
        self.state_dir = topology.state_dir
        self.layout = Layout.for_local(self.state_dir)
        self.log = log
        self.timings = timings
        self.with_agent = with_agent
        self.cancel = cancel
        self.stack_id: str | None = None
        self._started: list[ManagedProcess] = []

    # ----------------------------------------------------------------- checks
    def running_records(self) -> list[ProcessRecord]:
        """Live recorded processes, and the orphans of intents (an interrupted start)."""
        live = [r for r in state.read_records(self.state_dir) if r.alive()]
        return live + orphans(self.state_dir)

    def process_names(self) -> list[str]:
        """Every process name the stack has (`logs`, `start`, `stop`), in start order."""
        names = [n.name for n in self.topology.redis_nodes()]
        names += [s.name for s in self.topology.sentinel_nodes()]
        if self.steady:
            names.append("haproxy")
        if self.native:
            return [*names, "proxy"]
        return [*names, *(["agent"] if self.with_agent else []), "nutcracker"]

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise StackInterruptedError(
                "interrupted; every process started so far is stopped again"
            )

    def _poll(
        self, check: Callable[[], str | None], timeout: float, interval: float = 0.02
    ) -> str | None:
        def checked() -> str | None:
            self._check_cancel()
            return check()

        return poll(checked, timeout, interval)

    @property
    def steady(self) -> bool:
        return self.topology.spec.proxy.mode == "steady"

    @property
    def native(self) -> bool:
        """`proxy.mode: redkeeper`: the redkeeper proxy is the endpoint (no nutcracker)."""
        return self.topology.spec.proxy.mode == "redkeeper"

    def listeners(self) -> list[tuple[str, Address]]:
        """(what, address) of every socket the stack listens on."""
        return preflight.listeners(self.topology, self.layout, self.with_agent)

    def preflight(self) -> dict[str, str]:
        """Binaries by name; raises before anything is started or written."""
        return preflight.check(self.topology, self.layout, self.with_agent, self.running_records())

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
            self.stack_id = state.new_stack_id()
            new = state.StackFile(self.stack_id)
            state.update(self.state_dir, lambda _old: new)
            self._write_configs(masters, password)
            self._start_redis(binaries, masters, password)
            self._start_sentinels(binaries, password)
            if self.steady:
                self._start_haproxy(binaries["haproxy"])
            self._start_proxy(binaries, password)
            if self.steady:
                self._wait_haproxy_routes(masters)
        except BaseException as exc:
            interrupted = isinstance(exc, StackInterruptedError | KeyboardInterrupt)
            what = "interrupted" if interrupted else "start-up failed"
            self.log(f"{what}; stopping what was started")
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

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        self._check_cancel()
        proc = launch(self.state_dir, self.layout, name, argv)
        self._started.append(proc)
        return proc

    def _wait_port(self, proc: ManagedProcess, address: Address, timeout: float) -> None:
        def ready() -> str | None:
            if proc.exited() is not None:
                raise ProcessError(
                    f"{proc.name} exited during start-up; last log lines:\n{proc.tail_log()}"
                )
            return None if port_open(address.host, address.port) else "port closed"

        if self._poll(ready, timeout) is not None:
            raise ProcessError(f"{proc.name} did not open {address} within {timeout:.0f} s")

    def _start_redis(
        self, binaries: dict[str, str], masters: dict[str, Address], password: str | None
    ) -> None:
        nodes = self.topology.redis_nodes()
        ordered = sorted(nodes, key=lambda n: n.address != masters[n.shard])  # masters first
        procs = []
        for node in ordered:
            conf = self.layout.self_rewriting_config(node.name)
            procs.append((node, self._launch(node.name, [binaries["redis-server"], str(conf)])))
        for node, proc in procs:
            self._wait_port(proc, node.address, self.timings.port)
        self.log(f"{len(procs)} redis-server processes listening")
        linked = partial(ready.replicas_linked, nodes, masters, password)
        reason = self._poll(linked, self.timings.replication)
        if reason:
            raise ProcessError(f"{reason} after {self.timings.replication:.0f} s")
        self.log("every replica has master_link_status:up")

    def _start_sentinels(self, binaries: dict[str, str], password: str | None) -> None:
        sentinels = self.topology.sentinel_nodes()
        procs = []
        for node in sentinels:
            conf = self.layout.self_rewriting_config(node.name)
            procs.append((node, self._launch(node.name, [binaries["redis-sentinel"], str(conf)])))
        for node, proc in procs:
            self._wait_port(proc, node.address, self.timings.port)
        agree = partial(ready.sentinels_ready, self.topology, sentinels, password)
        reason = self._poll(agree, self.timings.sentinels, interval=0.1)
        if reason:
            raise ProcessError(
                f"Sentinels not ready after {self.timings.sentinels:.0f} s: {reason}"
            )
        self.log(f"{len(sentinels)} Sentinels agree (CKQUORUM OK for every shard)")

    def _start_haproxy(self, binary: str) -> None:
        plan = haproxy_plan(self.topology, self.layout)
        plan.admin_socket.parent.mkdir(parents=True, exist_ok=True)
        argv = haproxy_argv(binary, self.layout.config("haproxy.cfg"))
        proc = self._launch("haproxy", argv)
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

        reason = self._poll(answers, self.timings.proxy)
        if reason:
            raise ProcessError(f"haproxy's admin socket does not answer: {reason}")
        self.log(f"haproxy listening on {len(plan.shards)} shard frontend(s), admin socket up")

    def _wait_haproxy_routes(self, masters: dict[str, Address]) -> None:
        """Steady mode is ready when HAProxy routes every shard (the agent's first apply)."""
        plan = haproxy_plan(self.topology, self.layout)
        reason = self._poll(lambda: haproxy_report.not_ready(plan, masters), self.timings.proxy)
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
            proc = self._launch("proxy", argv)
        elif self.with_agent:
            # The agent runs nutcracker as its managed child and keeps it on Sentinel's masters.
            proc = self._launch("agent", self._agent_argv())
        else:
            proc = self._launch("nutcracker", self.proxy_argv(binaries["nutcracker"]))
        self._wait_port(proc, listen, self.timings.proxy)

        def serving() -> str | None:
            if proc.exited() is not None:
                raise ProcessError(f"{proc.name} exited; last log lines:\n{proc.tail_log()}")
            reason = ready.proxy_serving(listen, password)
            if reason is None and (self.with_agent or self.native):
                reason = ready.agent_answers(self.topology)
            return reason

        reason = self._poll(serving, self.timings.proxy)
        what = "the redkeeper proxy" if self.native else "nutcracker"
        if reason:
            raise ProcessError(f"{proc.name}: {what} on {listen} is not ready: {reason}")
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
        """Start a recorded (stopped or killed) process again with the same command line
        (recorded before it can escape, like every start); no readiness wait."""
        old = self.record(name)
        if old.alive():
            raise StackError(f"{name} (pid {old.pid}) is still running")
        return launch(self.state_dir, self.layout, name, list(old.argv)).record

    def reap(self) -> None:
        """Collect the exit status of children that ended (no zombies in a foreground `up`)."""
        for proc in self._started:
            proc.exited()

    def gone(self) -> str | None:
        """Why the stack this `up` started is no longer there, or None (foreground `up`)."""
        current = state.read_stack(self.state_dir)
        if current.stack_id != self.stack_id:
            if current.stack_id is None:
                return f"the stack of {self.state_dir} was taken down from elsewhere"
            return f"the stack of {self.state_dir} was replaced by another `redkeeper up`"
        if current.processes and not any(r.alive() for r in current.processes):
            return f"every process of the stack of {self.state_dir} has exited"
        return None

    # ----------------------------------------------------------------- down
    def _stop_started(self) -> None:
        for proc in reversed(self._started):
            proc.stop(self.timings.stop)
        self._started.clear()
        teardown.stop_all(self.state_dir, self.timings.stop)  # and any orphan of an intent

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
        """Stop every process of the stack (and only those; `teardown`), after saving
        Sentinel's current masters for the next `up`."""
        try:
            password = self.topology.password()
        except ConfigError:
            password = None  # without it Sentinels refuse; masters.json is kept as is
        live = teardown.live_processes(self.state_dir)
        if any(r.name.startswith("sentinel-") for r in live):
            self.save_masters(password)
        for proc in self._started:
            proc.exited()
        stopped = teardown.stop_all(self.state_dir, self.timings.stop)
        self.reap()
        return stopped
