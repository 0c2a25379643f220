"""The drill runner (composition): a stack, a workload, a timeline, the faults, the figures.

Owns the life of a drill: start a stack for the topology (or attach to the one already running
from its state dir), run each scenario's steps under the workload while the timeline records,
then stop the workload, restore the stack (SIGCONT what is stopped, restart what was killed:
Redis first, then Sentinels, then the agent; wait, bounded, until `status` is healthy, every
Sentinel is settled and the agent routes where Sentinel says), read the acked keys back from
each shard's current master, audit the placement of every key, delete the drill's keys, and
compute the figures. A stack the runner started is always stopped, also on an exception or
Ctrl-C; processes it SIGSTOPped are always continued.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Protocol

from redis.exceptions import RedisError

from redkeeper.data import current_masters, ring_for, shard_names
from redkeeper.drills import Fault, ScenarioFigures, ScenarioRecord
from redkeeper.drills import workload as wl
from redkeeper.drills.measure import figures
from redkeeper.drills.measure import misplaced_keys as find_misplaced
from redkeeper.drills.scenarios import (
    DrillError,
    Scenario,
    Step,
    Target,
    resolve_shards,
    resolve_targets,
)
from redkeeper.drills.timeline import Timeline
from redkeeper.errors import RedkeeperError, SentinelError
from redkeeper.model import Address, key_bytes
from redkeeper.process import port_open
from redkeeper.stack import LocalStack, probe, state
from redkeeper.stack.status import collect
from redkeeper.topology import Topology

Log = Callable[[str], None]
_POLL = 0.05


@dataclass(frozen=True)
class RunnerSettings:
    workload: wl.WorkloadSettings = field(default_factory=wl.WorkloadSettings)
    warmup: float = 1.0  # seconds of workload before the first step
    tail: float = 1.0  # seconds of workload after the last step
    settle: float = 1.0  # after the workload stops, before restore and read-back
    wait: float = 20.0  # bound of a wait step, plus down-after and the step's own timeout
    restore: float = 60.0  # bound of a restore
    scan_limit: int = 2_000_000  # keys per master in the placement audit


class Described(Protocol):
    def describe(self) -> str: ...


class ScenarioLike(Protocol):
    """What a report needs of a scenario: a local one (`scenarios.Scenario`) or one across
    the lab's hosts (`lab.scenarios.LabScenario`)."""

    @property
    def name(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def notes(self) -> tuple[str, ...]: ...
    @property
    def steps(self) -> Sequence[Described]: ...
    def bars_text(self) -> list[str]: ...


@dataclass
class ScenarioResult:
    scenario: ScenarioLike
    record: ScenarioRecord
    figures: ScenarioFigures
    broken: bool = False  # the stack did not recover: the drill stops here


@dataclass
class DrillRun:
    topology: str
    mode: str
    down_after_ms: int
    connections: int
    rate: float
    own_stack: bool
    results: list[ScenarioResult] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.figures.passed for r in self.results)


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


def _ports_open(addresses: Sequence[Address]) -> bool:
    return all(port_open(a.host, a.port) for a in addresses)


