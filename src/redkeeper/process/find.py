"""Finding a process whose PID was never recorded (an interrupted start), from /proc.

A process matches an intent when it runs the intent's executable (`/proc/PID/exe`, compared
by real path) with the intent's working directory (`/proc/PID/cwd`) and started no earlier
than the intent was written. Command lines are not compared: redis-server rewrites its own
process title. A shell that merely `cd`s into a node's directory never matches: its
executable differs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from redkeeper.process.managed import ProcessRecord, _start_ticks, pid_alive

_BOOT_TIME: float | None = None


def _boot_time() -> float:
    global _BOOT_TIME
    if _BOOT_TIME is None:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                _BOOT_TIME = float(line.split()[1])
                break
        else:
            _BOOT_TIME = 0.0
    return _BOOT_TIME


def started_at(ticks: int) -> float:
    """Unix time of a process start given in clock ticks since boot."""
    return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def _real(path: str) -> str:
    found = path if os.sep in path else (shutil.which(path) or path)
    return os.path.realpath(found)


def find_processes(name: str, argv: tuple[str, ...], cwd: str, since: float) -> list[ProcessRecord]:
    """Live processes running `argv[0]` in `cwd` that started at or after `since` (unix
    time, 1 s of slack for the tick resolution), as records named `name`."""
    if not argv:
        return []
    exe = _real(argv[0])
    home = os.path.realpath(cwd)
    found: list[ProcessRecord] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.path.realpath(os.readlink(entry / "cwd")) != home:
                continue
            if os.path.realpath(os.readlink(entry / "exe")) != exe:
                continue
        except OSError:
            continue
        ticks = _start_ticks(pid)
        if ticks is None or started_at(ticks) < since - 1.0 or not pid_alive(pid, ticks):
            continue
        found.append(ProcessRecord(name, pid, ticks, argv))
    return found
