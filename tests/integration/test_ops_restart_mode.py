"""The operations with nutcracker as the endpoint (`proxy.mode: restart`), on a real stack.

- `switchover` under a write workload: 0 acknowledged writes lost, the write unavailability
  reported (the agent restarts nutcracker: every client connection is cut once);
- `reshard add` killed after the endpoint was told (nutcracker.yml staged, the agent signaled)
  and run again, then `reshard remove`: nutcracker restarted by its agent at each cutover,
  0 acknowledged writes lost, `check` clean, the moved count within 1 % of the plan.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redkeeper.data import current_masters, load_keys
from redkeeper.drills.measure import longest_ack_gap
from redkeeper.ops.switchover import Switchover
from tests.integration.test_reshard import (
    KEYS,
    PAUSE_BAR_MS,
    Stack,
    _workload,
    add_args,
    assert_clean,
    assert_no_acked_write_lost,
    reshard,
    within_plan,
)
from tests.support import agent_metric, load, running_stack, write_topology

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ops-restart")
    path = write_topology(tmp, replicas=1)
    topology = load(path)
    with running_stack(topology):
        assert load_keys(topology, count=KEYS).failed == 0
        workload = _workload(topology)
        workload.start()
        try:
            yield Stack(path, topology, workload)
        finally:
            workload.stop()
        assert_no_acked_write_lost(load(path), workload)


def test_switchover_with_nutcracker(stack: Stack) -> None:
    topology = stack.topology
    old = current_masters(topology, None)["shard1"]
    began = time.time()
    result = Switchover(topology).run("shard1")
    ended = time.time()
    time.sleep(1.0)
    gap = longest_ack_gap(stack.workload.ops(), "shard1", (began, ended + 1.0))
    print(f"\nswitchover (nutcracker): pause {result.pause_ms} ms, routed after "
          f"{result.routed_ms} ms, WU {gap * 1000:.0f} ms")  # fmt: skip
    assert result.new_master != old and not result.warnings
    assert result.pause_ms is not None and result.pause_ms < 1500
    assert gap < 1.5


def test_reshard_with_nutcracker_restarted_at_the_cutover(stack: Stack) -> None:
    restarts = agent_metric(stack.topology, "redkeeper_restarts_total")
    args = add_args("shard3")
    plan = reshard(stack.path, *args, "--plan")
    reshard(stack.path, *args, kill_at="signaled")
    added = reshard(stack.path, *args)
    within_plan(added, plan["moving"])
    assert_clean(stack.path)
    plan = reshard(stack.path, "remove", "shard3", "--plan")
    removed = reshard(stack.path, "remove", "shard3")
    print(f"\nnutcracker: add moved {added['moved']} (resumed), remove moved {removed['moved']} "
          f"with a {removed['longest_pause_ms']} ms pause")  # fmt: skip
    within_plan(removed, plan["moving"])
    assert removed["longest_pause_ms"] < PAUSE_BAR_MS
    assert_clean(stack.path)
    topology = load(stack.path)
    assert agent_metric(topology, "redkeeper_restarts_total") >= restarts + 2
    yml = Path(topology.state_dir / "nutcracker" / "nutcracker.yml").read_text()
    assert "shard3" not in yml and "shard1" in yml
