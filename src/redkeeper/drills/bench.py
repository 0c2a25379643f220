"""`redkeeper bench`: redis-benchmark against a master directly and through the proxy.

Owns the benchmark matrix and its parsing: a fixed set of commands (`COMMANDS`) at -P 1 and
-P 16, run by Debian's redis-benchmark (redis-tools) against shard 1's current master and the
nutcracker pool, in one run, each run bounded by a timeout; ops/s are printed with the ratio to
the direct master. The redkeeper endpoint is nutcracker itself in restart mode, so it is named,
not run twice. Keys are spread with -r (redis-benchmark's own key names: key:*, counter:*,
mylist).
"""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from redkeeper.data import current_masters
from redkeeper.drills.scenarios import DrillError
from redkeeper.model import Address
from redkeeper.process import find_binary
from redkeeper.topology import Topology

COMMANDS = ("set", "get", "incr", "lpush", "lpop")
PIPELINES = (1, 16)


@dataclass(frozen=True)
class BenchSettings:
    requests: int = 100_000
    clients: int = 50
    keyspace: int = 100_000
    timeout: float = 180.0  # one redis-benchmark run (every command at one -P)


@dataclass(frozen=True)
class Sample:
    target: str
    pipeline: int
    test: str
    rps: float
    p50_ms: float | None


@dataclass
class BenchReport:
    targets: dict[str, str]  # name -> address
    notes: list[str]
    samples: list[Sample] = field(default_factory=list)

    def rps(self, target: str, pipeline: int, test: str) -> float | None:
        for s in self.samples:
            if (s.target, s.pipeline, s.test) == (target, pipeline, test):
                return s.rps
        return None

    def to_json(self) -> dict[str, Any]:
        rows = []
        for s in self.samples:
            base = self.rps("master", s.pipeline, s.test)
            ratio = None if not base else round(s.rps / base, 3)
            rows.append({**s.__dict__, "ratio_vs_master": ratio})
        return {"targets": self.targets, "notes": self.notes, "results": rows}


def parse_csv(text: str) -> dict[str, tuple[float, float | None]]:
    """redis-benchmark --csv output → test name (upper case) → (requests/s, p50 ms)."""
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


def benchmark_argv(
    binary: str, address: Address, pipeline: int, settings: BenchSettings, password: str | None
) -> list[str]:
    argv = [binary, "-h", address.host, "-p", str(address.port), "-t", ",".join(COMMANDS)]
    argv += ["-n", str(settings.requests), "-c", str(settings.clients), "-P", str(pipeline)]
    argv += ["-r", str(settings.keyspace), "--csv"]
    if password:
        argv += ["-a", password]  # redis-benchmark has no other way; visible in ps meanwhile
    return argv


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


def bench(
    topology: Topology,
    password: str | None,
    *,
    settings: BenchSettings = BenchSettings(),
    log: Callable[[str], None] = lambda _m: None,
) -> BenchReport:
    """Run the matrix against a running stack of `topology`."""
    binary = find_binary("redis-benchmark")
    first = topology.shards[0].name
    master = current_masters(topology, password).addresses[first]
    listen = topology.spec.proxy.listen
    targets = {"master": master, "nutcracker": listen}
    notes = [f"master = the current master of {first}, directly (one shard, no proxy)"]
    if topology.spec.proxy.mode == "restart":
        notes.append(
            f"redkeeper endpoint = nutcracker {listen} in restart mode (same process: not run "
            "twice)"
        )
    else:
        notes.append(
            f"steady mode: nutcracker {listen} is the redkeeper endpoint and forwards through "
            "HAProxy, so its figure includes that hop"
        )
    report = BenchReport({k: str(v) for k, v in targets.items()}, notes)
    for name, address in targets.items():
        for pipeline in PIPELINES:
            log(f"redis-benchmark {name} {address} -P {pipeline}")
            argv = benchmark_argv(binary, address, pipeline, settings, password)
            for test, (rps, p50) in run_one(argv, settings.timeout).items():
                report.samples.append(Sample(name, pipeline, test, rps, p50))
    return report


def bench_table(report: BenchReport) -> Table:
    out = Table(title="redis-benchmark ops/s", title_justify="left")
    names = list(report.targets)
    for column in ("test", "-P", *names, f"{names[-1]}/{names[0]}"):
        out.add_column(column, justify="left" if column == "test" else "right")
    tests = list(dict.fromkeys(s.test for s in report.samples))
    for pipeline in PIPELINES:
        for test in tests:
            values = [report.rps(t, pipeline, test) for t in report.targets]
            base = values[0]
            last = values[-1]
            ratio = f"{last / base:.2f}×" if base and last else "-"
            cells = [f"{v:,.0f}" if v is not None else "-" for v in values]
            out.add_row(test, str(pipeline), *cells, ratio)
        out.add_section()
    return out
