"""What the lab's drills watch beside the workload (I/O, one thread each, bounded):

- `VipMonitor`: which proxy hosts hold the VIP on a link that is up, every 100 ms;
- `ProxySampler`: every proxy host's /healthz every 250 ms — its routes (do the proxies
  agree?), fail_static, and its apply history (the applies of both proxies, deduplicated);
- `OldMasterProbe`: writes straight to shard 1's old master from inside its own host (the
  isolated side) — how long it keeps acknowledging writes that are lost;
- `ReconnectWriter`: one new connection per write, through the VIP or through a
  comparison HAProxy (a returning old master shows up as errors of new connections).

Every thread ends when stopped or after `max_seconds`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from redkeeper.agent.health import Health
from redkeeper.drills import ApplyRecord, Op
from redkeeper.drills.workload import KeyMaker, classify
from redkeeper.lab import net
from redkeeper.lab.plan import LabPlan
from redkeeper.model import Address
from redkeeper.rediskit import sync_client
from redkeeper.stack import probe

MAX_SECONDS = 300.0


class _Loop:
    """A daemon thread calling `tick` every `period` s until stopped (or `max_seconds`)."""

    def __init__(self, name: str, period: float, max_seconds: float = MAX_SECONDS) -> None:
        self.name = name
        self.period = period
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def setup(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with self.setup():
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                self.tick()
                self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))


@dataclass(frozen=True)
class VipSample:
    time: float
    holders: frozenset[str]  # proxy hosts with the VIP on an interface that is up


class VipMonitor(_Loop):
    def __init__(self, plan: LabPlan, vip: str, period: float = 0.1) -> None:
        super().__init__("lab-vip-monitor", period)
        self.plan = plan
        self.vip = vip
        self._samples: list[VipSample] = []

    def tick(self) -> None:
        holders = frozenset(
            h.name
            for h in self.plan.with_role("proxy")
            if net.holds(h.namespace, self.plan.interface, self.vip)
        )
        with self._lock:
            self._samples.append(VipSample(time.time(), holders))

    def samples(self) -> list[VipSample]:
        with self._lock:
            return list(self._samples)


@dataclass(frozen=True)
class RouteSample:
    time: float
    routes: dict[str, dict[str, str] | None]  # proxy host -> its routes (None: no answer)
    fail_static: dict[str, bool]


class ProxySampler(_Loop):
    def __init__(self, health: Callable[[], dict[str, Health | None]], period: float = 0.25):
        super().__init__("lab-proxy-sampler", period)
        self.health = health
        self._samples: list[RouteSample] = []
        self._applies: dict[tuple[float, str], ApplyRecord] = {}

    def tick(self) -> None:
        answers = self.health()
        now = time.time()
        with self._lock:
            self._samples.append(
                RouteSample(
                    now,
                    {h: (dict(a.routes) if a else None) for h, a in answers.items()},
                    {h: bool(a and a.fail_static) for h, a in answers.items()},
                )
            )
            for host, answer in answers.items():
                for apply in answer.history if answer else []:
                    key = (round(apply.time, 3), host)
                    self._applies[key] = apply

    def samples(self) -> list[RouteSample]:
        with self._lock:
            return list(self._samples)

    def applies(self) -> list[ApplyRecord]:
        with self._lock:
            return sorted(self._applies.values(), key=lambda a: a.time)


class _Writer(_Loop):
    """Writes recorded as `Op`s (conn -1: a probe); keys from `keys`."""

    def __init__(self, name: str, rate: float, keys: KeyMaker, shard: str) -> None:
        super().__init__(name, 1.0 / rate)
        self.keys = keys
        self.shard = shard
        self._ops: list[Op] = []

    def write(self, address: Address, password: str | None, client: object | None) -> None:
        key = self.keys.next_for(self.shard)
        start = time.time()
        try:
            if client is None:
                with sync_client(address, password, 1.0) as conn:
                    ok = bool(conn.set(key, f"{start:.6f}"))
            else:
                ok = bool(client.set(key, f"{start:.6f}"))  # type: ignore[attr-defined]
            error = "" if ok else "reply: SET did not answer OK"
        except (RedisError, OSError) as exc:
            ok, error = False, classify(exc)
        with self._lock:
            self._ops.append(Op(-1, self.shard, key, start, time.time(), ok, error))

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)


class OldMasterProbe(_Writer):
    """From inside `namespace`, SET keys of `shard` on `address` directly (timeout 0.5 s)."""

    def __init__(
        self,
        namespace: str,
        address: Address,
        password: str | None,
        keys: KeyMaker,
        shard: str,
        rate: float = 50.0,
    ) -> None:
        super().__init__("lab-old-master-probe", rate, keys, shard)
        self.namespace = namespace
        self.address = address
        self.password = password

    def setup(self) -> contextlib.AbstractContextManager[None]:
        return net.enter(self.namespace)

    def tick(self) -> None:
        client = sync_client(self.address, self.password, 0.5)
        try:
            self.write(self.address, self.password, client)
        finally:
            client.close()


class ReconnectWriter(_Writer):
    """One new connection per write (SET, close) to `address`."""

    def __init__(
        self,
        name: str,
        address: Address,
        password: str | None,
        keys: KeyMaker,
        shard: str,
        rate: float = 20.0,
    ) -> None:
        super().__init__(name, rate, keys, shard)
        self.address = address
        self.password = password

    def tick(self) -> None:
        self.write(self.address, self.password, None)


def old_master_keys(
    namespace: str, address: Address, password: str | None, match: str
) -> dict[str, str]:
    """Keys (and values) matching `match` on `address`, read from inside `namespace` (the
    isolated side), in a thread of its own (setns is per thread)."""
    from redkeeper.drills.workload import values  # noqa: PLC0415

    found: dict[str, str] = {}

    def read() -> None:
        with net.enter(namespace), contextlib.suppress(RedisError, OSError):
            found.update(values(address, password, match))

    thread = threading.Thread(target=read, name="lab-old-master-read", daemon=True)
    thread.start()
    thread.join(10.0)
    return found


def role_of(address: Address, password: str | None) -> str | None:
    info = probe.replication(address, password)
    return None if info is None else info.role
