"""Data commands: locate (where a key lives), load (test data through the proxy), check (audit)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from redkeeper.cli.app import address_column, cli, config_option, console, err_console, load
from redkeeper.data import (
    CheckReport,
    DataError,
    check_data,
    current_masters,
    load_keys,
    ring_for,
    shard_names,
)
from redkeeper.data.check import Defects
from redkeeper.errors import ConfigError, SentinelError
from redkeeper.model import key_bytes, show_key

SHOWN = 20
Start = Callable[[str, int], None]


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def progress_bars(quiet: bool) -> Iterator[tuple[Start, Callable[[int], None]]]:
    """(start(label, total), advance(n)) driving a rich bar on stderr, off when not a TTY."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=True,
    )
    current: list[TaskID] = []

    def start(label: str, total: int) -> None:
        current.append(bar.add_task(label, total=total))

    def advance(count: int) -> None:
        if current:
            bar.advance(current[-1], count)

    with bar:
        yield start, advance


# --------------------------------------------------------------------------- locate
def _key_arguments(keys: tuple[str, ...], as_hex: bool) -> list[bytes]:
    """Each KEY's exact bytes: the argument's own bytes (any, not only UTF-8), or hex."""
    if not as_hex:
        return [key_bytes(k) for k in keys]
    found = []
    for key in keys:
        try:
            found.append(bytes.fromhex(key))
        except ValueError:
            raise click.BadParameter(
                f"{show_key(key)!r} is not hex (two digits a byte, e.g. ff00 for b'\\xff\\x00')",
                param_hint="KEY",
            ) from None
    return found


@cli.command()
@config_option
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--hex", "as_hex", is_flag=True,
    help="Each KEY is given in hex (for keys a shell cannot pass, e.g. with a NUL byte).",
)  # fmt: skip
def locate(config: Path | None, keys: tuple[str, ...], as_json: bool, as_hex: bool) -> None:
    """Where each KEY lives: shard, ring index, key hash, ring point and the shard's master.

    A KEY is taken byte for byte, whatever its encoding; non-printable bytes are shown
    escaped (\\xff), and --json adds each key's exact bytes in hex."""
    raw_keys = _key_arguments(keys, as_hex)
    topology = load(config)
    ring = ring_for(topology)
    masters: dict[str, str] = {}
    unknown: str | None = None
    try:
        found = current_masters(topology, topology.password())
        masters = {name: str(address) for name, address in found.addresses.items()}
    except (SentinelError, ConfigError) as exc:
        unknown = str(exc).splitlines()[0]
    rows = []
    for key in raw_keys:
        placement = ring.locate(key)
        rows.append(
            {
                "key": show_key(key),
                "key_hex": key.hex(),
                "shard": placement.name,
                "index": placement.index,
                "hash": placement.key_hash,
                "point": placement.point,
                "master": masters.get(placement.name),
            }
        )
    proxy = topology.spec.proxy
    if as_json:
        report = {
            "hash": proxy.hash,
            "distribution": proxy.distribution,
            "hash_tag": proxy.hash_tag,
            "shards": shard_names(ring),
            "keys": rows,
            "master_unknown": unknown,
        }
        click.echo(json.dumps(report, indent=2))
    else:
        tag = f", hash_tag {proxy.hash_tag}" if proxy.hash_tag else ""
        masters_shown = [str(row["master"] or "unknown") for row in rows]
        table = Table(
            Column("key", overflow="fold"),
            "shard",
            "index",
            "hash",
            "point",
            address_column("master", masters_shown),
            title=f"{proxy.hash} / {proxy.distribution}{tag}",
            title_justify="left",
        )
        for row in rows:
            table.add_row(
                escape(str(row["key"])),
                str(row["shard"]),
                str(row["index"]),
                str(row["hash"]),
                "-" if row["point"] is None else str(row["point"]),
                str(row["master"] or "unknown"),
            )
        console.print(table)
    if unknown:
        _warn(f"placement only, master unknown: {unknown}")


