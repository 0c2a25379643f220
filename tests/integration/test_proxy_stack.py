"""The redkeeper proxy as users meet it: `proxy.mode: redkeeper`, a real stack (Redis,
Sentinels, the proxy process), stock clients at their default settings, and failovers.

- every client of the matrix (redis-py sync and asyncio, node-redis 5 and 6, ioredis) passes
  SET, GET, MGET, DEL, a pipeline and EVAL through the endpoint with no warning;
- drills on the same stack: SIGKILL of shard1's master under load costs the healthy shard 0
  errors and the proxy's PID does not change (no restart); a frozen master gets 0 writes
  after the switch; with 2 of 3 Sentinels gone the proxy fails static (routes kept, the
  healthy shard served); the apply (first Sentinel notice → routing) is milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from redkeeper.drills import ScenarioFigures
from redkeeper.drills.runner import DrillRun, DrillRunner, RunnerSettings
from redkeeper.drills.scenarios import select
from redkeeper.drills.workload import WorkloadSettings
from redkeeper.stack import LocalStack
from redkeeper.topology import Topology
from tests.clients.matrix import CLIENTS, Client, assert_client_works
from tests.support import agent_health, assert_no_bug_in_logs, load, write_topology

pytestmark = pytest.mark.integration

SCENARIOS = ["kill-master", "freeze-master", "no-sentinel-majority"]
CONNECTIONS = 4


@dataclass
class Native:
    topology: Topology
    stack: LocalStack
    proxy_pid: int


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Native]:
    tmp = tmp_path_factory.mktemp("native")
    topology = load(write_topology(tmp, mode="redkeeper"))
    stack = LocalStack(topology)
    stack.up()
    try:
        yield Native(topology, stack, stack.record("proxy").pid)
    finally:
        stack.down()
        assert_no_bug_in_logs(topology.state_dir)


@pytest.mark.parametrize("client", CLIENTS, ids=[c.name for c in CLIENTS])
def test_stock_client_at_default_settings(native: Native, client: Client) -> None:
    assert_client_works(client, native.topology.spec.proxy.listen)


def test_redis_py_transaction_pipeline_and_info(native: Native) -> None:
    r = redis.Redis(port=native.topology.spec.proxy.listen.port)  # RESP3 by default
    with r.pipeline() as pipe:  # redis-py's default pipeline is MULTI/EXEC
        pipe.set("tx:{a}", "1")
        pipe.incr("tx:{a}")
        pipe.get("tx:{a}")
        assert pipe.execute() == [True, 2, b"2"]
    assert r.info("server")["redis_mode"] == "standalone"
    assert r.delete("tx:{a}") == 1


@pytest.fixture(scope="module")
def drilled(native: Native) -> DrillRun:
    settings = RunnerSettings(workload=WorkloadSettings(connections=CONNECTIONS, rate=100.0))
    with DrillRunner(native.topology, settings=settings) as runner:
        assert not runner.own  # it drills the running redkeeper-mode stack
        return runner.run(select(SCENARIOS))


def figures_of(run: DrillRun, name: str) -> ScenarioFigures:
    return next(r.figures for r in run.results if r.figures.scenario == name)


def test_drills_meet_their_bars_without_restarting_the_proxy(
    native: Native, drilled: DrillRun
) -> None:
    assert drilled.error is None
    for result in drilled.results:
        failed = {c.name: c.detail for c in result.figures.bars if not c.ok}
        assert not failed, f"{result.figures.scenario}: {failed}"
    assert native.stack.record("proxy").pid == native.proxy_pid  # never restarted


def test_kill_master_costs_the_healthy_shard_nothing(drilled: DrillRun) -> None:
    figures = figures_of(drilled, "kill-master")
    for shard in figures.shards:
        assert shard.lost == 0 and shard.failovers >= 1, shard
        assert shard.healthy_errors == 0, shard  # the other shard's clients saw no error
        assert shard.apply_latency_ms and max(shard.apply_latency_ms) < 200, shard
    assert figures.applies >= 1


def test_a_frozen_master_gets_no_write_after_the_switch(drilled: DrillRun) -> None:
    figures = figures_of(drilled, "freeze-master")
    shard1, shard2 = figures.shards
    assert shard1.failovers == 1 and shard1.old_master_writes_after_switch == 0
    assert shard2.writes_failed == 0


def test_without_a_sentinel_majority_the_proxy_fails_static(
    native: Native, drilled: DrillRun
) -> None:
    figures = figures_of(drilled, "no-sentinel-majority")
    shard1, shard2 = figures.shards
    assert figures.fail_static_observed and figures.applies == 0
    assert shard1.failovers == shard2.failovers == 0
    assert shard2.writes_failed == 0 and shard2.writes_ok > 100
    health = agent_health(native.topology)  # after the restore: routing again
    assert health.ok and not health.fail_static
