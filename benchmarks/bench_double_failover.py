"""How often does Sentinel fail over a master it has just promoted (a "double failover")?

Run: `python benchmarks/bench_double_failover.py [--failovers 30] [--down-after-ms 1500]`.

The stack has the embedded default's shape (2 shards × master + 2 replicas, 3 Sentinels,
nutcracker run by the agent, restart mode) on ephemeral loopback ports, with a small
`failover_timeout_ms` so trials can follow each other (Sentinel does not fail over the same
master again within 2 × failover_timeout). An independent redis-py client writes through
nutcracker the whole time (one SET every 5 ms, keys spread over both shards).

Each trial, alternating shards: wait until the stack is settled (every node up and linked,
every Sentinel agrees, flags plain `master`, knows the other Sentinels; the shard's last
failover older than 2 × failover_timeout + 1 s), SIGKILL the shard's current master, wait for
`+switch-master`, watch for `--observe` more seconds, then start the killed node again (with
its recorded command line; Sentinel turns it into a replica). Every `+switch-master` of every
Sentinel is collected over pub/sub; a trial is a double failover when its shard switches
master more than once between the kill and the next trial. Also printed: `+sdown` of a master
within 3 s of its promotion (the precursor, even when no second failover follows) and the
shard's longest gap between acknowledged writes. Bounded: every wait, and `--max-minutes` for
the whole run; the stack is always stopped.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path

import redis
from redis.exceptions import RedisError

from redkeeper.data import current_masters, ring_for, shard_names
from redkeeper.errors import RedkeeperError
from redkeeper.model import Address
from redkeeper.stack import LocalStack, probe
from redkeeper.stack.status import collect
from redkeeper.topology import Topology, load_topology

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import topology_text


@dataclass
class Event:
    time: float
    sentinel: str
    channel: str
    data: str


@dataclass
class Trial:
    shard: str
    killed: str
    started: float
    switches: list[tuple[float, str, str]] = field(default_factory=list)  # (t, from, to)
    early_sdown: bool = False
    gap_ms: float = 0.0


class EventLog:
    """Every Sentinel's pub/sub messages (one thread each, plain redis-py)."""

    def __init__(self, sentinels: list[Address]) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(a,), daemon=True) for a in sentinels
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, address: Address) -> None:
        while not self.stop.is_set():
            try:
                client = redis.Redis(host=address.host, port=address.port, socket_timeout=1.0)
                pubsub = client.pubsub()
                pubsub.psubscribe("*")
                while not self.stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message and message["type"] == "pmessage":
                        event = Event(
                            time.time(),
                            str(address),
                            message["channel"].decode(errors="replace"),
                            message["data"].decode(errors="replace"),
                        )
                        with self.lock:
                            self.events.append(event)
                pubsub.close()
            except (RedisError, OSError):
                time.sleep(0.2)

    def since(self, start: float) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.time >= start]


class Writer:
    """One independent redis-py client writing through the proxy; acks per shard."""

    def __init__(self, address: Address, locate: Callable[[str], str]) -> None:
        self.address = address
        self.locate = locate
        self.acks: list[tuple[float, str]] = []
        self.errors = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = redis.Redis(
            host=self.address.host,
            port=self.address.port,
            protocol=2,
            driver_info=None,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )
        seq = 0
        while not self.stop.wait(0.005):
            key = f"dfo:{seq}"
            seq += 1
            try:
                client.set(key, "1")
            except (RedisError, OSError):
                with self.lock:
                    self.errors += 1
                continue
            with self.lock:
                self.acks.append((time.time(), self.locate(key)))

    def longest_gap_ms(self, shard: str, start: float, end: float) -> float:
        with self.lock:
            times = [t for t, s in self.acks if s == shard and start <= t <= end]
        points = [start, *times, end]
        return 1000 * max(b - a for a, b in pairwise(points))


def settled(topology: Topology) -> str | None:
    status = collect(topology, None, expect_agent=True)
    if status.problems:
        return status.problems[0]
    others = len(topology.sentinel_nodes()) - 1
    for node in topology.sentinel_nodes():
        masters = probe.sentinel_masters(node.address) or {}
        for shard in topology.shards:
            info = masters.get(shard.name)
            if info is None or info.flags != frozenset({"master"}):
                return f"{node.name}: {shard.name} not plain master"
            if info.num_other_sentinels < others:
                return f"{node.name} knows {info.num_other_sentinels} other Sentinels"
    return None


