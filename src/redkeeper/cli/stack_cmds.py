"""Commands that run the local stack: up, down, status, logs.

`up` turns SIGINT/SIGTERM into a flag the stack checks between steps (`LocalStack.cancel`),
so an interruption never falls between starting a process and recording it; whatever `up`
started is stopped again before it exits. In the foreground it also watches its stack: when
`down` (from another terminal) took it away, it says so and exits.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click
from rich.markup import escape

from redkeeper.cli.app import cli, config_option, console, err_console, load
from redkeeper.cli.status_view import print_status
from redkeeper.errors import ConfigError, StackError, UsageError
from redkeeper.stack import LocalStack, collect_status
from redkeeper.stack.local import StackInterruptedError
from redkeeper.topology import DEFAULT_SOURCE, Topology

WATCH_PERIOD = 0.5  # foreground `up`: how often it checks its stack is still there


def _log(message: str) -> None:
    err_console.print(
        f"[dim]{time.strftime('%Y-%m-%d %H:%M:%S')}[/] {escape(message)}", highlight=False
    )


def _password_or_none(stack: LocalStack) -> str | None:
    try:
        return stack.topology.password()
    except ConfigError:
        return None


def _with_config(topology: Topology) -> str:
    return "" if topology.source == DEFAULT_SOURCE else f" -c {topology.source}"


@contextlib.contextmanager
def _interrupts_set(flag: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `flag` instead of raising wherever the code happens to be."""

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        flag.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
@config_option
@click.option("--detach", is_flag=True, help="Return once ready; stop later with `down`.")
def up(file: Path | None, config: Path | None, detach: bool) -> None:
    """Start the whole stack on loopback (the embedded default without FILE) and wait until
    it is ready. In the foreground, Ctrl-C stops everything; so does an interruption at any
    point of the start."""
    topology = load(file or config)
    stop = threading.Event()
    with _interrupts_set(stop):
        stack = LocalStack(topology, log=_log, cancel=stop)
        stack.up()
        if not stop.is_set():
            _show_ready(stack)
        if detach and not stop.is_set():
            console.print(f"detached; stop with: redkeeper down{_with_config(topology)}")
            return
        if not stop.is_set():
            console.print("running in the foreground; Ctrl-C stops everything")
            gone = _watch(stack, stop)
            if gone is not None:
                _log(f"{gone}; exiting")
                return
        _log("stopping")
        started = time.monotonic()
        stack.down()
        _log(f"stopped in {time.monotonic() - started:.1f} s")
    if detach:
        raise StackInterruptedError("interrupted; everything `up` started is stopped again")


def _show_ready(stack: LocalStack) -> None:
    topology = stack.topology
    listen = topology.spec.proxy.listen
    print_status(collect_status(topology, _password_or_none(stack), stack.with_agent), console)
    console.print(
        f"\nendpoint: [bold]redis-cli -h {listen.host} -p {listen.port}[/]  "
        f"(state and logs: {stack.state_dir})",
        highlight=False,
    )


def _watch(stack: LocalStack, stop: threading.Event) -> str | None:
    """Until `stop`: None. If the stack goes away first: why."""
    while not stop.wait(WATCH_PERIOD):
        stack.reap()
        gone = stack.gone()
        if gone is not None:
            stack.reap()
            return gone
    return None


@cli.command()
@config_option
def down(config: Path | None) -> None:
    """Stop every process `up` (or `start`) started, and only those; remember Sentinel's
    current masters for the next `up`."""
    topology = load(config)
    stack = LocalStack(topology, log=_log)
    started = time.monotonic()
    stopped = stack.down()
    if not stopped:
        console.print(f"nothing running from {stack.state_dir}")
        return
    console.print(f"stopped {len(stopped)} process(es) in {time.monotonic() - started:.1f} s")


NOTHING_RUNNING = StackError.exit_code


@cli.command(
    epilog=f"\b\nExit status: 0 healthy; 1 problems (each listed); {NOTHING_RUNNING} nothing "
    "running (no component of the topology answers)."
)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config: Path | None, as_json: bool) -> None:
    """Each shard's nodes (and whether it takes writes), each Sentinel's view, the proxy,
    the agent. Exit 0 only when healthy."""
    topology = load(config)
    stack = LocalStack(topology)
    running = stack.running_records()
    expect_agent = any(r.name == "agent" for r in running)
    report = collect_status(topology, _password_or_none(stack), expect_agent, bool(running))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif not report.running:
        console.print(
            f"nothing running from {stack.state_dir}: no Redis node, Sentinel or proxy of "
            f"{topology.source} answers (fix: `redkeeper up{_with_config(topology)}`)",
            highlight=False,
        )
    else:
        print_status(report, console)
    if not report.running:
        raise SystemExit(NOTHING_RUNNING)
    if not report.healthy:
        raise SystemExit(1)


@cli.command()
@config_option
@click.argument("names", nargs=-1)
@click.option(
    "-n", "--lines", type=click.IntRange(min=1), default=20, show_default=True,
    help="Lines per process.",
)  # fmt: skip
def logs(config: Path | None, names: tuple[str, ...], lines: int) -> None:
    """Show the last lines of each process's log (or of NAMES: shard1-1, sentinel-2, agent,
    nutcracker, haproxy). Lines are printed as they are: never wrapped or cut."""
    topology = load(config)
    stack = LocalStack(topology)
    found = {path.stem: path for path in sorted(stack.state_dir.glob("*/*.log"))}
    valid = list(dict.fromkeys([*stack.process_names(), *found]))
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UsageError(
            f"no process named {', '.join(map(repr, unknown))}; valid names: {', '.join(valid)}"
        )
    if not found:
        raise StackError(f"no logs under {stack.state_dir} (fix: run `redkeeper up` first)")
    for name in names or tuple(found):
        path = found.get(name)
        if path is None:
            click.echo(f"==> {name}: no log yet (it never ran from {stack.state_dir}) <==")
            continue
        if console.is_terminal:
            console.rule(f"{name} ({path})")
        else:
            click.echo(f"==> {name} ({path}) <==")
        for line in path.read_text(errors="replace").splitlines()[-lines:]:
            click.echo(line)
