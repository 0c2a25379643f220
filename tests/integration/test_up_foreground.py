"""`redkeeper up` in the foreground (Ctrl-C stops everything) and the embedded default."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redkeeper.rediskit import sync_client
from redkeeper.stack import state
from redkeeper.topology import load_topology
from tests.support import load, run_cli, wait_until, write_topology

pytestmark = pytest.mark.integration


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    topo_path = write_topology(tmp_path)
    topology = load(topo_path)
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin", COLUMNS="200")
    out = tmp_path / "up.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "redkeeper", "up", str(topo_path)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until(lambda: "Ctrl-C stops everything" in out.read_text(), 60, what="ready")
        records = state.read_records(topology.state_dir)
        assert len(records) == 6 + 3 + 1 and all(r.alive() for r in records)
        proxy_record = state.read_proxy_record(topology.state_dir)
        assert proxy_record is not None and proxy_record.alive()
        with sync_client(topology.spec.proxy.listen, timeout=2) as client:
            assert client.set("fg", "1") and client.get("fg") == "1"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, out.read_text()
        stop_seconds = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            run_cli("down", "-c", str(topo_path))
    assert not any(r.alive() for r in [*records, proxy_record])
    text = out.read_text()
    assert "stopped in" in text, text
    print(f"foreground stack stopped in {stop_seconds:.1f} s")


def test_embedded_default_up_set_get_down(tmp_path: Path) -> None:
    """The README's promise: `redkeeper up` with no file (the redkeeper proxy), then
    redis-cli -p 22121 set/get and a stock redis-py client.

    Uses the default's fixed ports (6666…, 26379…, 22121, 22222, 9121): it fails with a
    clear "port(s) in use" if a developer's own default stack is running.
    """
    started = run_cli("up", "--detach", cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert "redis-cli -h 127.0.0.1 -p 22121" in started.stdout
        redis_cli = subprocess.run(
            ["redis-cli", "-p", "22121", "set", "k", "v"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert redis_cli.stdout.strip() == "OK"
        got = subprocess.run(
            ["redis-cli", "-p", "22121", "get", "k"], capture_output=True, text=True, check=False
        )
        assert got.stdout.strip() == "v"
        # the README's second line: a stock redis-py client at its defaults, and no warning
        stock = subprocess.run(
            [sys.executable, "-W", "always", "-c",
             'import redis; r = redis.Redis(port=22121); r.set("k2", "w"); print(r.get("k2"))'],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        assert (stock.returncode, stock.stdout.strip(), stock.stderr) == (0, "b'w'", "")
        status = run_cli("status", cwd=tmp_path)
        assert status.returncode == 0, status.stdout
        assert "redkeeper proxy 127.0.0.1:22121: up" in status.stdout
    finally:
        stopped = run_cli("down", cwd=tmp_path)
    assert stopped.returncode == 0
    assert (tmp_path / ".redkeeper" / "masters.json").exists()
    assert load_topology(None).spec.proxy.listen.port == 22121
