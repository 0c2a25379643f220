"""Start a daemon in the foreground of its own session, and stop it by PID, bounded.

A `ProcessRecord` (name, pid, start time, argv) is what the stack writes to its state dir so
that `down` stops exactly the processes it started and never a recycled PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from redkeeper.errors import ProcessError
from redkeeper.fsutil import atomic_write


def _start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[19])


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True when `pid` runs (and, if given, started at `start_ticks`) and is not a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = raw[raw.rfind(")") + 2 :].split()[0]
    if state in ("Z", "X") and not _other_threads_alive(pid):
        return False
    return start_ticks is None or _start_ticks(pid) == start_ticks


def _other_threads_alive(pid: int) -> bool:
    """A leader whose main thread exited shows Z while other threads (nutcracker's stats
    thread) still run and hold its ports: it is not gone yet."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        if raw[raw.rfind(")") + 2 :].split()[0] not in ("Z", "X"):
            return True
    return False


def stop_pid(
    pid: int, start_ticks: int | None = None, timeout: float = 5.0, sig: int = signal.SIGTERM
) -> bool:
    """Send `sig`, wait up to `timeout`, then SIGKILL. True if it had to be stopped."""
    if not pid_alive(pid, start_ticks):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while pid_alive(pid, start_ticks):
        if time.monotonic() >= deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            kill_deadline = time.monotonic() + 2.0
            while pid_alive(pid, start_ticks) and time.monotonic() < kill_deadline:
                time.sleep(0.01)
            break
        time.sleep(0.01)
    return True


@dataclass(frozen=True)
class ProcessRecord:
    """What identifies a started process across CLI invocations."""

    name: str
    pid: int
    start_ticks: int
    argv: tuple[str, ...]

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_ticks)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["argv"] = list(self.argv)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_ticks=int(data["start_ticks"]),
            argv=tuple(str(a) for a in data["argv"]),
        )


class ManagedProcess:
    """A daemon run in the foreground (no self-daemonizing), output appended to a log file."""

    def __init__(self, name: str, argv: list[str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None
        self._record: ProcessRecord | None = None

    @property
    def pid(self) -> int | None:
        return self._record.pid if self._record else None

    @property
    def record(self) -> ProcessRecord:
        if self._record is None:
            raise ProcessError(f"{self.name} was never started")
        return self._record

    def start(self) -> ProcessRecord:
        """Start the process in its own session (so Ctrl-C on the CLI reaches only the CLI)."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ProcessError(f"cannot start {self.name} ({self.argv[0]}): {exc}") from exc
        pid = self._popen.pid
        ticks = _start_ticks(pid)
        if ticks is None:
            raise ProcessError(f"{self.name} (pid {pid}) exited at once; see {self.log_path}")
        self._record = ProcessRecord(self.name, pid, ticks, tuple(self.argv))
        return self._record

    def exited(self) -> int | None:
        """The exit status if the process has ended, else None (reaps a child)."""
        if self._popen is not None:
            return self._popen.poll()
        if self._record is not None and not self._record.alive():
            return -1
        return None

    def alive(self) -> bool:
        return self._record is not None and self.exited() is None

    def signal(self, sig: int) -> None:
        """Send `sig` (SIGKILL, SIGSTOP, SIGCONT ...) if the process still runs."""
        if self._record is not None and self._record.alive():
            os.kill(self._record.pid, sig)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, bounded wait, SIGKILL; reap the child."""
        if self._record is None:
            return
        if self._popen is not None:
            if self._popen.poll() is None:
                self._popen.terminate()
                try:
                    self._popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait(2.0)
            return
        stop_pid(self._record.pid, self._record.start_ticks, timeout)

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def read_record(path: Path) -> ProcessRecord | None:
    """The ProcessRecord stored in `path` (JSON), or None when absent or unreadable."""
    try:
        data: Any = json.loads(path.read_text())
        return ProcessRecord.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(path: Path, record: ProcessRecord | None) -> None:
    """Store `record` in `path` atomically (None removes the file)."""
    if record is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record.to_json()) + "\n", backup=False)
