"""Atomic, validated file writes: the only way redkeeper writes a configuration file.

`atomic_write` owns the write protocol of architecture §3 rule 6 and house rule 6:
compare first (no write, not even an mtime change, when the content is already there), write a
temp file in the same directory, fsync it, let a validator look at it, keep a `.bak` of the
previous content, rename over the target, fsync the directory. A reader therefore sees either
the old file or the new one, never a torn or unvalidated one, and a crash at any point leaves
the target intact.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from redkeeper.errors import RetryLaterError

__all__ = ["atomic_write", "backup_path", "fsync_dir"]


def backup_path(path: Path) -> Path:
    """Where `atomic_write` keeps the previous content of `path`: `<name>.bak` beside it."""
    return path.with_name(path.name + ".bak")


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry change (create, rename) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, name: str, data: bytes, mode: int, owner: tuple[int, int]) -> Path:
    """Write `data` to a fresh, fsynced temp file in `directory` with exactly `mode`."""
    # mkstemp creates the file 0600 with O_EXCL: nobody else can read a secret before the
    # fchmod below, and the name cannot collide with another writer's temp file.
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            uid, gid = owner
            if os.geteuid() == 0 and (uid, gid) != (os.geteuid(), os.getegid()):
                # Running as root over a file owned by the daemon's user: keep its owner.
                os.fchown(handle.fileno(), uid, gid)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def atomic_write(
    path: Path,
    data: bytes | str,
    *,
    mode: int = 0o644,
    validate: Callable[[Path], None] | None = None,
    backup: bool = True,
) -> bool:
    """Replace the content of `path` with `data` atomically; return whether it wrote.

    - Returns False and touches nothing (no temp file, no mtime change) when `path` already
      holds exactly `data`. `str` data is encoded as UTF-8.
    - Permission bits: an existing file keeps its own bits (and, when running as root, its
      owner and group); `mode` applies only when the file is created. The temp file is
      created 0600 and set to the final bits before any byte is written.
    - `validate(tmp_path)` is called on the complete, fsynced temp file (e.g.
      `nutcracker -t -c tmp`). If it raises, the temp file is removed and the exception
      propagates; `path` and its backup are left untouched.
    - With `backup`, the previous content is first saved atomically to `<name>.bak` (same
      permission bits as the original). There is no backup when the file did not exist.
    - A symlink at `path` is followed: the file it points to is replaced, the link stays.
    - Then the temp file is renamed over `path` and the directory is fsynced.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    directory = target.parent

    try:
        current: bytes | None = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current == payload:
        return False

    if current is not None:
        st = target.stat()
        final_mode = stat.S_IMODE(st.st_mode)
        owner = (st.st_uid, st.st_gid)
    else:
        final_mode = mode
        owner = (os.geteuid(), os.getegid())

    tmp = _write_temp(directory, target.name, payload, final_mode, owner)
    try:
        if validate is not None:
            validate(tmp)
        if backup and current is not None:
            bak = backup_path(target)
            tmp_bak = _write_temp(directory, bak.name, current, final_mode, owner)
            try:
                os.replace(tmp_bak, bak)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp_bak.unlink()
                raise
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(directory)
    return True


LOCK_POLL = 0.01


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout: float) -> Iterator[None]:
    """flock(LOCK_EX) on `<path>.lock`, waiting at most `timeout` s (then RetryLaterError)."""
    lock = path.with_name(path.name + ".lock")
    # Read-only and 0644: flock needs no write access, so a lock file first created by root
    # does not lock out the unprivileged Sentinel user later.
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RetryLaterError(
                        f"{lock} is still locked after {timeout:g} s (another Sentinel's hook "
                        "is working on it); retry later"
                    ) from None
                time.sleep(LOCK_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock
