"""Test support for the redkeeper proxy: real redis-servers, the proxy in a thread or a process.

Every process listens on an ephemeral 127.0.0.1 port, works in its own temp dir and is stopped
by PID; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import uvloop

from redkeeper.model import Address
from redkeeper.placement import PoolServer, Ring
from redkeeper.process import ManagedProcess, find_binary, free_port, wait_for_port
from redkeeper.server import ProxyServer, ProxySettings, Router

HOST = "127.0.0.1"
T = TypeVar("T")


@dataclass
class RedisServer:
    address: Address
    process: ManagedProcess

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.address.host, port=self.address.port, protocol=2, socket_timeout=5
        )


@contextlib.contextmanager
def redis_servers(root: Path, count: int, *extra: str) -> Iterator[list[RedisServer]]:
    """`count` plain redis-servers (no persistence), stopped by PID afterwards."""
    binary = find_binary("redis-server")
    started: list[RedisServer] = []
    try:
        for i in range(count):
            for _attempt in range(3):
                port = free_port(HOST)
                workdir = root / f"redis-{i}-{port}"
                argv = [binary, "--port", str(port), "--bind", HOST, "--save", ""]
                argv += ["--appendonly", "no", "--dir", str(workdir), *extra]
                process = ManagedProcess(f"redis-{port}", argv, workdir, workdir / "redis.log")
                process.start()
                if wait_for_port(HOST, port, 10.0) and process.alive():
                    started.append(RedisServer(Address(HOST, port), process))
                    break
                process.stop()
            else:
                raise AssertionError("could not start a redis-server")
        yield started
    finally:
        for server in started:
            server.process.stop()


def ring_of(shards: Mapping[str, Address], hash_tag: str | None = None) -> Ring:
    return Ring(
        [PoolServer(a.host, a.port, 1, name) for name, a in shards.items()],
        "fnv1a_64",
        "ketama",
        hash_tag,
    )


class ProxyThread:
    """A ProxyServer on its own uvloop in a background thread (for route-swap tests)."""

    def __init__(
        self,
        shards: Mapping[str, Address],
        settings: ProxySettings | None = None,
        hash_tag: str | None = None,
        read_from: str = "master",
    ) -> None:
        self.ring = ring_of(shards, hash_tag)
        self.router = Router(self.ring, list(shards), read_from=read_from)
        self.router.set_routes(dict(shards))
        self.server = ProxyServer(self.router, settings or ProxySettings())
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        self.run(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.server.drain(1.0), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    @property
    def port(self) -> int:
        return self.server.port

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the proxy's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run `fn()` on the proxy's loop thread and return its result."""
        future: Future[T] = Future()

        def task() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the test thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(task)
        return future.result(timeout)

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def proxy_process(
    root: Path, shards: Mapping[str, Address], *extra: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`python -m redkeeper.server` (the dev entry) as a process; yields (port, process)."""
    root.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):
        port = free_port(HOST)
        argv = [sys.executable, "-m", "redkeeper.server", "--listen", f"{HOST}:{port}"]
        for name, address in shards.items():
            argv += ["--server", f"{name}={address}"]
        argv += list(extra)
        log = (root / f"proxy-{port}.log").open("wb")
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        log.close()
        try:
            if wait_for_port(HOST, port, 15.0) and process.poll() is None:
                yield port, process
                return
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
    raise AssertionError(f"the proxy did not start: {(root / 'proxy.log')}")


@contextlib.contextmanager
def nutcracker(
    root: Path, shards: Mapping[str, Address], hash_tag: str | None = None
) -> Iterator[int]:
    """nutcracker 0.5.0 with the same named pool (and `hash_tag`, if given); yields its port."""
    binary = find_binary("nutcracker")
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        listen, stats = free_port(HOST), free_port(HOST)
        lines = [
            "pool:",
            f"  listen: {HOST}:{listen}",
            "  redis: true",
            "  hash: fnv1a_64",
            "  distribution: ketama",
            "  auto_eject_hosts: false",
            "  timeout: 5000",
        ]
        if hash_tag is not None:
            lines.append(f'  hash_tag: "{hash_tag}"')
        lines += ["  servers:"]
        lines += [f"    - {a.host}:{a.port}:1 {name}" for name, a in shards.items()]
        conf = root / f"nutcracker-{attempt}.yml"
        conf.write_text("\n".join(lines) + "\n")
        argv = [binary, "-c", str(conf), "-s", str(stats), "-a", HOST]
        process = ManagedProcess("nutcracker", argv, root, root / "nutcracker.log")
        process.start()
        try:
            if wait_for_port(HOST, listen, 10.0) and process.alive():
                yield listen
                return
        finally:
            process.stop()
    raise AssertionError("nutcracker did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def keys_on(ring: Ring, shard: str, count: int, prefix: str = "k") -> list[bytes]:
    found: list[bytes] = []
    i = 0
    while len(found) < count:
        key = f"{prefix}{i}".encode()
        if ring.locate(key).name == shard:
            found.append(key)
        i += 1
    return found


def shards_of(servers: Sequence[RedisServer]) -> dict[str, Address]:
    return {f"shard{i + 1}": s.address for i, s in enumerate(servers)}


def cmd(client: redis.Redis, *args: object) -> Any:
    """One raw command (redis-py's execute_command is untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]
