"""The journal of an operation: one JSON file per kind in STATE/ops/.

Owns the file protocol only. `Journal.write` replaces the file atomically (`fsutil`) before
a step changes anything, so a run killed at any point, even by SIGKILL, leaves what it changed
and what is left to do; the next run of the same command reads it back and finishes or rolls
back. A journal that cannot be parsed is a ConfigError naming the file: it may be the only
record of a change to undo, so it is never dropped silently. `finish` keeps the last finished
record as `<kind>.done.json` and removes the live file. What a record holds is the
operation's own business (`switchover.SwitchoverRecord`, `reshard.ReshardRecord`).

`Journal.locked` is the exclusive use of a kind (`flock` on `<kind>.lock`): the kernel
releases it when its holder exits, however it exits, so whoever waits for it (a second run,
the switchover's `guard`) gets it exactly when the holder is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redkeeper.errors import ConfigError, OperationError, Problem
from redkeeper.fsutil import atomic_write, fsync_dir

JOURNAL_DIR = "ops"
LOCK_POLL_S = 0.1


class Journal:
    """STATE/ops/<kind>.json."""

    def __init__(self, state_dir: Path, kind: str) -> None:
        self.kind = kind
        self.path = state_dir / JOURNAL_DIR / f"{kind}.json"

    def read(self) -> dict[str, Any] | None:
        """The live record, or None when no operation of this kind is under way."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self.problem(f"cannot read it: {exc.strerror}") from None
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise self.problem(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise self.problem("not a JSON object")
        return data

    def write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n", backup=False)

    def finish(self) -> Path | None:
        """Keep the live record as `<kind>.done.json` (replacing the previous one)."""
        if not self.path.exists():
            return None
        done = self.path.with_name(f"{self.kind}.done.json")
        os.replace(self.path, done)
        fsync_dir(self.path.parent)
        return done

    @contextlib.contextmanager
    def locked(self, timeout: float) -> Iterator[None]:
        """Hold `<kind>.lock` (module docstring); OperationError when another process holds
        it for `timeout` s."""
        lock = self.path.with_name(f"{self.kind}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise OperationError(
                            f"another {self.kind} is under way ({lock} is locked for more "
                            f"than {timeout:.0f} s; fix: wait for it to end, then retry)"
                        ) from None
                    time.sleep(LOCK_POLL_S)
            yield
        finally:
            os.close(fd)  # releases the lock

    def problem(self, message: str) -> ConfigError:
        return ConfigError(
            [
                Problem(
                    str(self.path),
                    "",
                    message,
                    f"it records an interrupted {self.kind}: restore it from a backup, or "
                    "move it away once you have checked every node by hand (docs/operations.md)",
                )
            ]
        )

    def field(self, data: dict[str, Any], name: str) -> Any:
        """`data[name]`, or a ConfigError naming the journal and the field."""
        if name not in data:
            raise self.problem(f"field {name!r} is missing")
        return data[name]
