"""THE apply sequence for a live nutcracker.yml: lock, pending marker, write, restart, clear.

Every writer of a live nutcracker.yml goes through `install_and_restart`: the agent's
managed and command targets, `redkeeper reconfig-hook` and `redkeeper apply-staged`. The
sequence, under the `<file>.lock` flock (so the writers never interleave):

1. create `<nutcracker.yml>.restart-pending` (remembering whether it already existed);
2. write (the caller's function: repoint named servers, or install a staged file); when it
   raises, the file is untouched and a marker this call created is removed;
3. when nothing was written and no restart was pending: remove the marker, done;
4. restart nutcracker (the caller's strategy); remove the marker only when it succeeded.

So a crash or a failed restart between write and restart leaves the marker, and the next
apply or repair (`repair_pending`) restarts nutcracker: it never keeps running a config that
is not the one on disk.

A writer that may not restart nutcracker itself (`redkeeper reshard` while the agent owns a
managed nutcracker) runs steps 1–2 with `stage_restart` and wakes the owner (SIGHUP), whose
next cycle runs steps 3–4 through `repair_pending`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from redkeeper.fsutil import exclusive_lock
from redkeeper.proxy.base import ApplyOutcome, RestartResult

LOCK_TIMEOUT = 10.0

Restart = Callable[[], Awaitable[RestartResult]]


def pending_path(config: Path) -> Path:
    """Exists from just before nutcracker.yml is written until nutcracker restarted on it."""
    return config.with_name(config.name + ".restart-pending")


@contextlib.asynccontextmanager
async def locked(path: Path, timeout: float = LOCK_TIMEOUT) -> AsyncIterator[None]:
    """The `<file>.lock` flock every writer of `path` takes (RetryLaterError on timeout)."""
    lock = exclusive_lock(path, timeout)
    await asyncio.to_thread(lock.__enter__)
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


async def install_and_restart(
    config: Path, write: Callable[[], bool], restart: Restart, *, lock_timeout: float = LOCK_TIMEOUT
) -> ApplyOutcome:
    """The sequence of the module docstring. `write` runs in a thread and returns whether it
    changed `config`. Returns what happened; a failed restart is `restart.ok` False."""
    pending = pending_path(config)
    async with locked(config, lock_timeout):
        had_pending = pending.exists()
        pending.touch()
        try:
            written = await asyncio.to_thread(write)
        except BaseException:
            if not had_pending:
                pending.unlink(missing_ok=True)
            raise
        if not written and not had_pending:
            pending.unlink(missing_ok=True)
            return ApplyOutcome(False, None)
        result = await restart()
        if result.ok:
            pending.unlink(missing_ok=True)
        return ApplyOutcome(written, result)


async def repair_pending(config: Path, restart: Restart) -> RestartResult | None:
    """Restart when a previous write was not followed by a successful restart."""
    if not pending_path(config).exists():
        return None
    outcome = await install_and_restart(config, lambda: False, restart)
    return outcome.restart


def stage_restart(
    config: Path, write: Callable[[], bool], *, lock_timeout: float = LOCK_TIMEOUT
) -> bool:
    """Steps 1–2 of the sequence for a writer that leaves the restart to nutcracker's owner:
    under the lock, the pending marker, then `write`. Returns whether `config` changed; the
    marker stays when it did (or was already there), so the owner's `repair_pending`
    restarts nutcracker."""
    pending = pending_path(config)
    with exclusive_lock(config, lock_timeout):
        had_pending = pending.exists()
        pending.touch()
        try:
            written = write()
        except BaseException:
            if not had_pending:
                pending.unlink(missing_ok=True)
            raise
        if not written and not had_pending:
            pending.unlink(missing_ok=True)
        return written
