"""`redkeeper drill --lab` (composition): drills across the lab's hosts, with the workload on
the client host writing through the VIP.

Owns the life of a lab drill: use the running lab (or build one and take it down after,
also on an error or Ctrl-C), run this process's probes inside the client host, restore
the lab before each scenario (heal, links up, SIGCONT, start what was killed; wait, bounded,
until it is healthy, the proxies agree and a write goes through the VIP), then run the
scenario's steps (`lab.steps`) under the workload while the observers record, restore again
(the workload still running), read every acked key back from the current masters, audit
placement, delete the drill's keys and compute the figures (`lab.figures`). The result is a
`drills.runner.DrillRun`: the report, the plots and `--json` are those of `redkeeper drill`.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from redis.exceptions import RedisError

from redkeeper.data import current_masters, ring_for, shard_names
from redkeeper.drills import AgentSample, Fault, ScenarioRecord
from redkeeper.drills import workload as wl
from redkeeper.drills.measure import failovers
from redkeeper.drills.runner import DrillRun, RunnerSettings, ScenarioResult
from redkeeper.drills.scenarios import DrillError
from redkeeper.drills.timeline import Timeline
from redkeeper.errors import RedkeeperError
from redkeeper.lab import checks, compare, net
from redkeeper.lab.figures import LabRecord, scenario_figures
from redkeeper.lab.lab import Lab
from redkeeper.lab.observe import ProxySampler, ReconnectWriter, VipMonitor
from redkeeper.lab.scenarios import LabScenario
from redkeeper.lab.steps import ScenarioRun, resolve, wait_for
from redkeeper.lab.units import Unit
from redkeeper.model import Address, key_bytes
from redkeeper.process import find_binary, port_open
from redkeeper.stack import probe
from redkeeper.stack.status import collect

Log = Callable[[str], None]
COMPARE_PORT = 6390
#: The lab's clients give up on a request after 0.5 s (the lab's round trips are ~0.1 ms):
#: write unavailability then measures the system to within 0.5 s, not a 2 s client timeout.
CLIENT_TIMEOUT = 0.5


def lab_settings(connections: int = 4, rate: float = 100.0) -> RunnerSettings:
    return RunnerSettings(
        workload=wl.WorkloadSettings(connections=connections, rate=rate, timeout=CLIENT_TIMEOUT)
    )


class LabDrillRunner:
    """`with LabDrillRunner(lab) as runner: run = runner.run(scenarios)`."""

    def __init__(
        self,
        lab: Lab,
        *,
        topology_file: Path | None = None,
        log: Log = lambda _m: None,
        settings: RunnerSettings | None = None,
        fresh: bool = False,
    ) -> None:
        """`fresh`: build a new lab for every scenario (each starts with one master per
        Redis host and the VIP on its preferred host); refused while a lab runs."""
        self.lab = lab
        self.fresh = fresh
        self.topology_file = topology_file
        self.log = log
        self.settings = settings or lab_settings()
        self.own = False
        self._run_id = uuid.uuid4().hex[:8]
        self._stack = contextlib.ExitStack()
        self._last_switch = 0.0

    # ------------------------------------------------------------------ life
    def __enter__(self) -> LabDrillRunner:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        state = self.lab.state()
        if state is not None and self.fresh:
            raise DrillError(
                f"--fresh builds a lab per scenario, but one runs from {self.lab.lab_dir} "
                "(fix: redkeeper lab down, or drop --fresh)"
            )
        if state is None:
            self.log(f"no lab in {self.lab.lab_dir}: building one")
            self.own = True
            state = self.lab.up(self.topology_file)
        else:
            self.log(f"using the running lab of {self.lab.lab_dir}")
        try:
            self.topology = self.lab.topology(state)
            self.plan = state.plan
            self.password = self.topology.password()
            ring = ring_for(self.topology)
            names = shard_names(ring)
            self.locate: Callable[[str], str] = lambda k: names[ring.index_of(key_bytes(k))]
            self.shards = [s.name for s in self.topology.shards]
            self._stack.enter_context(net.enter(self.plan.client.namespace))
            self.restore()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            if self.own:
                self.own = False
                self.log("taking down the lab it built")
                self.lab.down()

    # ------------------------------------------------------------------ restore
    def restore(self, record: ScenarioRecord | None = None, run: ScenarioRun | None = None) -> None:
        """Continue, heal, restart what is dead, then wait until healthy (bounded)."""
        for name, unit in run.stopped if run is not None else []:
            with contextlib.suppress(RedkeeperError, OSError):
                if unit == "endpoint":
                    self.lab.signal_endpoint(name, signal.SIGCONT)
                else:
                    self.lab.signal_unit(name, unit, signal.SIGCONT)
        self.lab.heal()
        state = self.lab.require()
        for lab_host in state.plan.hosts:
            started = self.lab.start_host(lab_host.name)
            if started:
                self.log(f"restore: {lab_host.name}: started {', '.join(started)}")
                if record is not None:
                    record.faults.append(Fault(time.time(), -1, "restart", f"{lab_host.name}/*"))
        reason: str | None = "not checked"
        deadline = time.monotonic() + self.settings.restore
        while time.monotonic() < deadline:
            reason = self.unhealthy()
            if reason is None:
                return
            time.sleep(0.2)
        raise DrillError(f"the lab did not recover within {self.settings.restore:g} s: {reason}")

    def unhealthy(self) -> str | None:
        """Why the lab is not ready for the next scenario, or None."""
        status = collect(self.topology, self.password)
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
        reason = checks.vip_served(self.topology, self.plan, self.password)
        if reason is not None:
            return reason
        preferred = checks.preferred_holder(self.topology, self.plan)
        if preferred is not None and net.vip_holders(self.plan, self.plan.vips[0]) != [preferred]:
            return f"the VIP is not back on {preferred} (its preferred host) yet"
        maker = wl.KeyMaker(f"drill:{self._run_id}:probe", 0, self.locate)
        keys = [maker.next_for(shard) for shard in self.shards]
        return wl.probe_writes(self.topology.spec.proxy.listen, self.password, keys)

    # ------------------------------------------------------------------ scenarios
    def run(self, scenarios: Sequence[LabScenario], repeat: int = 1) -> DrillRun:
        spec = self.topology.spec
        run = DrillRun(
            self.topology.source,
            f"{spec.proxy.mode} (lab)",
            spec.sentinel.down_after_ms,
            self.settings.workload.connections,
            self.settings.workload.rate,
            self.own,
        )
        first = True
        for _ in range(repeat):
            for scenario in scenarios:
                if self.fresh and not first:
                    self._rebuild()
                first = False
                result = self.run_scenario(scenario)
                run.results.append(result)
                if result.broken:
                    run.error = result.record.error
                    return run
        return run

    def _rebuild(self) -> None:
        """--fresh: take the lab down and build it again (this thread leaves the old client
        host first, and enters the new one)."""
        self.log("--fresh: building a new lab for the next scenario")
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self.lab.down()
        state = self.lab.up(self.topology_file)
        self.plan = state.plan
        self._last_switch = 0.0
        self._stack.enter_context(net.enter(self.plan.client.namespace))
        self.restore()

    def _spacing(self, scenario: LabScenario) -> None:
        """Sentinel does not fail the same master name over again within 2 × failover-timeout."""
        if not scenario.bars.failover:
            return
        wait = self._last_switch + 2 * self.topology.spec.sentinel.failover_timeout_ms / 1000.0
        pause = wait + 1.0 - time.time()
        if pause > 0:
            self.log(f"{scenario.name}: waiting {pause:.1f} s (Sentinel's failover spacing)")
            time.sleep(pause)

    def run_scenario(self, scenario: LabScenario) -> ScenarioResult:
        self._spacing(scenario)
        spec = self.topology.spec
        prefix = f"drill:{self._run_id}:{scenario.name}"
        self.log(f"{scenario.name}: {scenario.summary}")
        targets = resolve(self.lab, self.topology, self.plan, self.password)
        record = ScenarioRecord(
            scenario.name,
            list(self.shards),
            spec.sentinel.down_after_ms,
            spec.sentinel.failover_timeout_ms,
            self.settings.workload.connections,
            started=time.time(),
            ended=0.0,
        )
        run = ScenarioRun(
            self.lab,
            self.topology,
            self.plan,
            self.password,
            targets,
            record,
            wl.Workload(
                spec.proxy.listen,
                self.password,
                self.shards,
                self.locate,
                prefix,
                self.settings.workload,
            ),
            Timeline(
                [(n.name, n.address) for n in self.topology.sentinel_nodes()], None, self.password
            ),
            wl.KeyMaker(f"labprobe:{self._run_id}:{scenario.name}", 0, self.locate),
            prefix,
            self.settings.wait
            + spec.sentinel.down_after_ms / 1000.0
            + spec.redis.min_replicas_max_lag,
            self.log,
        )
        vip = self.plan.vips[0] if self.plan.vips else spec.proxy.listen.host
        monitor = VipMonitor(self.plan, vip)
        sampler = ProxySampler(lambda: checks.proxy_health(self.topology, 0.4))
        writers = self._compare_writers(scenario, prefix)
        broken = False
        fault_start = fault_end = time.time()
        run.timeline.start()
        for observer in (monitor, sampler, *writers.values()):
            observer.start()
        try:
            run.load.start()
            time.sleep(self.settings.warmup)
            fault_start = time.time()
            try:
                for index, step in enumerate(scenario.steps):
                    run.step(index, step, scenario.probe_old_master)
                time.sleep(self.settings.tail)
            except RedkeeperError as exc:
                record.error = str(exc)
                self.log(f"{scenario.name}: {exc}")
            fault_end = time.time()
            record.faults.append(Fault(fault_end, -1, "restore", "lab"))
            try:
                self.restore(record, run)
            except RedkeeperError as exc:
                broken = True
                record.error = f"{record.error}; {exc}" if record.error else str(exc)
            time.sleep(self.settings.tail)
        finally:
            run.load.stop()
            record.ended = time.time()
            for observer in (monitor, sampler, *writers.values()):
                observer.stop()
            if run.probe is not None:
                run.probe.stop()
            self._stop_compare(scenario)
            time.sleep(self.settings.settle)
            run.timeline.stop()
            record.ops = run.load.ops()
            record.events = run.timeline.events()
            record.applies = [a for a in sampler.applies() if a.time >= record.started]
            record.samples = [
                AgentSample(
                    s.time,
                    any(r is not None for r in s.routes.values()),
                    any(s.fail_static.values()),
                    "",
                )
                for s in sampler.samples()
            ]
        switches = failovers(record.events, self.shards[0])
        if switches:
            self._last_switch = switches[-1][0]
        if not broken:
            try:
                self._read_back(record, prefix)
            except (RedkeeperError, RedisError, OSError) as exc:
                record.error = f"{record.error}; {exc}" if record.error else str(exc)
        lab_record = LabRecord(
            record,
            vip=f"{vip}:{spec.proxy.listen.port}",
            active=targets.active,
            standby=targets.standby,
            advert_s=float(spec.proxy.keepalived.advert_int),
            fault_start=fault_start,
            fault_end=fault_end,
            heal_time=run.heal_time,
            cut_time=run.cut_time,
            old_master=str(targets.old_master),
            max_lag_s=spec.redis.min_replicas_max_lag,
            cut_shards=targets.cut_shards,
            vip_samples=monitor.samples(),
            route_samples=sampler.samples(),
            probe_ops=run.probe.ops() if run.probe else [],
            compare={name: w.ops() for name, w in writers.items()},
        )
        result = ScenarioResult(
            scenario, record, scenario_figures(lab_record, scenario.bars), broken
        )
        self.log(
            f"{scenario.name}: {'PASS' if result.figures.passed else 'FAIL'} "
            f"({len(record.ops)} writes)"
        )
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
        record.misplaced = {
            shard: sum(1 for k in keys if self.locate(k) != shard)
            for shard, keys in scanned.items()
        }
        for shard, keys in scanned.items():
            mine = [k for k in keys if k.startswith((prefix + ":", "labprobe:"))]
            wl.delete(masters[shard], self.password, mine)

    # ------------------------------------------------------------------ comparison
    def _compare_writers(self, scenario: LabScenario, prefix: str) -> dict[str, ReconnectWriter]:
        """heal-returns-old-master: HAProxy with the role:master check on the client host,
        and reconnecting writers through it and through the VIP (shard 1's keys)."""
        if not scenario.compare_seed002:
            return {}
        client = self.plan.client
        listen = Address(client.address, COMPARE_PORT)
        shard = self.topology.shards[0]
        root = self.lab.runner.root(client)
        (root / "etc/redkeeper" / compare.CONFIG).write_text(
            compare.haproxy_config(listen, shard.nodes, self.password)
        )
        unit = Unit(
            compare.UNIT, (find_binary("haproxy"), "-db", "-f", f"/etc/redkeeper/{compare.CONFIG}")
        )
        self.lab.start_unit(client.name, unit)
        if not wait_for(lambda: port_open(listen.host, listen.port, 0.2), 5.0):
            raise DrillError(f"the comparison HAProxy did not open {listen}")
        time.sleep(2.5)  # its first checks (inter 1s) mark the master UP
        return {
            "via VIP (redkeeper proxy)": ReconnectWriter(
                "lab-compare-vip",
                self.topology.spec.proxy.listen,
                self.password,
                wl.KeyMaker(prefix, 900, self.locate),
                shard.name,
            ),
            "via HAProxy role:master check": ReconnectWriter(
                "lab-compare-haproxy",
                listen,
                self.password,
                wl.KeyMaker(prefix, 901, self.locate),
                shard.name,
            ),
        }

    def _stop_compare(self, scenario: LabScenario) -> None:
        if scenario.compare_seed002:
            self.lab.stop_unit(self.plan.client.name, compare.UNIT)
