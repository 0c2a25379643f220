"""`redkeeper reconfig-hook` and `redkeeper apply-staged`: repointing nutcracker from outside
the agent (architecture §3 rule 7).

- `reconfig-hook` is a Sentinel `client-reconfig-script`: it repoints one named server of
  nutcracker.yml and restarts nutcracker with an argv command, or writes a staging file for
  the privileged watcher. Each Sentinel calls it once, concurrently: an exclusive flock
  serialises them and only the first one does any work. Exit status follows Sentinel's rules:
  0 done or nothing to do, 1 retry later (`RetryLaterError`), 2 give up (`HookRefusedError`).
- `apply-staged` runs the privileged watcher of the classic iwatch pattern.

The hook writes and restarts through the one apply sequence (`proxy.twemproxy.apply`): its
`restart-pending` marker makes a restart that failed (or was killed) be retried by
Sentinel's next call even though the file already holds the new address. `--restart-cmd`
takes every following word, up to a lone `--`, as the command's argv (never a shell string).
The watcher's work itself lives in `redkeeper.proxy.twemproxy.staging`; this module owns the
command lines and the hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import click

from redkeeper.cli.app import RESTART_OPT, ArgvTailCommand, cli, load, restart_cmd_option
from redkeeper.errors import (
    BinaryNotFoundError,
    ConfigError,
    HookRefusedError,
    NutcrackerConfigError,
    RedkeeperError,
    RetryLaterError,
    UsageError,
)
from redkeeper.fsutil import atomic_write, backup_path, exclusive_lock
from redkeeper.model import Address
from redkeeper.proxy.base import RestartResult
from redkeeper.proxy.strategy import Strategy, choose_strategy
from redkeeper.proxy.twemproxy import plan_repoint, repoint_file
from redkeeper.proxy.twemproxy.apply import install_and_restart
from redkeeper.proxy.twemproxy.config import checked_by_nutcracker
from redkeeper.proxy.twemproxy.restart import run_command
from redkeeper.proxy.twemproxy.staging import apply_staged_once, watch_staging
from redkeeper.topology import Topology


def log(message: str) -> None:
    """One human log line with a full date, on stderr."""
    click.echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", err=True)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise HookRefusedError(f"{path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise HookRefusedError(f"{path}: is not UTF-8 ({exc.reason})") from None


@contextlib.contextmanager
def sentinel_exit_codes() -> Iterator[None]:
    """Turn every error into Sentinel's two answers: 1 (retry) or 2 (give up)."""
    try:
        yield
    except (RetryLaterError, HookRefusedError):
        raise
    except (ConfigError, BinaryNotFoundError, UsageError) as exc:
        raise HookRefusedError(str(exc)) from exc
    except RedkeeperError as exc:  # ProcessError (nutcracker -t hung), ApplyError (write)
        raise RetryLaterError(str(exc)) from exc
    except OSError as exc:
        permanent = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT)
        cls = HookRefusedError if permanent else RetryLaterError
        where = f"{exc.filename}: " if exc.filename else ""
        raise cls(f"{where}{exc.strerror or exc}") from exc


# ---- reconfig-hook -----------------------------------------------------------------------


@contextlib.contextmanager
def rejected_is_retryable() -> Iterator[None]:
    """`nutcracker -t` rejecting a text redkeeper's own parser accepted (plan_repoint re-parsed
    it) most likely failed to resolve a listen host name right now: let Sentinel retry."""
    try:
        yield
    except NutcrackerConfigError as exc:
        raise RetryLaterError(
            f"{exc}\n(redkeeper's own parser accepts the new text: a transient failure such as "
            "DNS is likely; retry later)"
        ) from exc


def _target(to_ip: str, to_port: str) -> Address:
    host = to_ip.strip().removeprefix("[").removesuffix("]")
    if not host or not to_port.isdigit() or not 1 <= int(to_port) <= 65535:
        raise HookRefusedError(f"bad new master address {to_ip!r} {to_port!r}")
    return Address(host, int(to_port))


