"""Integration tests of the Sentinel client against real redis-server and redis-sentinel.

Each test gets its own stack on ephemeral loopback ports in tmp_path: one master, one replica,
three Sentinels. Every wait is bounded polling; every process is stopped in the finalizer.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
import redis

from redkeeper.core import MasterReport, MasterVerdict, SentinelAnswer, Status, decide_masters
from redkeeper.errors import BUG
from redkeeper.model import Address
from redkeeper.process import ManagedProcess, find_binary, free_port, wait_for_port
from redkeeper.sentinel import SentinelEvent, SentinelQuerier, SentinelWatcher

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
NAME = "mymaster"
POLL = 0.02


def _cmd(port: int, *args: str, timeout: float = 0.5) -> object:
    """One command on a throwaway connection; the raw reply (redis-py is untyped here)."""
    client = redis.Redis(
        host=HOST, port=port, socket_timeout=timeout, protocol=2, decode_responses=True
    )
    try:
        execute = cast(Callable[..., object], client.execute_command)
        return execute(*args)
    finally:
        client.close()


async def query_all(addrs: list[Address], timeout: float) -> list[SentinelAnswer]:
    """Every Sentinel's answer over fresh connections (the agent's querier, then closed)."""
    querier = SentinelQuerier()
    try:
        return await querier(addrs, password=None, timeout=timeout)
    finally:
        await querier.aclose()


def decide(
    answers: list[SentinelAnswer], configured: list[Address], names: list[str] | None = None
) -> dict[str, MasterVerdict]:
    return decide_masters(answers, configured, names).verdicts


def _pairs(raw: object) -> dict[str, str]:
    assert isinstance(raw, list)
    return {str(raw[i]): str(raw[i + 1]) for i in range(0, len(raw), 2)}


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


async def _await(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` on the event loop; return how long it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start >= timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL)
    return time.monotonic() - start


@dataclass
class Stack:
    tmp: Path
    master: Address
    replica: Address
    sentinels: list[Address]
    procs: dict[str, ManagedProcess] = field(default_factory=dict)
    retired: list[ManagedProcess] = field(default_factory=list)

    def start(self, name: str, argv: list[str], port: int) -> None:
        workdir = self.tmp / name
        proc = ManagedProcess(name, argv, workdir, workdir / "log")
        if name in self.procs:
            self.retired.append(self.procs[name])
        self.procs[name] = proc
        proc.start()
        if not wait_for_port(HOST, port, timeout=5.0):
            raise AssertionError(f"{name} did not listen on {port}:\n{proc.tail_log()}")

    def start_sentinel(self, index: int) -> None:
        addr = self.sentinels[index]
        conf = self.tmp / f"sentinel{index}" / "sentinel.conf"
        if not conf.exists():  # Sentinel rewrites it: keep its own version on restart
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(
                f"port {addr.port}\nbind {HOST}\ndaemonize no\n"
                f"dir {conf.parent}\n"
                f"sentinel monitor {NAME} {HOST} {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {NAME} 1000\n"
                f"sentinel failover-timeout {NAME} 5000\n"
            )
        argv = [find_binary("redis-sentinel"), str(conf)]
        self.start(f"sentinel{index}", argv, addr.port)

    def proc(self, name: str) -> ManagedProcess:
        return self.procs[name]

    def sentinel_ready(self, addr: Address) -> bool:
        try:
            info = _pairs(_cmd(addr.port, "SENTINEL", "MASTER", NAME))
        except redis.RedisError:
            return False
        return (
            info.get("flags") == "master"
            and info.get("num-slaves") == "1"
            and info.get("num-other-sentinels") == str(len(self.sentinels) - 1)
        )

    def replica_synced(self) -> bool:
        try:
            raw = _cmd(self.replica.port, "INFO", "replication")
        except redis.RedisError:
            return False
        return isinstance(raw, dict) and raw.get("master_link_status") == "up"

    def stop_all(self) -> None:
        for proc in [*self.procs.values(), *self.retired]:
            proc.signal(signal.SIGCONT)  # a SIGSTOPped process would not see SIGTERM
            proc.stop(timeout=3.0)
        left = [p.name for p in [*self.procs.values(), *self.retired] if p.exited() is None]
        assert not left, f"processes left behind: {left}"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    master = Address(HOST, free_port())
    replica = Address(HOST, free_port())
    sentinels = [Address(HOST, free_port()) for _ in range(3)]
    st = Stack(tmp_path, master, replica, sentinels)
    server = find_binary("redis-server")
    # repl-diskless-sync-delay is read by the *master* (5 s by default in Redis 7).
    common = ["--bind", HOST, "--save", "", "--appendonly", "no", "--daemonize", "no"]
    common += ["--repl-diskless-sync-delay", "0"]
    try:
        st.start("master", [server, "--port", str(master.port), *common], master.port)
        st.start(
            "replica",
            [
                server,
                "--port",
                str(replica.port),
                *common,
                "--replicaof",
                HOST,
                str(master.port),
            ],
            replica.port,
        )
        for i in range(len(sentinels)):
            st.start_sentinel(i)
        _wait(st.replica_synced, 15.0, "the replica to sync")
        _wait(
            lambda: all(st.sentinel_ready(s) for s in sentinels),
            15.0,
            "every Sentinel to know the master, the replica and the other Sentinels",
        )
        yield st
    finally:
        st.stop_all()


class Recorder:
    """Callbacks for SentinelWatcher that remember what they saw."""

    def __init__(self) -> None:
        self.events: list[tuple[Address, SentinelEvent]] = []
        self.links: list[tuple[Address, bool]] = []

    def on_event(self, addr: Address, event: SentinelEvent) -> None:
        self.events.append((addr, event))

    def on_link(self, addr: Address, up: bool) -> None:
        self.links.append((addr, up))

    def kinds(self) -> set[str]:
        return {e.kind for _, e in self.events}


async def _with_watcher(
    watcher: SentinelWatcher, body: Callable[[], Awaitable[None]], max_cancel: float = 1.0
) -> None:
    task = asyncio.create_task(watcher.run())
    try:
        await body()
    finally:
        task.cancel()
        start = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - start < max_cancel, "cancellation was not prompt"
    assert watcher.links_up == 0


def test_querier_and_decide_masters(stack: Stack) -> None:
    answers = asyncio.run(query_all(stack.sentinels, timeout=0.5))
    assert [a.sentinel for a in answers] == stack.sentinels
    assert all(a.error is None and a.reports is not None for a in answers)
    verdicts = decide(answers, stack.sentinels)
    v = verdicts[NAME]
    assert (v.status, v.address, v.config_epoch) == (Status.OK, stack.master, 0)
    assert (v.answered, v.agreeing) == (3, 3)
    report = answers[0].reports[NAME] if answers[0].reports else None
    assert report is not None
    assert (report.quorum, report.num_other_sentinels) == (2, 2)
    assert "master" in report.flags


def test_two_of_three_down_is_no_majority(stack: Stack) -> None:
    stack.proc("sentinel1").stop()
    stack.proc("sentinel2").signal(signal.SIGSTOP)  # frozen: connects, never answers
    start = time.monotonic()
    answers = asyncio.run(query_all(stack.sentinels, timeout=0.5))
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, f"query_all took {elapsed:.2f} s with a 0.5 s timeout"
    assert answers[0].reports is not None
    assert answers[1].reports is None and answers[1].error
    assert answers[2].reports is None and "0.5 s" in (answers[2].error or "")
    v = decide(answers, stack.sentinels, [NAME])[NAME]
    assert (v.status, v.address, v.answered, v.needed) == (Status.NO_MAJORITY, None, 1, 2)


def test_watcher_sees_failover(stack: Stack) -> None:
    rec = Recorder()
    watcher = SentinelWatcher(
        stack.sentinels, rec.on_event, rec.on_link, ping_interval=0.2, backoff_max=0.5
    )

    def seen(kind: str) -> bool:
        return kind in rec.kinds()

    reports: list[MasterReport] = []

    async def poll_reports() -> None:
        while True:
            for answer in await query_all(stack.sentinels, timeout=0.5):
                if answer.reports and NAME in answer.reports:
                    reports.append(answer.reports[NAME])
            await asyncio.sleep(0.005)

    async def body() -> None:
        await _await(lambda: watcher.links_up == 3, 5.0, "three links up")
        assert sorted(a for a, up in rec.links if up) == sorted(stack.sentinels)
        poller = asyncio.create_task(poll_reports())
        stack.proc("master").signal(signal.SIGKILL)
        await _await(lambda: seen("+sdown"), 5.0, "+sdown")
        await _await(lambda: seen("+switch-master"), 15.0, "+switch-master")
        switches = [e for _, e in rec.events if e.kind == "+switch-master"]
        assert all(
            (e.master_name, e.old_master, e.new_master) == (NAME, stack.master, stack.replica)
            for e in switches
        )
        sdown = next(e for _, e in rec.events if e.kind == "+sdown")
        assert (sdown.instance_role, sdown.instance) == ("master", stack.master)
        assert any(e.wakes_agent for _, e in rec.events)

        async def converged() -> bool:
            answers = await query_all(stack.sentinels, timeout=0.5)
            v = decide(answers, stack.sentinels)[NAME]
            return v.status is Status.OK and v.address == stack.replica

        deadline = time.monotonic() + 10.0
        while not await converged():
            assert time.monotonic() < deadline, "Sentinels never agreed on the new master"
            await asyncio.sleep(POLL)
        poller.cancel()
        # The leader's SENTINEL MASTERS keeps the old address with the NEW epoch between
        # +promoted-slave and +failover-end; query_sentinel must report the promoted one.
        stale = [r for r in reports if r.config_epoch >= 1 and r.reported_address == stack.master]
        assert not stale, f"old master reported at the new epoch: {stale[:3]}"
        answers = await query_all(stack.sentinels, timeout=0.5)
        v = decide(answers, stack.sentinels)[NAME]
        assert v.config_epoch is not None and v.config_epoch >= 1
        assert watcher.links_up == 3

    asyncio.run(_with_watcher(watcher, body))


def test_watcher_link_down_and_up(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    calls: list[tuple[Address, bool]] = []

    def on_link(addr: Address, up: bool) -> None:
        rec.on_link(addr, up)
        calls.append((addr, up))
        raise RuntimeError("callback failure")  # must be logged, not kill the watcher

    ping = 0.3
    watcher = SentinelWatcher(
        stack.sentinels, rec.on_event, on_link, ping_interval=ping, backoff_max=0.5
    )
    killed, frozen = stack.sentinels[0], stack.sentinels[1]

    async def body() -> None:
        await _await(lambda: watcher.links_up == 3, 5.0, "three links up")
        # Killed: the socket closes, the drop is seen at once.
        stack.proc("sentinel0").signal(signal.SIGKILL)
        took = await _await(lambda: (killed, False) in rec.links, 3.0, "killed link down")
        assert took < 1.0
        assert rec.links[-1] == (killed, False)
        assert watcher.links_up == 2
        # Restart on the same port: up again after the (jittered, capped) backoff.
        n_up = rec.links.count((killed, True))
        stack.start_sentinel(0)
        await _await(lambda: rec.links.count((killed, True)) > n_up, 5.0, "restarted link up")
        # Frozen: TCP stays open; only the missing PONGs reveal it.
        stack.proc("sentinel1").signal(signal.SIGSTOP)
        took = await _await(lambda: (frozen, False) in rec.links, 3.0, "frozen link down")
        assert took < ping * 3 + 0.5, f"frozen Sentinel detected after {took:.2f} s"
        stack.proc("sentinel1").signal(signal.SIGCONT)
        await _await(lambda: watcher.links_up == 3, 5.0, "all links up again")
        assert watcher.links_up == len(stack.sentinels)

    with caplog.at_level(logging.ERROR, logger="redkeeper.sentinel"):
        asyncio.run(_with_watcher(watcher, body))
    bug_logs = [r for r in caplog.records if BUG in r.getMessage()]
    assert len(bug_logs) == len(calls) > 0

    # Cancelling closed every pub/sub connection on the live Sentinels.
    def no_subscribers() -> bool:
        for addr in stack.sentinels:
            clients = _cmd(addr.port, "CLIENT", "LIST")
            assert isinstance(clients, str)
            if any(" psub=1 " in f" {line} " for line in clients.splitlines()):
                return False
        return True

    _wait(no_subscribers, 3.0, "the pub/sub connections to close")
