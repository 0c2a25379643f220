"""`redkeeper lab …`: the multi-host lab (network-namespace hosts on a private bridge).

`lab up` turns SIGINT/SIGTERM into a flag the lab checks between steps, so an interruption
never falls between starting a process and recording it; whatever `up` built is taken
down again before it exits (exit 130). The lab's machinery is imported inside the commands
(every `redkeeper` invocation loads this module).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from redkeeper.cli.app import cli, console, err_console

if TYPE_CHECKING:
    from redkeeper.lab.lab import Lab


def _log(message: str) -> None:
    err_console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(message)}", highlight=False)


def _dir_option(func: Any) -> Any:
    return click.option(
        "--dir",
        "lab_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=Path(".redkeeper-lab"),
        show_default=True,
        help="The lab's state, hosts' files and logs.",
    )(func)


def _prefix_option(func: Any) -> Any:
    return click.option(
        "--prefix",
        default="rk",
        show_default=True,
        help="Namespace names: <prefix>-r1, <prefix>-p1, <prefix>-sw… (two labs need two).",
    )(func)


def _lab(lab_dir: Path, prefix: str, cancel: threading.Event | None = None) -> Lab:
    from redkeeper.lab.lab import Lab  # noqa: PLC0415

    return Lab(lab_dir, prefix=prefix, log=_log, cancel=cancel)


@contextlib.contextmanager
def _interrupts_set(flag: threading.Event) -> Iterator[None]:
    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        flag.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.group()
def lab() -> None:
    """The whole system across hosts: network namespaces on a private bridge (in a
    namespace of its own), each host running exactly what `render --host` wrote for it.
    Needs root. Default lab: r1-r3 (Redis + Sentinel), p1-p2 (proxy + keepalived, the
    virtual IP), client. See docs/lab.md."""


@lab.command("up")
@click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Topology file (default: the embedded lab topology).",
)
@_dir_option
@_prefix_option
def lab_up(config: Path | None, lab_dir: Path, prefix: str) -> None:
    """Build the lab and wait until it is ready; Ctrl-C at any point takes it down again."""
    stop = threading.Event()
    started = time.monotonic()
    with _interrupts_set(stop):
        lab_ = _lab(lab_dir, prefix, stop)
        state = lab_.up(config)
    _log(f"lab ready in {time.monotonic() - started:.1f} s")
    _print_status(lab_, _collect(lab_, full=False))
    topology = lab_.topology(state)
    listen = topology.spec.proxy.listen
    console.print(
        f"endpoint: redkeeper lab exec client -- redis-cli -h {listen.host} -p {listen.port}\n"
        "status:   redkeeper lab exec client -- redkeeper status -c /etc/redkeeper/topology.yaml",
        highlight=False,
    )


@lab.command("down")
@_dir_option
@_prefix_option
def lab_down(lab_dir: Path, prefix: str) -> None:
    """Stop every process of the lab (by PID and process group), delete its namespaces (the
    VIP goes with them) and its pid files. Also cleans up after a crashed `up`."""
    started = time.monotonic()
    stopped = _lab(lab_dir, prefix).down()
    console.print(f"lab down: {stopped} process(es) stopped in {time.monotonic() - started:.1f} s")


def _collect(lab_: Lab, full: bool = True) -> dict[str, Any]:
    from redkeeper.lab.status import collect  # noqa: PLC0415

    return collect(lab_, full=full)


@lab.command("status")
@_dir_option
@_prefix_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lab_status(lab_dir: Path, prefix: str, as_json: bool) -> None:
    """Hosts (addresses, roles, processes, link), who holds the VIP, the partition, and the
    stack's health seen from the client host. Exit 0 healthy, 1 problems, 4 no lab."""
    lab_ = _lab(lab_dir, prefix)
    report = _collect(lab_)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_status(lab_, report)
    if not report["healthy"]:
        raise SystemExit(1)


