"""ManagedNutcracker with a real nutcracker in front of a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from redkeeper.errors import ProcessError
from redkeeper.model import Address
from redkeeper.process import (
    ManagedProcess,
    find_binary,
    free_port,
    pid_alive,
    port_open,
    stop_pid,
    wait_for_port,
)
from redkeeper.proxy.twemproxy.restart import ManagedNutcracker
from redkeeper.stack import state

pytestmark = pytest.mark.integration

MEASURED: list[float] = []


@dataclass
class Setup:
    redis_port: int
    listen: Address
    conf: Path
    argv: list[str]
    state_dir: Path
    log: Path

    def managed(self, **kwargs: float) -> ManagedNutcracker:
        return ManagedNutcracker(self.argv, self.listen, self.state_dir, self.log, **kwargs)


def pool_yaml(listen: Address, redis_port: int) -> str:
    return (
        "alpha:\n"
        f"  listen: {listen}\n"
        "  redis: true\n"
        "  preconnect: true\n"
        "  timeout: 1000\n"
        "  servers:\n"
        f"    - 127.0.0.1:{redis_port}:1 shard1\n"
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    redis_port = free_port()
    server = ManagedProcess(
        "redis",
        [
            find_binary("redis-server"),
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        tmp_path,
        tmp_path / "redis.log",
    )
    server.start()
    listen = Address("127.0.0.1", free_port())
    conf = tmp_path / "nutcracker.yml"
    conf.write_text(pool_yaml(listen, redis_port))
    log = tmp_path / "log" / "nutcracker.log"
    argv = [
        find_binary("nutcracker"),
        "-c",
        str(conf),
        "-s",
        str(free_port()),
        "-a",
        "127.0.0.1",
        "-o",
        str(log),
    ]
    try:
        assert wait_for_port("127.0.0.1", redis_port, 10.0), server.tail_log()
        yield Setup(redis_port, listen, conf, argv, tmp_path / "state", log)
    finally:
        record = state.read_proxy_record(tmp_path / "state")
        if record is not None:
            stop_pid(record.pid, record.start_ticks, 2.0)
        server.stop(5.0)


def client(listen: Address) -> redis.Redis:
    return redis.Redis(
        host=listen.host, port=listen.port, protocol=2, driver_info=None, socket_timeout=2
    )


def roundtrip(listen: Address, key: str) -> None:
    with contextlib.closing(client(listen)) as conn:
        assert conn.set(key, "v")
        assert conn.get(key) == b"v"


def test_start_adopt_restart_stop(setup: Setup) -> None:
    first = setup.managed()
    asyncio.run(first.ensure_running())
    pid = first.pid
    assert pid is not None and pid_alive(pid)
    record = state.read_proxy_record(setup.state_dir)
    assert record is not None and record.pid == pid and record.argv == tuple(setup.argv)
    assert record.name == "nutcracker"
    roundtrip(setup.listen, "before")

    # An agent restart: a new instance with the same argv adopts, clients keep their link.
    with contextlib.closing(client(setup.listen)) as held:
        held.ping()
        second = setup.managed()
        asyncio.run(second.ensure_running())
        assert second.pid == pid  # the first instance's process: adopted, not restarted
        assert held.get("before") == b"v"  # the same connection still works

    for i in range(5):
        result = asyncio.run(second.restart())
        assert result.ok, result.output
        assert result.pid is not None and result.pid != pid and second.pid == result.pid
        assert not pid_alive(pid)
        assert 0 < result.duration_ms < 2000
        MEASURED.append(result.duration_ms)
        record = state.read_proxy_record(setup.state_dir)
        assert record is not None and record.pid == result.pid
        roundtrip(setup.listen, f"after-{i}")
        pid = result.pid
    print(f"nutcracker restart durations (ms): {[round(d, 1) for d in MEASURED]}")

    asyncio.run(second.stop())
    assert state.read_proxy_record(setup.state_dir) is None
    deadline = time.monotonic() + 2
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pid_alive(pid)
    assert not port_open(setup.listen.host, setup.listen.port)


def test_other_argv_replaces_the_recorded_one(setup: Setup) -> None:
    first = setup.managed()
    asyncio.run(first.ensure_running())
    old = first.pid
    assert old is not None
    other = ManagedNutcracker([*setup.argv, "-i", "2000"], setup.listen, setup.state_dir, setup.log)
    asyncio.run(other.ensure_running())
    assert other.pid not in (None, old) and not pid_alive(old)
    record = state.read_proxy_record(setup.state_dir)
    assert record is not None and record.pid == other.pid
    asyncio.run(other.stop())


def test_broken_config_restart_fails_cleanly(setup: Setup) -> None:
    managed = setup.managed(ready_timeout=5.0)
    asyncio.run(managed.ensure_running())
    old = managed.pid
    setup.conf.write_text(pool_yaml(setup.listen, setup.redis_port) + "  bogus_key: 1\n")
    result = asyncio.run(managed.restart())
    assert not result.ok and result.pid is None
    assert "nutcracker exited with status" in result.output
    assert 'directive "bogus_key" is unknown' in result.output  # the log tail says why
    assert old is not None and not pid_alive(old)
    assert managed.pid is None and state.read_proxy_record(setup.state_dir) is None
    # and it starts again once the file is fixed
    setup.conf.write_text(pool_yaml(setup.listen, setup.redis_port))
    result = asyncio.run(managed.restart())
    assert result.ok, result.output
    roundtrip(setup.listen, "fixed")
    asyncio.run(managed.stop())


def test_ensure_running_raises_with_the_log_tail(setup: Setup) -> None:
    setup.conf.write_text("alpha:\n  listen: 127.0.0.1:1\n  servers: []\n")
    with pytest.raises(ProcessError, match="exited with status"):
        asyncio.run(setup.managed(ready_timeout=5.0).ensure_running())
    assert state.read_proxy_record(setup.state_dir) is None


def test_never_ready_is_killed_after_ready_timeout(tmp_path: Path) -> None:
    listen = Address("127.0.0.1", free_port())
    managed = ManagedNutcracker(
        ["sleep", "30"], listen, tmp_path / "state", tmp_path / "x.log", ready_timeout=0.3
    )
    with pytest.raises(ProcessError, match="did not accept connections"):
        asyncio.run(managed.ensure_running())
    assert managed.pid is None and state.read_proxy_record(tmp_path / "state") is None


def test_cancelled_start_stays_recorded(tmp_path: Path) -> None:
    listen = Address("127.0.0.1", free_port())
    managed = ManagedNutcracker(["sleep", "30"], listen, tmp_path / "state", tmp_path / "x.log")

    async def start_then_cancel() -> None:
        task = asyncio.create_task(managed.ensure_running())
        await asyncio.sleep(0.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(start_then_cancel())
    record = state.read_proxy_record(tmp_path / "state")
    assert record is not None and record.alive(), "a started child must never go unrecorded"
    asyncio.run(
        ManagedNutcracker(["sleep", "30"], listen, tmp_path / "state", tmp_path / "x.log").stop()
    )
    assert state.read_proxy_record(tmp_path / "state") is None
    deadline = time.monotonic() + 2
    while pid_alive(record.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pid_alive(record.pid)
