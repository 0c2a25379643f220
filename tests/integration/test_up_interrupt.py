"""An interrupted `up` leaves nothing behind; a foreground `up` notices `down` from elsewhere.

Real processes: `redkeeper up` (foreground) is interrupted with SIGINT at several points of
its start (the delays cover: before anything starts, Redis starting, replicas linking,
Sentinels, the agent, ready). After each: no process of the state dir, no listener on any
port of the topology, no live record, and the next `up` can start (the next try).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redkeeper.process import port_open
from redkeeper.stack import LocalStack, state
from tests.support import load, processes_using, run_cli, wait_until, write_topology

pytestmark = pytest.mark.integration

DELAYS = (0.2, 0.6, 1.0, 1.5, 2.1, 2.8, 3.6)  # a start takes about 3-4 s here


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin", COLUMNS="200")


def _up(topo_path: Path, out: Path) -> subprocess.Popen[bytes]:
    with out.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "redkeeper", "up", str(topo_path)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(),
        )


def test_sigint_at_any_point_of_up_leaves_no_process_and_no_listener(tmp_path: Path) -> None:
    topo_path = write_topology(tmp_path)
    topology = load(topo_path)
    listeners = LocalStack(topology).listeners()
    outcomes: list[str] = []
    try:
        for i, delay in enumerate(DELAYS):
            out = tmp_path / f"up-{i}.out"
            proc = _up(topo_path, out)
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(60)
            text = out.read_text()
            assert code in (0, 130, -signal.SIGINT), text
            assert "Traceback" not in text or code == -signal.SIGINT, text  # before main()
            left = processes_using(topology.state_dir)
            assert not left, f"after SIGINT at {delay} s: {left}\n{text}"
            listening = [f"{n} {a}" for n, a in listeners if port_open(a.host, a.port)]
            assert not listening, f"after SIGINT at {delay} s: still listening {listening}"
            live = [r for r in state.read_records(topology.state_dir) if r.alive()]
            assert not live and not state.read_stack(topology.state_dir).intents
            if code == -signal.SIGINT:
                moment = "before the command ran"
            elif "interrupted;" in text:
                moment = "interrupted while starting"
            else:
                moment = "after ready"
            outcomes.append(f"{delay}s: exit {code}, {moment}")
    finally:
        run_cli("down", "-c", str(topo_path))
    print("; ".join(outcomes))
    assert any("interrupted while starting" in o for o in outcomes)  # the start was hit


def test_foreground_up_exits_when_the_stack_is_taken_down_elsewhere(tmp_path: Path) -> None:
    topo_path = write_topology(tmp_path)
    topology = load(topo_path)
    out = tmp_path / "up.out"
    proc = _up(topo_path, out)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in out.read_text(), 60, what="ready")
        down = run_cli("down", "-c", str(topo_path))
        assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
        assert proc.wait(10) == 0, out.read_text()  # it checks every 0.5 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        run_cli("down", "-c", str(topo_path))
    text = out.read_text()
    assert f"the stack of {topology.state_dir} was taken down from elsewhere; exiting" in text
    assert "stopping" not in text  # it did not try to stop what `down` already stopped
    assert not processes_using(topology.state_dir)
