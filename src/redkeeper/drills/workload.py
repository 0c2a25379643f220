"""The drill workload (I/O): writes through the proxy, and reading them back from the shards.

Owns the keys: N client connections (one thread each, `rediskit.sync_client`, so nutcracker
gets RESP2 and no CLIENT SETINFO) write unique keys `<prefix>:<conn>:<seq>`, rotating over the
shards with the placement model so every shard gets its share. Each write is recorded as an
`Op` (send time, reply time, shard, outcome); the value is the send time, which lets a drill
tell when a write found on a resumed old master was sent. Bounded in rate, count and time.

Afterwards `read_back` asks each shard's current master directly which acked keys it holds
(Jepsen's set workload: acked but absent = lost), `scan` lists every key of a node (the
placement audit), `delete` removes the drill's keys, `probe_writes` checks a write per shard
through the proxy and `watch_old_master` reads what a resumed old master accepts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redkeeper.drills import Op
from redkeeper.drills.scenarios import DrillError
from redkeeper.model import Address
from redkeeper.rediskit import sync_client
from redkeeper.stack import probe

CHUNK = 500  # keys per MGET / UNLINK
_KEY_ATTEMPTS = 10_000


@dataclass(frozen=True)
class WorkloadSettings:
    """connections × rate is the write rate (the spec's "a few hundred writes/s")."""

    connections: int = 4
    rate: float = 100.0  # writes/s per connection
    timeout: float = 2.0  # client socket timeout: above nutcracker's server timeout (1 s)
    max_seconds: float = 180.0
    max_ops: int = 200_000  # over all connections


class KeyMaker:
    """Unique keys of one connection, handed out for the shard asked (pure)."""

    def __init__(self, prefix: str, conn: int, locate: Callable[[str], str]) -> None:
        self.prefix = f"{prefix}:{conn}:"
        self.locate = locate
        self.seq = 0
        self.spare: dict[str, deque[str]] = {}

    def next_for(self, shard: str) -> str:
        queue = self.spare.setdefault(shard, deque())
        for _ in range(_KEY_ATTEMPTS):
            if queue:
                return queue.popleft()
            key = f"{self.prefix}{self.seq}"
            self.seq += 1
            self.spare.setdefault(self.locate(key), deque()).append(key)
        raise DrillError(f"no key lands on {shard} after {_KEY_ATTEMPTS} tries (weight 0?)")


def classify(exc: BaseException) -> str:
    """'<kind>: <message>' for an error a write got."""
    if isinstance(exc, RedisTimeoutError):
        kind = "timeout"
    elif isinstance(exc, RedisConnectionError | OSError):
        kind = "connection"
    elif isinstance(exc, ResponseError):  # redis-py drops a leading "ERR "
        first = (str(exc).split() or ["ERR"])[0]
        kind = first if first.isupper() and first.isalpha() else "ERR"
    else:
        kind = type(exc).__name__
    return f"{kind}: {str(exc)[:160]}"


class Workload:
    """Start N writer threads; `stop` them; read what they recorded at any time."""

    def __init__(
        self,
        address: Address,
        password: str | None,
        shards: Sequence[str],
        locate: Callable[[str], str],
        prefix: str,
        settings: WorkloadSettings = WorkloadSettings(),
    ) -> None:
        if not shards:
            raise DrillError("the workload needs at least one shard")
        self.address = address
        self.password = password
        self.shards = list(shards)
        self.locate = locate
        self.prefix = prefix
        self.settings = settings
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for conn in range(self.settings.connections):
            thread = threading.Thread(
                target=self._run, args=(conn,), name=f"drill-writer-{conn}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every writer; bounded (a writer blocks at most one client timeout)."""
        self._stop.set()
        deadline = time.monotonic() + max(timeout, self.settings.timeout + 1.0)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def resumed(self, shard: str, since: float) -> bool:
        """True when, after its last failure since `since`, `shard` took at least one
        successful write per connection."""
        streak = 0
        for op in reversed(self.ops()):
            if op.end < since:
                break
            if op.shard != shard:
                continue
            if not op.ok:
                return False
            streak += 1
            if streak >= self.settings.connections:
                return True
        return False

    def _record(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    def _run(self, conn: int) -> None:
        client = sync_client(self.address, self.password, self.settings.timeout)
        keys = KeyMaker(self.prefix, conn, self.locate)
        order = self.shards[conn % len(self.shards) :] + self.shards[: conn % len(self.shards)]
        interval = 1.0 / self.settings.rate
        budget = max(1, self.settings.max_ops // self.settings.connections)
        due = time.monotonic()
        deadline = due + self.settings.max_seconds
        try:
            for count in range(budget):
                now = time.monotonic()
                if now >= deadline or self._stop.is_set():
                    return
                if due > now:
                    if self._stop.wait(due - now):
                        return
                elif now - due > 1.0:
                    due = now  # fell behind (a blocked write): do not burst to catch up
                due += interval
                shard = order[count % len(order)]
                key = keys.next_for(shard)
                start = time.time()
                try:
                    ok = bool(client.set(key, f"{start:.6f}"))
                    error = "" if ok else "reply: SET did not answer OK"
                except (RedisError, OSError) as exc:
                    ok, error = False, classify(exc)
                self._record(Op(conn, shard, key, start, time.time(), ok, error))
        finally:
            client.close()


# ---------------------------------------------------------------- direct reads of one node
def read_back(
    address: Address, password: str | None, keys: Iterable[str], timeout: float = 2.0
) -> set[str]:
    """Which of `keys` `address` holds (MGET in chunks). Raises RedisError/OSError."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    with sync_client(address, password, timeout) as conn:
        for i in range(0, len(wanted), CHUNK):
            chunk = wanted[i : i + CHUNK]
            values = conn.mget(chunk)
            found.update(k for k, v in zip(chunk, values, strict=True) if v is not None)
    return found


def scan(
    address: Address,
    password: str | None,
    match: str = "*",
    limit: int = 2_000_000,
    timeout: float = 2.0,
) -> tuple[list[str], bool]:
    """Every key of `address` matching `match` (SCAN), at most `limit`; (keys, complete)."""
    keys: list[str] = []
    with sync_client(address, password, timeout) as conn:
        cursor = 0
        for _ in range(limit // 100 + 10):  # SCAN returns ~COUNT keys per call
            cursor, batch = conn.scan(cursor=cursor, match=match, count=1000)
            keys.extend(str(k) for k in batch)
            if cursor == 0:
                return keys, True
            if len(keys) >= limit:
                break
    return keys[:limit], False


def values(
    address: Address, password: str | None, match: str, limit: int = 200_000, timeout: float = 1.0
) -> dict[str, str]:
    """Keys matching `match` on `address` with their values."""
    keys, _complete = scan(address, password, match, limit, timeout)
    found: dict[str, str] = {}
    with sync_client(address, password, timeout) as conn:
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i : i + CHUNK]
            for key, value in zip(chunk, conn.mget(chunk), strict=True):
                if value is not None:
                    found[key] = str(value)
    return found


def delete(
    address: Address, password: str | None, keys: Sequence[str], timeout: float = 2.0
) -> int:
    """UNLINK `keys` on `address` in chunks; how many existed."""
    removed = 0
    with sync_client(address, password, timeout) as conn:
        for i in range(0, len(keys), CHUNK):
            removed += int(conn.unlink(*keys[i : i + CHUNK]))
    return removed


def probe_writes(address: Address, password: str | None, keys: Sequence[str]) -> str | None:
    """SET then DEL each key through `address` (one per shard): None, or why it fails."""
    try:
        with sync_client(address, password, 1.0) as conn:
            for key in keys:
                conn.set(key, "1")
                conn.delete(key)
    except (RedisError, OSError) as exc:
        return f"a write through {address} fails: {exc}"
    return None


def watch_old_master(
    address: Address, password: str | None, match: str, bound: float
) -> dict[str, str]:
    """What a resumed old master holds under `match`, read every 0.5 s until it reports a
    role other than master (Sentinel demoted it) or `bound` seconds pass."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        info = probe.replication(address, password)
        if info is not None and info.role != "master":
            break
        with contextlib.suppress(RedisError, OSError):
            seen |= values(address, password, match)
        time.sleep(0.5)
    return seen
