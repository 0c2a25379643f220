"""The switchover's steps 3–6 (`switchover` explains them): steer, pause, fail over, hand the
writes over to the new master, restore, verify; and the journal record they keep.

`Handover.run` owns the ordering and every bound. Its invariants: the old master never runs a
write once the failover was sent; every change it makes (priorities, pauses) is journaled
before it is made and undone on every way out. A timeout or an interrupt before `SENTINEL
FAILOVER` aborts cleanly; after it the failover is Sentinel's: the handover finishes, or,
when Sentinel gives the failover up, aborts the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redkeeper.core import decide_masters
from redkeeper.data.masters import ask_all
from redkeeper.errors import OperationError
from redkeeper.model import Address
from redkeeper.ops import steer
from redkeeper.ops.endpoint import wait_health
from redkeeper.ops.interrupt import Interrupts, reached
from redkeeper.ops.journal import Journal
from redkeeper.ops.nodes import Node, NodeReplyError
from redkeeper.topology import Topology

Log = Callable[[str], None]
POLL_S = 0.01
MIN_REPLICAS = "min-replicas-to-write"
CATCH_UP_SHARE = 0.25  # of max_pause_ms: the target must catch up within it
ABORTED_AFTER_S = 2.0  # verdict unchanged and no Sentinel flags the failover this long: aborted


@dataclass(frozen=True)
class SwitchoverSettings:
    max_pause_ms: int = 2000
    safety_pause_ms: int = 30_000  # the old master's pause once the failover is sent
    steer_timeout: float = 15.0  # Sentinel reads a replica's INFO every 10 s
    aim_timeout: float = 12.0  # waiting for Sentinel's next INFO of the target
    route_timeout: float = 5.0
    replicas_timeout: float = 5.0
    verify_timeout: float = 15.0


@dataclass
class SwitchoverRecord:
    """The journal of one switchover (STATE/ops/switchover.json)."""

    shard: str
    old_master: Address
    target: Address
    sentinel: Address
    priorities: dict[Address, int]  # the original values of the ones changed
    phase: str  # steering | paused | failover
    started: float = field(default_factory=time.time)
    min_replicas: int | None = None  # the target's min-replicas-to-write, when set to 0

    def to_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "old_master": str(self.old_master),
            "target": str(self.target),
            "sentinel": str(self.sentinel),
            "priorities": {str(a): v for a, v in self.priorities.items()},
            "phase": self.phase,
            "started": self.started,
            "min_replicas": self.min_replicas,
        }

    @classmethod
    def from_json(cls, journal: Journal, data: dict[str, Any]) -> SwitchoverRecord:
        try:
            return cls(
                str(journal.field(data, "shard")),
                Address.parse(str(journal.field(data, "old_master"))),
                Address.parse(str(journal.field(data, "target"))),
                Address.parse(str(journal.field(data, "sentinel"))),
                {Address.parse(k): int(v) for k, v in journal.field(data, "priorities").items()},
                str(journal.field(data, "phase")),
                float(data.get("started", 0.0)),
                None if data.get("min_replicas") is None else int(data["min_replicas"]),
            )
        except (ValueError, AttributeError, TypeError) as exc:
            raise journal.problem(f"malformed: {exc}") from None


@dataclass
class Timings:
    """Monotonic instants of one handover (0: not reached)."""

    paused: float = 0.0
    failover: float = 0.0
    promoted: float = 0.0
    routed: float | None = None
    unpaused: float = 0.0


def good_replicas(info: dict[str, Any], max_lag: int) -> int:
    """How many replicas `INFO replication` of a master lists online within `max_lag` s."""
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave")
        and key[5:].isdigit()
        and isinstance(value, dict)
        and value.get("state") == "online"
        and int(value.get("lag", max_lag + 1)) <= max_lag
    )


def restore_min_replicas(node: Node, value: int) -> None:
    if node.config_get(MIN_REPLICAS) != str(value):
        node.config_set(MIN_REPLICAS, str(value))


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)


def wait_failover(
    topology: Topology, shard: str, old_master: Address, sent_at: float, limit: float
) -> Address | None:
    """After `SENTINEL FAILOVER` (sent at monotonic `sent_at`): the new master once the
    verdict (`core.decide_masters`) names another address than `old_master`; None when
    Sentinel gave the failover up (verdict unchanged, and no Sentinel flags a failover in
    progress for ABORTED_AFTER_S). OperationError when neither happens within `limit` s: the
    old master stays paused (its safety pause) and the next run finishes."""
    sentinels = topology.spec.sentinel.nodes
    password = topology.password()
    quiet_since: float | None = None
    while True:
        view = decide_masters(ask_all(topology, password, 0.5), sentinels, [shard])
        verdict = view.verdicts[shard]
        if verdict.ok and verdict.address is not None and verdict.address != old_master:
            return verdict.address
        now = time.monotonic()
        running = "failover_in_progress" in view.flags.get(shard, frozenset())
        if running or now - sent_at < ABORTED_AFTER_S:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since > ABORTED_AFTER_S:
            return None
        if now >= sent_at + limit:
            raise OperationError(
                f"Sentinel has not completed the failover of {shard} within {limit:.0f} s; "
                f"{old_master} stays paused so it runs no write (fix: check the Sentinels' "
                "logs, then run the same command again to finish)"
            )
        time.sleep(POLL_S)


class Handover:
    """Steps 3–6 for a chosen target (`nodes`: every node of the shard by address)."""

    def __init__(
        self,
        topology: Topology,
        record: SwitchoverRecord,
        nodes: dict[Address, Node],
        sentinel: Node,
        *,
        journal: Journal,
        settings: SwitchoverSettings,
        log: Log,
        interrupts: Interrupts,
    ) -> None:
        self.topology = topology
        self.password = topology.password()
        self.record = record
        self.shard = record.shard
        self.nodes = nodes
        self.master = nodes[record.old_master]
        self.target = nodes[record.target]
        self.sentinel = sentinel
        self.journal = journal
        self.settings = settings
        self.log = log
        self.interrupts = interrupts
        self.times = Timings()
        self.new_master = record.target
        self.warnings: list[str] = []
        replicas = {a: n for a, n in nodes.items() if a != record.old_master}
        self.steering = steer.Steering(replicas)

    # ------------------------------------------------------------------ the run
    def run(self) -> None:
        record, settings = self.record, self.settings
        originals = self.steering.originals()
        if record.target not in originals:
            raise OperationError(f"{record.target} does not answer CONFIG GET replica-priority")
        values = steer.wanted_priorities(record.target, originals)
        record.priorities = {a: originals[a] for a in values}
        required = int(self.target.config_get(MIN_REPLICAS))
        record.min_replicas = required if required > 0 else None
        record.phase = "steering"
        self.journal.write(record.to_json())
        try:
            self.steering.apply(values)
            reached("steered")
            self.log(f"replica-priority set ({self._shown(values)}); waiting for Sentinel")
            steer.wait_seen(self.sentinel, self.shard, values, settings.steer_timeout)
            self.interrupts.check("before pausing writes; priorities restored")
            fire_at = steer.fire_time(
                self.sentinel, self.shard, record.target, settings.aim_timeout
            )
            self._sleep_until(fire_at - steer.PAUSE_AHEAD_S)
            sent = self._pause_and_fail_over(fire_at)
        except BaseException:
            self._abort()
            raise
        if not sent:  # pragma: no cover - _pause_and_fail_over raises instead
            return
        with self.interrupts.critical():
            self._hand_over()
        self._restore_and_verify()

    def _pause_and_fail_over(self, fire_at: float) -> bool:
        record, settings = self.record, self.settings
        record.phase = "paused"
        self.journal.write(record.to_json())
        self.master.pause_writes(settings.max_pause_ms)
        self.times.paused = time.monotonic()
        self.log(f"writes of {self.shard} paused on {record.old_master}")
        reached("paused")
        budget = self.times.paused + settings.max_pause_ms * CATCH_UP_SHARE / 1000
        while self.target.offset() != self.master.offset():
            if time.monotonic() >= budget:
                raise OperationError(
                    f"{record.target} did not catch up with {record.old_master} within "
                    f"{settings.max_pause_ms * CATCH_UP_SHARE:.0f} ms of pause; aborted, nothing "
                    "changed (fix: retry when the replica lags less, or raise --max-pause-ms)"
                )
            time.sleep(0.001)
        self.target.pause_writes(settings.max_pause_ms)
        if record.min_replicas is not None:  # promoted, it must make writes wait, not refuse
            self.target.config_set(MIN_REPLICAS, "0")
        self._sleep_until(fire_at)
        self.interrupts.check("before the failover; writes unpaused, priorities restored")
        self.master.pause_writes(settings.safety_pause_ms)
        record.phase = "failover"
        self.journal.write(record.to_json())
        try:
            self.sentinel.call("SENTINEL", "FAILOVER", self.shard)
        except NodeReplyError:
            raise  # refused (-NOGOODSLAVE, -INPROG…): nothing started, abort
        except OperationError as exc:  # no answer: it may have started; find out
            self.log(f"warning: {exc}; waiting to see whether the failover started")
        self.times.failover = time.monotonic()
        self.log(f"SENTINEL FAILOVER {self.shard} sent to {self.sentinel.label}")
        reached("failover-sent")
        return True

    def _hand_over(self) -> None:
        """After SENTINEL FAILOVER: promoted, routed, old master demoted, writes through."""
        limit = self.topology.spec.sentinel.failover_timeout_ms / 1000
        promoted = wait_failover(
            self.topology, self.shard, self.record.old_master, self.times.failover, limit
        )
        if promoted is None:
            self._abort()
            raise OperationError(
                f"Sentinel gave up the failover of {self.shard} (see the Sentinels' logs: "
                "-failover-abort-*); writes unpaused, priorities restored, nothing changed"
            )
        self.new_master = promoted
        self.times.promoted = time.monotonic()
        self.log(
            f"Sentinel names {self.new_master} master of {self.shard} "
            f"{_ms(self.times.failover, self.times.promoted):.0f} ms after the failover"
        )
        reached("promoted")
        new = self.nodes.get(self.new_master) or self.target
        wanted = str(self.new_master)
        health = wait_health(
            self.topology,
            lambda h: h.routes.get(self.shard) == wanted,
            self.settings.route_timeout,
        )
        if health is not None and health.routes.get(self.shard) == wanted:
            self.times.routed = time.monotonic()
        else:
            self.warnings.append(
                f"the endpoint did not route {self.shard} to {wanted} within "
                f"{self.settings.route_timeout:.0f} s (check `redkeeper status`, the agent's log)"
            )
        # Only now (the endpoint sends nothing more to it) the old master becomes a replica:
        # the writes that waited on it are dropped with their connections, never run.
        self._try(lambda: self.master.follow(self.new_master))  # down: Sentinel does it later
        self._wait_good_replicas(new)
        self._try(new.unpause)
        self._try(self.master.unpause)
        self.times.unpaused = time.monotonic()
        self.log(
            f"writes of {self.shard} go to {self.new_master}: paused "
            f"{_ms(self.times.paused, self.times.unpaused):.0f} ms"
        )

    def _wait_good_replicas(self, new: Node) -> None:
        """Until the new master has the good replicas its min-replicas-to-write asks for,
        then give the setting back (it was 0 so that writes wait during the pause instead of
        failing with NOREPLICAS: Redis checks that before the pause)."""
        required = self.record.min_replicas
        if required is None:
            return
        max_lag = self.topology.spec.redis.min_replicas_max_lag
        deadline = time.monotonic() + self.settings.replicas_timeout
        while True:
            try:
                good = good_replicas(new.replication(), max_lag)
            except OperationError:
                good = 0  # Sentinel's promotion cut our connection: ask again
            if good >= required:
                break
            if time.monotonic() >= deadline:
                self.warnings.append(
                    f"{self.new_master} has {good} of {required} good replicas after "
                    f"{self.settings.replicas_timeout:.0f} s: its writes get NOREPLICAS until "
                    "a replica links (`redkeeper status`)"
                )
                break
            time.sleep(POLL_S)
        self._try(lambda: restore_min_replicas(new, required))

    # ------------------------------------------------------------------ the ways out
    def _abort(self) -> None:
        """Before the failover took effect: unpause both, restore priorities, close."""
        if self.record.min_replicas is not None:
            self._try(lambda: restore_min_replicas(self.target, self.record.min_replicas or 0))
        for node in (self.master, self.target):
            try:
                node.unpause()
            except OperationError as exc:
                self.log(f"warning: {exc}")
        for message in self.steering.restore(self.record.priorities):
            self.log(f"warning: {message}")
        self.journal.finish()

    def _restore_and_verify(self) -> None:
        self.warnings += self.steering.restore(self.record.priorities)
        deadline = time.monotonic() + self.settings.verify_timeout
        reason = "not asked"
        while time.monotonic() < deadline:
            try:
                info = self.master.replication()
            except OperationError as exc:
                reason = str(exc)
            else:
                follows = f"{info.get('master_host')}:{info.get('master_port')}"
                if info.get("role") == "slave" and follows == str(self.new_master):
                    if info.get("master_link_status") == "up":
                        break
                    reason = "its link to the new master is not up yet"
                else:
                    reason = f"it says role {info.get('role')}, master {follows}"
            time.sleep(0.05)
        else:
            self.warnings.append(
                f"{self.record.old_master} is not yet a linked replica of {self.new_master}: "
                f"{reason}"
            )
        self.journal.finish()

    # ------------------------------------------------------------------ small things
    def _try(self, step: Callable[[], object]) -> None:
        """A step of the hand-over that must not stop it: its failure becomes a warning."""
        try:
            step()
        except OperationError as exc:
            self.warnings.append(str(exc))

    @staticmethod
    def _shown(values: dict[Address, int]) -> str:
        return ", ".join(f"{a}={v}" for a, v in values.items()) or "already steering"

    def _sleep_until(self, when: float) -> None:
        delay = when - time.monotonic()
        if delay > 0:
            time.sleep(delay)
