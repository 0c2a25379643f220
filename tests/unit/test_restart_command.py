"""run_command: argv restart commands, exit status, output capture, timeouts, missing binaries."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from redkeeper.process import pid_alive
from redkeeper.proxy.twemproxy.apply import pending_path, stage_restart
from redkeeper.proxy.twemproxy.restart import OUTPUT_LIMIT, RestartResult, run_command


def run(argv: list[str], timeout: float = 10.0) -> RestartResult:
    return asyncio.run(run_command(argv, timeout=timeout))


def kill_recorded(pidfile: Path) -> None:
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_true_is_ok() -> None:
    result = run(["/bin/true"])
    assert result.ok and result.output == ""
    assert result.pid is not None and 0 <= result.duration_ms < 5000


def test_false_is_not_ok_and_says_why() -> None:
    result = run(["/bin/false"])
    assert not result.ok
    assert "exit 1" in result.output and "/bin/false" in result.output


def test_missing_binary_is_not_ok_without_exception(tmp_path: Path) -> None:
    result = run([str(tmp_path / "no-such-restart-command"), "now"])
    assert not result.ok and result.pid is None
    assert "cannot run" in result.output and "No such file" in result.output


def test_not_executable_is_not_ok(tmp_path: Path) -> None:
    script = tmp_path / "restart.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = run([str(script)])
    assert not result.ok and "Permission denied" in result.output


def test_empty_argv_is_not_ok() -> None:
    assert not run([]).ok


def test_argv_is_not_a_shell_string(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    result = run(["/bin/echo", f"x; touch {marker}"])
    assert result.ok and result.output.strip() == f"x; touch {marker}"
    assert not marker.exists()


def test_stdout_and_stderr_are_captured() -> None:
    result = run(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
    assert not result.ok
    assert "to-stdout" in result.output and "to-stderr" in result.output
    assert "exit 3" in result.output


def test_long_output_keeps_the_tail() -> None:
    code = "print('a' * 20000); print('THE-END')"
    result = run([sys.executable, "-c", code])
    assert result.ok
    assert result.output.rstrip().endswith("THE-END")
    assert len(result.output) <= OUTPUT_LIMIT + 100 and "cut" in result.output


def test_timeout_kills_the_process_group_quickly(tmp_path: Path) -> None:
    child = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {child}; echo waiting; wait"
    started = time.monotonic()
    try:
        result = run(["sh", "-c", script], timeout=0.3)
        elapsed = time.monotonic() - started
        assert not result.ok and elapsed < 2.0
        assert "did not finish within 0.3 s" in result.output and "waiting" in result.output
        deadline = time.monotonic() + 2.0
        while pid_alive(int(child.read_text())) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not pid_alive(int(child.read_text())), "the command's child survived"
    finally:
        kill_recorded(child)


def test_sleep_with_short_timeout() -> None:
    started = time.monotonic()
    result = run(["sleep", "5"], timeout=0.2)
    assert not result.ok and time.monotonic() - started < 1.5


def test_a_daemon_left_holding_the_pipe_does_not_block(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.pid"
    started = time.monotonic()
    try:
        result = run(["sh", "-c", f"sleep 20 & echo $! > {daemon}; echo restarted"])
        assert result.ok and "restarted" in result.output
        assert time.monotonic() - started < 2.0
    finally:
        kill_recorded(daemon)


def test_stage_restart_leaves_the_marker_only_when_something_changed(tmp_path: Path) -> None:
    config = tmp_path / "nutcracker.yml"
    config.write_text("a\n")
    assert not stage_restart(config, lambda: False)
    assert not pending_path(config).exists()

    def write() -> bool:
        config.write_text("b\n")
        return True

    assert stage_restart(config, write)
    assert pending_path(config).exists()  # the owner's repair_pending restarts nutcracker
    assert not stage_restart(config, lambda: False)
    assert pending_path(config).exists()  # a pending restart is never forgotten
