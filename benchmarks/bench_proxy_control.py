"""Benchmark of the redkeeper proxy's control plane: failover apply latency and footprint.

Run: `python benchmarks/bench_proxy_control.py [--failovers N] [--shards N]`.

Part 1 (real stack in `proxy.mode: redkeeper`, free loopback ports): SIGKILL the current
master of a shard N times; the proxy's /healthz history gives, per failover, the time from
the first Sentinel notice of the new master to the proxy routing to it. Printed: p50/p99
against the target (p99 ≤ 20 ms), and the same for restart mode's agent is in
`bench_agent.py` (floor: debounce + nutcracker restart).

Part 2 (real stack, 100 shards of one master each, 3 Sentinels monitoring all of them): the
proxy's idle RSS and idle CPU over a 20 s window, against the targets (≤ 60 MB, ≤ 1 %), with
the same figures for the 2-shard stack of part 1 as the baseline of the same run.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from redkeeper.data import current_masters
from redkeeper.stack import LocalStack, collect_status, probe
from redkeeper.topology import Topology, load_topology

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import topology_text

from benchmarks.bench_agent import _cpu_seconds, _percentile, _rss_mb, _wait

IDLE_WINDOW = 20.0


def _latencies(topology: Topology) -> list[float]:
    assert topology.spec.agent.metrics is not None
    health = probe.agent_health(topology.spec.agent.metrics)
    return [a.latency_ms for a in (health.history if health else []) if a.latency_ms is not None]


def _idle(pid: int) -> tuple[float, float]:
    """(RSS MB, CPU %) of `pid` over the idle window."""
    time.sleep(3)  # start-up settles; then a measurement window, not a wait for a condition
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_WINDOW)
    cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
    return _rss_mb(pid), cpu


def failovers(count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="rk-bench-") as tmp:
        path = Path(tmp) / "topology.yaml"
        path.write_text(topology_text(Path(tmp) / "state", mode="redkeeper"))
        topology = load_topology(path)
        stack = LocalStack(topology)
        stack.up()
        try:
            pid = stack.record("proxy").pid
            rss, cpu = _idle(pid)
            nodes = {n.address: n.name for n in topology.redis_nodes()}
            for round_no in range(count):
                shard = topology.shards[round_no % len(topology.shards)].name
                victim = nodes[current_masters(topology, None).addresses[shard]]
                seen = len(_latencies(topology))
                stack.signal(victim, signal.SIGKILL)
                _wait(partial(_more, topology, seen), 30, "the proxy's apply")
                print(f"  failover {round_no + 1}: {shard} routed "
                      f"{_latencies(topology)[-1]:.1f} ms after the first notice")  # fmt: skip
                stack.reap()
                _wait(partial(_gone, stack, victim), 10, f"{victim} gone")
                stack.restart_process(victim)
                _wait(lambda: collect_status(topology, None, True).healthy, 60, "a healthy stack")
            found = _latencies(topology)[-count:]
            p50, p99 = statistics.median(found), _percentile(found, 99)
            print(f"apply latency over {count} failovers: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                  "(target p99 ≤ 20 ms); the proxy's PID never changed: "
                  f"{stack.record('proxy').pid == pid}")  # fmt: skip
        finally:
            stack.down()
    return rss, cpu


def _more(topology: Topology, seen: int) -> bool:
    return len(_latencies(topology)) > seen


def _gone(stack: LocalStack, name: str) -> bool:
    return not stack.record(name).alive()


def footprint(shards: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="rk-bench-") as tmp:
        path = Path(tmp) / "topology.yaml"
        text = topology_text(Path(tmp) / "state", mode="redkeeper", shards=shards, replicas=0)
        path.write_text(text + "redis: {min_replicas_to_write: 0, appendonly: false}\n")
        topology = load_topology(path)
        stack = LocalStack(topology)
        started = time.monotonic()
        stack.up()
        print(f"  {shards}-shard stack up in {time.monotonic() - started:.1f} s")
        try:
            return _idle(stack.record("proxy").pid)
        finally:
            stack.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--failovers", type=int, default=6)
    parser.add_argument("--shards", type=int, default=100)
    args = parser.parse_args()
    print(f"part 1: {args.failovers} failovers on a 2-shard redkeeper-mode stack")
    base_rss, base_cpu = failovers(args.failovers)
    print(f"part 2: idle footprint with {args.shards} shards")
    rss, cpu = footprint(args.shards)
    print(f"proxy idle, 2 shards:   RSS {base_rss:.1f} MB, CPU {base_cpu:.2f} %")
    print(f"proxy idle, {args.shards} shards: RSS {rss:.1f} MB (target ≤ 60), "
          f"CPU {cpu:.2f} % (target ≤ 1); RSS {rss / base_rss:.2f}× the 2-shard one")  # fmt: skip


if __name__ == "__main__":
    main()
