"""`redkeeper bench`: redis-benchmark against each endpoint of a running stack, with ratios.

Owns the benchmark matrix and its parsing. `endpoints()` lists what is measured, the first
being the baseline (shard 1's current master, directly); to measure another endpoint, add a
row there. Every command of `COMMANDS` runs at each -P of `PIPELINES` against each endpoint,
one redis-benchmark run each (bounded by a timeout), and each run is announced (`log`) with
its result: progress, never silence.

Keys: the commands name their own keys, `rkbench:<run id>:key:<n>`, `…:counter:<n>` and
`…:list` (redis-benchmark's `__rand_int__`), never its defaults (key:*, counter:*, mylist).
`cleanup` removes the run's keys from every shard's current master afterwards, also after a
failure or Ctrl-C. This module starts, stops or restarts nothing: the command checks the
stack is healthy first, and says so when it starts a stack of its own.
"""

from __future__ import annotations

import csv
import io
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from redkeeper.data import current_masters
from redkeeper.drills import workload
from redkeeper.drills.scenarios import DrillError
from redkeeper.model import Address
from redkeeper.process import find_binary
from redkeeper.topology import Topology

PREFIX = "rkbench:"
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SET", ("SET", "{p}key:__rand_int__", "xxx")),
    ("GET", ("GET", "{p}key:__rand_int__")),
    ("INCR", ("INCR", "{p}counter:__rand_int__")),
    ("LPUSH", ("LPUSH", "{p}list", "xxx")),
    ("LPOP", ("LPOP", "{p}list")),
)
PIPELINES = (1, 16)


@dataclass(frozen=True)
class BenchSettings:
    requests: int = 100_000
    clients: int = 50
    keyspace: int = 100_000
    timeout: float = 120.0  # one redis-benchmark run (one command at one -P)


@dataclass(frozen=True)
class Sample:
    target: str
    pipeline: int
    test: str
    rps: float
    p50_ms: float | None


@dataclass
class BenchReport:
    targets: dict[str, str]  # name -> address, the baseline first
    notes: list[str]
    prefix: str = PREFIX
    samples: list[Sample] = field(default_factory=list)
    keys_removed: int | None = None

    def rps(self, target: str, pipeline: int, test: str) -> float | None:
        for s in self.samples:
            if (s.target, s.pipeline, s.test) == (target, pipeline, test):
                return s.rps
        return None

    def to_json(self) -> dict[str, Any]:
        base_name = next(iter(self.targets))
        rows = []
        for s in self.samples:
            base = self.rps(base_name, s.pipeline, s.test)
            ratio = None if not base else round(s.rps / base, 3)
            rows.append({**s.__dict__, f"ratio_vs_{base_name}": ratio})
        return {
            "targets": self.targets,
            "notes": self.notes,
            "key_prefix": self.prefix,
            "keys_removed": self.keys_removed,
            "results": rows,
        }


def parse_csv(text: str) -> dict[str, tuple[float, float | None]]:
    """redis-benchmark --csv output → test name (its first word, upper case) → (requests/s,
    p50 ms)."""
    found: dict[str, tuple[float, float | None]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2 or row[0] == "test":
            continue
        try:
            rps = float(row[1])
        except ValueError:
            continue
        p50: float | None = None
        if len(row) > 4:
            try:
                p50 = float(row[4])
            except ValueError:
                p50 = None
        found[row[0].split(" ")[0].upper()] = (rps, p50)
    return found


def new_prefix() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:8]}:"


def benchmark_argv(
    binary: str,
    address: Address,
    pipeline: int,
    command: Sequence[str],
    prefix: str,
    settings: BenchSettings,
    password: str | None,
) -> list[str]:
    argv = [binary, "-h", address.host, "-p", str(address.port)]
    argv += ["-n", str(settings.requests), "-c", str(settings.clients), "-P", str(pipeline)]
    argv += ["-r", str(settings.keyspace), "--csv"]
    if password:
        argv += ["-a", password]  # redis-benchmark has no other way; visible in ps meanwhile
    return argv + [word.format(p=prefix) for word in command]


