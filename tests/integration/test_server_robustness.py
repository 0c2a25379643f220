"""Integration: the proxy survives bad clients and enforces its limits, one client at a time.

Malformed RESP, huge lengths, random bytes and inline commands from several clients while
another client keeps being served; max clients, max request size, idle timeout, drain,
backpressure, and the memory cost of 2,000 idle connections (RSS of the dev-entry process).
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redkeeper.server import ProxySettings
from tests.server_support import (
    HOST,
    ProxyThread,
    RedisServer,
    keys_on,
    proxy_process,
    redis_servers,
    rss_kib,
    shards_of,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_servers(tmp_path_factory.mktemp("robust"), 2) as servers:
        yield servers


def _exchange(port: int, payload: bytes, timeout: float = 2.0) -> tuple[bytes, bool]:
    """Send raw bytes; return (everything read, whether the proxy closed the connection)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return data, False
            except ConnectionResetError:  # closed with our unread bytes pending: an RST
                return data, True
            if not chunk:
                return data, True
            data += chunk
            sock.settimeout(max(0.01, min(0.3, deadline - time.monotonic())))
        return data, False


CASES = [
    (b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n:5\r\n", b"-ERR Protocol error"),
    (b"*1\r\n$-5\r\n", b"-ERR Protocol error"),
    (b"*-5\r\n", b"-ERR Protocol error"),
    (b"*99999999999\r\n", b"-ERR Protocol error"),
    (b"*1\r\n$99999999999999999999999\r\n", b"-ERR Protocol error"),
    (b"*1\r\n*1\r\n$1\r\na\r\n", b"-ERR Protocol error"),
    (b"*2\r\n$3\r\nGET\r\n$1\r\nab\r\n", b"-ERR Protocol error"),
    (b'SET a "unbalanced\r\n', b"-ERR Protocol error: unbalanced quotes"),
]


def test_malformed_requests_close_only_that_client(backends: list[RedisServer]) -> None:
    settings = ProxySettings(max_request_bytes=64 * 1024, max_multibulk=1000)
    with ProxyThread(shards_of(backends), settings) as proxy:
        steady = proxy.client(protocol=2)
        for payload, expected in CASES:
            data, closed = _exchange(proxy.port, payload)
            assert expected in data, (payload, data)
            assert closed, payload
            assert steady.ping() is True
        # a request bigger than max_request_bytes, and more arguments than max_multibulk
        big = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n" + b"x" * 100_000
        data, closed = _exchange(proxy.port, big)
        assert b"-ERR Protocol error: invalid bulk length" in data and closed
        # a bulk within the header limit whose bytes exceed max_request_bytes
        big = b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$40000\r\n" + b"x" * 40_000 + b"\r\n"
        data, closed = _exchange(proxy.port, big + b"$1\r\nb\r\n$40000\r\n" + b"y" * 30_000)
        assert b"-ERR Protocol error: request too large" in data and closed
        many = b"*1001\r\n" + b"$1\r\na\r\n" * 1001
        data, closed = _exchange(proxy.port, many)
        assert b"-ERR Protocol error: invalid multibulk length" in data and closed
        # replies owed before the error are sent first, in order
        data, closed = _exchange(proxy.port, b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n$x\r\n")
        assert data.startswith(b"+PONG\r\n+PONG\r\n-ERR Protocol error") and closed
        steady.close()


def test_pipeline_split_mid_request_for_longer_than_max_request_bytes(
    backends: list[RedisServer],
) -> None:
    """A client that keeps pipelining, each send ending inside a request, is no "request too
    large": only the unfinished request counts toward max_request_bytes."""
    settings = ProxySettings(max_request_bytes=4096, max_multibulk=1000)
    requests = b"".join(b"*3\r\n$3\r\nSET\r\n$6\r\nsp%04d\r\n$2\r\nvv\r\n" % i for i in range(2000))
    assert len(requests) > 10 * settings.max_request_bytes
    with ProxyThread(shards_of(backends), settings) as proxy:
        with socket.create_connection((HOST, proxy.port), timeout=10) as sock:
            step = 1000 - 7  # never a multiple of one request's length: every send ends midway
            for start in range(0, len(requests), step):
                sock.sendall(requests[start : start + step])
                time.sleep(0.001)
            want = b"+OK\r\n" * 2000
            data = b""
            deadline = time.monotonic() + 10
            while len(data) < len(want) and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data == want
        assert proxy.client(protocol=2).get("sp1999") == b"vv"


def test_inline_commands(backends: list[RedisServer]) -> None:
    with ProxyThread(shards_of(backends)) as proxy:
        inline = b"PING\r\nSET inl 'a b'\r\nGET inl\r\nECHO \"x\\ty\"\n"
        data, closed = _exchange(proxy.port, inline)
        assert data == b"+PONG\r\n+OK\r\n$3\r\na b\r\n$3\r\nx\ty\r\n"
        assert not closed
        data, _ = _exchange(proxy.port, b"PING\r\n*2\r\n$3\r\nGET\r\n$3\r\ninl\r\n")
        assert data == b"+PONG\r\n$3\r\na b\r\n"
        data, _ = _exchange(proxy.port, b"QUIT\r\nPING\r\n")
        assert data == b"+OK\r\n"


def test_fuzz_keeps_serving_others_and_memory_bounded(
    backends: list[RedisServer], tmp_path: Path
) -> None:
    rng = random.Random(1234)
    valid = [b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", b"*2\r\n$4\r\nMGET\r\n$1\r\na\r\n"]
    payloads: list[bytes] = []
    for _ in range(240):
        choice = rng.random()
        if choice < 0.3:
            payloads.append(rng.randbytes(rng.randint(1, 300)))
        elif choice < 0.6:
            frame = rng.choice(valid)
            payloads.append(frame[: rng.randint(1, len(frame) - 1)])  # truncated
        elif choice < 0.8:
            n = rng.choice([-7, -2, 10**12, 2**31, 2**40])
            payloads.append(rng.choice([b"*%d\r\n" % n, b"*1\r\n$%d\r\n" % n]))
        else:
            payloads.append(rng.choice([b"PING\r\n", b"SET a b\r\n", b"GET a\r\n", b"\r\n\r\n"]))
    with proxy_process(tmp_path, shards_of(backends), "--max-request-bytes", "1048576") as (
        port,
        process,
    ):
        steady = redis.Redis(host=HOST, port=port, protocol=2, socket_timeout=5)
        assert steady.set("fuzz", "ok") is True
        baseline = rss_kib(process.pid)
        errors: list[str] = []

        def attack(chunk: list[bytes]) -> None:
            for payload in chunk:
                try:
                    _exchange(port, payload, timeout=0.1)
                except OSError as exc:
                    errors.append(repr(exc))

        threads = [threading.Thread(target=attack, args=(payloads[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        served = 0
        while any(t.is_alive() for t in threads):
            assert steady.get("fuzz") == b"ok"
            served += 1
        for thread in threads:
            thread.join()
        assert process.poll() is None, "the proxy died"
        assert steady.get("fuzz") == b"ok"
        grown = rss_kib(process.pid) - baseline
        print(f"fuzz: {len(payloads)} payloads, {served} GETs served meanwhile, RSS +{grown} KiB")
        assert grown < 64 * 1024
        assert not errors
        steady.close()


def test_max_clients_like_redis(backends: list[RedisServer]) -> None:
    with ProxyThread(shards_of(backends), ProxySettings(max_clients=3)) as proxy:
        held = [socket.create_connection((HOST, proxy.port), timeout=2) for _ in range(3)]
        try:
            wait_for(lambda: len(proxy.server.clients) == 3, 5, "3 clients")
            data, closed = _exchange(proxy.port, b"PING\r\n")
            assert data == b"-ERR max number of clients reached\r\n" and closed
            held[0].sendall(b"PING\r\n")
            assert held[0].recv(100) == b"+PONG\r\n"
        finally:
            for sock in held:
                sock.close()


def test_idle_timeout(backends: list[RedisServer]) -> None:
    settings = ProxySettings(client_idle_timeout=0.3, tick=0.02)
    with (
        ProxyThread(shards_of(backends), settings) as proxy,
        socket.create_connection((HOST, proxy.port), timeout=3) as sock,
    ):
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the proxy
        assert 0.2 < time.monotonic() - started < 2.5


def test_drain_answers_in_flight_then_closes(backends: list[RedisServer]) -> None:
    proxy = ProxyThread(shards_of(backends))
    with proxy:
        port = proxy.port
        client = proxy.client(protocol=2)
        pipe = client.pipeline(transaction=False)
        for i in range(2000):
            pipe.set(f"d{i}", i)
        replies: list[object] = []

        def execute() -> None:
            try:
                replies.extend(pipe.execute())
            except redis.ConnectionError:  # closed by the drain before all were answered
                replies.append("closed")

        runner = threading.Thread(target=execute)
        runner.start()
        time.sleep(0.05)
        started = time.monotonic()
        proxy.run(proxy.server.drain(3.0))
        assert time.monotonic() - started < 3.5
        runner.join(5)
        with pytest.raises(OSError):
            socket.create_connection((HOST, port), timeout=0.5)
    # every reply the client got is a real one (the drain closed it only after answering)
    assert replies in ([], ["closed"]) or all(r is True for r in replies)


def test_backpressure_pauses_a_client_that_does_not_read(backends: list[RedisServer]) -> None:
    settings = ProxySettings(client_write_high=64 * 1024, client_write_low=16 * 1024)
    with ProxyThread(shards_of(backends), settings) as proxy:
        backends[0].client().set("bp", b"v" * 10_000)
        backends[1].client().set("bp", b"v" * 10_000)
        with socket.create_connection((HOST, proxy.port), timeout=5) as sock:
            request = b"*2\r\n$3\r\nGET\r\n$2\r\nbp\r\n" * 500
            sock.sendall(request * 4)  # 2,000 GETs of 10 kB, never read for a while

            def paused() -> bool:
                return any(c.paused for c in proxy.server.clients.values())

            wait_for(paused, 5, "the proxy to pause reading the client")
            other = proxy.client(protocol=2)
            assert other.ping() is True  # others are served meanwhile
            other.close()
            received = 0
            while received < 2000 * 10_009:
                chunk = sock.recv(1 << 20)
                assert chunk
                received += len(chunk)
            assert received == 2000 * len(b"$10000\r\n" + b"v" * 10_000 + b"\r\n")


def test_two_thousand_idle_connections(backends: list[RedisServer], tmp_path: Path) -> None:
    with proxy_process(tmp_path, shards_of(backends)) as (port, process):
        probe = redis.Redis(host=HOST, port=port, protocol=2, socket_timeout=5)
        assert probe.ping() is True
        before = rss_kib(process.pid)

        async def hold() -> int:
            conns = []
            for _ in range(2000):
                conns.append(await asyncio.open_connection(HOST, port))
            for reader, writer in conns[::100]:
                writer.write(b"PING\r\n")
                assert await reader.readexactly(7) == b"+PONG\r\n"
            await asyncio.sleep(0.2)
            rss = rss_kib(process.pid)
            for _, writer in conns:
                writer.close()
            return rss

        after = asyncio.run(hold())
        per_connection = (after - before) * 1024 / 2000
        print(f"2000 idle connections: RSS {before} -> {after} KiB, {per_connection:.0f} B each")
        assert per_connection < 20 * 1024
        assert probe.ping() is True
        probe.close()


def test_saturated_backend_pauses_every_client(backends: list[RedisServer]) -> None:
    settings = ProxySettings(backend_write_high=64 * 1024, timeout=0)
    with ProxyThread(shards_of(backends), settings) as proxy:
        key = keys_on(proxy.ring, "shard1", 1)[0]
        value = b"v" * 10_000
        frame = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(key),
            key,
            len(value),
            value,
        )
        backends[0].process.signal(signal.SIGSTOP)
        writer = socket.create_connection((HOST, proxy.port), timeout=30)
        try:
            sender = threading.Thread(target=lambda: writer.sendall(frame * 3000), daemon=True)
            sender.start()
            wait_for(lambda: proxy.server.pool.saturation > 0, 15, "a saturated backend")
            with socket.create_connection((HOST, proxy.port), timeout=0.5) as other:
                other.sendall(b"PING\r\n")
                with pytest.raises(TimeoutError):
                    other.recv(100)  # not read while the backend is saturated
                backends[0].process.signal(signal.SIGCONT)
                other.settimeout(15)
                assert other.recv(100) == b"+PONG\r\n"
            sender.join(30)
            assert not sender.is_alive()
        finally:
            backends[0].process.signal(signal.SIGCONT)
            writer.close()
