"""Today's mainstream Redis clients at their default settings, against real endpoints.

- A plain redis-server 7.0: every client passes every step and prints no warning.
- nutcracker 0.5.0 in front of it: every stock client fails as docs/clients.md (and
  shared/design/proxy.md) records, as a strict xfail each, so the day one starts to work the
  test says so; redis-cli works; and each client with the settings docs/clients.md gives for
  nutcracker passes.
- A relay that makes the server refuse RESP3: redis-py falls back with a warning, and the
  matrix fails it for that warning alone (the harness has teeth).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redkeeper.model import Address
from redkeeper.process import find_binary
from tests.clients import matrix
from tests.clients.endpoints import nutcracker, redis_server, resp3_refusing_relay
from tests.clients.matrix import (
    CLIENTS,
    IOREDIS,
    NODE_REDIS,
    NODE_REDIS_6,
    REDIS_PY,
    REDIS_PY_ASYNCIO,
    REPO,
    Client,
    ClientFailedError,
    ClientResult,
    assert_client_works,
    check,
    require_installed,
    run_client,
)

pytestmark = pytest.mark.integration

#: A node client that hangs through nutcracker is cut off after this many seconds.
NODE_HANG_BOUND = 3.0

#: How each stock client fails through nutcracker 0.5.0: the xfail reason, and the first
#: failing step with a pattern its error must match (any other failure is a real failure).
NUTCRACKER_FAILURES: dict[str, tuple[str, str, str]] = {
    REDIS_PY.name: (
        "redis-py opens with HELLO 3 (then CLIENT SETINFO): nutcracker closes the connection "
        "on commands it does not know",
        "connect",
        r"ConnectionError: Connection closed by server",
    ),
    REDIS_PY_ASYNCIO.name: (
        "redis-py (asyncio) opens with HELLO 3 (then CLIENT SETINFO): nutcracker closes the "
        "connection on commands it does not know",
        "connect",
        r"ConnectionError: Connection closed by server",
    ),
    NODE_REDIS.name: (
        "node-redis opens with CLIENT SETINFO: nutcracker closes the connection, node-redis "
        "reconnects for ever and connect() hangs",
        "connect",
        r"^timeout: .*\(hung\)$",
    ),
    NODE_REDIS_6.name: (
        "node-redis 6 opens with HELLO 3, CLIENT SETINFO and CLIENT MAINT_NOTIFICATIONS: "
        "nutcracker closes the connection, node-redis reconnects for ever and connect() hangs",
        "connect",
        r"^timeout: .*\(hung\)$",
    ),
    IOREDIS.name: (
        "ioredis opens with HELLO 3, CLIENT SETINFO and INFO (its ready check): nutcracker "
        "closes the connection before 'ready', ioredis reconnects and commands get "
        "'Connection is closed.'",
        "connect",
        r"connection closed before 'ready'",
    ),
}


def _through_nutcracker(client: Client) -> object:
    reason = NUTCRACKER_FAILURES[client.name][0]
    mark = pytest.mark.xfail(strict=True, raises=ClientFailedError, reason=reason)
    return pytest.param(client, marks=mark, id=client.name)


@pytest.fixture(scope="module")
def redis_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Address]:
    with redis_server(tmp_path_factory.mktemp("matrix-redis")) as address:
        yield address


@pytest.fixture(scope="module")
def nutcracker_endpoint(
    redis_endpoint: Address, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Address]:
    with nutcracker(tmp_path_factory.mktemp("matrix-nutcracker"), redis_endpoint) as address:
        yield address


def _matrix_keys_left(backend: Address) -> list[bytes]:
    with redis.Redis(host=backend.host, port=backend.port, socket_timeout=5) as direct:
        return list(direct.scan_iter(match="rk-matrix:*", count=1000))


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_stock_client_against_redis_server(client: Client, redis_endpoint: Address) -> None:
    result = assert_client_works(client, redis_endpoint)
    assert result.settings == "default"
    assert _matrix_keys_left(redis_endpoint) == []


@pytest.mark.parametrize("client", [_through_nutcracker(c) for c in CLIENTS])
def test_stock_client_through_nutcracker(
    client: Client, nutcracker_endpoint: Address, redis_endpoint: Address
) -> None:
    require_installed(client)
    bound = NODE_HANG_BOUND if client.runtime == "node" else 10.0
    result = run_client(client, nutcracker_endpoint, timeout=bound + 10, script_timeout=bound)
    if result.problems():
        _assert_known_failure(result)
    check(result)  # raises ClientFailedError: the expected failure; passing here is an XPASS
    assert _matrix_keys_left(redis_endpoint) == []


def _assert_known_failure(result: ClientResult) -> None:
    """Fail outright (not xfail) when the client fails otherwise than recorded."""
    _, step, pattern = NUTCRACKER_FAILURES[result.client.name]
    failure = result.first_failure()
    if failure is None or failure[0] != step or not re.search(pattern, failure[1]):
        pytest.fail(
            f"{result.client} fails through nutcracker otherwise than recorded "
            f"(expected step {step} to match {pattern!r}, got {failure}):\n{result.describe()}"
        )


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_client_with_nutcracker_settings_through_nutcracker(
    client: Client, nutcracker_endpoint: Address, redis_endpoint: Address
) -> None:
    result = assert_client_works(client, nutcracker_endpoint, settings="nutcracker")
    assert result.report is not None and result.report["settings"] == "nutcracker"
    assert _matrix_keys_left(redis_endpoint) == []


@pytest.mark.parametrize("where", ["redis_endpoint", "nutcracker_endpoint"])
def test_redis_cli(where: str, request: pytest.FixtureRequest, redis_endpoint: Address) -> None:
    endpoint: Address = request.getfixturevalue(where)
    cli = find_binary("redis-cli")
    keys = [f"rk-matrix:redis-cli:k{i}" for i in range(20)]

    def run(*args: str) -> str:
        argv = [cli, "-h", endpoint.host, "-p", str(endpoint.port), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        assert done.returncode == 0 and done.stderr == "", (argv, done)
        return done.stdout.strip()

    for i, key in enumerate(keys):
        assert run("SET", key, f"v{i}") == "OK"
    assert run("GET", keys[3]) == "v3"
    assert run("MGET", *keys).splitlines() == [f"v{i}" for i in range(20)]
    assert run("DEL", *keys) == "20"
    script = "return redis.call('SET', KEYS[1], ARGV[1])"
    assert run("EVAL", script, "1", "rk-matrix:redis-cli:eval", "e1") == "OK"
    assert run("GET", "rk-matrix:redis-cli:eval") == "e1"
    assert run("DEL", "rk-matrix:redis-cli:eval") == "1"
    assert _matrix_keys_left(redis_endpoint) == []


@pytest.mark.parametrize("client", [REDIS_PY, REDIS_PY_ASYNCIO], ids=str)
def test_a_fallback_warning_fails_the_matrix(client: Client, redis_endpoint: Address) -> None:
    with resp3_refusing_relay(redis_endpoint) as relay:
        result = run_client(client, relay)
    assert result.report is not None, result.describe()
    assert result.steps == dict.fromkeys(result.steps, "ok") and len(result.steps) == 8
    assert any("does not support HELLO" in w for w in result.warnings), result.describe()
    with pytest.raises(ClientFailedError, match="does not support HELLO"):
        check(result)


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_a_silent_endpoint_is_reported_as_hung_in_time(client: Client) -> None:
    """The script's own deadline: a server that accepts and never answers."""
    require_installed(client)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = Address("127.0.0.1", silent.getsockname()[1])
        started = time.monotonic()
        result = run_client(client, endpoint, timeout=15, script_timeout=2)
        elapsed = time.monotonic() - started
    assert result.returncode == 3, result.describe()
    assert result.report is not None and result.report["ok"] is False
    assert re.fullmatch(r"timeout: .*\(hung\)", result.steps["connect"]), result.describe()
    assert all(result.steps[s].startswith("not run") for s in list(result.steps)[1:])
    assert elapsed < 10, f"the script took {elapsed:.1f} s to report a 2 s hang"


def test_make_clients_without_the_registry_succeeds_and_records_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make clients` (part of `make setup`) with the npm registry unreachable: exit 0, and
    the reason it wrote is exactly what the node client tests skip with."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        closed_port = sock.getsockname()[1]  # closed again when the block ends
    cache = tmp_path / "clients"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(
        npm_config_registry=f"http://127.0.0.1:{closed_port}/",
        npm_config_cache=str(tmp_path / "npm-cache"),  # nothing cached to install from
        npm_config_fetch_retry_mintimeout="100",
        npm_config_fetch_retry_maxtimeout="200",
    )
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "clients", f"CLIENTS_CACHE={cache}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reason = (cache / "unavailable").read_text().strip()
    assert "npm" in reason and reason in done.stdout
    assert not (cache / ".installed").exists()
    monkeypatch.setattr(matrix, "UNAVAILABLE", cache / "unavailable")
    monkeypatch.setattr(matrix, "NODE_MODULES", cache / "node_modules")
    for client in (c for c in CLIENTS if c.runtime == "node"):
        with pytest.raises(pytest.skip.Exception) as skipped:
            matrix.assert_client_works(client, Address("127.0.0.1", closed_port))
        assert skipped.value.msg == reason