# --------------------------------------------------------------------------- load
@cli.command("load")
@config_option
@click.option("--keys", "count", type=click.IntRange(min=0), required=True, help="How many.")
@click.option("--prefix", default="key:", show_default=True, help="Keys are PREFIX0..PREFIXN-1.")
@click.option(
    "--value-size", type=click.IntRange(0, 1 << 20), default=32, show_default=True, help="Bytes."
)
@click.option(
    "--batch", type=click.IntRange(1, 100_000), default=1000, show_default=True,
    help="Keys per pipelined round trip.",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
    help="Seconds allowed per round trip.",
)  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def load_cmd(
    config: Path | None,
    count: int,
    prefix: str,
    value_size: int,
    batch: int,
    timeout: float,
    quiet: bool,
) -> None:
    """Write N test keys through the proxy and record them for `check`."""
    topology = load(config)
    with progress_bars(quiet) as (start, advance):
        start("writing through the proxy", count)
        result = load_keys(
            topology,
            count=count,
            prefix=prefix,
            value_size=value_size,
            batch=batch,
            timeout=timeout,
            progress=advance,
        )
    console.print(
        f"wrote {result.written:,} of {count:,} keys ({prefix}0..{prefix}{max(count - 1, 0)}, "
        f"{value_size}-byte values) through {topology.spec.proxy.listen} in "
        f"{result.seconds:.1f} s: {result.keys_per_second:,.0f} keys/s",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"manifest: {result.manifest}", highlight=False, soft_wrap=True)
    if result.failed:
        for message in result.errors:
            err_console.print(f"  {escape(message)}", highlight=False, soft_wrap=True)
        raise DataError(
            f"{result.failed:,} of {count:,} keys were not written (errors above; fix: check "
            "`redkeeper status`, then run `redkeeper load` again)"
        )


# --------------------------------------------------------------------------- check
def _entry(item: Any) -> str:
    if isinstance(item, str):
        return item
    if "found_on" in item:
        return f"{item['key']}  on {', '.join(item['found_on'])}, belongs on {item['expected']}"
    if "shards" in item:
        return f"{item['key']}  on {', '.join(item['shards'])}"
    return f"{item['key']}  {item['error']}"


def _show(label: str, defects: Defects) -> None:
    if defects.count == 0:
        return
    more = f" (first {SHOWN})" if defects.count > SHOWN else ""
    console.print(f"[red]{label}: {defects.count:,}[/]{more}", highlight=False, soft_wrap=True)
    for item in defects.items[:SHOWN]:
        console.print(f"  {escape(_entry(item))}", highlight=False, soft_wrap=True)


def _rate(keys: int, seconds: float) -> str:
    return f"{seconds:.1f} s, {keys / seconds:,.0f} keys/s" if seconds > 0 else "0 s"


def print_check(report: CheckReport) -> None:
    manifest, proxy, scan = report.manifest, report.proxy, report.scan
    if manifest is not None and proxy is not None:
        console.print(
            f"manifest: {manifest.count:,} keys {manifest.prefix}0.."
            f"{manifest.prefix}{max(manifest.count - 1, 0)}, {manifest.value_size}-byte values, "
            f"written {manifest.written_at}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"through the proxy: {proxy.checked:,} read ({_rate(proxy.checked, proxy.seconds)}): "
            f"{proxy.unreadable.count:,} unreadable, {proxy.wrong_value.count:,} wrong value, "
            f"{proxy.errors.count:,} errors",
            highlight=False,
            soft_wrap=True,
        )
    scanned = sum(scan.scanned.values())
    console.print(
        "masters (Sentinel): "
        + ", ".join(f"{n} {a} ({scan.keys[n]:,} keys)" for n, a in scan.masters.items()),
        highlight=False,
        soft_wrap=True,
    )
    missing = scan.findings.missing
    console.print(
        f"shard scan: {scanned:,} keys ({_rate(scanned, scan.seconds)}): "
        f"{scan.findings.wrong_shard.count:,} wrong-shard, "
        f"{scan.findings.duplicated.count:,} duplicated, "
        + (f"{missing.count:,} missing" if missing is not None else "missing not checked"),
        highlight=False,
        soft_wrap=True,
    )
    for label, defects in report.categories().items():
        _show(label.replace("_", "-"), defects)
    if report.defects == 0:
        console.print("[green]clean[/]")


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (all keys).")
@click.option(
    "--batch", type=click.IntRange(1, 100_000), default=5000, show_default=True,
    help="Keys per pipelined round trip through the proxy.",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
    help="Seconds allowed per round trip.",
)  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def check(config: Path | None, as_json: bool, batch: int, timeout: float, quiet: bool) -> None:
    """Verify the loaded keys through the proxy and that every key on every master is on the
    shard the ring assigns it. Exit 0 only when clean."""
    topology = load(config)
    with progress_bars(quiet or as_json) as (start, advance):
        report = check_data(
            topology, batch=batch, timeout=timeout, progress=advance, on_total=start
        )
    for warning in report.warnings:
        _warn(warning)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_check(report)
    if report.defects:
        raise DataError(
            f"check found defects: {report.summary()} (fix: see the keys in the report; "
            "`redkeeper locate KEY` shows where a key belongs)"
        )