class DrillRunner:
    """`with DrillRunner(topology) as runner: run = runner.run(scenarios)`."""

    def __init__(
        self,
        topology: Topology,
        *,
        log: Log = lambda _msg: None,
        settings: RunnerSettings = RunnerSettings(),
    ) -> None:
        self.topology = topology
        self.log = log
        self.settings = settings
        self.password = topology.password()
        self.shards = [s.name for s in topology.shards]
        ring = ring_for(topology)
        names = shard_names(ring)
        self.locate: Callable[[str], str] = lambda key: names[ring.index_of(key_bytes(key))]
        self.down_after = topology.spec.sentinel.down_after_ms / 1000.0
        self.stack = LocalStack(topology, log=log)
        self.own = False
        self._stopped: set[str] = set()
        self._run_id = uuid.uuid4().hex[:8]

    # ------------------------------------------------------------------ stack
    def __enter__(self) -> DrillRunner:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        if self.down_after <= 1.0:
            self.log(
                f"note: down_after_ms {self.down_after * 1000:.0f} is not above Sentinel's 1 s "
                "PING period: expect an occasional second failover (docs/drills.md)"
            )
        running = {r.name for r in self.stack.running_records()}
        if running:
            self.stack.with_agent = "agent" in running or "proxy" in running
            self.log(f"using the running stack of {self.stack.state_dir}")
        else:
            self.log(f"starting a stack for {self.topology.source} in {self.stack.state_dir}")
            self.own = True
            self.stack.up()
        try:
            self.restore()
        except BaseException:  # __exit__ does not run when __enter__ raises
            self.close()
            raise

    def close(self) -> None:
        try:
            self.close_stopped()
        finally:
            self._down_own()

    def _down_own(self) -> None:
        if self.own:
            self.own = False
            self.log("stopping the stack it started")
            self.stack.down()

    def _groups(self) -> list[list[str]]:
        """The recorded processes in restart order: Redis, Sentinels, the rest (agent…)."""
        redis = [n.name for n in self.topology.redis_nodes()]
        sentinels = [n.name for n in self.topology.sentinel_nodes()]
        recorded = [r.name for r in state.read_records(self.stack.state_dir)]
        rest = [n for n in recorded if n not in redis and n not in sentinels]
        return [redis, sentinels, rest]

    def restore(self, record: ScenarioRecord | None = None) -> None:
        """Continue, restart (Redis first: a returning master must be up before a Sentinel
        majority is), then wait until the stack is healthy again (bounded). Restarts are
        noted in `record`."""
        deadline = time.monotonic() + self.settings.restore
        self.close_stopped()
        nodes = {n.name: n for n in self.topology.redis_nodes()}
        addresses = {n.name: n.address for n in nodes.values()}
        addresses |= {n.name: n.address for n in self.topology.sentinel_nodes()}
        for group in self._groups():
            for name in group:
                if not self.stack.record(name).alive():
                    self.log(f"restore: starting {name} again")
                    if record is not None:
                        shard = nodes[name].shard if name in nodes else None
                        record.faults.append(Fault(time.time(), -1, "restart", name, shard))
                    self.stack.restart_process(name)
            pending = [addresses[n] for n in group if n in addresses]
            _wait(partial(_ports_open, pending), 10.0)
        reason: str | None = "not checked"
        while time.monotonic() < deadline:
            reason = self.unhealthy()
            if reason is None:
                return
            time.sleep(0.2)
        raise DrillError(f"the stack did not recover within {self.settings.restore:g} s: {reason}")

    def close_stopped(self) -> None:
        """SIGCONT every process a step stopped (a frozen process cannot even be stopped)."""
        for name in sorted(self._stopped):
            with contextlib.suppress(RedkeeperError, OSError):
                self.stack.signal(name, signal.SIGCONT)
        self._stopped.clear()

    def unhealthy(self) -> str | None:
        """Why the stack is not ready for the next scenario, or None."""
        status = collect(self.topology, self.password, self.stack.with_agent)
        if status.problems:
            return status.problems[0]
        count = len(self.topology.sentinel_nodes())
        for node in self.topology.sentinel_nodes():
            masters = probe.sentinel_masters(node.address, self.password) or {}
            for shard in self.shards:
                info = masters.get(shard)
                if info is None or info.flags != frozenset({"master"}):
                    return f"{node.name}: {shard} flags {sorted(info.flags) if info else '-'}"
                if info.num_other_sentinels < count - 1:
                    return f"{node.name} knows {info.num_other_sentinels} other Sentinels"
        agent = status.agent
        if agent is not None and agent.sentinel_links_up != count:
            return f"agent: {agent.sentinel_links_up}/{count} Sentinel links"
        view = {s.name: s.master for s in status.shards}
        restart_mode = self.topology.spec.proxy.mode == "restart"  # routes = the masters
        if agent is not None and restart_mode and agent.routes != view:
            return f"agent routes {agent.routes}, Sentinel says {view}"
        maker = wl.KeyMaker(f"drill:{self._run_id}:probe", 0, self.locate)
        keys = [maker.next_for(shard) for shard in self.shards]
        return wl.probe_writes(self.topology.spec.proxy.listen, self.password, keys)

    # ------------------------------------------------------------------ scenarios
    def run(self, scenarios: Sequence[Scenario], repeat: int = 1) -> DrillRun:
        spec = self.topology.spec
        run = DrillRun(
            self.topology.source,
            spec.proxy.mode,
            spec.sentinel.down_after_ms,
            self.settings.workload.connections,
            self.settings.workload.rate,
            self.own,
        )
        for iteration in range(repeat):
            for scenario in scenarios:
                result = self.run_scenario(scenario, iteration)
                run.results.append(result)
                if result.broken:
                    run.error = result.record.error
                    return run
        return run

    def run_scenario(self, scenario: Scenario, iteration: int = 0) -> ScenarioResult:
        spec = self.topology.spec
        masters = dict(current_masters(self.topology, self.password).addresses)
        nodes = [(n.name, n.shard, n.address) for n in self.topology.redis_nodes()]
        targets = resolve_targets(nodes, masters, len(self.topology.sentinel_nodes()))
        prefix = f"drill:{self._run_id}:{scenario.name}:{iteration}"
        self.log(f"{scenario.name}: {scenario.summary}")
        timeline = Timeline(
            [(n.name, n.address) for n in self.topology.sentinel_nodes()],
            spec.agent.metrics if self.stack.with_agent else None,
            self.password,
        )
        load = wl.Workload(
            spec.proxy.listen,
            self.password,
            self.shards,
            self.locate,
            prefix,
            self.settings.workload,
        )
        record = ScenarioRecord(
            scenario.name,
            list(self.shards),
            spec.sentinel.down_after_ms,
            spec.sentinel.failover_timeout_ms,
            self.settings.workload.connections,
            started=time.time(),
            ended=0.0,
        )
        broken = False
        timeline.start()
        try:
            record.started = time.time()
            load.start()
            time.sleep(self.settings.warmup)
            try:
                for index, step in enumerate(scenario.steps):
                    self._step(index, step, targets, record, load, timeline, masters, prefix)
                time.sleep(self.settings.tail)
            except RedkeeperError as exc:  # a wait that timed out, a process that is gone
                record.error = str(exc)
                self.log(f"{scenario.name}: {exc}")
            # The workload and the timeline go on through the restore: what happens until the
            # stack is healthy again (a late or a second failover) belongs to the scenario.
            record.faults.append(Fault(time.time(), -1, "restore", "stack"))
            try:
                self.restore(record)
            except RedkeeperError as exc:
                broken = True
                record.error = _join(record.error, str(exc))
            time.sleep(self.settings.tail)
        finally:
            load.stop()
            record.ended = time.time()
            time.sleep(self.settings.settle)
            timeline.stop()
            record.ops = load.ops()
            record.events = timeline.events()
            record.applies = [a for a in timeline.applies() if a.time >= record.started]
            record.samples = timeline.samples()
        if not broken:
            try:
                self._read_back(record, prefix)
            except (RedkeeperError, RedisError, OSError) as exc:
                record.error = _join(record.error, str(exc))
        result = ScenarioResult(scenario, record, figures(record, scenario.bars), broken)
        verdict = "PASS" if result.figures.passed else "FAIL"
        self.log(f"{scenario.name}: {verdict} ({len(record.ops)} writes)")
        return result

    def _read_back(self, record: ScenarioRecord, prefix: str) -> None:
        masters = current_masters(self.topology, self.password).addresses
        for shard in self.shards:
            acked = {op.key for op in record.ops if op.ok and op.shard == shard}
            record.present[shard] = wl.read_back(masters[shard], self.password, acked)
        scanned: dict[str, list[str]] = {}
        for shard in self.shards:
            keys, complete = wl.scan(masters[shard], self.password, limit=self.settings.scan_limit)
            scanned[shard] = keys
            record.scan_complete = record.scan_complete and complete
            record.keys_scanned += len(keys)
        wrong = find_misplaced(scanned, self.locate)
        record.misplaced = {shard: len(keys) for shard, keys in wrong.items()}
        for shard, keys in scanned.items():
            mine = [k for k in keys if k.startswith(prefix + ":")]
            wl.delete(masters[shard], self.password, mine)

    # ------------------------------------------------------------------ steps
    def _step(
        self,
        index: int,
        step: Step,
        targets: dict[str, list[Target]],
        record: ScenarioRecord,
        load: wl.Workload,
        timeline: Timeline,
        masters: dict[str, Address],
        prefix: str,
    ) -> None:
        picked = [t for name in step.targets for t in targets.get(name, [])]
        acts = step.action in ("kill", "stop", "cont", "restart")
        shards = [] if acts else resolve_shards(step.targets, self.shards)
        bound = self.settings.wait + self.down_after + step.timeout
        self.log(f"  {step.describe()}")
        if acts:
            for target in picked:
                self._act(step.action, target, index, record)
        elif step.action == "sleep":
            time.sleep(step.duration(self.down_after))
        elif step.action == "wait-failover":
            if not _wait(lambda: all(self._moved(s, masters[s]) for s in shards), bound):
                raise _StepTimeoutError(f"no failover of {', '.join(shards)} within {bound:g} s")
        elif step.action == "wait-writes":
            since = max((f.time for f in record.faults if f.action in ("kill", "stop")), default=0)
            if not _wait(lambda: all(load.resumed(s, since) for s in shards), bound):
                raise _StepTimeoutError(
                    f"writes to {', '.join(shards)} not back within {bound:g} s"
                )
        elif step.action == "wait-event":
            if not _wait(lambda: timeline.seen(step.events, shards, record.started), bound):
                raise _StepTimeoutError(f"no {'/'.join(step.events)} within {bound:g} s")
        elif step.action == "wait-fail-static":
            if not _wait(lambda: timeline.fail_static_seen(record.started), bound):
                raise _StepTimeoutError(f"the agent did not fail static within {bound:g} s")
        elif step.action == "watch-old-master":
            for shard in shards:
                watched = wl.watch_old_master(masters[shard], self.password, f"{prefix}:*", bound)
                record.old_master_values[shard] = watched

    def _act(self, action: str, target: Target, group: int, record: ScenarioRecord) -> None:
        record.faults.append(
            Fault(time.time(), group, action, target.process, target.shard, target.role)
        )
        if action == "restart":
            live = self.stack.record(target.process)
            if not _wait(lambda: not live.alive(), 5.0):
                raise _StepTimeoutError(f"{target.process} (pid {live.pid}) did not end")
            self.stack.restart_process(target.process)
            return
        sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "cont": signal.SIGCONT}[action]
        live = self.stack.signal(target.process, sig)
        if action == "stop":
            self._stopped.add(target.process)
        elif action == "cont":
            self._stopped.discard(target.process)
        elif not _wait(lambda: not live.alive(), 5.0):
            raise _StepTimeoutError(f"{target.process} (pid {live.pid}) survives SIGKILL")

    def _moved(self, shard: str, old: Address) -> bool:
        try:
            return current_masters(self.topology, self.password).addresses[shard] != old
        except SentinelError:
            return False


class _StepTimeoutError(DrillError):
    """A wait step did not see what it waits for in time (the scenario fails)."""