def wait(check: Callable[[], str | None], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    reason = check()
    while reason is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {reason} after {timeout:g} s")
        time.sleep(0.2)
        reason = check()


def switched(events: EventLog, shard: str, since: float) -> str | None:
    return None if switches(events.since(since), shard) else "none yet"


def ended(stack: LocalStack, name: str) -> str | None:
    return "still alive" if stack.record(name).alive() else None


def switches(events: list[Event], shard: str) -> list[tuple[float, str, str]]:
    """Distinct +switch-master of `shard` (every Sentinel publishes each one)."""
    seen: dict[tuple[str, str], float] = {}
    for event in events:
        if event.channel != "+switch-master":
            continue
        words = event.data.split()
        if len(words) == 5 and words[0] == shard:
            pair = (f"{words[1]}:{words[2]}", f"{words[3]}:{words[4]}")
            seen.setdefault(pair, event.time)
    return sorted((t, a, b) for (a, b), t in seen.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failovers", type=int, default=30, help="Trials (default 30).")
    parser.add_argument("--down-after-ms", type=int, default=1500)
    parser.add_argument("--failover-timeout-ms", type=int, default=3000)
    parser.add_argument("--observe", type=float, default=6.0, help="Seconds after the switch.")
    parser.add_argument("--max-minutes", type=float, default=40.0, help="Bound of the run.")
    args = parser.parse_args()
    command = "python benchmarks/bench_double_failover.py " + shlex.join(sys.argv[1:])
    deadline = time.monotonic() + 60 * args.max_minutes
    with tempfile.TemporaryDirectory(prefix="rk-dfo-") as tmp:
        path = Path(tmp) / "topology.yaml"
        path.write_text(
            topology_text(
                Path(tmp) / "state",
                down_after_ms=args.down_after_ms,
                failover_timeout_ms=args.failover_timeout_ms,
            )
        )
        topology = load_topology(path)
        ring = ring_for(topology)
        names = shard_names(ring)
        stack = LocalStack(topology)
        stack.up()
        events = EventLog(list(topology.spec.sentinel.nodes))
        writer = Writer(topology.spec.proxy.listen, lambda k: names[ring.index_of(k.encode())])
        trials: list[Trial] = []
        last_failover: dict[str, float] = {}
        spacing = 2 * args.failover_timeout_ms / 1000 + 1.0
        try:
            events.start()
            writer.thread.start()
            for index in range(args.failovers):
                if time.monotonic() > deadline:
                    print(f"stopped after {index} trials: --max-minutes {args.max_minutes}")
                    break
                shard = topology.shards[index % len(topology.shards)].name
                wait(lambda: settled(topology), 90, "stack not settled")
                pause = last_failover.get(shard, 0.0) + spacing - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                master = current_masters(topology, None).addresses[shard]
                node = next(n for n in topology.redis_nodes() if n.address == master)
                trial = Trial(shard, node.name, time.time())
                stack.signal(node.name, signal.SIGKILL)
                wait(
                    partial(switched, events, shard, trial.started),
                    args.down_after_ms / 1000 + 20,
                    f"no +switch-master of {shard}",
                )
                last_failover[shard] = time.monotonic()
                time.sleep(args.observe)
                wait(partial(ended, stack, node.name), 5, f"{node.name} survives SIGKILL")
                stack.restart_process(node.name)
                # The killed node is demoted by Sentinel ~8 s after it reports role master:
                # settle before counting, so a late second switch belongs to this trial.
                wait(lambda: settled(topology), 90, "stack not settled")
                trial.switches = switches(events.since(trial.started), shard)
                last_failover[shard] = max(
                    last_failover[shard], time.monotonic() - (time.time() - trial.switches[-1][0])
                )
                promoted = {to: t for t, _, to in trial.switches}
                for event in events.since(trial.started):
                    words = event.data.split()
                    if event.channel == "+sdown" and words[:2] == ["master", shard]:
                        at = promoted.get(f"{words[2]}:{words[3]}")
                        if at is not None and 0 <= event.time - at <= 3.0:
                            trial.early_sdown = True
                trial.gap_ms = writer.longest_gap_ms(shard, trial.started, time.time())
                trials.append(trial)
                route = " -> ".join([trial.switches[0][1], *(to for _, _, to in trial.switches)])
                print(
                    f"{index + 1:3d} {shard} killed {node.name}: {len(trial.switches)} "
                    f"switch(es) {route}; early +sdown of the new master: "
                    f"{'YES' if trial.early_sdown else 'no'}; longest write gap "
                    f"{trial.gap_ms / 1000:.1f} s",
                    flush=True,
                )
        except (RedkeeperError, RuntimeError) as exc:
            print(f"run stopped: {exc}", flush=True)
        finally:
            writer.stop.set()
            events.stop.set()
            writer.thread.join(3)
            stack.down()
    doubles = sum(1 for t in trials if len(t.switches) > 1)
    sdowns = sum(1 for t in trials if t.early_sdown)
    gaps = sorted(t.gap_ms for t in trials)
    print(
        f"\ndouble failovers: {doubles} in {len(trials)} failovers at down_after_ms "
        f"{args.down_after_ms} (failover_timeout_ms {args.failover_timeout_ms}); "
        f"+sdown of a just-promoted master: {sdowns}; write errors {writer.errors}; "
        f"longest write gap median {gaps[len(gaps) // 2] / 1000 if gaps else 0:.1f} s, "
        f"max {gaps[-1] / 1000 if gaps else 0:.1f} s"
    )
    print(f"command: {command}")
    return 0 if len(trials) == args.failovers else 1


if __name__ == "__main__":
    raise SystemExit(main())
