"""`redkeeper reconfig-hook` and `redkeeper apply-staged` run as an operator (or Sentinel)
would, against the real `nutcracker -t`."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redkeeper.topology import load_topology
from tests.support import run_cli, write_topology

pytestmark = pytest.mark.integration

DATED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", re.MULTILINE)

HAND_WRITTEN = """\
# nutcracker.yml, edited by hand
alpha:                       # the main pool
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
      - 127.0.0.1:6666:3 shard1   # the big one
      - '127.0.0.1:7666:1 shard2'
"""


def conf_file(tmp_path: Path, text: str = HAND_WRITTEN) -> Path:
    path = tmp_path / "nutcracker.yml"
    path.write_text(text)
    return path


def recorder(tmp_path: Path, *, exit_status: int = 0) -> tuple[list[str], Path]:
    calls = tmp_path / "calls"
    return ["sh", "-c", f"echo x >> {calls}; exit {exit_status}"], calls


def count(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def hook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("reconfig-hook", *args, cwd=tmp_path, timeout=60)


def sentinel_args(master: str, to_port: int, to_ip: str = "127.0.0.1") -> list[str]:
    return [master, "leader", "start", "127.0.0.1", "6666", to_ip, str(to_port)]


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", "-pending")))


# ---- reconfig-hook -----------------------------------------------------------------------


def test_hook_repoints_exactly_one_server_then_is_a_no_op(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    restart, calls = recorder(tmp_path)
    args = [*sentinel_args("shard1", 6667), "--nutcracker-config", str(conf)]
    done = hook(tmp_path, *args, "--restart-cmd", *restart)
    assert done.returncode == 0, done.stderr
    assert conf.read_text() == HAND_WRITTEN.replace("127.0.0.1:6666:3", "127.0.0.1:6667:3")
    assert (tmp_path / "nutcracker.yml.bak").read_text() == HAND_WRITTEN
    assert count(calls) == 1
    assert DATED.search(done.stderr) and "restarted in" in done.stderr
    assert leftovers(tmp_path) == []

    mtime = conf.stat().st_mtime_ns
    again = hook(tmp_path, *args, "--restart-cmd", *restart)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr
    assert conf.stat().st_mtime_ns == mtime and count(calls) == 1


def test_unknown_master_is_refused_untouched(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    restart, calls = recorder(tmp_path)
    done = hook(
        tmp_path,
        *sentinel_args("shard9", 6667),
        "--nutcracker-config",
        str(conf),
        "--restart-cmd",
        *restart,
    )
    assert done.returncode == 2, done.stderr
    assert "shard9" in done.stderr and "refused" in done.stderr
    assert conf.read_text() == HAND_WRITTEN and count(calls) == 0
    assert not (tmp_path / "nutcracker.yml.bak").exists() and leftovers(tmp_path) == []


def test_bad_port_is_refused(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    done = hook(
        tmp_path, "shard1", "leader", "start", "127.0.0.1", "6666", "127.0.0.1", "http",
        "--nutcracker-config", str(conf), "--restart-cmd", "true",
    )  # fmt: skip
    assert done.returncode == 2 and conf.read_text() == HAND_WRITTEN


def test_failed_restart_is_retryable_and_retried(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    failing, calls = recorder(tmp_path, exit_status=3)
    args = [*sentinel_args("shard2", 7667), "--nutcracker-config", str(conf)]
    done = hook(tmp_path, *args, "--restart-cmd", *failing)
    assert done.returncode == 1, done.stderr
    assert "will be retried" in done.stderr and "exit 3" in done.stderr
    assert "127.0.0.1:7667:1 shard2" in conf.read_text() and count(calls) == 1
    assert leftovers(tmp_path) == ["nutcracker.yml.restart-pending"]
    # Sentinel's retry: the file already points there, but the restart is still owed.
    working, _ = recorder(tmp_path)
    retry = hook(tmp_path, *args, "--restart-cmd", *working)
    assert retry.returncode == 0, retry.stderr
    assert count(calls) == 2 and leftovers(tmp_path) == []


def test_inventory_guard_and_topology_restart_cmd(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    topo = write_topology(
        tmp_path, agent=f"restart: command\nrestart_cmd: [sh, -c, 'echo x >> {calls}']"
    )
    shard1 = load_topology(topo).shard("shard1")
    shard2 = load_topology(topo).shard("shard2")
    text = (
        "pool:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
        f"    - {shard1.master}:1 shard1\n    - {shard2.master}:1 shard2\n"
    )
    conf = conf_file(tmp_path, text)
    common = ["-c", str(topo), "--nutcracker-config", str(conf)]
    outside = hook(tmp_path, *sentinel_args("shard1", 1), *common)
    assert outside.returncode == 2, outside.stderr
    assert "not in its inventory" in outside.stderr
    assert conf.read_text() == text and count(calls) == 0

    replica = shard1.replicas[0]
    inside = hook(tmp_path, *sentinel_args("shard1", replica.port, replica.host), *common)
    assert inside.returncode == 0, inside.stderr
    assert f"{replica}:1 shard1" in conf.read_text() and count(calls) == 1


def test_concurrent_sentinels_restart_once(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    calls = tmp_path / "calls"
    restart = ["sh", "-c", f"sleep 0.3; echo x >> {calls}"]
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin")
    argv = [sys.executable, "-m", "redkeeper", "reconfig-hook", *sentinel_args("shard1", 6668)]
    argv += ["--nutcracker-config", str(conf), "--restart-cmd", *restart]
    procs = [subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        results = [(p.wait(timeout=30), p.communicate()[1]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(code == 0 for code, _ in results), results
    assert count(calls) == 1
    assert sum("nothing to do" in err for _, err in results) == 2
    assert "127.0.0.1:6668:3 shard1" in conf.read_text()


def test_hook_staging_mode_writes_only_the_staging_file(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    staging = tmp_path / "staged.yml"
    args = [*sentinel_args("shard1", 6667), "--nutcracker-config", str(conf)]
    done = hook(tmp_path, *args, "--staging", str(staging))
    assert done.returncode == 0, done.stderr
    assert conf.read_text() == HAND_WRITTEN
    assert staging.read_text() == HAND_WRITTEN.replace("6666:3", "6667:3")
    # the next Sentinel builds on the staged text, and a repeat is a no-op
    second = hook(tmp_path, *sentinel_args("shard2", 7667), "--nutcracker-config", str(conf),
                  "--staging", str(staging))  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "6667:3 shard1" in staging.read_text() and "7667:1 shard2" in staging.read_text()
    mtime = staging.stat().st_mtime_ns
    again = hook(tmp_path, *args, "--staging", str(staging))
    assert again.returncode == 0 and staging.stat().st_mtime_ns == mtime


# ---- apply-staged ------------------------------------------------------------------------


def apply_once(
    tmp_path: Path, staging: Path, conf: Path, restart: list[str]
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "apply-staged", "--staging", str(staging), "--config", str(conf), "--once",
        "--restart-cmd", *restart, cwd=tmp_path, timeout=60,
    )  # fmt: skip


def test_apply_staged_once_valid(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    staging = tmp_path / "staged.yml"
    new_text = HAND_WRITTEN.replace("6666:3", "6690:3")
    staging.write_text(new_text)
    restart, calls = recorder(tmp_path)
    done = apply_once(tmp_path, staging, conf, restart)
    assert done.returncode == 0, done.stderr
    assert conf.read_text() == new_text
    assert (tmp_path / "nutcracker.yml.bak").read_text() == HAND_WRITTEN
    assert count(calls) == 1
    assert DATED.search(done.stderr) and "Applied staged config" in done.stderr
    assert "nutcracker restarted in" in done.stderr and leftovers(tmp_path) == []
    again = apply_once(tmp_path, staging, conf, restart)
    assert again.returncode == 0 and "already live" in again.stderr and count(calls) == 1


def test_apply_staged_once_invalid_leaves_config(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    staging = tmp_path / "staged.yml"
    staging.write_text(HAND_WRITTEN + "  unknown_key: 1\n")
    restart, calls = recorder(tmp_path)
    done = apply_once(tmp_path, staging, conf, restart)
    assert done.returncode != 0
    assert "unknown_key" in done.stderr and "staged.yml" in done.stderr
    assert conf.read_text() == HAND_WRITTEN and count(calls) == 0
    assert not (tmp_path / "nutcracker.yml.bak").exists() and leftovers(tmp_path) == []


def test_apply_staged_refuses_a_symlink(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    secret = tmp_path / "secret"
    secret.write_text(HAND_WRITTEN.replace("6666", "6699"))
    staging = tmp_path / "staged.yml"
    staging.symlink_to(secret)
    restart, calls = recorder(tmp_path)
    done = apply_once(tmp_path, staging, conf, restart)
    assert done.returncode != 0 and "symlink" in done.stderr
    assert conf.read_text() == HAND_WRITTEN and count(calls) == 0


def wait_until(predicate: object, timeout: float) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_apply_staged_watches_with_inotify(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir()
    staging = spool / "nutcracker_update"
    staging.write_text(HAND_WRITTEN)  # = live: the start-up pass does nothing
    restart, calls = recorder(tmp_path)
    log = tmp_path / "watcher.log"
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin")
    argv = [sys.executable, "-m", "redkeeper", "apply-staged", "--staging", str(staging)]
    argv += ["--config", str(conf), "--poll-interval", "600", "--restart-cmd", *restart]
    with log.open("w") as out:
        watcher = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: "already live" in log.read_text(), 10), log.read_text()
        new_text = HAND_WRITTEN.replace("7666:1", "7690:1")
        tmp = spool / ".nutcracker_update.tmp"
        tmp.write_text(new_text)
        tmp.rename(staging)  # atomically, as the agent and the hook do
        assert wait_until(lambda: count(calls) == 1 and conf.read_text() == new_text, 10), (
            log.read_text()
        )
        assert "Applied staged config" in log.read_text()
        # a plain rewrite in place (close-write) is seen too
        staging.write_text(HAND_WRITTEN)
        assert wait_until(lambda: count(calls) == 2 and conf.read_text() == HAND_WRITTEN, 10)
        stopping = time.monotonic()
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=5) == 0
        assert time.monotonic() - stopping < 2.0
        assert "SIGTERM: stopped watching" in log.read_text()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()


def test_nutcracker_t_rejection_is_retryable(tmp_path: Path) -> None:
    text = HAND_WRITTEN.replace("127.0.0.1:22121", "no-such-host.invalid:22121")
    conf = conf_file(tmp_path, text)
    restart, calls = recorder(tmp_path)
    done = hook(
        tmp_path, *sentinel_args("shard1", 6667), "--nutcracker-config", str(conf),
        "--restart-cmd", *restart,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "nutcracker -t rejected it" in done.stderr and "retry later" in done.stderr
    assert conf.read_text() == text and count(calls) == 0 and leftovers(tmp_path) == []


def test_restart_cmd_needs_separate_words(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    done = hook(tmp_path, *sentinel_args("shard1", 6667), "--nutcracker-config", str(conf),
                "--restart-cmd=true")  # fmt: skip
    assert done.returncode == 2 and "separate words" in done.stderr
    assert conf.read_text() == HAND_WRITTEN


def test_lock_held_too_long_is_retryable(tmp_path: Path) -> None:
    conf = conf_file(tmp_path)
    restart, calls = recorder(tmp_path)
    with (tmp_path / "nutcracker.yml.lock").open("w") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        done = hook(
            tmp_path, *sentinel_args("shard1", 6667), "--nutcracker-config", str(conf),
            "--lock-timeout", "0.3", "--restart-cmd", *restart,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "still locked" in done.stderr
    assert conf.read_text() == HAND_WRITTEN and count(calls) == 0
