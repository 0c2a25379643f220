"""`min_replicas_max_lag`: the loss window of a cut-off master against false refusals.

Run: `python benchmarks/bench_max_lag.py [--lags 1,2,3,5,10] [--seconds 20] [--rate 200]`.

One master and two replicas (redis-server on ephemeral loopback ports, a temp dir, stopped
by PID), `min-replicas-to-write 1`. For each `min-replicas-max-lag` value (CONFIG SET):

- **false refusals**: `--seconds` of writes at `--rate`/s with every replica healthy, then
  the same with one replica stopped (SIGSTOP: a replica down for maintenance, the usual
  degraded state); every `-NOREPLICAS` there is a write refused for no reason but the lag
  bookkeeping (replicas ACK once a second; Redis counts lag in whole seconds).
- **loss window**: both replicas stopped at once (what a master cut off by a partition sees:
  no ACK arrives); how long the master keeps acknowledging writes, and how many (they reach
  no replica: after the failover they are lost).

Bounded: every wait, and the run; the servers are always stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.exceptions import RedisError, ResponseError

from redkeeper.process import find_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    port: int
    proc: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2.0, socket_connect_timeout=2.0)


@contextlib.contextmanager
def servers(root: Path) -> Iterator[list[Node]]:
    binary = find_binary("redis-server")
    nodes: list[Node] = []
    try:
        for i in range(3):
            port = free_port()
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(root), "--dbfilename", f"{i}.rdb",
                    "--repl-diskless-sync-delay", "0", "--min-replicas-to-write", "1"]  # fmt: skip
            if nodes:
                args += ["--replicaof", "127.0.0.1", str(nodes[0].port)]
            out = (root / f"{i}.log").open("wb")
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
            nodes.append(Node(port, proc))
        wait(lambda: good_replicas(nodes[0]) == 2, 20.0, "replicas linked")
        yield nodes
    finally:
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.proc.pid, signal.SIGCONT)
                node.proc.terminate()
        for node in nodes:
            try:
                node.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5.0)


def good_replicas(master: Node) -> int:
    try:
        info = master.client().info("replication")
    except RedisError:
        return -1
    return int(info.get("min_slaves_good_slaves", info.get("connected_slaves", 0)))


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {what}: not within {timeout:g} s")
        time.sleep(0.05)


@dataclass
class Writes:
    ok: int = 0
    refused: int = 0
    first_refusal: float | None = None


def write_for(master: Node, seconds: float, rate: float, stop_at_refusal: bool) -> Writes:
    client = master.client()
    result = Writes()
    start = time.monotonic()
    i = 0
    while (now := time.monotonic()) - start < seconds:
        try:
            client.set(f"lag:{i}", "v")
            result.ok += 1
        except ResponseError as exc:
            if "NOREPLICAS" not in str(exc):
                raise
            result.refused += 1
            if result.first_refusal is None:
                result.first_refusal = now - start
                if stop_at_refusal:
                    break
        i += 1
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
    return result


def measure(nodes: list[Node], lag: int, seconds: float, rate: float) -> list[str]:
    master, r1, r2 = nodes
    master.client().config_set("min-replicas-max-lag", lag)
    healthy = write_for(master, seconds, rate, False)
    os.kill(r2.proc.pid, signal.SIGSTOP)
    try:
        one = write_for(master, seconds, rate, False)
        os.kill(r1.proc.pid, signal.SIGSTOP)
        cut = write_for(master, lag + 10.0, rate, True)
    finally:
        os.kill(r1.proc.pid, signal.SIGCONT)
        os.kill(r2.proc.pid, signal.SIGCONT)
    wait(lambda: good_replicas(master) == 2, 20.0, "replicas good again")
    window = "-" if cut.first_refusal is None else f"{cut.first_refusal:.2f} s"
    return [str(lag), str(healthy.refused), str(one.refused), window, str(cut.ok)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lags", default="1,2,3,5,10")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    lags = [int(v) for v in args.lags.split(",")]
    n = int(args.seconds * args.rate)
    header = ["max_lag s", f"refused of {n} (2 replicas)", f"refused of {n} (1 replica)",
              "cut master acks for", "writes acked after the cut"]  # fmt: skip
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="rk-maxlag-") as tmp, servers(Path(tmp)) as nodes:
        for lag in lags:
            rows.append(measure(nodes, lag, args.seconds, args.rate))
            print("  ".join(rows[-1]), flush=True)
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
