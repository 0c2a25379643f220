"""The staging-file restart strategy, privileged side: apply a staged nutcracker.yml.

This module owns what `redkeeper apply-staged` does (the seeds' iwatch pattern, done right):
read the staging file safely (no symlinks, no FIFOs, bounded size), validate it with
`nutcracker -t`, write it over the live config atomically with a `.bak`, run the argv restart
command, and watch the staging file with inotify (on its directory: writers rename a
finished file into place, which a watch on the old inode would miss).

The install itself goes through `proxy.twemproxy.apply`, the one apply sequence (lock,
`restart-pending` marker, write, restart) shared with the agent and the reconfig hook.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from inotify_simple import INotify, flags  # type: ignore[import-untyped]

from redkeeper.errors import BUG, ApplyError, RedkeeperError
from redkeeper.fsutil import atomic_write, backup_path
from redkeeper.proxy.base import RestartResult
from redkeeper.proxy.twemproxy.apply import install_and_restart, pending_path
from redkeeper.proxy.twemproxy.config import checked_by_nutcracker
from redkeeper.proxy.twemproxy.restart import run_command

__all__ = [
    "MAX_STAGED_BYTES",
    "apply_staged_once",
    "read_staged",
    "watch_staging",
]

MAX_STAGED_BYTES = 1 << 20


def read_staged(path: Path) -> bytes | None:
    """The staged bytes (None when there is no staging file). ApplyError for a symlink, a
    non-regular file or more than MAX_STAGED_BYTES: a privileged reader must not be tricked
    into copying another file (/etc/shadow) into a world-readable config."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = "is a symlink" if exc.errno == errno.ELOOP else f"cannot open: {exc.strerror}"
        raise ApplyError(f"{path}: {reason}; refusing to apply it") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ApplyError(f"{path}: is not a regular file; refusing to apply it")
        data = handle.read(MAX_STAGED_BYTES + 1)
    if len(data) > MAX_STAGED_BYTES:
        raise ApplyError(f"{path}: larger than {MAX_STAGED_BYTES} bytes; refusing to apply it")
    return data


async def apply_staged_once(
    staging: Path, config: Path, argv: Sequence[str], restart_timeout: float
) -> str:
    """Install the staging file as `config` and restart nutcracker when anything changed (or
    a restart is still pending), through the one apply sequence
    (`proxy.twemproxy.apply.install_and_restart`). Returns what happened, for the log.

    NutcrackerConfigError: the staged file is invalid; `config` is untouched.
    ApplyError: the staged file is unsafe to read, or the restart failed (the marker stays,
    so the next call restarts again).
    """
    staged = read_staged(staging)

    def write() -> bool:
        if staged is None:
            return False
        try:
            if config.read_bytes() == staged:
                return False
        except FileNotFoundError:
            pass
        atomic_write(config, staged, validate=checked_by_nutcracker(staging), backup=True)
        return True

    async def restart() -> RestartResult:
        return await run_command(argv, timeout=restart_timeout)

    outcome = await install_and_restart(config, write, restart)
    result = outcome.restart
    if result is None:
        return "nothing staged" if staged is None else "staged config already live"
    if not result.ok:
        raise ApplyError(
            f"restart command failed after {result.duration_ms:.0f} ms (retried on the next "
            f"change or poll): {result.output.strip()}"
        )
    said = f" ({result.output.strip()})" if result.output.strip() else ""
    what = (
        f"Applied staged config {staging} to {config} (previous kept in {backup_path(config)})"
        if outcome.written
        else f"Retried the pending restart for {config}"
    )
    return f"{what}; nutcracker restarted in {result.duration_ms:.0f} ms{said}"


async def watch_staging(
    staging: Path,
    config: Path,
    argv: Sequence[str],
    *,
    poll: float,
    restart_timeout: float,
    log: Callable[[str], None],
) -> None:
    """Apply at start-up, on every close-write or rename-into-place of the staging file, and
    every `poll` seconds when its content changed unseen or a restart is pending; return on
    SIGTERM/SIGINT (after finishing the current, bounded, apply)."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    stopping: list[str] = []
    last_seen: list[bytes | None] = [None]

    def on_signal(sig: signal.Signals) -> None:
        stopping.append(sig.name)
        wake.set()

    async def step(reason: str) -> None:
        try:
            current = read_staged(staging)
            if reason == "poll" and current == last_seen[0] and not pending_path(config).exists():
                return
            last_seen[0] = current
            log(await apply_staged_once(staging, config, argv, restart_timeout))
        except RedkeeperError as exc:
            for line in str(exc).splitlines():
                log(f"error: {line}")
        except Exception as exc:
            log(f"error: unexpected {type(exc).__name__}: {exc} ({BUG})")

    inotify = INotify()
    try:
        inotify.add_watch(staging.parent, flags.CLOSE_WRITE | flags.MOVED_TO)
    except OSError as exc:
        inotify.close()
        raise ApplyError(
            f"cannot watch {staging.parent}: {exc.strerror or exc} (fix: create the directory)"
        ) from None

    def readable() -> None:
        for event in inotify.read(timeout=0):
            if event.name == staging.name or event.mask & flags.Q_OVERFLOW:
                wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_reader(inotify.fileno(), readable)
    try:
        log(f"watching {staging} for staged nutcracker.yml; live config {config}")
        await step("start-up")  # the watch is already set: no write can slip between
        while not stopping:
            try:
                await asyncio.wait_for(wake.wait(), poll)
                reason = "event"
            except TimeoutError:
                reason = "poll"
            wake.clear()
            if not stopping:
                await step(reason)
        log(f"{stopping[0]}: stopped watching {staging}")
    finally:
        loop.remove_reader(inotify.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        inotify.close()
