"""Test data: the RESP wire, deterministic values, the manifest, and `load` through the proxy.

Owns what `load` writes and what `check` later verifies:

* `Wire`: one pipelined RESP connection (raw socket + hiredis reader, AUTH when a password is
  set, a deadline per round trip). redis-py pipelines cost about twice as much Python per key,
  and the data tools are bound by it, so both `load` and `check` use this.
* `expected_value(key, size)`: the value of a key is derived from the key alone (a BLAKE2b hex
  digest repeated to `size` bytes), so `check` verifies values without storing them.
* `Manifest`: what the last `load` wrote (keys are `{prefix}{i}` for i in range(count)), kept
  tiny in STATE/data/manifest.json.
* `write_keys` / `load_keys`: N keys in round trips of `batch` keys. Each round trip holds MSET
  commands of `MSET_KEYS` keys: nutcracker splits an MSET per shard and answers once, which
  measured about twice as fast as pipelined SETs through it. An MSET that fails is retried key
  by key with SET, so every failed key is counted exactly.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hiredis

from redkeeper.errors import ConfigError, Problem, RedkeeperError
from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.topology import Topology

MSET_KEYS = 100
MAX_CONSECUTIVE_FAILURES = 3
ERROR_SAMPLES = 20
MANIFEST_VERSION = 1
Progress = Callable[[int], None]


class DataError(RedkeeperError):
    """A data tool could not do its job (proxy or shard unreachable, keys not written)."""


# --------------------------------------------------------------------------- wire
def command(*args: bytes) -> bytes:
    """One RESP command."""
    return b"*%d\r\n" % len(args) + b"".join([b"$%d\r\n%s\r\n" % (len(a), a) for a in args])


class Wire:
    """A pipelined RESP connection: send a batch of encoded commands, read as many replies.

    Failures raise OSError (timeouts included) or hiredis.ProtocolError; the connection is
    then dropped and the next `roundtrip` reconnects.
    """

    def __init__(self, address: Address, password: str | None, timeout: float) -> None:
        self.address = address
        self.password = password
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.address.host, self.address.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._reader = sock, hiredis.Reader()
        if self.password is not None:
            (reply,) = self.roundtrip(command(b"AUTH", self.password.encode()), 1)
            if reply != b"OK":
                self.close()
                raise OSError(f"AUTH refused by {self.address}: {reply}")
        return sock

    def send(self, payload: bytes) -> None:
        """Send encoded commands (connecting first when needed); read their replies later."""
        try:
            sock = self._sock or self._connect()
            sock.settimeout(self.timeout)
            sock.sendall(payload)
        except BaseException:
            self.close()
            raise

    def receive(self, count: int) -> list[Any]:
        """The next `count` replies, within `timeout` seconds in all.

        Error replies are returned as hiredis.ReplyError values, not raised.
        """
        try:
            sock = self._sock
            if sock is None:
                raise ConnectionError(f"not connected to {self.address}")
            deadline = time.monotonic() + self.timeout
            replies: list[Any] = []
            reader = self._reader
            while len(replies) < count:
                reply = reader.gets()
                if reply is not False:
                    replies.append(reply)
                    continue
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    sock.settimeout(remaining)
                    data = sock.recv(1 << 20)
                except TimeoutError:
                    raise TimeoutError(
                        f"no reply from {self.address} within {self.timeout} s"
                    ) from None
                if not data:
                    raise ConnectionError(f"{self.address} closed the connection")
                reader.feed(data)
            return replies
        except BaseException:
            self.close()
            raise

    def roundtrip(self, payload: bytes, count: int) -> list[Any]:
        """Send `payload` (`count` commands) and return their `count` replies, in order."""
        self.send(payload)
        return self.receive(count)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --------------------------------------------------------------------------- values
def expected_value(key: bytes, size: int) -> bytes:
    """The value `load` writes for `key`: a digest of the key, repeated to `size` bytes."""
    seed = hashlib.blake2b(key, digest_size=16).hexdigest().encode()
    if size <= len(seed):
        return seed[:size]
    return (seed * (size // len(seed) + 1))[:size]


# --------------------------------------------------------------------------- manifest
def manifest_path(topology: Topology) -> Path:
    return topology.state_dir / "data" / "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What the last `load` wrote: keys `{prefix}{i}` for i in range(count)."""

    prefix: str
    count: int
    value_size: int
    hash: str
    distribution: str
    hash_tag: str | None
    shards: dict[str, int]  # shard name -> weight, when written
    written_at: str
    failed: int = 0
    version: int = MANIFEST_VERSION

    @classmethod
    def for_topology(
        cls, topology: Topology, prefix: str, count: int, value_size: int, failed: int = 0
    ) -> Manifest:
        proxy = topology.spec.proxy
        return cls(
            prefix=prefix,
            count=count,
            value_size=value_size,
            hash=proxy.hash,
            distribution=proxy.distribution,
            hash_tag=proxy.hash_tag,
            shards={s.name: s.weight for s in topology.shards},
            written_at=datetime.now(UTC).isoformat(timespec="seconds"),
            failed=failed,
        )

    def key(self, index: int) -> bytes:
        return self.prefix.encode() + b"%d" % index

    def placement_changes(self, topology: Topology) -> list[str]:
        """How the topology's placement differs from the one the keys were written with."""
        proxy = topology.spec.proxy
        now = {
            "hash": proxy.hash,
            "distribution": proxy.distribution,
            "hash_tag": proxy.hash_tag,
            "shards": {s.name: s.weight for s in topology.shards},
        }
        then = {
            "hash": self.hash,
            "distribution": self.distribution,
            "hash_tag": self.hash_tag,
            "shards": self.shards,
        }
        return [f"{k}: {then[k]!r} -> {now[k]!r}" for k in now if now[k] != then[k]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, source: str) -> Manifest:
        def bad(message: str) -> ConfigError:
            return ConfigError(
                [Problem(source, "", message, "run `redkeeper load` again to rewrite it")]
            )

        if not isinstance(data, dict):
            raise bad("the manifest is not a JSON object")
        if data.get("version") != MANIFEST_VERSION:
            raise bad(f"unsupported manifest version {data.get('version')!r}")
        try:
            manifest = cls(**data)
        except TypeError as exc:
            raise bad(f"malformed manifest: {exc}") from None
        checks = (
            (isinstance(manifest.prefix, str), "prefix"),
            (isinstance(manifest.count, int) and manifest.count >= 0, "count"),
            (isinstance(manifest.value_size, int) and manifest.value_size >= 0, "value_size"),
            (isinstance(manifest.shards, dict), "shards"),
        )
        for ok, name in checks:
            if not ok:
                raise bad(f"field {name!r} has an invalid value")
        return manifest


