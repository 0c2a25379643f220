"""How nutcracker is restarted after its nutcracker.yml changed (architecture §3 rule 7).

This module owns two of the three restart strategies (the third, a staging file applied by
the privileged `redkeeper apply-staged` watcher, is `redkeeper.proxy.twemproxy.staging`):

- `run_command`: run an argv restart command (`systemctl restart nutcracker`; never a shell
  string), bounded by a timeout that kills its whole process group, output captured.
- `ManagedNutcracker`: nutcracker as the agent's own child (`redkeeper up`). Its
  `ProcessRecord` lives in STATE/nutcracker.json (`redkeeper.stack.state`), so a restarted
  agent adopts the running nutcracker instead of cutting every client, and `redkeeper down`
  stops it.

Every wait is bounded polling (1 ms steps while clients wait for the port), run on the event
loop with only short blocking calls (a signal, a /proc read, a loopback connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from redkeeper.errors import ProcessError
from redkeeper.model import Address
from redkeeper.process import ManagedProcess, ProcessRecord, read_record, write_record
from redkeeper.process.ports import accepts
from redkeeper.proxy.base import RestartResult
from redkeeper.waiting import poll_async

__all__ = ["OUTPUT_LIMIT", "ManagedNutcracker", "RestartResult", "run_command"]

OUTPUT_LIMIT = 4096  # characters of command output kept (the tail: errors come last)
_PORT_POLL = 0.001  # seconds between port probes while nutcracker comes back
_EXIT_POLL = 0.001  # seconds between liveness checks while it stops
_KILL_WAIT = 2.0  # after SIGKILL, how long to wait for the process to disappear


RECORD_NAME = "nutcracker.json"


def _read_tail(out: BinaryIO) -> str:
    """The last OUTPUT_LIMIT characters written to `out`, saying how much was cut."""
    size = out.seek(0, os.SEEK_END)
    skipped = max(0, size - 4 * OUTPUT_LIMIT)  # 4: at most 4 UTF-8 bytes per character
    out.seek(skipped)
    text = out.read().decode("utf-8", errors="replace")
    if len(text) > OUTPUT_LIMIT:
        skipped += len(text[:-OUTPUT_LIMIT].encode("utf-8", errors="replace"))
        text = text[-OUTPUT_LIMIT:]
    return f"[... {skipped} earlier bytes cut ...]\n{text}" if skipped else text


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run_command(argv: Sequence[str], *, timeout: float = 30.0) -> RestartResult:
    """Run `argv` (no shell), wait for it at most `timeout` seconds; never raises for the
    command's own failures.

    ok is True only for exit status 0. stdout and stderr are captured together (the last
    `OUTPUT_LIMIT` characters). The command runs in its own session: on timeout (or when the
    caller is cancelled) its whole process group is killed. A missing or non-executable
    program gives ok=False with the reason as output.
    """
    words = [str(a) for a in argv]
    if not words:
        return RestartResult(False, 0.0, "no restart command given")
    command = " ".join(words)
    started = time.perf_counter()
    # Output goes to an unlinked temp file, not a pipe: a daemon the command leaves behind
    # (a restart script starting nutcracker) may keep its stdout open for ever, and only the
    # command's exit status may decide when we are done.
    with tempfile.TemporaryFile(prefix="redkeeper-restart-") as out:
        try:
            proc = await asyncio.create_subprocess_exec(
                *words,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            duration = (time.perf_counter() - started) * 1000.0
            reason = exc.strerror or str(exc)
            return RestartResult(False, duration, f"cannot run {words[0]!r}: {reason}")
        try:
            returncode: int | None = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            returncode = None
        except BaseException:  # cancelled: take the command down with us
            _kill_group(proc.pid)
            raise
        duration = (time.perf_counter() - started) * 1000.0
        if returncode is None:
            _kill_group(proc.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _KILL_WAIT)
        said = _read_tail(out)
    if returncode is None:
        head = f"{command!r} did not finish within {timeout:g} s; killed"
        return RestartResult(False, duration, f"{head}\n{said}" if said else head, proc.pid)
    if returncode != 0:
        status = f"killed by signal {-returncode}" if returncode < 0 else f"exit {returncode}"
        head = f"{command!r} failed ({status})"
        said = f"{head}\n{said}" if said else head
    return RestartResult(returncode == 0, duration, said, proc.pid)


# ---- managed child -----------------------------------------------------------------------


def _ended(record: ProcessRecord) -> bool:
    """True when the recorded process has fully ended (and released its sockets).

    Unlike `pid_alive`, a zombie thread-group leader whose other threads still run (nutcracker's
    stats thread outlives its main thread for a few ms on SIGTERM) is not gone yet: those
    threads still hold the listening socket.
    """
    try:
        raw = Path(f"/proc/{record.pid}/stat").read_text()
    except OSError:
        return True
    fields = raw[raw.rfind(")") + 2 :].split()
    if int(fields[19]) != record.start_ticks:
        return True  # the PID was reused
    return fields[0] in ("Z", "X") and int(fields[17]) <= 1


def _accepts(address: Address) -> bool:
    """Something of this host accepts on `address` (`process.ports.accepts`: a listening
    socket here, also on a VIP the peer proxy holds)."""
    return accepts(address.host, address.port, 0.05)


class ManagedNutcracker:
    """The agent runs nutcracker as its child (what `redkeeper up` uses)."""

    NAME = "nutcracker"

    def __init__(
        self,
        argv: list[str],
        listen: Address,
        state_dir: Path,
        log_path: Path,
        *,
        ready_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.argv = list(argv)
        self.listen = listen
        self.state_dir = state_dir
        self._record_path = state_dir / RECORD_NAME  # `redkeeper down` stops it from there
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._proc: ManagedProcess | None = None  # set when the process is our own child
        self._record: ProcessRecord | None = None  # ours or adopted
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._record.pid if self._record is not None else None

    async def ensure_running(self) -> None:
        """Adopt the recorded nutcracker if it runs with our argv, else (re)start it.

        ProcessError when it cannot be started or does not accept connections on `listen`
        within `ready_timeout` (with the tail of its log).
        """
        async with self._lock:
            if self._gone() is False:
                self._write_record(self._record)
                return
            recorded = read_record(self._record_path)
            if recorded is not None and not _ended(recorded):
                same = recorded.argv == tuple(self.argv) and recorded.name == self.NAME
                if same and recorded.alive():
                    self._record, self._proc = recorded, None
                    if await poll_async(lambda: _accepts(self.listen), self.ready_timeout, 0.01):
                        return  # adopted: clients stay connected
                # other argv (or a hung one): it must go before ours can listen
                self._record, self._proc = recorded, None
                await self._stop_current()
            self._write_record(None)
            self._record, self._proc = None, None
            await self._start()

    async def restart(self) -> RestartResult:
        """Stop (SIGTERM, bounded, then SIGKILL) and start again, then wait for the port.

        duration_ms runs from the stop to the port accepting again. Never raises for a
        failure to come back: ok=False with the reason and the log tail.
        """
        async with self._lock:
            old_pid = self.pid
            started = time.perf_counter()
            try:
                await self._stop_current()
                self._write_record(None)
                await self._start()
            except ProcessError as exc:
                duration = (time.perf_counter() - started) * 1000.0
                return RestartResult(False, duration, str(exc), None)
            duration = (time.perf_counter() - started) * 1000.0
            was = f"pid {old_pid}" if old_pid is not None else "not running"
            return RestartResult(
                True, duration, f"nutcracker restarted ({was} -> pid {self.pid})", self.pid
            )

    async def stop(self) -> None:
        """Stop nutcracker (ours or adopted) and clear its record. ProcessError if it
        survives SIGKILL."""
        async with self._lock:
            if self._record is None:
                recorded = read_record(self._record_path)
                if recorded is not None and recorded.name == self.NAME and not _ended(recorded):
                    self._record = recorded
            await self._stop_current()
            self._write_record(None)

    # ---- internals -----------------------------------------------------------------------

    def _write_record(self, record: ProcessRecord | None) -> None:
        if record is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        write_record(self._record_path, record)

    def _gone(self) -> bool | None:
        """None: nothing tracked; else whether the tracked process has ended."""
        if self._record is None:
            return None
        if self._proc is not None:
            return self._proc.exited() is not None  # waitpid: the whole thread group ended
        return _ended(self._record)

    async def _stop_current(self) -> None:
        record = self._record
        if record is None:
            return
        if self._gone() is False:
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
            if not await poll_async(
                lambda: self._gone() is not False, self.stop_timeout, _EXIT_POLL
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signal.SIGKILL)
                if not await poll_async(lambda: self._gone() is not False, _KILL_WAIT, _EXIT_POLL):
                    raise ProcessError(f"nutcracker (pid {record.pid}) survives SIGKILL")
        self._record, self._proc = None, None

    def _log_tail(self, proc: ManagedProcess) -> str:
        tail = proc.tail_log(15)
        return f"; its log {self.log_path} ends with:\n{tail}" if tail else f"; see {self.log_path}"

    async def _start(self) -> None:
        if _accepts(self.listen):
            raise ProcessError(
                f"cannot start nutcracker: {self.listen} is already taken by another process "
                f"(fix: stop it, or give nutcracker another listen address)"
            )
        proc = ManagedProcess(self.NAME, self.argv, self.log_path.parent, self.log_path)
        record = proc.start()
        # Recorded at once: if we are cancelled (agent shutdown) while it comes up, the next
        # agent adopts it and `redkeeper down` stops it; it is never left unrecorded.
        self._proc, self._record = proc, record
        self._write_record(record)

        def ready() -> bool:
            return proc.exited() is not None or _accepts(self.listen)

        came_up = await poll_async(ready, self.ready_timeout, _PORT_POLL)
        status = proc.exited()
        if status is None and came_up:
            return
        if status is None:
            proc.signal(signal.SIGKILL)
            await poll_async(lambda: proc.exited() is not None, _KILL_WAIT, _EXIT_POLL)
        self._proc, self._record = None, None
        self._write_record(None)
        if status is not None:
            raise ProcessError(
                f"nutcracker exited with status {status} while starting" + self._log_tail(proc)
            )
        raise ProcessError(
            f"nutcracker did not accept connections on {self.listen} within "
            f"{self.ready_timeout:g} s; killed it" + self._log_tail(proc)
        )
