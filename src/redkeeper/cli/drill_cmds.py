"""Commands that exercise a stack: `drill` (failover drills with figures) and `bench`.

The drill and bench machinery is imported inside the commands: every `redkeeper`
invocation, the agent's included, loads this module. The plots (`--report`, `--figures`)
need the optional `report` extra (matplotlib); without it the drill refuses before it starts.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from redkeeper.cli.app import cli, config_option, console, err_console, load
from redkeeper.drills.scenarios import DrillError, DrillFailedError, describe_bars, select
from redkeeper.errors import StackError, UsageError
from redkeeper.topology import Topology

if TYPE_CHECKING:
    from redkeeper.drills.runner import DrillRun


def _log(message: str) -> None:
    err_console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(message)}", highlight=False)


@contextlib.contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the stack a drill started is stopped either way."""

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command()
@click.argument("scenarios", nargs=-1)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a self-contained HTML report (timeline plots) to this file "
    "(needs `pip install 'redkeeper[report]'`).",
)
@click.option(
    "--figures",
    "figures_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write each scenario's timeline plot as DIR/<scenario>.png "
    "(needs `pip install 'redkeeper[report]'`).",
)
@click.option("--repeat", type=click.IntRange(1, 50), default=1, help="Run the list N times.")
@click.option(
    "--lab",
    "on_lab",
    is_flag=True,
    help="Drills across hosts on the lab (`redkeeper lab`; needs root): the workload on the "
    "client host, through the virtual IP. Uses the running lab, or builds one (-c: its "
    "topology) and takes it down afterwards.",
)
@click.option(
    "--lab-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".redkeeper-lab"),
    show_default=True,
    help="With --lab: the lab's directory.",
)
@click.option(
    "--lab-prefix", default="rk", show_default=True, help="With --lab: its namespace prefix."
)
@click.option(
    "--fresh",
    is_flag=True,
    help="With --lab: a new lab for every scenario (one master per Redis host, the VIP on its "
    "preferred host); needs no lab running.",
)
@click.option("--list", "list_only", is_flag=True, help="Describe the scenarios and their bars.")
@click.option(
    "--connections",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Client connections of the write workload (one thread each).",
)
@click.option(
    "--rate",
    type=click.FloatRange(1.0, 2000.0),
    default=100.0,
    show_default=True,
    help="Writes/s per connection.",
)
def drill(
    scenarios: tuple[str, ...],
    config: Path | None,
    as_json: bool,
    report_path: Path | None,
    figures_dir: Path | None,
    repeat: int,
    on_lab: bool,
    lab_dir: Path,
    lab_prefix: str,
    fresh: bool,
    list_only: bool,
    connections: int,
    rate: float,
) -> None:
    """Run failover drills under a write workload and report the figures.

    Starts its own stack (the embedded default, or -c FILE) and stops it afterwards; when the
    stack of -c FILE is already running, uses it and restores it between scenarios. Writes
    keys under drill:* and deletes them after each scenario. Exit status 1 when a scenario
    misses one of its bars. With --lab: the scenarios across hosts (`--lab --list`).
    """
    if fresh and not on_lab:
        raise UsageError("--fresh is an option of --lab (a new lab for every scenario)")
    if on_lab:
        _lab_drill(
            fresh,
            scenarios,
            config,
            as_json,
            report_path,
            figures_dir,
            repeat,
            list_only,
            lab_dir,
            lab_prefix,
            connections,
            rate,
        )
        return
    chosen = select(scenarios)
    if list_only:
        if as_json:
            listing = [
                {"name": s.name, "summary": s.summary, "bars": describe_bars(s.bars)}
                for s in chosen
            ]
            click.echo(json.dumps(listing, indent=2, ensure_ascii=False))
        else:
            for scenario in chosen:
                click.echo(scenario.describe() + "\n")
        return
    # Lazy (module docstring): the runner (and matplotlib) only when a drill runs.
    from redkeeper.drills import plots  # noqa: PLC0415
    from redkeeper.drills.runner import DrillRunner, RunnerSettings  # noqa: PLC0415
    from redkeeper.drills.workload import WorkloadSettings  # noqa: PLC0415

    if report_path is not None or figures_dir is not None:
        plots.require_matplotlib()  # before minutes of drills, not after
    topology = load(config)
    settings = RunnerSettings(workload=WorkloadSettings(connections=connections, rate=rate))
    with _interrupt_on_sigterm(), DrillRunner(topology, log=_log, settings=settings) as runner:
        run = runner.run(chosen, repeat)
    _finish(run, as_json, report_path, figures_dir)


