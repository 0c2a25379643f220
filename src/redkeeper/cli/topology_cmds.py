"""Commands on the topology file itself: init, validate, render."""

from __future__ import annotations

import os
from pathlib import Path

import click

from redkeeper.cli.app import cli, console, load
from redkeeper.errors import Problem, TopologyError
from redkeeper.fsutil import atomic_write
from redkeeper.render import Layout, render_all
from redkeeper.render.files import SECRET_MODE
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
def render(file: Path, out: Path, host: str | None) -> None:
    """Render every config (redis, sentinel, nutcracker, systemd) under OUT, as laid out on
    the target hosts (OUT/etc/redkeeper/…, OUT/var/lib/redkeeper/…)."""
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
    files = render_all(
        topology,
        Layout.for_system(),
        password=topology.password(),
        host=host,
        topology_text=file.read_text(),
    )
    written = 0
    for rendered in files:
        target = out / rendered.path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if atomic_write(target, rendered.text, mode=rendered.mode, backup=True):
            written += 1
        if rendered.mode == SECRET_MODE:
            os.chmod(target, SECRET_MODE)
        console.print(f"  {target}", highlight=False)
    console.print(f"{len(files)} file(s) rendered, {written} changed, under {out}")