def _print_status(lab_: Lab, report: dict[str, Any]) -> None:
    table = Table(
        "host",
        "namespace",
        "address",
        "roles",
        "link",
        "processes",
        title="Lab hosts",
        title_justify="left",
    )
    for name, host in report["hosts"].items():
        procs = host["processes"]
        alive = sum(1 for p in procs.values() if p["alive"])
        dead = [u for u, p in procs.items() if not p["alive"]]
        cell = f"{alive}/{len(procs)} up" + (f" ([red]down: {', '.join(dead)}[/])" if dead else "")
        table.add_row(
            name,
            host["namespace"],
            host["address"],
            ", ".join(host["roles"]) or "-",
            "up" if host["link_up"] else "[red]DOWN[/]",
            cell,
        )
    console.print(table)
    holders = ", ".join(report["vip_holders"]) or "nobody"
    console.print(f"VIP {report['vip']}: held by {holders}", highlight=False)
    if report["partition"]:
        groups = " | ".join(",".join(g) for g in report["partition"])
        console.print(f"partition: {groups}", highlight=False)
    for problem in report.get("problems", []):
        console.print(f"[red]problem:[/] {escape(problem)}", highlight=False)
    if report.get("problems") == [] and report["healthy"]:
        console.print("[green]healthy[/]")


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@_dir_option
@_prefix_option
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def lab_exec(lab_dir: Path, prefix: str, host: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside HOST (its network, its rendered files at /etc/redkeeper…):
    `redkeeper lab exec client -- redis-cli -h 10.213.0.100 -p 22121 ping`."""
    words = list(command[1:] if command[0] == "--" else command)
    if not words:
        raise click.UsageError("give a command after HOST, e.g. -- redis-cli ping")
    argv = _lab(lab_dir, prefix).exec_argv(host, words)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


@lab.command("kill")
@_dir_option
@_prefix_option
@click.argument("host")
def lab_kill(lab_dir: Path, prefix: str, host: str) -> None:
    """SIGKILL every process of HOST (a crash: keepalived leaves the VIP on its interface;
    `lab start HOST` removes it and starts the host's units again)."""
    count = _lab(lab_dir, prefix).kill_host(host)
    console.print(f"{host}: {count} process(es) killed" if count else f"{host}: nothing ran")


@lab.command("start")
@_dir_option
@_prefix_option
@click.argument("host")
def lab_start(lab_dir: Path, prefix: str, host: str) -> None:
    """Start every unit of HOST that does not run (ExecStartPre first)."""
    started = _lab(lab_dir, prefix).start_host(host)
    console.print(f"{host}: started {', '.join(started)}" if started else f"{host}: all running")


@lab.command("partition")
@_dir_option
@_prefix_option
@click.argument("groups", nargs=-1, required=True)
def lab_partition(lab_dir: Path, prefix: str, groups: tuple[str, ...]) -> None:
    """Cut the network between GROUPS (comma-separated hosts: `partition r1,p1 r2,r3,p2`);
    hosts in no group still reach everyone. One group: cut off from all others. Packets are
    dropped by iptables inside each host; `lab heal` removes it."""
    parsed = [[h for h in g.split(",") if h] for g in groups]
    _lab(lab_dir, prefix).partition(parsed)
    console.print("partition: " + " | ".join(",".join(g) for g in parsed))


@lab.command("heal")
@_dir_option
@_prefix_option
def lab_heal(lab_dir: Path, prefix: str) -> None:
    """Remove every partition and bring every cut link up."""
    _lab(lab_dir, prefix).heal()
    console.print("healed")


@lab.command("link")
@_dir_option
@_prefix_option
@click.argument("host")
@click.argument("state", type=click.Choice(["up", "down"]))
def lab_link(lab_dir: Path, prefix: str, host: str, state: str) -> None:
    """Take HOST's link down (a cut cable: at the bridge and inside the host) or up."""
    _lab(lab_dir, prefix).set_link(host, state == "up")
    console.print(f"{host}: link {state}")
