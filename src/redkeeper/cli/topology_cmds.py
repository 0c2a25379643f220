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
    """Render every config (redis, sentinel, nutcracker, haproxy, systemd) under OUT, as laid
    out on the target hosts (OUT/etc/redkeeper/…, OUT/var/lib/redkeeper/…).

    Only files whose content differs are written (atomically, a .bak kept, nutcracker.yml
    checked by `nutcracker -t` and haproxy.cfg by `haproxy -c` when installed here).
    `--dry-run --diff` shows what would change and writes nothing.
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
    text = file.read_text()

    def rendered(secret: str | None) -> list[RenderedFile]:
        return render_all(
            topology, Layout.for_system(), password=secret, host=host, topology_text=text
        )

    files = rendered(password)
    masks = None
    if show_diff and password:
        masks = secret_masks(files, rendered(placeholder_password(password)))
    report = write_rendered(files, root=out, dry_run=dry_run, require_validators=False, masks=masks)
    for change in report.changed:
        click.echo(f"  {change.kind.value:<8} {change.target}")
        if show_diff:
            click.echo(change.diff(), nl=False)
    for note in report.unvalidated:
        click.echo(f"  not validated: {note}")
    counts = (
        f"{len(report.changed)} changed ({len(report.of(ChangeKind.ADDED))} added), "
        f"{len(report.of(ChangeKind.UNCHANGED))} unchanged"
    )
    if dry_run:
        click.echo(f"dry run, nothing written: {len(files)} file(s) under {out} would be {counts}")
    else:
        click.echo(f"{len(files)} file(s) rendered under {out}: {counts}")
