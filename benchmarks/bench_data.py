"""Benchmark of the data tools: `load` and `check` of N keys on a real local stack.

Run: `python benchmarks/bench_data.py [--keys N] [--value-size B] [--batch K]`. Starts its own
stack (the default shape: 2 shards x (master + 2 replicas), 3 Sentinels, nutcracker under the
agent) on free loopback ports in a temporary directory, loads N keys (default 1,000,000) through
the proxy, checks them (proxy reads, then the scan of every master), and as a baseline writes the
same pipelined MSETs straight to one Redis master. Prints keys/s for each and the ratio to the
baseline; the target (load and check each within 60 s for 1,000,000 keys) is printed, not
asserted. The stack is always stopped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from redkeeper.data import check_data, current_masters, load_keys, write_keys
from redkeeper.process import free_port
from redkeeper.stack import LocalStack
from redkeeper.topology import Topology, load_topology

TARGET_SECONDS = 60.0


def topology_text(state_dir: Path) -> str:
    """The default topology's shape on ports that are free right now."""
    ports: set[int] = set()
    while len(ports) < 3 + 6 + 3:
        ports.add(free_port())
    it = iter(sorted(ports))
    sentinels = ", ".join(f"127.0.0.1:{next(it)}" for _ in range(3))
    lines = [
        "name: bench",
        f"state_dir: {state_dir}",
        "sentinel:",
        f"  nodes: [{sentinels}]",
        "  quorum: 2",
        "shards:",
    ]
    for shard in (1, 2):
        master, r1, r2 = next(it), next(it), next(it)
        lines.append(
            f"  - {{name: shard{shard}, master: 127.0.0.1:{master}, "
            f"replicas: [127.0.0.1:{r1}, 127.0.0.1:{r2}]}}"
        )
    lines += [
        "proxy:",
        f"  listen: 127.0.0.1:{next(it)}",
        f"  stats: 127.0.0.1:{next(it)}",
        "agent:",
        f"  metrics: 127.0.0.1:{next(it)}",
    ]
    return "\n".join(lines) + "\n"


def run(topology: Topology, keys: int, value_size: int, batch: int) -> int:
    loaded = load_keys(topology, count=keys, value_size=value_size, batch=batch)
    print(
        f"load:     {loaded.written:>10,} keys in {loaded.seconds:6.1f} s "
        f"= {loaded.keys_per_second:>9,.0f} keys/s (failed: {loaded.failed})"
    )
    started = time.perf_counter()
    report = check_data(topology)
    check_seconds = time.perf_counter() - started
    proxy = report.proxy
    assert proxy is not None
    scanned = sum(report.scan.scanned.values())
    print(
        f"check:    {keys:>10,} keys in {check_seconds:6.1f} s "
        f"= {keys / check_seconds:>9,.0f} keys/s "
        f"(proxy reads {proxy.seconds:.1f} s, scan of {scanned:,} keys "
        f"{report.scan.seconds:.1f} s; defects: {report.defects})"
    )
    master = current_masters(topology, None)["shard1"]
    baseline = write_keys(
        master, None, prefix=b"baseline:", count=keys, value_size=value_size, batch=batch
    )
    print(
        f"baseline: {baseline.written:>10,} keys in {baseline.seconds:6.1f} s "
        f"= {baseline.keys_per_second:>9,.0f} keys/s (same MSETs straight to master {master})"
    )
    ratio = loaded.keys_per_second / baseline.keys_per_second
    print(f"load through the proxy / baseline: {ratio:.2f}")
    for name, seconds in (("load", loaded.seconds), ("check", check_seconds)):
        verdict = "meets" if seconds * 1_000_000 / max(keys, 1) <= TARGET_SECONDS else "MISSES"
        print(f"{name} {verdict} the target of 1,000,000 keys in {TARGET_SECONDS:.0f} s")
    return 1 if loaded.failed or report.defects or baseline.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys to load and check")
    parser.add_argument("--value-size", type=int, default=32, help="bytes per value")
    parser.add_argument("--batch", type=int, default=1000, help="keys per round trip (load)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="redkeeper-bench-") as tmp:
        path = Path(tmp) / "topology.yaml"
        path.write_text(topology_text(Path(tmp) / "state"))
        topology = load_topology(path)
        stack = LocalStack(topology)
        started = time.perf_counter()
        try:
            stack.up()
            print(
                f"stack up in {time.perf_counter() - started:.1f} s; {args.keys:,} keys, "
                f"{args.value_size}-byte values, batch {args.batch}, "
                f"Python {sys.version.split()[0]}"
            )
            return run(topology, args.keys, args.value_size, args.batch)
        finally:
            stack.down()


if __name__ == "__main__":
    sys.exit(main())
