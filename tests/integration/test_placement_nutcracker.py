"""Integration: redkeeper.placement.Ring predicts the real nutcracker 0.5.0, key for key.

One set of real redis-servers (25 on ephemeral loopback ports plus one on port 11211) lives for
the module; every pool shape x hash x {ketama, modula} restarts only nutcracker with a new
nutcracker.yml. Keys (hypothesis batches plus hand-picked tricky ones) are written through
nutcracker, then every backend is scanned directly to see where each key landed, and that is
compared with `Ring.locate`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from redkeeper.placement import HASHES, PoolServer, Ring
from redkeeper.process import ManagedProcess, find_binary, free_port, wait_for_port
from redkeeper.process.ports import port_bindable

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
N_BACKENDS = 25
KETAMA_PORT = 11211
ELIDED = -1  # backend number of the redis-server listening on port 11211

#: (backend number, weight, explicit name or None) per server entry.
Entry = tuple[int, int, str | None]


@dataclass(frozen=True)
class Shape:
    id: str
    entries: tuple[Entry, ...]


SHAPES = [
    Shape("1-server", ((16, 3, "solo"),)),
    Shape("2-equal", ((0, 1, "alpha"), (1, 1, "beta"))),
    Shape("3-equal-unnamed", ((2, 1, None), (3, 1, None), (4, 1, None))),
    Shape("25-equal-156-points", tuple((i, 1, f"shard{i}") for i in range(N_BACKENDS))),
    Shape("unequal-weights", ((5, 1, "w1"), (6, 2, "w2"), (7, 5, "w5"), (8, 10, "w10"))),
    Shape("weights-100000-to-1", ((9, 100000, "big"), (10, 1, "tiny"))),
    Shape(
        "names-length-then-bytes",
        ((11, 1, "srv9"), (12, 1, "srv10"), (13, 1, "srv100"), (14, 2, "srv2"), (15, 1, "zz")),
    ),
    Shape("port-11211-elided", ((ELIDED, 2, None), (17, 1, None), (18, 3, None))),
]

TRICKY_KEYS: list[bytes] = [
    b"",
    b"apple",
    "é".encode(),
    "日本語キー".encode(),
    b"\x80",
    b"\xff",
    b"\xff\xfe\xfd",
    bytes(range(128, 256)),
    bytes(range(256)),
    b"nul\x00byte",
    b"with space",
    b"crlf\r\nkey",
    b"{}",
    b"{}abc",
    b"a{}b",
    b"{}{x}",
    b"{a}",
    b"x{a}y",
    b"{a}{b}",
    b"{{a}}",
    b"{a{b}c}",
    b"{abc",
    b"abc}",
    b"a}b{c",
    b"}{a}",
    b"{",
    b"}",
    b"{\xe9}",
    b"user:{1000}:name",
    b"user:{1000}:mail",
    b"k" * 1000,
    b"\xe9" * 999,
    b"{tag}" + b"x" * 995,
    b"x" * 995 + b"{tag}",
]

_TAGGED = st.tuples(st.binary(max_size=6), st.binary(max_size=6), st.binary(max_size=6)).map(
    lambda t: t[0] + b"{" + t[1] + b"}" + t[2]
)
_LONG = st.binary(min_size=1, max_size=4).map(lambda b: (b * 1000)[:1000])
_HIGH = st.binary(min_size=1, max_size=12).map(lambda b: bytes(x | 0x80 for x in b))
KEY_BATCHES = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.text(max_size=16).map(str.encode),
        _TAGGED,
        _HIGH,
        _LONG,
    ),
    min_size=150,
    max_size=200,
    unique=True,
)


@dataclass
class Backend:
    host: str
    port: int
    process: ManagedProcess
    client: redis.Redis


def _client(host: str, port: int) -> redis.Redis:
    """A RESP2 client that sends nothing but commands (nutcracker drops HELLO, CLIENT ...)."""
    kwargs: dict[str, Any] = {"protocol": 2, "socket_timeout": 10}
    try:
        from redis.driver_info import DriverInfo  # noqa: PLC0415  (redis-py >= 8)

        kwargs["driver_info"] = DriverInfo(name=None, lib_version=None)
    except ImportError:
        kwargs.update(lib_name=None, lib_version=None)
    return redis.Redis(host=host, port=port, **kwargs)


def _start_redis(binary: str, host: str, port: int, root: Path) -> ManagedProcess:
    workdir = root / f"redis-{host}-{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", host, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir)]
    process = ManagedProcess(f"redis-{port}", argv, workdir, workdir / "redis.log")
    process.start()
    return process


def _owns_listener(pid: int, port: int) -> bool:
    """True when process `pid` holds the TCP socket listening on `port` (Linux /proc).

    Guards against a lost port race: never FLUSHALL or write to someone else's server.
    """
    sockets = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            sockets.add(f"socket:[{fields[9]}]")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                return True
    return False


def _ready(process: ManagedProcess, host: str, port: int) -> bool:
    """`process` accepts connections on host:port, on a socket of its own."""
    return (
        wait_for_port(host, port, 10.0)
        and process.pid is not None
        and process.alive()
        and _owns_listener(process.pid, port)
    )


def _start_elided(binary: str, root: Path, started: list[ManagedProcess]) -> Backend:
    """A redis-server on port 11211 of the first loopback address where it can listen.

    Every 127.0.0.x reaches lo on Linux, so a busy 127.0.0.1:11211 is no reason to skip.
    """
    for last in range(1, 10):
        host = f"127.0.0.{last}"
        if not port_bindable(host, KETAMA_PORT):
            continue
        process = _start_redis(binary, host, KETAMA_PORT, root)
        started.append(process)
        if _ready(process, host, KETAMA_PORT):
            return Backend(host, KETAMA_PORT, process, _client(host, KETAMA_PORT))
        process.stop()  # lost a race for the port: try the next address
    raise AssertionError("port 11211 is taken on 127.0.0.1..9: cannot test the 11211 elision")


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Backend]]:
    binary = find_binary("redis-server")
    root = tmp_path_factory.mktemp("placement-redis")
    started: list[ManagedProcess] = []
    result: dict[int, Backend] = {}
    try:
        result[ELIDED] = _start_elided(binary, root, started)
        wanted = [(i, HOST, free_port(HOST)) for i in range(N_BACKENDS)]
        for _attempt in range(3):
            pending = []
            for number, host, port in wanted:
                process = _start_redis(binary, host, port, root)
                started.append(process)
                pending.append((number, host, port, process))
            wanted = []
            for number, host, port, process in pending:
                if _ready(process, host, port):
                    result[number] = Backend(host, port, process, _client(host, port))
                else:  # lost a race for the ephemeral port: try another one
                    process.stop()
                    wanted.append((number, host, free_port(host)))
            if not wanted:
                break
        assert not wanted, f"could not start redis-servers {wanted}"
        for backend in result.values():
            assert backend.client.ping()
        yield result
    finally:
        for backend in result.values():
            backend.client.close()
        for process in started:
            process.stop()


@dataclass(frozen=True)
class Run:
    """One nutcracker configuration under test."""

    shape: Shape
    servers: list[Backend]
    hash_name: str
    dist: str
    tag: str | None

    def pool_servers(self) -> list[PoolServer]:
        return [
            PoolServer(b.host, b.port, weight, name)
            for b, (_, weight, name) in zip(self.servers, self.shape.entries, strict=True)
        ]

    def pool_yaml(self, listen: int) -> str:
        lines = [
            "placement:",
            f"  listen: {HOST}:{listen}",
            "  redis: true",
            f"  hash: {self.hash_name}",
            f"  distribution: {self.dist}",
            "  auto_eject_hosts: false",
            "  timeout: 10000",
        ]
        if self.tag is not None:
            lines.append(f'  hash_tag: "{self.tag}"')
        lines.append("  servers:")
        for server in self.pool_servers():
            suffix = f" {server.name}" if server.name is not None else ""
            lines.append(f"    - {server.host}:{server.port}:{server.weight}{suffix}")
        return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _nutcracker(workdir: Path, run: Run) -> Iterator[int]:
    """Run nutcracker on an ephemeral port for one pool; yield its listen port."""
    binary = find_binary("nutcracker")
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        listen, stats = free_port(HOST), free_port(HOST)
        conf = workdir / f"nutcracker-{attempt}.yml"
        conf.write_text(run.pool_yaml(listen))
        argv = [binary, "-c", str(conf), "-s", str(stats), "-a", HOST]
        argv += ["-o", str(workdir / "nutcracker.log"), "-p", str(workdir / "nutcracker.pid")]
        process = ManagedProcess("nutcracker", argv, workdir, workdir / "nutcracker.out")
        process.start()
        try:
            if _ready(process, HOST, listen):
                yield listen
                return
        finally:
            process.stop()
    log = (workdir / "nutcracker.log").read_text(errors="replace")[-2000:]
    raise AssertionError(f"nutcracker did not start for {run.shape.id}: {log}")


def _check_run(workdir: Path, run: Run, keys: list[bytes]) -> tuple[int, list[str]]:
    """Write `keys` through nutcracker; return (keys checked, mismatch descriptions)."""
    for backend in run.servers:
        backend.client.flushall()
    ring = Ring(run.pool_servers(), hash=run.hash_name, distribution=run.dist, hash_tag=run.tag)
    with _nutcracker(workdir, run) as listen:
        proxy = _client(HOST, listen)
        try:
            pipe = proxy.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, b"1")
            replies = pipe.execute()
        finally:
            proxy.close()
    assert all(reply is True for reply in replies), f"SET through nutcracker failed: {replies}"

    index_of = {(s.host, s.port): i for i, s in enumerate(ring.servers)}
    found: dict[bytes, list[int]] = {}
    for backend in run.servers:
        actual = index_of[(backend.host, backend.port)]
        for key in backend.client.scan_iter(count=1000):
            found.setdefault(key, []).append(actual)

    problems: list[str] = []
    for key in keys:
        placement = ring.locate(key)
        holders = found.pop(key, [])
        if holders != [placement.index]:
            names = [ring.servers[i].hash_name for i in holders]
            problems.append(
                f"{run.hash_name}/{run.dist}/tag={run.tag}: key {key[:60]!r} expected "
                f"{placement.name} (hash {placement.key_hash}, point {placement.point}), "
                f"found on {names}"
            )
    problems.extend(
        f"unexpected key {key[:60]!r} on backends {where}" for key, where in found.items()
    )
    return len(keys), problems


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.id)
@settings(
    max_examples=3,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is 24 nutcrackers
    suppress_health_check=list(HealthCheck),
)
@given(drawn=KEY_BATCHES)
def test_ring_matches_real_nutcracker(
    backends: dict[int, Backend],
    tmp_path_factory: pytest.TempPathFactory,
    shape: Shape,
    drawn: list[bytes],
) -> None:
    keys = list(dict.fromkeys(TRICKY_KEYS + drawn))
    servers = [backends[number] for number, _, _ in shape.entries]
    workdir = tmp_path_factory.mktemp(f"nutcracker-{shape.id}")
    checked = 0
    mismatches: list[str] = []
    for h, hash_name in enumerate(HASHES):
        for d, dist in enumerate(("ketama", "modula")):
            tag = "{}" if (h + d) % 2 == 0 else None  # every hash runs once with, once without
            run = Run(shape, servers, hash_name, dist, tag)
            count, problems = _check_run(workdir, run, keys)
            checked += count
            mismatches += problems
    names = [
        s.hash_name for s in Ring(Run(shape, servers, "md5", "ketama", None).pool_servers()).servers
    ]
    print(f"{shape.id} {names}: {checked} key placements checked, {len(mismatches)} mismatches")
    assert checked > 0
    assert not mismatches, "\n".join(mismatches[:30])