def _finish(
    run: DrillRun, as_json: bool, report_path: Path | None, figures_dir: Path | None
) -> None:
    """Report a run (HTML, PNGs, JSON or the table) and raise for a failed one."""
    from redkeeper.drills import plots, report  # noqa: PLC0415

    if report_path is not None:
        from redkeeper.drills.html_report import write_html  # noqa: PLC0415

        write_html(run, report_path)
        _log(f"report written to {report_path}")
    if figures_dir is not None:
        pngs = plots.write_pngs([(r.record, r.figures.passed) for r in run.results], figures_dir)
        _log(f"{len(pngs)} plot(s) written to {figures_dir}")
    if as_json:
        click.echo(json.dumps(report.run_json(run), indent=2, ensure_ascii=False))
    else:
        report.print_run(run, console)
    if run.error:
        raise DrillError(run.error)
    failed = [r.figures.scenario for r in run.results if not r.figures.passed]
    if failed:
        raise DrillFailedError(f"{len(failed)} scenario run(s) missed a bar: {', '.join(failed)}")


def _lab_drill(
    fresh: bool,
    names: tuple[str, ...],
    config: Path | None,
    as_json: bool,
    report_path: Path | None,
    figures_dir: Path | None,
    repeat: int,
    list_only: bool,
    lab_dir: Path,
    prefix: str,
    connections: int,
    rate: float,
) -> None:
    """`drill --lab`: the scenarios of `redkeeper.lab.scenarios` on the lab."""
    from redkeeper.lab.scenarios import select as select_lab  # noqa: PLC0415

    chosen = select_lab(names)
    if list_only:
        if as_json:
            listing = [
                {"name": s.name, "summary": s.summary, "bars": s.bars_text()} for s in chosen
            ]
            click.echo(json.dumps(listing, indent=2, ensure_ascii=False))
        else:
            for scenario in chosen:
                click.echo(scenario.describe() + "\n")
        return
    from redkeeper.drills import plots  # noqa: PLC0415
    from redkeeper.lab.drill import LabDrillRunner, lab_settings  # noqa: PLC0415
    from redkeeper.lab.lab import Lab  # noqa: PLC0415
    from redkeeper.lab.net import require_root  # noqa: PLC0415

    require_root()
    if report_path is not None or figures_dir is not None:
        plots.require_matplotlib()
    settings = lab_settings(connections, rate)
    lab = Lab(lab_dir, prefix=prefix, log=_log)
    with (
        _interrupt_on_sigterm(),
        LabDrillRunner(
            lab, topology_file=config, log=_log, settings=settings, fresh=fresh
        ) as runner,
    ):
        run = runner.run(chosen, repeat)
    _finish(run, as_json, report_path, figures_dir)


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--requests",
    type=click.IntRange(1000, 10_000_000),
    default=100_000,
    show_default=True,
    help="Requests per redis-benchmark run (one command, one -P, one endpoint).",
)
@click.option(
    "--clients",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="Parallel connections of redis-benchmark.",
)
def bench(config: Path | None, as_json: bool, requests: int, clients: int) -> None:
    """redis-benchmark (SET, GET, INCR, LPUSH, LPOP at -P 1 and -P 16) against shard 1's
    master directly and through the proxy, with ratios; a line per run as it goes.

    Needs a healthy stack: it refuses an unhealthy one and never starts, stops or restarts
    a node of it. With no stack running from the state dir it starts one, says so, and
    stops it afterwards. Its keys (rkbench:<run>:*) are removed from every master after
    the run, also after a failure or Ctrl-C.
    """
    from redkeeper.drills.bench import BenchSettings, bench_table, cleanup, new_prefix  # noqa: PLC0415
    from redkeeper.drills.bench import bench as run_bench  # noqa: PLC0415

    topology = load(config)
    settings = BenchSettings(requests=requests, clients=clients)
    prefix = new_prefix()
    with _interrupt_on_sigterm(), _bench_stack(topology) as password:
        _log(f"keys under {prefix}* (removed afterwards)")
        try:
            result = run_bench(topology, password, prefix, settings=settings, log=_log)
        finally:
            removed = cleanup(topology, password, prefix)
            _log(f"removed {removed:,} benchmark key(s) {prefix}* from the masters")
        result.keys_removed = removed
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    console.print(bench_table(result))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


@contextlib.contextmanager
def _bench_stack(topology: Topology) -> Iterator[str | None]:
    """The password of the stack to measure: the running one if healthy (else StackError),
    or one started here, announced, and stopped afterwards."""
    from redkeeper.stack import LocalStack  # noqa: PLC0415
    from redkeeper.stack.status import collect  # noqa: PLC0415

    password = topology.password()
    stack = LocalStack(topology, log=_log)
    running = stack.running_records()
    if running:
        report = collect(topology, password, any(r.name == "agent" for r in running), True)
        if report.problems:
            raise StackError(
                f"the stack of {stack.state_dir} is not healthy: {report.problems[0]} "
                "(fix: `redkeeper status`, then `redkeeper start NODE`; bench starts or "
                "stops nothing in a running stack)"
            )
        _log(f"benchmarking the running stack of {stack.state_dir}")
        yield password
        return
    _log(f"no stack running from {stack.state_dir}: starting one for the benchmark")
    stack.up()
    try:
        yield password
    finally:
        _log("stopping the stack the benchmark started")
        stack.down()
