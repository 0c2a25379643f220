"""Unit tests of the data wire, values, manifest, `write_keys` and the proxy read pass, against
a fake RESP server (a thread on a loopback port)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hiredis
import pytest

from redkeeper.data import (
    DataError,
    Manifest,
    expected_value,
    manifest_path,
    read_manifest,
    write_keys,
    write_manifest,
)
from redkeeper.data.check import read_through_proxy
from redkeeper.errors import ConfigError
from redkeeper.model import Address
from redkeeper.process import free_port
from redkeeper.topology import Topology, parse_topology

Respond = Callable[[list[bytes]], bytes]

TOPOLOGY = """
name: t
state_dir: state
sentinel: {nodes: [127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381]}
shards:
  - {name: shard1, master: 127.0.0.1:6666, replicas: [127.0.0.1:6667]}
  - {name: shard2, master: 127.0.0.1:7666, replicas: [127.0.0.1:7667], weight: 2}
proxy: {hash: murmur, hash_tag: "{}"}
"""


def topology(tmp_path: Path, text: str = TOPOLOGY) -> Topology:
    return parse_topology(text, source="t.yaml", base_dir=tmp_path)


class FakeServer:
    """Answers each RESP command with `respond(args)`; b"" means no answer at all."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.commands: list[list[bytes]] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = Address("127.0.0.1", self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        reader = hiredis.Reader()
        conn.settimeout(0.05)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                reader.feed(data)
                replies = []
                while (command := reader.gets()) is not False:
                    self.commands.append(command)
                    replies.append(self.respond(command))
                try:
                    conn.sendall(b"".join(replies))
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Respond], FakeServer]]:
    servers: list[FakeServer] = []

    def start(respond: Respond) -> FakeServer:
        servers.append(FakeServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def store(data: dict[bytes, bytes], fail: Callable[[bytes, list[bytes]], bytes | None]) -> Respond:
    """A tiny Redis: PING, AUTH, SET, MSET, MGET, GET; `fail(cmd, args)` may override."""

    def respond(args: list[bytes]) -> bytes:
        name = args[0].upper()
        override = fail(name, args)
        if override is not None:
            return override
        if name in (b"PING", b"AUTH"):
            return b"+OK\r\n" if name == b"AUTH" else b"+PONG\r\n"
        if name in (b"SET", b"MSET"):
            for i in range(1, len(args), 2):
                data[args[i]] = args[i + 1]
            return b"+OK\r\n"
        if name in (b"GET", b"MGET"):
            values = [data.get(k) for k in args[1:]]
            body = b"".join(
                b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v) for v in values
            )
            return body if name == b"GET" else b"*%d\r\n" % len(values) + body
        return b"-ERR unknown command\r\n"

    return respond


def never(name: bytes, args: list[bytes]) -> bytes | None:
    return None


# --------------------------------------------------------------------------- values
def test_values_are_deterministic_sized_and_per_key() -> None:
    for size in (0, 1, 31, 32, 33, 100, 4096):
        value = expected_value(b"key:1", size)
        assert len(value) == size
        assert value == expected_value(b"key:1", size)
    assert expected_value(b"key:1", 32) != expected_value(b"key:2", 32)
    assert expected_value(b"key:1", 100).startswith(expected_value(b"key:1", 32))


# --------------------------------------------------------------------------- manifest
def test_manifest_round_trip(tmp_path: Path) -> None:
    topo = topology(tmp_path)
    assert read_manifest(topo) is None
    written = Manifest.for_topology(topo, "user:", 1234, 64, failed=2)
    path = write_manifest(topo, written)
    assert path == manifest_path(topo) == tmp_path / "state" / "data" / "manifest.json"
    assert read_manifest(topo) == written
    data = json.loads(path.read_text())
    assert data["prefix"] == "user:" and data["count"] == 1234 and data["value_size"] == 64
    assert (data["hash"], data["distribution"], data["hash_tag"]) == ("murmur", "ketama", "{}")
    assert data["shards"] == {"shard1": 1, "shard2": 2}
    assert written.key(7) == b"user:7"
    assert written.placement_changes(topo) == []


def test_manifest_notices_a_placement_change(tmp_path: Path) -> None:
    written = Manifest.for_topology(topology(tmp_path), "k", 1, 1)
    changed = topology(tmp_path, TOPOLOGY.replace("weight: 2", "weight: 3"))
    assert written.placement_changes(changed) == [
        "shards: {'shard1': 1, 'shard2': 2} -> {'shard1': 1, 'shard2': 3}"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"version": 99}', "unsupported manifest version"),
        ('{"version": 1, "prefix": "k"}', "malformed manifest"),
    ],
)
def test_a_bad_manifest_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    topo = topology(tmp_path)
    path = manifest_path(topo)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_manifest(topo)