def run_one(argv: Sequence[str], timeout: float) -> dict[str, tuple[float, float | None]]:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DrillError(f"redis-benchmark did not finish within {timeout:g} s") from None
    parsed = parse_csv(done.stdout)
    if done.returncode != 0 or not parsed:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DrillError(f"redis-benchmark failed (exit {done.returncode}): {' '.join(tail)}")
    return parsed


Endpoints = list[tuple[str, Address]]


def endpoints(topology: Topology, password: str | None) -> tuple[Endpoints, list[str]]:
    """(name, address) of what is measured, the baseline first; and notes on them."""
    first = topology.shards[0].name
    master = current_masters(topology, password).addresses[first]
    listen = topology.spec.proxy.listen
    notes = [f"master = the current master of {first}, directly (one shard, no proxy)"]
    mode = topology.spec.proxy.mode
    if mode == "steady":
        notes.append(f"nutcracker {listen} forwards through HAProxy: its figure includes that hop")
    if mode == "redkeeper":
        workers = topology.spec.proxy.redkeeper.workers
        notes.append(f"redkeeper proxy {listen}: {workers} worker process(es)")
        return [("master", master), ("redkeeper proxy", listen)], notes
    return [("master", master), ("nutcracker", listen)], notes


def bench(
    topology: Topology,
    password: str | None,
    prefix: str,
    *,
    settings: BenchSettings = BenchSettings(),
    log: Callable[[str], None] = lambda _m: None,
) -> BenchReport:
    """Run the matrix against the running stack of `topology`; keys under `prefix` (the
    caller removes them with `cleanup`, whatever happens)."""
    binary = find_binary("redis-benchmark")
    targets, notes = endpoints(topology, password)
    report = BenchReport({name: str(a) for name, a in targets}, notes, prefix)
    total = len(targets) * len(PIPELINES) * len(COMMANDS)
    done = 0
    for name, address in targets:
        for pipeline in PIPELINES:
            for test, command in COMMANDS:
                done += 1
                started = time.monotonic()
                argv = benchmark_argv(
                    binary, address, pipeline, command, prefix, settings, password
                )
                for found, (rps, p50) in run_one(argv, settings.timeout).items():
                    report.samples.append(Sample(name, pipeline, found, rps, p50))
                got = report.rps(name, pipeline, test)
                figure = f"{got:,.0f} ops/s" if got is not None else "no figure"
                log(
                    f"[{done}/{total}] {name} {address} -P {pipeline} {test}: {figure} "
                    f"({time.monotonic() - started:.1f} s)"
                )
    return report


def cleanup(topology: Topology, password: str | None, prefix: str) -> int:
    """Remove every key under `prefix` from every shard's current master; how many."""
    removed = 0
    for address in current_masters(topology, password).addresses.values():
        keys, _complete = workload.scan(address, password, match=f"{prefix}*")
        removed += workload.delete(address, password, keys)
    return removed


def bench_table(report: BenchReport) -> Table:
    out = Table(title="redis-benchmark ops/s", title_justify="left")
    names = list(report.targets)
    base = names[0]
    ratios = [f"{n}/{base}" for n in names[1:]]
    for column in ("test", "-P", *names, *ratios):
        out.add_column(column, justify="left" if column == "test" else "right")
    tests = list(dict.fromkeys(s.test for s in report.samples))
    for pipeline in PIPELINES:
        for test in tests:
            values = [report.rps(t, pipeline, test) for t in names]
            first = values[0]
            cells = [f"{v:,.0f}" if v is not None else "-" for v in values]
            shares = [f"{v / first:.2f}×" if first and v else "-" for v in values[1:]]
            out.add_row(test, str(pipeline), *cells, *shares)
        out.add_section()
    return out
