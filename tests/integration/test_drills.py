"""Failover drills against a real stack (issue: failover drills): the CI bars.

One stack on free ports (down-after 1000 ms) runs kill-master, kill-both-masters,
no-sentinel-majority and stall-master through the runner's API, restored between scenarios;
then `redkeeper drill stall-master --json` attaches to the same running stack. Targets
(WU ≤ down-after + 1 s, apply p99 ≤ 200 ms) are reported by the drill, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from redkeeper.drills import ScenarioFigures
from redkeeper.drills.html_report import write_html
from redkeeper.drills.runner import DrillRun, DrillRunner, RunnerSettings
from redkeeper.drills.scenarios import select
from redkeeper.drills.workload import WorkloadSettings
from redkeeper.process import pid_alive
from tests.support import assert_no_bug_in_logs, load, run_cli, write_topology

pytestmark = pytest.mark.integration

CI_SCENARIOS = ["kill-master", "kill-both-masters", "no-sentinel-majority", "stall-master"]
DOWN_AFTER_MS = 1000
WU_BAR_MS = DOWN_AFTER_MS + 5000
CONNECTIONS = 4


@dataclass
class Drilled:
    run: DrillRun
    cli: subprocess.CompletedProcess[str]
    pids: list[int]


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> Drilled:
    tmp = tmp_path_factory.mktemp("drills")
    path = write_topology(tmp, down_after_ms=DOWN_AFTER_MS)
    topology = load(path)
    settings = RunnerSettings(workload=WorkloadSettings(connections=CONNECTIONS, rate=100.0))
    runner = DrillRunner(topology, settings=settings)
    with runner:
        run = runner.run(select(CI_SCENARIOS))
        pids = [r.pid for r in runner.stack.running_records()]
        cli = run_cli("drill", "stall-master", "-c", str(path), "--json", timeout=120)
    assert_no_bug_in_logs(topology.state_dir)
    return Drilled(run, cli, pids)


def figures_of(drilled: Drilled, name: str) -> ScenarioFigures:
    return next(r.figures for r in drilled.run.results if r.figures.scenario == name)


# Sentinel with down-after <= 1 s sometimes fails over a master it has just promoted (its first
# PING on the new link and its SDOWN check fall due on the same tick; docs/drills.md). The drill
# reports that as a failed "failovers"/"one outage" bar; CI accepts it only with that signature.
SENTINEL_RACE_BARS = {"failovers", "one outage"}


def sentinel_refailover(figures: ScenarioFigures) -> list[str]:
    """Shards whose extra failovers each replaced the master the previous one promoted."""
    found = []
    for shard in figures.shards:
        pairs = [switch.split(" -> ") for switch in shard.switches]
        chained = all(pairs[i][0] == pairs[i - 1][1] for i in range(1, len(pairs)))
        if len(pairs) > 1 and chained:
            found.append(shard.shard)
    return found


def test_every_ci_scenario_ran_and_met_its_bars(drilled: Drilled) -> None:
    assert drilled.run.own_stack
    assert drilled.run.error is None
    assert [r.figures.scenario for r in drilled.run.results] == CI_SCENARIOS
    for result in drilled.run.results:
        figures = result.figures
        failed = {c.name: c.detail for c in figures.bars if not c.ok}
        raced = sentinel_refailover(figures)
        if raced and set(failed) <= SENTINEL_RACE_BARS:
            warnings.warn(
                f"{figures.scenario}: Sentinel failed over the new master of {raced} again "
                f"({failed}); see docs/drills.md",
                stacklevel=1,
            )
            failed = {}
        assert not failed, f"{figures.scenario}: {failed}"
        assert all(s.misplaced == 0 for s in figures.shards)
        assert result.record.keys_scanned > 0 and result.record.scan_complete


@pytest.mark.parametrize("name", ["kill-master", "kill-both-masters"])
def test_kill_scenarios_fail_over_lose_within_the_bound_and_recover(
    drilled: Drilled, name: str
) -> None:
    figures = figures_of(drilled, name)
    lost = sum(s.lost for s in figures.shards)
    assert lost <= figures.lost_bound == CONNECTIONS * 2
    for shard in figures.shards:
        assert shard.failovers == 1 or shard.shard in sentinel_refailover(figures), shard
        assert shard.acked > 100
        assert shard.recovered and shard.wu_ms is not None
        assert 0 < shard.wu_ms <= WU_BAR_MS, shard  # the fault's own outage
    assert figures.applies >= 1


def test_no_sentinel_majority_fails_static_without_failover(drilled: Drilled) -> None:
    figures = figures_of(drilled, "no-sentinel-majority")
    shard1, shard2 = figures.shards
    assert shard1.failovers == shard2.failovers == 0
    assert figures.fail_static_observed
    assert figures.applies == 0
    # the shard stays down for the whole hold (5 s + down-after) and is back after the restore
    assert shard1.writes_failed > 0 and shard1.wu_ms is not None
    assert shard1.wu_ms >= 5000 + DOWN_AFTER_MS and shard1.recovered
    assert shard2.writes_failed == 0 and shard2.writes_ok > 100  # the healthy shard is not hit
    assert shard1.lost == shard2.lost == 0  # the master restarted from its AOF


def test_stall_shorter_than_down_after_causes_no_failover(drilled: Drilled) -> None:
    figures = figures_of(drilled, "stall-master")
    assert all(s.failovers == 0 for s in figures.shards)
    assert figures.applies == 0
    assert all(s.lost == 0 for s in figures.shards)
    shard1 = figures.shards[0]
    assert shard1.wu_ms is not None and shard1.wu_ms <= WU_BAR_MS


def test_cli_attaches_to_the_running_stack_and_prints_json(drilled: Drilled) -> None:
    assert drilled.cli.returncode == 0, drilled.cli.stderr[-3000:]
    data = json.loads(drilled.cli.stdout)
    assert data["own_stack"] is False and data["passed"] is True
    assert [s["scenario"] for s in data["scenarios"]] == ["stall-master"]
    assert "using the running stack" in drilled.cli.stderr


def test_the_stack_the_runner_started_is_stopped(drilled: Drilled) -> None:
    assert drilled.pids
    assert not any(pid_alive(pid) for pid in drilled.pids)


def test_drill_list_describes_every_scenario_with_its_bars() -> None:
    result = run_cli("drill", "--list")
    assert result.returncode == 0, result.stderr
    for name in select([]):
        assert f"{name.name}: " in result.stdout
    assert result.stdout.count("bars:") == 9
    unknown = run_cli("drill", "no-such-drill")
    assert unknown.returncode == 7 and "unknown scenario" in unknown.stderr


def test_drill_report_is_written(drilled: Drilled, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_html(drilled.run, target)
    text = target.read_text()
    assert text.count("data:image/png;base64,") == len(CI_SCENARIOS)