def _guard_inventory(topology: Topology, master: str, target: Address) -> None:
    inventory = topology.inventory()
    if master not in inventory:
        raise HookRefusedError(
            f"{master!r} is not a shard of {topology.source} "
            f"(shards: {', '.join(sorted(inventory))})"
        )
    if target not in inventory[master]:
        allowed = ", ".join(str(a) for a in sorted(inventory[master]))
        raise HookRefusedError(
            f"refusing to route {master} to {target}: not in its inventory in "
            f"{topology.source} ({allowed}); add it to the shard if it is really one of ours"
        )


def _strategy(
    topology: Topology | None, restart_cmd: tuple[str, ...] | None, staging: Path | None
) -> Strategy:
    if restart_cmd and staging:
        raise click.UsageError(f"give either {RESTART_OPT} or --staging, not both")
    if topology is None and not (restart_cmd or staging):
        raise click.UsageError(f"give {RESTART_OPT} ARGV... or --staging PATH (or -c TOPOLOGY)")
    strategy = choose_strategy(
        topology.spec.agent if topology is not None else None,
        restart_cmd=restart_cmd,
        staging=staging,
        base_dir=topology.base_dir if topology is not None else None,
        source=topology.source if topology is not None else "redkeeper reconfig-hook",
    )
    if strategy.kind == "managed" or (strategy.kind == "command" and not strategy.argv):
        assert topology is not None
        raise HookRefusedError(
            f"{topology.source}: agent.restart is {topology.spec.agent.restart!r}: the agent "
            f"repoints nutcracker itself (fix: give {RESTART_OPT} or --staging to use the hook)"
        )
    return strategy


def _hook_command(
    conf: Path,
    master: str,
    target: Address,
    argv: tuple[str, ...],
    restart_timeout: float,
    lock_timeout: float,
) -> str:
    """Repoint and restart through the one apply sequence (`proxy.twemproxy.apply`)."""

    def write() -> bool:
        # redkeeper's own checks first: what they refuse is permanent (unknown name, ...)
        if plan_repoint(_read_text(conf), {master: target}, source=str(conf)) is None:
            return False
        with rejected_is_retryable():
            return repoint_file(conf, {master: target}) is not None

    async def restart() -> RestartResult:
        return await run_command(argv, timeout=restart_timeout)

    outcome = asyncio.run(install_and_restart(conf, write, restart, lock_timeout=lock_timeout))
    result = outcome.restart
    if result is None:
        return f"{conf} already points there; nothing to do"
    if not result.ok:
        raise RetryLaterError(f"restart command failed: {result.output.strip()}")
    what = (
        f"{conf} repointed (previous kept in {backup_path(conf)})"
        if outcome.written
        else "already repointed, restart still pending"
    )
    return f"{what}; nutcracker restarted in {result.duration_ms:.0f} ms"


