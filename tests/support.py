"""Test support: topology files on ephemeral loopback ports, and a stack that always stops."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from redkeeper.process import free_port
from redkeeper.stack import LocalStack
from redkeeper.topology import Topology, load_topology

REPO = Path(__file__).resolve().parent.parent
BUG_MARKER = "please report it as a BUG"


def topology_text(
    state_dir: Path,
    *,
    shards: int = 2,
    replicas: int = 2,
    sentinels: int = 3,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 10000,
    extra: str = "",
    agent: str = "",
) -> str:
    """A topology YAML whose every port is free right now."""
    ports = iter(_distinct_ports(shards * (1 + replicas) + sentinels + 3))
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
        "agent:",
        f"  metrics: 127.0.0.1:{next(ports)}",
        "  debounce_ms: 50",
        "  period_ms: 1000",
    ]
    if agent:
        lines += [f"  {line}" for line in agent.strip().splitlines()]
    text = "\n".join(lines) + "\n"
    return text + extra


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


def assert_no_bug_in_logs(state_dir: Path) -> None:
    for log in state_dir.glob("*/*.log"):
        text = log.read_text(errors="replace")
        assert BUG_MARKER not in text, f"{log} contains an unexpected exception:\n{text[-3000:]}"


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m redkeeper ARGS` as an operator would."""
    env = dict(os.environ)
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
