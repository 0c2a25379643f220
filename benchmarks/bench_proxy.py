"""Benchmark of the redkeeper proxy against nutcracker 0.5.0 and direct Redis.

Run: `python benchmarks/bench_proxy.py [--rounds 3] [--requests-p1 N] [--requests-p16 N]
[--baseline SRC]`.

Starts 2 plain redis-servers (no replicas, no persistence), nutcracker with the same named
pool (fnv1a_64, ketama), and the proxy through its development entry
(`python -m redkeeper.server`, one process, uvloop). Then `redis-benchmark -c 50 -t set,get
-r 100000` at -P 1 and -P 16 against direct Redis (one master), nutcracker and the proxy, in
interleaved rounds (the order rotates each round), and prints the medians: ops/s (mean of
SET and GET) and the ratio to nutcracker from the same run, CPU time per request of
nutcracker and of the proxy (utime+stime from /proc/PID/stat over each run), and p99 latency
(redis-benchmark --csv) with what each proxy adds over direct Redis. Targets for one process:
>= 1.0x nutcracker at -P 1, >= 0.8x at -P 16, CPU/request <= 1.2x nutcracker's, added p99 <=
nutcracker's + 0.2 ms. Every figure is printed, none asserted; every process is stopped.

`--baseline SRC` adds a fourth path in the same interleaved rounds: the proxy run from another
source tree's `SRC/redkeeper` (e.g. `git archive <commit> src | tar -x -C /tmp/base`, then
`--baseline /tmp/base/src`), for a before/after comparison on one machine state.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redkeeper.model import Address
from redkeeper.process import ManagedProcess, find_binary, free_port, wait_for_port

HOST = "127.0.0.1"
TESTS = ("SET", "GET")
TICKS = os.sysconf("SC_CLK_TCK")
PATHS = ("direct", "nutcracker", "proxy")
BASELINE = "baseline"


@dataclass
class Sample:
    ops: float  # mean of SET and GET requests/s
    p99_ms: float  # mean of SET and GET p99
    cpu_us: float | None  # CPU microseconds per request of the proxy process, if any


@dataclass
class Figures:
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        values = [getattr(s, attr) for s in self.samples if getattr(s, attr) is not None]
        return statistics.median(values) if values else float("nan")


def cpu_seconds(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def redis_benchmark(port: int, pipeline: int, requests: int) -> tuple[float, float]:
    """(mean ops/s, mean p99 ms) of SET and GET from one redis-benchmark run."""
    argv = [find_binary("redis-benchmark"), "-h", HOST, "-p", str(port), "-c", "50"]
    argv += ["-n", str(requests), "-P", str(pipeline), "-r", "100000", "-t", "set,get", "--csv"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    rps: dict[str, float] = {}
    p99: dict[str, float] = {}
    for line in done.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 7 and cells[0] in TESTS:
            rps[cells[0]] = float(cells[1])
            p99[cells[0]] = float(cells[6])
    if set(rps) != set(TESTS):
        raise SystemExit(f"redis-benchmark :{port}: no figures\n{done.stdout}\n{done.stderr}")
    return statistics.mean(rps.values()), statistics.mean(p99.values())


def _start(name: str, argv: list[str], root: Path, port: int) -> ManagedProcess:
    process = ManagedProcess(name, argv, root, root / f"{name}.log")
    process.start()
    if not wait_for_port(HOST, port, 15.0) or not process.alive():
        process.stop()
        raise SystemExit(f"{name} did not start:\n{process.tail_log()}")
    return process


def _proxy_argv(port: int, shards: dict[str, Address], source: Path | None) -> list[str]:
    if source is None:
        argv = [sys.executable, "-m", "redkeeper.server"]
    else:  # another tree's package first on sys.path
        run = "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
        run += "runpy.run_module('redkeeper.server', run_name='__main__', alter_sys=True)"
        argv = [sys.executable, "-c", run, str(source.resolve())]
    argv += ["--listen", f"{HOST}:{port}", "--hash", "fnv1a_64", "--distribution", "ketama"]
    for name, address in shards.items():
        argv += ["--server", f"{name}={address}"]
    return argv


def start_all(
    root: Path, baseline: Path | None = None
) -> tuple[list[ManagedProcess], dict[str, tuple[int, int | None]]]:
    """The processes, and per path: (port, pid to measure CPU of, or None)."""
    started: list[ManagedProcess] = []
    shards: dict[str, Address] = {}
    for i in (1, 2):
        port = free_port(HOST)
        argv = [find_binary("redis-server"), "--port", str(port), "--bind", HOST, "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(root)]
        argv += ["--dbfilename", f"shard{i}.rdb"]
        started.append(_start(f"redis-shard{i}", argv, root, port))
        shards[f"shard{i}"] = Address(HOST, port)
    nc_port, stats = free_port(HOST), free_port(HOST)
    lines = ["pool:", f"  listen: {HOST}:{nc_port}", "  redis: true", "  hash: fnv1a_64"]
    lines += ["  distribution: ketama", "  auto_eject_hosts: false", "  timeout: 5000"]
    lines += ["  servers:"] + [f"    - {a}:1 {name}" for name, a in shards.items()]
    (root / "nutcracker.yml").write_text("\n".join(lines) + "\n")
    nc_argv = [find_binary("nutcracker"), "-c", str(root / "nutcracker.yml"), "-s", str(stats)]
    nutcracker = _start("nutcracker", nc_argv, root, nc_port)
    started.append(nutcracker)
    proxy_port = free_port(HOST)
    proxy = _start("proxy", _proxy_argv(proxy_port, shards, None), root, proxy_port)
    started.append(proxy)
    first = shards["shard1"].port
    paths: dict[str, tuple[int, int | None]] = {
        "direct": (first, None),
        "nutcracker": (nc_port, nutcracker.pid),
        "proxy": (proxy_port, proxy.pid),
    }
    if baseline is not None:
        base_port = free_port(HOST)
        base = _start(BASELINE, _proxy_argv(base_port, shards, baseline), root, base_port)
        started.append(base)
        paths[BASELINE] = (base_port, base.pid)
    return started, paths


def measure(
    paths: dict[str, tuple[int, int | None]], pipeline: int, requests: int, rounds: int
) -> dict[str, Figures]:
    names = tuple(paths)
    results = {name: Figures() for name in names}
    for port, _ in paths.values():  # warm up connections and the proxy's hash cache
        redis_benchmark(port, pipeline, min(requests, 20_000))
    for round_ in range(rounds):
        shift = round_ % len(names)
        order = names[shift:] + names[:shift]
        for name in order:
            port, pid = paths[name]
            before = cpu_seconds(pid) if pid else 0.0
            ops, p99 = redis_benchmark(port, pipeline, requests)
            cpu = (cpu_seconds(pid) - before) / (2 * requests) * 1e6 if pid else None
            results[name].samples.append(Sample(ops, p99, cpu))
    return results


def report(pipeline: int, requests: int, rounds: int, results: dict[str, Figures]) -> None:
    base = results["nutcracker"].median("ops")
    direct_p99 = results["direct"].median("p99_ms")
    print(
        f"\n-P {pipeline}: redis-benchmark -c 50 -t set,get -r 100000 -n {requests}, "
        f"median of {rounds} interleaved rounds"
    )
    print(
        f"{'path':<12}{'ops/s':>12}{'x nutcracker':>14}{'CPU us/req':>12}{'p99 ms':>9}"
        f"{'+p99 vs direct':>16}"
    )
    for name, figures in results.items():
        ops, p99, cpu = figures.median("ops"), figures.median("p99_ms"), figures.median("cpu_us")
        cpu_text = "-" if math.isnan(cpu) else f"{cpu:.2f}"
        added = "-" if name == "direct" else f"{p99 - direct_p99:+.3f}"
        print(f"{name:<12}{ops:>12,.0f}{ops / base:>14.2f}{cpu_text:>12}{p99:>9.3f}{added:>16}")
    per_round = [
        p.ops / n.ops
        for p, n in zip(results["proxy"].samples, results["nutcracker"].samples, strict=True)
    ]
    cpu_ratio = results["proxy"].median("cpu_us") / results["nutcracker"].median("cpu_us")
    added_p = results["proxy"].median("p99_ms") - direct_p99
    added_n = results["nutcracker"].median("p99_ms") - direct_p99
    print(
        f"proxy / nutcracker: ops {results['proxy'].median('ops') / base:.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in per_round)}), CPU/request {cpu_ratio:.2f}x, "
        f"added p99 {added_p:+.3f} ms vs nutcracker's {added_n:+.3f} ms"
    )
    if BASELINE in results:
        base_rounds = [
            p.ops / b.ops
            for p, b in zip(results["proxy"].samples, results[BASELINE].samples, strict=True)
        ]
        proxy, before = results["proxy"], results[BASELINE]
        print(
            f"proxy / baseline: ops {proxy.median('ops') / before.median('ops'):.2f}x "
            f"(rounds: {', '.join(f'{r:.2f}' for r in base_rounds)}), CPU/request "
            f"{proxy.median('cpu_us') / before.median('cpu_us'):.2f}x"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests-p1", type=int, default=40_000)
    parser.add_argument("--requests-p16", type=int, default=200_000)
    parser.add_argument("--baseline", type=Path, default=None, help="another tree's src/")
    parser.add_argument("--pipelines", default="1,16", help="comma-separated -P values")
    args = parser.parse_args(argv)
    sizes = {1: args.requests_p1, 16: args.requests_p16}
    started_at = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        started, paths = start_all(Path(tmp), args.baseline)
        try:
            for pipeline in (int(p) for p in args.pipelines.split(",")):
                requests = sizes.get(pipeline, args.requests_p16)
                results = measure(paths, pipeline, requests, args.rounds)
                report(pipeline, requests, args.rounds, results)
        finally:
            for process in reversed(started):
                process.stop()
    print(f"\n(total {time.monotonic() - started_at:.0f} s, {os.cpu_count()} cores, shared)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
