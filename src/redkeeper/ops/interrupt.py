"""Stopping an operation only where it is safe to, and the test hook that kills it anywhere.

- `Interrupts`: while installed (a context manager, main thread only), SIGINT and SIGTERM
  set a flag instead of raising at a random instruction; the operation calls `check()` at its
  safe points (OperationInterruptedError: undone or journaled) and ignores the flag in
  the sections that must not stop half-way (a cutover: `critical()`).
- `reached(step)`: when the environment variable `REDKEEPER_KILL_AT` names `step`, the
  process SIGKILLs itself there. The tests use it to prove that a run killed at any step is
  finished or rolled back by the next run (the journal). Off unless set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

from redkeeper.errors import OperationInterruptedError

KILL_ENV = "REDKEEPER_KILL_AT"


def reached(step: str) -> None:
    """The test hook of the module docstring."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


class Interrupts:
    """SIGINT/SIGTERM become a flag checked at safe points (module docstring)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._depth = 0  # inside critical sections
        self._old: dict[int, object] = {}

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old.clear()

    def check(self, where: str) -> None:
        """Raise OperationInterruptedError when a signal came (outside critical sections)."""
        if self.requested is not None and self._depth == 0:
            raise OperationInterruptedError(f"{self.requested} received; stopped {where}")

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A section that runs to its end whatever signal comes meanwhile."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
