"""Issue 12's "must show", end to end, as an operator types it (real processes throughout).

`init` writes down_after_ms ≥ 1500; `validate` warns at 1000; `status | cat` shows every
address whole; killing shard1's master and one replica (min_replicas_to_write 1) makes
`status` say the shard refuses writes; `redkeeper start` brings the killed nodes back and
`status` is healthy again; `bench` leaves no key and repairs nothing; `logs | cat` never
wraps; `down` leaves no process and no listener.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from redkeeper.process import port_open
from redkeeper.rediskit import sync_client
from redkeeper.stack import LocalStack
from redkeeper.topology import load_topology
from tests.support import agent_metric, load, processes_using, run_cli, wait_until, write_topology

pytestmark = pytest.mark.integration


def _piped(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`redkeeper ARGS | cat` in a shell, with the default 80 columns of a dumb terminal."""
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin", COLUMNS="80")
    line = " ".join([sys.executable, "-m", "redkeeper", *args]) + " | cat; exit ${PIPESTATUS[0]}"
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def _status(topo: Path) -> dict[str, object]:
    result = run_cli("status", "-c", str(topo), "--json")
    report: dict[str, object] = json.loads(result.stdout)
    report["exit"] = result.returncode
    return report


def test_operator_path(tmp_path: Path) -> None:
    init = tmp_path / "init.yaml"
    assert run_cli("init", str(init)).returncode == 0
    assert load_topology(init).spec.sentinel.down_after_ms >= 1500
    risky = tmp_path / "risky.yaml"
    risky.write_text(init.read_text().replace("down_after_ms: 1500", "down_after_ms: 1000"))
    warned = run_cli("validate", str(risky))
    assert warned.returncode == 0 and "warning:" in warned.stderr
    assert "sentinel.down_after_ms: 1000 ms is below 1500 ms" in warned.stderr

    topo = write_topology(tmp_path)
    topology = load(topo)
    assert topology.spec.redis.min_replicas_to_write == 1
    stack = LocalStack(topology)
    listeners = stack.listeners()
    started = run_cli("up", str(topo), "--detach")
    try:
        assert started.returncode == 0, started.stderr

        table = _piped("status", "-c", str(topo), cwd=tmp_path)
        assert table.returncode == 0, table.stdout + table.stderr
        assert "…" not in table.stdout
        addresses = [n.address for n in topology.redis_nodes()]
        addresses += [s.address for s in topology.sentinel_nodes()]
        for address in addresses:
            assert f" {address} " in table.stdout, (address, table.stdout)

        shard1 = topology.shards[0]
        master = next(n for n in topology.redis_nodes() if n.address == shard1.master)
        replica = next(n for n in topology.redis_nodes() if n.address == shard1.replicas[0])
        for node in (master, replica):
            stack.signal(node.name, signal.SIGKILL)

        def refuses() -> dict[str, object] | None:
            report = _status(topo)
            shards = report["shards"]
            assert isinstance(shards, list)
            return report if shards[0]["refuses_writes"] else None

        report = wait_until(refuses, 40, interval=0.5, what="shard1 refuses writes")
        gauge = "redkeeper_shard_refuses_writes"
        wait_until(lambda: agent_metric(topology, gauge) == 1, 10, what=f"{gauge} 1")
        assert report["exit"] == 1 and report["healthy"] is False
        text = run_cli("status", "-c", str(topo))
        assert text.returncode == 1
        promoted = str(shard1.replicas[1])
        assert (
            f"problem: shard1: refuses writes: master {promoted} has 0 of 1 required replicas "
            "connected (min_replicas_to_write)"
        ) in text.stdout, text.stdout
        with sync_client(shard1.replicas[1]) as conn, pytest.raises(ResponseError, match="NOREP"):
            conn.set("k", "v")  # what a client of that master sees

        back = run_cli("start", "-c", str(topo), replica.name, master.name, timeout=120)
        assert back.returncode == 0, back.stderr
        for node in (replica, master):
            assert f"{node.name} ready in" in back.stderr, back.stderr
        healthy = run_cli("status", "-c", str(topo))
        assert healthy.returncode == 0 and "healthy" in healthy.stdout, healthy.stdout
        wait_until(lambda: agent_metric(topology, gauge) == 0, 10, what=f"{gauge} 0")

        bench = run_cli("bench", "-c", str(topo), "--requests", "1000", "--json")
        assert bench.returncode == 0, bench.stderr
        assert "[1/20] master" in bench.stderr and "[20/20] nutcracker" in bench.stderr
        figures = json.loads(bench.stdout)
        assert figures["keys_removed"] > 0 and figures["key_prefix"].startswith("rkbench:")
        for address in (a for shard in topology.shards for a in shard.nodes):
            with sync_client(address) as conn:
                assert conn.dbsize() == 0, f"bench left keys on {address}"
        stopped = run_cli("stop", "-c", str(topo), "shard2-3")
        assert stopped.returncode == 0, stopped.stderr
        refused = run_cli("bench", "-c", str(topo), "--requests", "1000")
        assert refused.returncode == 4 and "is not healthy: shard2: shard2-3" in refused.stderr
        assert not stack.record("shard2-3").alive()  # bench restarted nothing
        assert run_cli("start", "-c", str(topo), "shard2-3").returncode == 0

        logs = _piped("logs", "-c", str(topo), "sentinel-1", "-n", "30", cwd=tmp_path)
        log_lines = (topology.state_dir / "sentinel-1" / "sentinel-1.log").read_text()
        longest = max(log_lines.splitlines()[-30:], key=len)
        assert len(longest) > 80 and longest in logs.stdout.splitlines()
    finally:
        down = run_cli("down", "-c", str(topo))
    assert down.returncode == 0, down.stderr
    assert not processes_using(topology.state_dir)
    listening = [f"{n} {a}" for n, a in listeners if port_open(a.host, a.port)]
    assert not listening, listening
