"""Test support: topology files on ephemeral loopback ports, and a stack that always stops."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar, cast

import redis

from redkeeper.agent import Health
from redkeeper.errors import BUG
from redkeeper.model import Address
from redkeeper.placement import PoolServer, Ring
from redkeeper.process import free_port
from redkeeper.stack import LocalStack, probe
from redkeeper.topology import Topology, default_text, load_topology

REPO = Path(__file__).resolve().parent.parent
BUG_MARKER = BUG
T = TypeVar("T")


def topology_text(
    state_dir: Path,
    *,
    shards: int = 2,
    replicas: int = 2,
    sentinels: int = 3,
    down_after_ms: int = 1500,  # ≤ 1000 ms: Sentinel 7.0 may re-fail over (docs/drills.md)
    failover_timeout_ms: int = 10000,
    extra: str = "",
    agent: str = "",
    period_ms: int = 1000,
    mode: str = "restart",
    haproxy: str = "",
    write_frontend: bool = False,
) -> str:
    """A topology YAML whose every port is free right now.

    `mode="steady"` adds HAProxy's shard and read frontends and stats page (free ports too),
    a write frontend with `write_frontend`, and the lines of `haproxy` under proxy.haproxy.
    """
    steady_ports = 2 * shards + 1 + int(write_frontend) if mode == "steady" else 0
    ports = iter(_distinct_ports(shards * (1 + replicas) + sentinels + 3 + steady_ports))
    lines = [
        "name: test",
        f"state_dir: {state_dir}",
        "sentinel:",
        f"  nodes: [{', '.join(f'127.0.0.1:{next(ports)}' for _ in range(sentinels))}]",
        f"  quorum: {sentinels // 2 + 1}",
        f"  down_after_ms: {down_after_ms}",
        f"  failover_timeout_ms: {failover_timeout_ms}",
        "shards:",
    ]
    for i in range(1, shards + 1):
        master = next(ports)
        reps = ", ".join(f"127.0.0.1:{next(ports)}" for _ in range(replicas))
        lines.append(f"  - {{name: shard{i}, master: 127.0.0.1:{master}, replicas: [{reps}]}}")
    lines += [
        "proxy:",
        f"  listen: 127.0.0.1:{next(ports)}",
        f"  stats: 127.0.0.1:{next(ports)}",
    ]
    if mode == "redkeeper":
        lines.append("  mode: redkeeper")
    if mode == "steady":
        names = [f"shard{i}" for i in range(1, shards + 1)]
        lines += [
            "  mode: steady",
            "  haproxy:",
            f"    frontends: {{{', '.join(f'{n}: 127.0.0.1:{next(ports)}' for n in names)}}}",
            f"    read_frontends: {{{', '.join(f'{n}: 127.0.0.1:{next(ports)}' for n in names)}}}",
            f"    stats: 127.0.0.1:{next(ports)}",
        ]
        if write_frontend:
            lines.append(f"    write_frontend: 127.0.0.1:{next(ports)}")
        lines += [f"    {line}" for line in haproxy.strip().splitlines()]
    lines += [
        "agent:",
        f"  metrics: 127.0.0.1:{next(ports)}",
        *([] if mode == "redkeeper" else ["  debounce_ms: 50"]),  # redkeeper: the mode's 0
        f"  period_ms: {period_ms}",
    ]
    if agent:
        lines += [f"  {line}" for line in agent.strip().splitlines()]
    return "\n".join(lines) + "\n" + extra


def default_in_mode(mode: str) -> str:
    """The embedded default topology's text with its `proxy.mode` line set to `mode`."""
    line = re.compile(r"^  mode: \w+ *", flags=re.M)
    text, count = line.subn(f"  mode: {mode} ", default_text(), count=1)
    assert count == 1, "the embedded default has no proxy `mode:` line"
    return text


def _distinct_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def write_topology(tmp_path: Path, **kwargs: object) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(topology_text(tmp_path / "state", **kwargs))  # type: ignore[arg-type]
    return path


@contextlib.contextmanager
def running_stack(topology: Topology, *, with_agent: bool = True) -> Iterator[LocalStack]:
    """`up` the stack; always `down` it, even when the test fails."""
    stack = LocalStack(topology, with_agent=with_agent)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        assert_no_bug_in_logs(topology.state_dir)
        assert_no_process_left(topology.state_dir)


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention `path` (a test's state dir)."""
    found = []
    needle = str(path).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            status = (proc / "stat").read_text()
        except OSError:
            continue
        if needle in cmdline and status[status.rfind(")") + 2] != "Z":
            words = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {words}")
    return found


def assert_no_process_left(state_dir: Path) -> None:
    left = processes_using(state_dir)
    assert not left, f"processes left running after down: {left}"


def assert_no_bug_in_logs(state_dir: Path) -> None:
    for log in state_dir.glob("*/*.log"):
        text = log.read_text(errors="replace")
        assert BUG_MARKER not in text, f"{log} contains an unexpected exception:\n{text[-3000:]}"


def run_cli(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m redkeeper ARGS` as an operator would; `env` adds variables."""
    env = {**os.environ, **(env or {})}
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "redkeeper", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def load(path: Path) -> Topology:
    return load_topology(path)


def wait_until(
    check: Callable[[], T | bool | None], timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(interval)


def agent_health(topology: Topology) -> Health:
    metrics = topology.spec.agent.metrics
    assert metrics is not None
    health = probe.agent_health(metrics)
    assert health is not None, "the agent does not answer /healthz"
    return health


def agent_metric(topology: Topology, name: str) -> float:
    """Sum of every sample of metric `name` (all label values) from the agent's /metrics."""
    metrics = topology.spec.agent.metrics
    assert metrics is not None
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=2) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def sentinel_master(topology: Topology, shard: str) -> set[str]:
    """The set of addresses the answering Sentinels report for `shard`."""
    found: set[str] = set()
    for node in topology.sentinel_nodes():
        masters = probe.sentinel_masters(node.address)
        if masters and shard in masters:
            found.add(str(masters[shard].reported_address))
    return found


def proxy(topology: Topology) -> redis.Redis:
    listen = topology.spec.proxy.listen
    return redis.Redis(
        host=listen.host, port=listen.port, protocol=2, driver_info=None, socket_timeout=2
    )


def try_set(client: redis.Redis, key: str, value: str) -> bool:
    try:
        return bool(client.set(key, value))
    except (redis.RedisError, OSError):
        return False


def ring_for(topology: Topology) -> Ring:
    proxy_spec = topology.spec.proxy
    servers = [
        PoolServer(s.master.host, s.master.port, s.weight, s.name) for s in topology.spec.shards
    ]
    return Ring(servers, proxy_spec.hash, proxy_spec.distribution, proxy_spec.hash_tag)


def keys_on(topology: Topology, shard: str, count: int = 1, prefix: str = "k") -> list[str]:
    """`count` keys that the ring puts on `shard`."""
    ring = ring_for(topology)
    found: list[str] = []
    i = 0
    while len(found) < count:
        key = f"{prefix}{i}"
        if ring.locate(key.encode()).name == shard:
            found.append(key)
        i += 1
    return found


def command(address: Address, *args: str) -> object:
    """One raw command to a Redis or Sentinel (redis-py's execute_command is untyped)."""
    with probe.client(address) as conn:
        execute = cast(Callable[..., object], conn.execute_command)
        return execute(*args)
