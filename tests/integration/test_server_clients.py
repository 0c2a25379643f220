"""Integration: stock clients at their default settings work through the proxy, warning-free.

Two real redis-servers behind a ProxyServer; redis-py 8 (sync and asyncio; RESP3 by default
and protocol=2) and redis-cli run SET, GET, MGET, DEL, a pipeline and EVAL, and the test
asserts that neither a Python warning nor a logged warning was emitted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from redkeeper.process import find_binary
from tests.server_support import (
    HOST,
    ProxyThread,
    RedisServer,
    cmd,
    keys_on,
    redis_servers,
    shards_of,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_servers(tmp_path_factory.mktemp("clients"), 2) as servers:
        yield servers


@pytest.fixture
def proxy(backends: list[RedisServer]) -> Iterator[ProxyThread]:
    for server in backends:
        server.client().flushall()
    with ProxyThread(shards_of(backends), hash_tag="{}") as running:
        yield running


def _exercise(client: redis.Redis, ring_keys: tuple[list[bytes], list[bytes]]) -> None:
    a, b = ring_keys
    assert client.set(a[0], b"1") is True
    assert client.get(a[0]) == b"1"
    assert client.mset({a[1]: b"x", b[0]: b"y", b[1]: b"z"}) is True
    assert client.mget([a[1], b[0], b"missing", b[1]]) == [b"x", b"y", None, b"z"]
    pipe = client.pipeline(transaction=False)
    for i in range(50):
        pipe.set(f"p{i}", i)
    pipe.get("p7")
    pipe.incr("p8")
    assert pipe.execute()[-2:] == [b"7", 9]
    script = "return redis.call('SET', KEYS[1], ARGV[1])"
    assert client.eval(script, 1, a[2], "v") in (b"OK", "OK")
    assert client.get(a[2]) == b"v"
    assert client.exists(a[0], a[1], b[0], b[1], b"missing") == 4
    assert client.delete(a[0], a[1], b[0], b[1]) == 4
    assert client.ping() is True
    assert client.hset("h", mapping={"f": "1"}) == 1
    assert client.hgetall("h") == {b"f": b"1"}


def _keys(proxy: ProxyThread) -> tuple[list[bytes], list[bytes]]:
    return keys_on(proxy.ring, "shard1", 3), keys_on(proxy.ring, "shard2", 2)


@pytest.mark.parametrize("protocol", [None, 2, 3])
def test_redis_py_sync_default_settings_no_warning(
    proxy: ProxyThread, protocol: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    kwargs = {} if protocol is None else {"protocol": protocol}
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        client = redis.Redis(host=HOST, port=proxy.port, **kwargs)  # type: ignore[arg-type]
        try:
            _exercise(client, _keys(proxy))
            hello = cmd(client, "HELLO")
            if isinstance(hello, list):  # RESP2: a flat array of pairs
                hello = dict(zip(hello[::2], hello[1::2], strict=True))
            assert hello[b"proto"] == (protocol or 3)
            assert hello[b"version"] == b"7.0.0" and hello[b"mode"] == b"standalone"
        finally:
            client.close()
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("protocol", [None, 2])
def test_redis_py_asyncio_default_settings_no_warning(
    proxy: ProxyThread, protocol: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = _keys(proxy)

    async def scenario() -> None:
        kwargs = {} if protocol is None else {"protocol": protocol}
        client = redis.asyncio.Redis(host=HOST, port=proxy.port, **kwargs)  # type: ignore[arg-type]
        try:
            assert await client.set(a[0], "1") is True
            assert await client.get(a[0]) == b"1"
            assert await client.mget([a[0], b[0], "nope"]) == [b"1", None, None]
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(b[0], "2")
                pipe.get(b[0])
                pipe.delete(a[0], b[0])
                assert await pipe.execute() == [True, b"2", 2]
            assert await client.eval("return KEYS[1]", 1, a[1]) == a[1]
        finally:
            await client.aclose()

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        asyncio.run(scenario())
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_redis_cli(proxy: ProxyThread) -> None:
    cli = find_binary("redis-cli")

    def run(*args: str) -> str:
        done = subprocess.run(
            [cli, "-h", HOST, "-p", str(proxy.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.strip()

    assert run("SET", "cli", "v") == "OK"
    assert run("GET", "cli") == "v"
    assert run("-3", "GET", "cli") == '"v"' or run("-3", "GET", "cli") == "v"
    assert "redis_version:" in run("INFO", "server")
    assert run("KEYS", "*").startswith("ERR redkeeper: KEYS is not supported")
    assert run("MULTI") == "OK"  # each redis-cli run is a new connection
    assert run("EXEC") == "ERR EXEC without MULTI"
    assert run("WATCH", "cli").startswith("ERR redkeeper: WATCH is not supported")
    assert run("SELECT", "1").startswith("ERR redkeeper: SELECT 1 is not supported")


def test_handshakes_of_other_clients(proxy: ProxyThread) -> None:
    """node-redis's and ioredis's opening commands, sent raw, get Redis's answers."""
    client = redis.Redis(host=HOST, port=proxy.port, protocol=2, driver_info=None)
    try:
        assert cmd(client, "CLIENT", "SETINFO", "LIB-NAME", "node-redis") == b"OK"
        assert cmd(client, "CLIENT", "SETINFO", "LIB-VER", "5.12.0") == b"OK"
        with pytest.raises(redis.ResponseError, match="unknown subcommand 'MAINT_NOTIFICATIONS'"):
            cmd(client, "CLIENT", "MAINT_NOTIFICATIONS", "ON")
        assert client.info()["loading"] == 0
        with socket.create_connection((HOST, proxy.port), timeout=5) as raw:  # as ioredis reads it
            raw.sendall(b"info\r\n")
            data = b""
            while b"# Keyspace" not in data:
                data += raw.recv(65536)
            assert b"\r\nloading:0\r\n" in data
        with pytest.raises(redis.ResponseError, match="NOPROTO"):
            cmd(client, "HELLO", "4")
        assert cmd(client, "CLIENT", "SETNAME", "me") == b"OK"
        assert cmd(client, "CLIENT", "GETNAME") == b"me"
        assert cmd(client, "SELECT", "0") is True
        assert cmd(client, "QUIT") in (True, b"OK")
    finally:
        client.close()


def test_password(backends: list[RedisServer], tmp_path: Path) -> None:
    """With a password: NOAUTH before AUTH, WRONGPASS for a bad one; backends get it too."""
    from redkeeper.server import ProxySettings  # noqa: PLC0415

    for server in backends:
        server.client().config_set("requirepass", "s3cret")
    try:
        settings = ProxySettings(password="s3cret")
        with ProxyThread(shards_of(backends), settings) as running:
            # AuthenticationError is a ConnectionError: no retries (redis-py backs off ~3 s)
            bare = redis.Redis(
                host=HOST,
                port=running.port,
                protocol=2,
                driver_info=None,
                retry=Retry(NoBackoff(), 0),
            )
            with pytest.raises(redis.AuthenticationError):
                bare.get("x")
            with pytest.raises(redis.AuthenticationError):
                cmd(bare, "AUTH", "wrong")
            bare.close()
            for protocol in (2, 3):
                good = redis.Redis(
                    host=HOST, port=running.port, password="s3cret", protocol=protocol
                )
                assert good.set("pw", "1") is True
                assert good.mget("pw", "other") == [b"1", None]
                good.close()
    finally:
        for server in backends:
            redis.Redis(
                host=server.address.host, port=server.address.port, password="s3cret"
            ).config_set("requirepass", "")
