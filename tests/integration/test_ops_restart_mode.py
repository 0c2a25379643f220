"""The operations with nutcracker as the endpoint (`proxy.mode: restart`), on a real stack.

- `switchover --all` (rolling, every shard in turn) under a write workload: 0 acknowledged
  writes lost, the write unavailability reported (the agent restarts nutcracker: every client
  connection is cut once per shard);
- `reshard add` killed after the endpoint was told (nutcracker.yml staged, the agent signaled)
  and run again, then `reshard remove`: nutcracker restarted by its agent at each cutover,
  0 acknowledged writes lost, `check` clean, the moved count within 1 % of the plan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redkeeper.data import current_masters, load_keys
from redkeeper.drills.measure import longest_ack_gap
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
from tests.support import agent_metric, load, run_cli, running_stack, write_topology

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


def test_rolling_switchover_with_nutcracker(stack: Stack) -> None:
    """`switchover --all`: every shard, one after the other, through the CLI."""
    topology = stack.topology
    old = current_masters(topology, None)
    began = time.time()
    done = run_cli("switchover", "--all", "-c", str(stack.path), "--json")
    ended = time.time()
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    time.sleep(1.0)
    now = current_masters(topology, None)
    ops = stack.workload.ops()
    gaps = {s: longest_ack_gap(ops, s, (began, ended + 1.0)) for s in ("shard1", "shard2")}
    print("\nswitchover --all (nutcracker): " + "; ".join(
        f"{r['shard']} pause {r['pause_ms']} ms, routed after {r['routed_ms']} ms, WU "
        f"{gaps[r['shard']] * 1000:.0f} ms" for r in results))  # fmt: skip
    assert [r["shard"] for r in results] == ["shard1", "shard2"]
    for r in results:
        assert r["old_master"] == str(old[r["shard"]]) != r["new_master"]
        assert r["new_master"] == str(now[r["shard"]]) and not r["warnings"]
        assert r["pause_ms"] is not None and r["pause_ms"] < 1500
    assert max(gaps.values()) < 1.5


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