def read_manifest(topology: Topology) -> Manifest | None:
    """The manifest of the last `load`, or None when there is none."""
    path = manifest_path(topology)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError([Problem(str(path), "", f"cannot read: {exc.strerror}", "")]) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            [Problem(str(path), "", f"not JSON: {exc}", "run `redkeeper load` again")]
        ) from None
    return Manifest.from_json(data, str(path))


def write_manifest(topology: Topology, manifest: Manifest) -> Path:
    path = manifest_path(topology)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(manifest.to_json(), indent=2) + "\n", backup=False)
    return path


# --------------------------------------------------------------------------- load
@dataclass
class LoadResult:
    count: int
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first distinct error messages
    manifest: Path | None = None

    @property
    def written(self) -> int:
        return self.count - self.failed

    @property
    def keys_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def note(self, message: str) -> None:
        if len(self.errors) < ERROR_SAMPLES and message not in self.errors:
            self.errors.append(message)


def _mset_batch(prefix: bytes, start: int, stop: int, size: int) -> list[tuple[int, int, bytes]]:
    """(first, end, MSET command) for keys start..stop-1, MSET_KEYS keys per command."""
    commands = []
    for first in range(start, stop, MSET_KEYS):
        end = min(stop, first + MSET_KEYS)
        parts = [b"*%d\r\n$4\r\nMSET\r\n" % (2 * (end - first) + 1)]
        append = parts.append
        for i in range(first, end):
            key = prefix + b"%d" % i
            append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, expected_value(key, size)))
        commands.append((first, end, b"".join(parts)))
    return commands


def _retry_with_set(wire: Wire, prefix: bytes, first: int, end: int, size: int) -> list[Any]:
    keys = [prefix + b"%d" % i for i in range(first, end)]
    payload = b"".join([command(b"SET", k, expected_value(k, size)) for k in keys])
    return wire.roundtrip(payload, len(keys))


def write_keys(
    address: Address,
    password: str | None,
    *,
    prefix: bytes,
    count: int,
    value_size: int,
    batch: int = 1000,
    timeout: float = 10.0,
    progress: Progress | None = None,
) -> LoadResult:
    """Write keys `{prefix}{i}` (i < count) to `address`, `batch` keys per round trip."""
    result = LoadResult(count)
    wire = Wire(address, password, timeout)
    try:
        wire.roundtrip(command(b"PING"), 1)
    except (OSError, hiredis.ProtocolError) as exc:
        raise DataError(
            f"cannot talk to {address}: {describe(exc)} "
            "(fix: start the stack with `redkeeper up`, check `redkeeper status`)"
        ) from None
    started = time.perf_counter()
    consecutive = 0
    with wire:
        for start in range(0, count, batch):
            stop = min(count, start + batch)
            if consecutive >= MAX_CONSECUTIVE_FAILURES:
                result.failed += stop - start
                if progress:
                    progress(stop - start)
                continue
            commands = _mset_batch(prefix, start, stop, value_size)
            try:
                replies = wire.roundtrip(b"".join(c for _, _, c in commands), len(commands))
                for (first, end, _), reply in zip(commands, replies, strict=True):
                    if reply == b"OK":
                        continue
                    result.note(f"MSET: {reply}")
                    for single in _retry_with_set(wire, prefix, first, end, value_size):
                        if single != b"OK":
                            result.failed += 1
                            result.note(f"SET: {single}")
                consecutive = 0
            except (OSError, hiredis.ProtocolError) as exc:
                consecutive += 1
                result.failed += stop - start
                result.note(describe(exc))
                if consecutive >= MAX_CONSECUTIVE_FAILURES:
                    result.note(f"gave up after {consecutive} failed round trips in a row")
            if progress:
                progress(stop - start)
    result.seconds = time.perf_counter() - started
    return result


def load_keys(
    topology: Topology,
    *,
    count: int,
    prefix: str = "key:",
    value_size: int = 32,
    batch: int = 1000,
    timeout: float = 10.0,
    progress: Progress | None = None,
) -> LoadResult:
    """Write `count` keys through the proxy, then record them in the manifest."""
    result = write_keys(
        topology.spec.proxy.listen,
        topology.password(),
        prefix=prefix.encode(),
        count=count,
        value_size=value_size,
        batch=batch,
        timeout=timeout,
        progress=progress,
    )
    manifest = Manifest.for_topology(topology, prefix, count, value_size, result.failed)
    result.manifest = write_manifest(topology, manifest)
    return result
