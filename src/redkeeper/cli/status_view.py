"""How `status` (and `up`) print a `StackStatus`: tables on any console, addresses never cut.

In a terminal the tables take its width, and an address column is as wide as its longest
address (folded, never truncated, if even that does not fit). Without a terminal the
console is unbounded (`app.make_console`): nothing wraps or is cut, so scripts can parse it.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from redkeeper.cli.app import address_column
from redkeeper.proxy.haproxy.report import HAProxyStatus
from redkeeper.stack.status import StackStatus


def _mark(ok: bool | None, yes: str = "yes", no: str = "NO") -> str:
    if ok is None:
        return "-"
    return f"[green]{yes}[/]" if ok else f"[red]{no}[/]"


def _table(title: str, columns: list[str | Column]) -> Table:
    return Table(*columns, title=title, title_justify="left")


def print_status(status: StackStatus, console: Console) -> None:
    nodes = [n for shard in status.shards for n in shard.nodes]
    table = _table(
        "Redis shards",
        [
            "shard",
            "node",
            address_column("address", [n.address for n in nodes]),
            "up",
            "role",
            address_column("replicates", [n.master or "-" for n in nodes]),
            "link",
            "lag (B)",
        ],
    )
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
    cells = {
        s.name: [
            f"{s.masters[sh.name]} ({s.epochs[sh.name]})" if sh.name in s.masters else "-"
            for sh in status.shards
        ]
        for s in status.sentinels
    }
    sentinels = _table(
        "Sentinels",
        [
            "sentinel",
            address_column("address", [s.address for s in status.sentinels]),
            "up",
            *(
                address_column(f"{sh.name} master (epoch)", [c[i] for c in cells.values()])
                for i, sh in enumerate(status.shards)
            ),
        ],
    )
    for s in status.sentinels:
        sentinels.add_row(s.name, s.address, _mark(s.up), *cells[s.name])
    console.print(sentinels)
    proxy = status.proxy
    native = proxy.mode == "redkeeper"
    what = "redkeeper proxy" if native else "nutcracker"
    line = f"{what} {proxy.address}: {_mark(proxy.up, 'up', 'DOWN')}"
    if proxy.stats_up:
        line += f", client connections {proxy.curr_connections}"
        if not native:
            line += f", total {proxy.total_connections}"
    if status.agent is not None:
        line += f"; {'routing' if native else 'agent'}: {status.agent.verdict}"
        routes = status.agent.routes
        if isinstance(routes, dict) and routes:
            line += "; routes " + ", ".join(f"{k} → {v}" for k, v in sorted(routes.items()))
    console.print(line, highlight=False)
    if status.proxy_hosts:
        _print_proxy_hosts(status, console)
    if status.haproxy is not None:
        _print_haproxy(status.haproxy, console)
    if status.healthy:
        console.print("[green]healthy[/]")
    else:
        for problem in status.problems:
            console.print(f"[red]problem:[/] {escape(problem)}", highlight=False)


def _print_proxy_hosts(status: StackStatus, console: Console) -> None:
    hosts = status.proxy_hosts
    shards = [s.name for s in status.shards]
    table = _table(
        "Proxy hosts",
        [
            address_column("host", [h.host for h in hosts]),
            address_column("/healthz", [h.healthz for h in hosts]),
            "up",
            "routing",
            *(
                address_column(f"{name} →", [h.routes.get(name, "-") for h in hosts])
                for name in shards
            ),
            "clients",
        ],
    )
    for host in hosts:
        table.add_row(
            host.host,
            host.healthz,
            _mark(host.up),
            ("[green]ok[/] " if host.ok else "[red]NOT ok[/] ") + (host.verdict or "-")
            if host.up
            else "-",
            *(host.routes.get(name, "-") for name in shards),
            "-" if host.clients is None else str(host.clients),
        )
    console.print(table)


def _print_haproxy(haproxy: HAProxyStatus, console: Console) -> None:
    if not haproxy.up:
        console.print(f"haproxy {haproxy.admin_socket}: [red]DOWN[/] ({haproxy.error})")
        return
    table = _table(
        "HAProxy (steady mode)",
        [
            "shard",
            address_column("frontend", [s.frontend for s in haproxy.shards]),
            address_column("routes to", [s.route or "nothing" for s in haproxy.shards]),
            "state",
            address_column("read frontend", [s.read_frontend or "-" for s in haproxy.shards]),
            Column("replicas read", overflow="fold"),
        ],
    )
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
