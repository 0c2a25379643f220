"""Running a lab host's units: start one (its ExecStartPre lines, then its ExecStart in the
foreground), stop or kill one by PID and process group, and sweep a host clean.

Each host has a root under `<lab dir>/hosts/<name>/` holding what `render --host` wrote for
it; `units.host_argv` mounts it over the real paths. A daemon's stdout and stderr go to
`/var/log/redkeeper/<unit>.out` of its host (Redis also writes its own `logfile`). Every
daemon leads its own process group (its PID): keepalived's VRRP child is stopped with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from redkeeper.errors import BinaryNotFoundError, LabError
from redkeeper.lab import net
from redkeeper.lab.plan import LabHost
from redkeeper.lab.state import HostProcess
from redkeeper.lab.units import Command, Unit, host_argv, parse_unit, resolve, unit_process
from redkeeper.process import ProcessRecord, find_binary, pid_alive
from redkeeper.process.managed import _start_ticks
from redkeeper.render.systemd import UNIT_DIR

Log = Callable[[str], None]
PRE_TIMEOUT = 10.0
#: start order of a host's units: Redis before Sentinel before the endpoint before keepalived
_ORDER = ("shard", "sentinel", "haproxy", "proxy", "agent", "nutcracker", "keepalived")


def _rank(unit: str) -> int:
    return next((i for i, p in enumerate(_ORDER) if unit.startswith(p)), len(_ORDER))


def host_root(lab_dir: Path, host: str) -> Path:
    return lab_dir / "hosts" / host


def read_units(root: Path) -> list[Unit]:
    """The units rendered into a host's root, in start order."""
    units: list[Unit] = []
    folder = root / UNIT_DIR.relative_to("/")
    for path in sorted(folder.glob("redkeeper-*.service")) if folder.is_dir() else []:
        try:
            units.append(parse_unit(unit_process(path.name), path.read_text()))
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: {exc} (fix: render the lab again: lab down; lab up)") from exc
    return sorted(units, key=lambda u: (_rank(u.name), u.name))


def _binaries(argv: tuple[str, ...]) -> str:
    """The local path of a rendered binary path (the same when it exists here)."""
    head = argv[0]
    if os.path.isabs(head) and os.access(head, os.X_OK):
        return head
    try:
        return find_binary(os.path.basename(head))
    except BinaryNotFoundError:
        return head


def group_members(pgid: int) -> list[int]:
    """Live PIDs whose process group is `pgid`."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def ancestors(pid: int, depth: int = 8) -> list[int]:
    """`pid` and its parents (up to `depth`), from /proc."""
    chain = [pid]
    for _ in range(depth):
        try:
            raw = Path(f"/proc/{chain[-1]}/stat").read_text()
        except OSError:
            break
        parent = int(raw[raw.rfind(")") + 2 :].split()[1])
        if parent <= 1:
            break
        chain.append(parent)
    return chain


class HostRunner:
    """Start and stop the units of the lab's hosts (no state of its own but the children
    it must reap)."""

    def __init__(self, lab_dir: Path, *, log: Log = lambda _m: None) -> None:
        self.lab_dir = lab_dir
        self.log = log
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def root(self, host: LabHost) -> Path:
        return host_root(self.lab_dir, host.name)

    def units(self, host: LabHost) -> list[Unit]:
        return read_units(self.root(host))

    def unit(self, host: LabHost, name: str) -> Unit:
        for unit in self.units(host):
            if unit.name == name:
                return unit
        raise LabError(
            f"{host.name} has no unit {name} (fix: one of "
            f"{', '.join(u.name for u in self.units(host)) or 'none'})"
        )

    def _argv(self, host: LabHost, argv: tuple[str, ...]) -> list[str]:
        which = {argv[0]: _binaries(argv)}
        return host_argv(host.namespace, self.root(host), resolve(argv, which))

    def run_commands(self, host: LabHost, commands: tuple[Command, ...]) -> None:
        """ExecStartPre / ExecStopPost lines, one after the other, bounded."""
        for command in commands:
            done = net.run(self._argv(host, command.argv), check=False, timeout=PRE_TIMEOUT)
            if done.returncode != 0 and not command.ignore_failure:
                raise LabError(
                    f"{host.name}: `{' '.join(command.argv)}` failed (exit {done.returncode}): "
                    f"{done.stderr.strip()[-300:]}"
                )

    def start(self, host: LabHost, unit: Unit) -> HostProcess:
        """Run the unit's ExecStartPre lines, then start its daemon; its record."""
        self.run_commands(host, unit.pre)
        log_path = self.root(host) / "var/log/redkeeper" / f"{unit.name}.out"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self._argv(host, unit.start)
        with log_path.open("ab") as out:
            try:
                child = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LabError(f"{host.name}: cannot start {unit.name}: {exc}") from exc
        ticks = _start_ticks(child.pid)
        if ticks is None:
            raise LabError(f"{host.name}: {unit.name} exited at once (see {log_path})")
        self._children[child.pid] = child
        return HostProcess(
            host.name, unit.name, ProcessRecord(unit.name, child.pid, ticks, tuple(unit.start))
        )

    def reap(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def alive(self, process: HostProcess) -> bool:
        self.reap()
        return process.record.alive()

    def signal(self, process: HostProcess, sig: int) -> None:
        """Send `sig` to the process (and its group) if it still is the recorded process."""
        record = process.record
        if not pid_alive(record.pid, record.start_ticks):
            return
        members = group_members(record.pid) or [record.pid]
        for pid in members:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue

    def kill(self, process: HostProcess) -> None:
        """SIGKILL the process and its group; wait (bounded) until it is gone."""
        record = process.record
        members = group_members(record.pid) if pid_alive(record.pid, record.start_ticks) else []
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self._wait_gone(members, 3.0)

    def stop(self, host: LabHost, process: HostProcess, timeout: float = 5.0) -> None:
        """SIGTERM (SIGCONT first: a stopped process cannot exit), bounded wait, then
        SIGKILL of the group; then the unit's ExecStopPost lines."""
        record = process.record
        if pid_alive(record.pid, record.start_ticks):
            self.signal(process, signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
            if not self._wait_gone([record.pid], timeout):
                self.kill(process)
        members = group_members(record.pid)
        self._kill_pids(members)
        try:
            unit = self.unit(host, process.unit)
        except LabError:
            return
        self.run_commands(host, unit.post)

    def _kill_pids(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self._wait_gone(pids, 3.0)

    def sweep(self, namespaces: list[str]) -> int:
        """SIGKILL every process still living in `namespaces` (by PID); how many."""
        found = net.processes_in(namespaces)
        self._kill_pids(list(found))
        return len(found)

    def _wait_gone(self, pids: list[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.reap()
            if not any(pid_alive(pid) for pid in pids):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