def test_a_manifest_with_a_negative_count_is_rejected(tmp_path: Path) -> None:
    topo = topology(tmp_path)
    data = Manifest.for_topology(topo, "k", 5, 1).to_json()
    data["count"] = -1
    write_manifest(topo, Manifest(**data))
    with pytest.raises(ConfigError, match="'count' has an invalid value"):
        read_manifest(topo)


# --------------------------------------------------------------------------- write_keys
def test_write_keys_uses_mset_and_writes_every_value(
    serve: Callable[[Respond], FakeServer],
) -> None:
    data: dict[bytes, bytes] = {}
    server = serve(store(data, never))
    result = write_keys(server.address, None, prefix=b"p:", count=1050, value_size=40, batch=500)
    assert (result.count, result.failed, result.written, result.errors) == (1050, 0, 1050, [])
    assert data == {b"p:%d" % i: expected_value(b"p:%d" % i, 40) for i in range(1050)}
    msets = [c for c in server.commands if c[0] == b"MSET"]
    assert len(msets) == 11  # 100 keys per MSET, batches of 500
    assert result.keys_per_second > 0


def test_a_failed_mset_is_retried_key_by_key(serve: Callable[[Respond], FakeServer]) -> None:
    data: dict[bytes, bytes] = {}

    def fail(name: bytes, args: list[bytes]) -> bytes | None:
        if name == b"MSET" and b"p:150" in args:
            return b"-ERR Invalid argument\r\n"
        if name == b"SET" and args[1] == b"p:150":
            return b"-NOREPLICAS Not enough good replicas to write.\r\n"
        return None

    server = serve(store(data, fail))
    result = write_keys(server.address, "s3cret", prefix=b"p:", count=300, value_size=8)
    assert result.failed == 1
    assert result.errors == [
        "MSET: ERR Invalid argument",
        "SET: NOREPLICAS Not enough good replicas to write.",
    ]
    assert set(data) == {b"p:%d" % i for i in range(300)} - {b"p:150"}
    assert server.commands[0] == [b"AUTH", b"s3cret"]


def test_a_silent_server_costs_bounded_time(serve: Callable[[Respond], FakeServer]) -> None:
    def hang(name: bytes, args: list[bytes]) -> bytes | None:
        return b"" if name == b"MSET" else None

    server = serve(store({}, hang))
    started = time.monotonic()
    result = write_keys(server.address, None, prefix=b"p:", count=10_000, value_size=8, timeout=0.2)
    assert time.monotonic() - started < 5
    assert result.failed == 10_000
    assert result.errors[0].startswith("TimeoutError: no reply from")
    assert result.errors[-1] == "gave up after 3 failed round trips in a row"
    assert server.connections == 3  # a fresh connection after each failure


def test_an_unreachable_proxy_is_a_data_error() -> None:
    address = Address("127.0.0.1", free_port())
    with pytest.raises(DataError, match=f"cannot talk to {address}: ConnectionRefusedError"):
        write_keys(address, None, prefix=b"p:", count=1, value_size=1)


def test_a_refused_auth_is_a_data_error(serve: Callable[[Respond], FakeServer]) -> None:
    def refuse(name: bytes, args: list[bytes]) -> bytes | None:
        return b"-WRONGPASS invalid password\r\n" if name == b"AUTH" else None

    server = serve(store({}, refuse))
    with pytest.raises(DataError, match="AUTH refused"):
        write_keys(server.address, "bad", prefix=b"p:", count=1, value_size=1)


# --------------------------------------------------------------------------- proxy reads
def test_proxy_pass_classifies_each_key(
    serve: Callable[[Respond], FakeServer], tmp_path: Path
) -> None:
    manifest = Manifest.for_topology(topology(tmp_path), "k:", 1000, 16)
    data = {manifest.key(i): expected_value(manifest.key(i), 16) for i in range(1000)}
    del data[b"k:3"]
    data[b"k:500"] = b"garbage"

    def fail(name: bytes, args: list[bytes]) -> bytes | None:
        if name == b"MGET" and b"k:777" in args:
            return b"-ERR Connection refused\r\n"
        if name == b"GET" and args[1] == b"k:777":
            return b"-ERR Connection refused\r\n"
        return None

    server = serve(store(data, fail))
    seen: list[int] = []
    report = read_through_proxy(server.address, None, manifest, batch=300, progress=seen.append)
    assert report.checked == 1000 and sum(seen) == 1000
    assert report.unreadable.to_json() == {"count": 1, "keys": ["k:3"]}
    assert report.wrong_value.to_json() == {"count": 1, "keys": ["k:500"]}
    assert report.errors.to_json() == {
        "count": 1,
        "keys": [{"key": "k:777", "error": "ERR Connection refused"}],
    }
    gets = [c for c in server.commands if c[0] == b"GET"]
    assert len(gets) == 100  # only the failed MGET's keys, one by one