def _hook_staging(conf: Path, staging: Path, master: str, target: Address) -> str:
    base = staging if staging.exists() else conf
    planned = plan_repoint(_read_text(base), {master: target}, source=str(base))
    if planned is None:
        return f"{base} already points there; nothing to do"
    try:
        mode = stat.S_IMODE(conf.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600
    with rejected_is_retryable():
        atomic_write(
            staging, planned, mode=mode, validate=checked_by_nutcracker(staging), backup=False
        )
    return f"staged in {staging} (from {base}); apply-staged restarts nutcracker"


@cli.command("reconfig-hook", cls=ArgvTailCommand)
@click.argument("master")
@click.argument("role")
@click.argument("state")
@click.argument("from_ip")
@click.argument("from_port")
@click.argument("to_ip")
@click.argument("to_port")
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Topology file: enables the inventory guard and its agent.restart settings.",
)
@click.option(
    "--nutcracker-config",
    "nutcracker_config",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The live nutcracker.yml.",
)
@click.option(
    "--staging",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the new config here for `apply-staged` instead of restarting.",
)
@click.option(
    "--lock-timeout", type=click.FloatRange(0, 20), default=10.0, show_default=True,
    help="Seconds to wait for another Sentinel's call of the hook to finish (then exit 1).",
)  # fmt: skip
@click.option(
    "--restart-timeout", type=click.FloatRange(0.1, 30), default=20.0, show_default=True,
    help="Seconds the restart command may take (then exit 1: Sentinel retries).",
)  # fmt: skip
@restart_cmd_option
def reconfig_hook(
    master: str,
    role: str,
    state: str,
    from_ip: str,
    from_port: str,
    to_ip: str,
    to_port: str,
    config: Path | None,
    nutcracker_config: Path,
    staging: Path | None,
    lock_timeout: float,
    restart_timeout: float,
    restart_cmd: tuple[str, ...] | None,
) -> None:
    """Sentinel client-reconfig-script: point server MASTER of nutcracker.yml at TO_IP:TO_PORT.

    \b
    Arguments are Sentinel's: <master-name> <role> <state> <from-ip> <from-port> <to-ip>
    <to-port>. Idempotent (each Sentinel calls it once; only the first does work).
    Exit 0: done or nothing to do; 1: retry later; 2: refused (Sentinel gives up).
    As a script:  exec redkeeper reconfig-hook --nutcracker-config /etc/nutcracker.yml \\
                  --restart-cmd systemctl restart nutcracker -- "$@"
    """
    head = f"reconfig-hook {master} ({role} {state}): {from_ip}:{from_port} -> {to_ip}:{to_port}"
    try:
        with sentinel_exit_codes():
            target = _target(to_ip, to_port)
            topology = load(config) if config is not None else None
            if topology is not None:
                _guard_inventory(topology, master, target)
            strategy = _strategy(topology, restart_cmd, staging)
            if strategy.staging is not None:
                with exclusive_lock(strategy.staging, lock_timeout):
                    outcome = _hook_staging(nutcracker_config, strategy.staging, master, target)
            else:
                outcome = _hook_command(
                    nutcracker_config, master, target, strategy.argv, restart_timeout, lock_timeout
                )
    except RedkeeperError as exc:
        verdict = "will be retried" if exc.exit_code == 1 else "refused"
        log(f"{head}: {verdict}")
        raise
    log(f"{head}: {outcome}")


# ---- apply-staged ------------------------------------------------------------------------


@cli.command("apply-staged", cls=ArgvTailCommand)
@click.option(
    "--staging",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The staged nutcracker.yml the unprivileged agent or hook writes.",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The live nutcracker.yml to replace.",
)
@click.option("--once", is_flag=True, help="Apply the current staging file once and exit.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.05, 3600),
    default=5.0,
    show_default=True,
    help="Also re-check this often (missed events, pending restarts).",
)
@click.option(
    "--restart-timeout", type=click.FloatRange(0.1, 600), default=30.0, show_default=True,
    help="Seconds the restart command may take.",
)  # fmt: skip
@restart_cmd_option
def apply_staged(
    staging: Path,
    config: Path,
    once: bool,
    poll_interval: float,
    restart_timeout: float,
    restart_cmd: tuple[str, ...] | None,
) -> None:
    """Privileged watcher: copy a valid staged nutcracker.yml over the live one and restart.

    \b
    The classic iwatch pattern, done right: inotify (close-write and rename into place),
    `nutcracker -t` first, atomic write with a .bak, argv restart command, bounded.
    """
    if not restart_cmd:
        raise click.UsageError(f"{RESTART_OPT} ARGV... is required")
    if once:
        log(asyncio.run(apply_staged_once(staging, config, restart_cmd, restart_timeout)))
        return
    asyncio.run(
        watch_staging(
            staging,
            config,
            restart_cmd,
            poll=poll_interval,
            restart_timeout=restart_timeout,
            log=log,
        )
    )
