"""`up`/`status`/`down` with real redis-server, redis-sentinel and nutcracker processes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import redis

from redkeeper.errors import EXIT_CONFIG
from redkeeper.process import ProcessRecord
from redkeeper.stack import state
from tests.support import load, run_cli, write_topology

pytestmark = pytest.mark.integration


def _proxy_client(port: int) -> redis.Redis:
    return redis.Redis(port=port, protocol=2, driver_info=None, socket_timeout=2)


def _all_records(state_dir: Path) -> list[ProcessRecord]:
    records = state.read_records(state_dir)
    proxy = state.read_proxy_record(state_dir)
    return records + ([proxy] if proxy else [])


def test_up_load_status_down(tmp_path: Path) -> None:
    topo_path = write_topology(tmp_path)
    topology = load(topo_path)
    started = run_cli("up", str(topo_path), "--detach")
    try:
        assert started.returncode == 0, started.stderr
        assert f"redis-cli -h 127.0.0.1 -p {topology.spec.proxy.listen.port}" in started.stdout
        records = _all_records(topology.state_dir)
        names = sorted(r.name for r in records)
        assert len(records) == 6 + 3 + 2 and all(r.alive() for r in records)
        assert "agent" in names and "nutcracker" in names

        proxy = _proxy_client(topology.spec.proxy.listen.port)
        with proxy.pipeline(transaction=False) as pipe:
            for i in range(1000):
                pipe.set(f"key:{i}", f"value:{i}")
            assert all(pipe.execute())
        with proxy.pipeline(transaction=False) as pipe:
            for i in range(1000):
                pipe.get(f"key:{i}")
            values = pipe.execute()
        assert values == [f"value:{i}".encode() for i in range(1000)]
        # the keys really are spread over both shards
        per_shard = [redis.Redis(port=s.master.port).dbsize() for s in topology.spec.shards]
        assert sum(per_shard) == 1000 and min(per_shard) > 100

        status = run_cli("status", "-c", str(topo_path), "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["healthy"] is True and report["problems"] == []
        assert [s["master"] for s in report["shards"]] == [
            str(s.master) for s in topology.spec.shards
        ]
        assert all(s["up"] for s in report["sentinels"])
        assert report["proxy"]["up"] and report["proxy"]["stats_up"]
        table = run_cli("status", "-c", str(topo_path))
        assert table.returncode == 0 and "healthy" in table.stdout
    finally:
        stopped = run_cli("down", "-c", str(topo_path))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(r.alive() for r in records)
    assert state.read_records(topology.state_dir) == []
    assert json.loads((topology.state_dir / "masters.json").read_text()) == {
        s.name: str(s.master) for s in topology.spec.shards
    }
    nothing = run_cli("status", "-c", str(topo_path), "--json")
    assert nothing.returncode == 4, nothing.stdout + nothing.stderr
    report = json.loads(nothing.stdout)
    assert report["healthy"] is False and report["running"] is False
    text = run_cli("status", "-c", str(topo_path))
    assert text.returncode == 4
    assert text.stdout.startswith(f"nothing running from {topology.state_dir}"), text.stdout
    assert len(text.stdout.splitlines()) == 1  # no table of 14 "does not answer" lines


def test_second_up_and_busy_port_start_nothing(tmp_path: Path) -> None:
    topo_path = write_topology(tmp_path)
    topology = load(topo_path)
    first = run_cli("up", str(topo_path), "--detach")
    try:
        assert first.returncode == 0, first.stderr
        before = _all_records(topology.state_dir)
        second = run_cli("up", str(topo_path), "--detach")
        assert second.returncode != 0
        assert "already running" in second.stderr and "redkeeper down" in second.stderr
        assert _all_records(topology.state_dir) == before
    finally:
        run_cli("down", "-c", str(topo_path))

    other = tmp_path / "other"
    other.mkdir()
    busy_path = write_topology(other)
    busy = load(busy_path)
    holder = socket.socket()
    holder.bind(("127.0.0.1", busy.spec.sentinel.nodes[1].port))
    holder.listen()
    try:
        result = run_cli("up", str(busy_path), "--detach")
    finally:
        holder.close()
    assert result.returncode != 0
    assert "port(s) in use: sentinel-2" in result.stderr and "nothing was started" in result.stderr
    assert not busy.state_dir.exists()


def test_missing_binary_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topo_path = write_topology(tmp_path)
    monkeypatch.setenv("REDKEEPER_NUTCRACKER", str(tmp_path / "no-such-nutcracker"))
    result = run_cli("up", str(topo_path), "--detach")
    assert result.returncode == 3
    assert "no-such-nutcracker" in result.stderr
    assert not load(topo_path).state_dir.exists()


def test_bad_topology_reports_all_mistakes_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "sentinel: {nodes: [127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381], quorum: 7}\n"
        "shards:\n"
        "  - {name: s1, master: 127.0.0.1:6000}\n"
        "  - {name: s1, master: 127.0.0.1:6001, replicas: [127.0.0.1:6001]}\n"
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (["validate", str(path)], ["up", str(path), "--detach"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == EXIT_CONFIG, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 3, result.stderr
        assert any("shards[1].name" in line for line in lines)
        assert any("sentinel.quorum" in line for line in lines)
        assert any("shards[1].replicas[0]" in line for line in lines)
        assert all(str(path) in line and "fix:" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_init_then_validate(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    assert run_cli("init", str(target)).returncode == 0
    assert "shard1" in target.read_text() and "#" in target.read_text()
    assert run_cli("validate", str(target)).returncode == 0
    again = run_cli("init", str(target))
    assert again.returncode != 0 and "--force" in again.stderr
