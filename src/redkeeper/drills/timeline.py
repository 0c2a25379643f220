"""The drill timeline (I/O): what the Sentinels said and what the agent did, with timestamps.

Owns the observers that run beside the workload for one scenario:

- one thread per Sentinel with `PSUBSCRIBE *`, recording every message as an `EventRecord`
  (the master it concerns parsed by `redkeeper.sentinel.events.parse_event`); a Sentinel that
  goes away is re-subscribed with a short backoff and its link changes are recorded too
  (channel `link-down` / `link-up`);
- one thread polling the agent's /healthz: its apply history (`ApplyRecord`, deduplicated, so
  applies survive an agent restart) and its fail_static verdicts (`AgentSample`).

Every loop ends when the timeline is stopped or after `max_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from redis.client import PubSub
from redis.exceptions import RedisError

from redkeeper.drills import AgentSample, ApplyRecord, EventRecord
from redkeeper.model import Address
from redkeeper.rediskit import sync_client
from redkeeper.sentinel.events import parse_event
from redkeeper.stack import probe

_BACKOFF = 0.2  # seconds between re-subscribe attempts
_POLL = 0.25  # seconds between /healthz polls


def to_event(time_: float, sentinel: str, channel: str, payload: str) -> EventRecord:
    parsed = parse_event(channel, payload)
    about_master = channel == "+switch-master" or parsed.instance_role == "master"
    return EventRecord(time_, sentinel, channel, payload, parsed.master_name, about_master)


class Timeline:
    """Record Sentinel events and agent applies from `start()` to `stop()`."""

    def __init__(
        self,
        sentinels: Sequence[tuple[str, Address]],
        agent: Address | None,
        password: str | None,
        *,
        max_seconds: float = 300.0,
    ) -> None:
        self.sentinels = list(sentinels)
        self.agent = agent
        self.password = password
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._events: list[EventRecord] = []
        self._applies: dict[tuple[float, str], ApplyRecord] = {}
        self._samples: list[AgentSample] = []
        self._subscribed: dict[str, threading.Event] = {n: threading.Event() for n, _ in sentinels}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life cycle
    def start(self, ready_timeout: float = 3.0) -> None:
        """Start the observers; wait (bounded) until every answering Sentinel is subscribed."""
        for name, address in self.sentinels:
            self._spawn(f"drill-sentinel-{name}", self._subscribe, name, address)
        if self.agent is not None:
            self._spawn("drill-agent-poll", self._poll_agent, self.agent)
        deadline = time.monotonic() + ready_timeout
        for event in self._subscribed.values():
            event.wait(max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.agent is not None:
            self._fetch_agent(self.agent)  # the applies of the last moments

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------ reading
    def events(self) -> list[EventRecord]:
        with self._lock:
            return list(self._events)

    def applies(self) -> list[ApplyRecord]:
        with self._lock:
            return sorted(self._applies.values(), key=lambda a: a.time)

    def samples(self) -> list[AgentSample]:
        with self._lock:
            return list(self._samples)

    def seen(self, channels: Sequence[str], shards: Sequence[str], since: float) -> bool:
        """True when some Sentinel published one of `channels` about one of `shards`."""
        return any(
            e.channel in channels and e.shard in shards and e.time >= since for e in self.events()
        )

    def fail_static_seen(self, since: float) -> bool:
        return any(s.fail_static and s.time >= since for s in self.samples())

    # ------------------------------------------------------------------ threads
    def _add(self, event: EventRecord) -> None:
        with self._lock:
            self._events.append(event)

    def _subscribe(self, name: str, address: Address) -> None:
        deadline = time.monotonic() + self.max_seconds
        linked: bool | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            client = sync_client(address, self.password, 0.5)
            pubsub = PubSub(client.connection_pool, ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe("*")
                self._subscribed[name].set()
                if linked is False:
                    self._add(EventRecord(time.time(), name, "link-up", str(address), None, False))
                linked = True
                while not self._stop.is_set() and time.monotonic() < deadline:
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None and message.get("type") == "pmessage":
                        self._add(
                            to_event(
                                time.time(), name, str(message["channel"]), str(message["data"])
                            )
                        )
            except (RedisError, OSError):
                if linked:
                    self._add(
                        EventRecord(time.time(), name, "link-down", str(address), None, False)
                    )
                linked = False
                self._subscribed[name].set()  # down counts as ready: nothing to wait for
                self._stop.wait(_BACKOFF)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except (RedisError, OSError):
                    pass

    def _fetch_agent(self, address: Address) -> None:
        health = probe.agent_health(address, timeout=0.5)
        now = time.time()
        if health is None:
            with self._lock:
                self._samples.append(AgentSample(now, False, False, "does not answer"))
            return
        with self._lock:
            self._samples.append(AgentSample(now, True, health.fail_static, health.verdict))
            for apply in health.history:
                key = (round(apply.time, 3), repr(sorted(apply.changes.items())))
                self._applies[key] = apply

    def _poll_agent(self, address: Address) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._fetch_agent(address)
            self._stop.wait(_POLL)
