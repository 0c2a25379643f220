"""Commands that run the local stack: up, down, status, logs."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import click
from rich.table import Table

from redkeeper.cli.app import cli, config_option, console, err_console, load
from redkeeper.errors import ConfigError, StackError
from redkeeper.proxy.haproxy.report import HAProxyStatus
from redkeeper.stack import LocalStack, collect_status
from redkeeper.stack.status import StackStatus


def _log(message: str) -> None:
    err_console.print(f"[dim]{time.strftime('%Y-%m-%d %H:%M:%S')}[/] {message}", highlight=False)


def _mark(ok: bool | None, yes: str = "yes", no: str = "NO") -> str:
    if ok is None:
        return "-"
    return f"[green]{yes}[/]" if ok else f"[red]{no}[/]"


def print_status(status: StackStatus) -> None:
    table = Table(title="Redis shards", title_justify="left")
    for column in ("shard", "node", "address", "up", "role", "replicates", "link", "lag (B)"):
        table.add_column(column)
    for shard in status.shards:
        for node in shard.nodes:
            role = node.role or "-"
            if node.role == "master":
                role = f"[bold]{role}[/]"
            table.add_row(
                shard.name,
                node.name,
                node.address,
                _mark(node.up),
                role,
                node.master or "-",
                _mark(node.link_up, "up", "down"),
                "-" if node.lag_bytes is None else str(node.lag_bytes),
            )
    console.print(table)
    sentinels = Table(title="Sentinels", title_justify="left")
    sentinels.add_column("sentinel")
    sentinels.add_column("address")
    sentinels.add_column("up")
    for shard in status.shards:
        sentinels.add_column(f"{shard.name} master (epoch)")
    for s in status.sentinels:
        cells = [
            f"{s.masters[sh.name]} ({s.epochs[sh.name]})" if sh.name in s.masters else "-"
            for sh in status.shards
        ]
        sentinels.add_row(s.name, s.address, _mark(s.up), *cells)
    console.print(sentinels)
    proxy = status.proxy
    line = f"nutcracker {proxy.address}: {_mark(proxy.up, 'up', 'DOWN')}"
    if proxy.stats_up:
        line += f", client connections {proxy.curr_connections}"
        line += f", total {proxy.total_connections}"
    if status.agent is not None:
        line += f"; agent: {status.agent.verdict}"
        routes = status.agent.routes
        if isinstance(routes, dict) and routes:
            line += "; routes " + ", ".join(f"{k} → {v}" for k, v in sorted(routes.items()))
    console.print(line, highlight=False)
    if status.haproxy is not None:
        _print_haproxy(status.haproxy)
    if status.healthy:
        console.print("[green]healthy[/]")
    else:
        for problem in status.problems:
            console.print(f"[red]problem:[/] {problem}", highlight=False)


def _print_haproxy(haproxy: HAProxyStatus) -> None:
    if not haproxy.up:
        console.print(f"haproxy {haproxy.admin_socket}: [red]DOWN[/] ({haproxy.error})")
        return
    table = Table(title="HAProxy (steady mode)", title_justify="left")
    for column in ("shard", "frontend", "routes to", "state", "read frontend", "replicas read"):
        table.add_column(column)
    for shard in haproxy.shards:
        state = f"[green]{shard.state}[/]" if shard.state == "UP" else f"[red]{shard.state}[/]"
        table.add_row(
            shard.shard,
            shard.frontend,
            shard.route or "[red]nothing[/]",
            state,
            shard.read_frontend or "-",
            (", ".join(shard.readers) or "-") if shard.read_frontend else "-",
        )
    console.print(table)
    if haproxy.write_frontend is not None:
        writers = ", ".join(haproxy.writers) or "nothing"
        console.print(f"write frontend {haproxy.write_frontend} -> {writers}", highlight=False)


def _password_or_none(stack: LocalStack) -> str | None:
    try:
        return stack.topology.password()
    except ConfigError:
        return None


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
@config_option
@click.option("--detach", is_flag=True, help="Return once ready; stop later with `down`.")
def up(file: Path | None, config: Path | None, detach: bool) -> None:
    """Start the whole stack on loopback (the embedded default without FILE)."""
    topology = load(file or config)
    stack = LocalStack(topology, log=_log)
    stack.up()
    listen = topology.spec.proxy.listen
    print_status(collect_status(topology, _password_or_none(stack), stack.with_agent))
    console.print(
        f"\nendpoint: [bold]redis-cli -h {listen.host} -p {listen.port}[/]  "
        f"(state and logs: {stack.state_dir})",
        highlight=False,
    )
    if detach:
        console.print(
            "detached; stop with: redkeeper down"
            + (f" -c {file or config}" if file or config else "")
        )
        return
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    console.print("running in the foreground; Ctrl-C stops everything")
    while not stop.wait(0.5):
        pass
    _log("stopping")
    started = time.monotonic()
    stack.down()
    _log(f"stopped in {time.monotonic() - started:.1f} s")


@cli.command()
@config_option
def down(config: Path | None) -> None:
    """Stop the processes `up` recorded (and only those)."""
    topology = load(config)
    stack = LocalStack(topology, log=_log)
    started = time.monotonic()
    stopped = stack.down()
    if not stopped:
        console.print(f"nothing running from {stack.state_dir}")
        return
    console.print(f"stopped {len(stopped)} process(es) in {time.monotonic() - started:.1f} s")


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config: Path | None, as_json: bool) -> None:
    """Each shard's nodes, each Sentinel's view, the proxy. Exit 0 only when healthy."""
    topology = load(config)
    stack = LocalStack(topology)
    expect_agent = any(r.name == "agent" for r in stack.running_records())
    report = collect_status(topology, _password_or_none(stack), expect_agent)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_status(report)
    if not report.healthy:
        raise SystemExit(1)


@cli.command()
@config_option
@click.argument("names", nargs=-1)
@click.option("-n", "--lines", default=20, show_default=True, help="Lines per process.")
def logs(config: Path | None, names: tuple[str, ...], lines: int) -> None:
    """Show the last lines of each process's log (or of NAMES: shard1-1, sentinel-2, …)."""
    topology = load(config)
    stack = LocalStack(topology)
    logs_found = sorted(stack.state_dir.glob("*/*.log"))
    if not logs_found:
        raise StackError(f"no logs under {stack.state_dir} (fix: run `redkeeper up` first)")
    for path in logs_found:
        name = path.stem
        if names and name not in names:
            continue
        console.rule(f"{name} ({path})")
        text = path.read_text(errors="replace").splitlines()[-lines:]
        console.print("\n".join(text), highlight=False, markup=False)
