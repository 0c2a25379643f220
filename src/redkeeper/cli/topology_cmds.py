"""Commands on the topology file itself: init, validate, render."""

from __future__ import annotations

from pathlib import Path

import click

from redkeeper.cli.app import cli, console, load
from redkeeper.errors import Problem, TopologyError
from redkeeper.fsutil import atomic_write
from redkeeper.render import Layout, RenderedFile, render_all
from redkeeper.render.diff import ChangeKind, placeholder_password, secret_masks
from redkeeper.render.disk import write_rendered
from redkeeper.topology import default_text


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), default="redkeeper.yaml")
@click.option("--force", is_flag=True, help="Overwrite an existing file (a .bak is kept).")
def init(file: Path, force: bool) -> None:
    """Write the embedded default topology to FILE for editing."""
    if file.exists() and not force:
        raise TopologyError(
            [
                Problem(
                    str(file), "", "already exists", "pass --force to overwrite it (a .bak is kept)"
                )
            ]
        )
    atomic_write(file, default_text(), backup=True)
    console.print(f"wrote {file}; edit it, then: redkeeper validate {file}")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def validate(file: Path) -> None:
    """Check a topology file; report every problem at once (exit 78), each with its field and
    fix. Warnings (risky but valid settings) are printed on stderr; the exit status stays 0."""
    topology = load(file)
    spec = topology.spec
    replicas = sum(len(s.replicas) for s in spec.shards)
    warned = f" with {len(topology.warnings)} warning(s)" if topology.warnings else ""
    console.print(
        f"{file}: OK{warned} — {len(spec.shards)} shard(s), {replicas} replica(s), "
        f"{len(spec.sentinel.nodes)} Sentinel(s) (quorum {spec.sentinel.quorum}), "
        f"proxy {spec.proxy.listen} {spec.proxy.hash}/{spec.proxy.distribution}, "
        f"mode {spec.proxy.mode}"
    )


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory to write under, laid out like the hosts' / (copy it over / on the host).",
)
@click.option("--host", default=None, help="Only the files of this host (an address in FILE).")
@click.option("--dry-run", is_flag=True, help="Compare with OUT and validate, but write nothing.")
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="Print a unified diff of every file that changes (lines with the password masked).",
)
def render(file: Path, out: Path, host: str | None, dry_run: bool, show_diff: bool) -> None:
    """Render every config (redis, sentinel, nutcracker, haproxy, keepalived, systemd) under
    OUT, as laid out on the target hosts (OUT/etc/redkeeper/…, OUT/var/lib/redkeeper/…).

    Only files whose content differs are written (atomically, a .bak kept, nutcracker.yml
    checked by `nutcracker -t` and haproxy.cfg by `haproxy -c` when installed here).
    `--dry-run --diff` shows what would change and writes nothing. With several proxy hosts
    (`proxy.hosts`) and no --host, each host's files go under OUT/<host>/ (the proxy hosts'
    files share paths).
    """
    topology = load(file)
    if host is not None and host not in topology.hosts():
        raise TopologyError(
            [
                Problem(
                    str(file),
                    "--host",
                    f"no component runs on {host}",
                    f"use one of: {', '.join(topology.hosts())}",
                )
            ]
        )
    password = topology.password()
    vrrp = topology.vrrp_password()
    text = file.read_text()
    split = host is None and len(topology.proxy_hosts()) > 1
    targets: list[tuple[str | None, Path]] = (
        [(h, out / h) for h in topology.hosts()] if split else [(host, out)]
    )
    total = changed = added = unchanged = 0
    for target_host, root in targets:

        def rendered(secret: str | None, vrrp_secret: str | None) -> list[RenderedFile]:
            return render_all(
                topology,
                Layout.for_system(),
                password=secret,
                host=target_host,  # noqa: B023 (called inside this iteration only)
                topology_text=text,
                vrrp_password=vrrp_secret,
            )

        files = rendered(password, vrrp)
        masks = None
        if show_diff and (password or vrrp):
            placeholder = rendered(
                placeholder_password(password) if password else None,
                placeholder_password(vrrp)[:8] if vrrp else None,
            )
            masks = secret_masks(files, placeholder)
        report = write_rendered(
            files, root=root, dry_run=dry_run, require_validators=False, masks=masks
        )
        for change in report.changed:
            click.echo(f"  {change.kind.value:<8} {change.target}")
            if show_diff:
                click.echo(change.diff(), nl=False)
        for note in report.unvalidated:
            click.echo(f"  not validated: {note}")
        total += len(files)
        changed += len(report.changed)
        added += len(report.of(ChangeKind.ADDED))
        unchanged += len(report.of(ChangeKind.UNCHANGED))
    counts = f"{changed} changed ({added} added), {unchanged} unchanged"
    where = f"{out}/<host>/ ({len(targets)} hosts)" if split else str(out)
    if dry_run:
        click.echo(f"dry run, nothing written: {total} file(s) under {where} would be {counts}")
    else:
        click.echo(f"{total} file(s) rendered under {where}: {counts}")
