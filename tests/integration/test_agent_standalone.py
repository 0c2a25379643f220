"""The standalone agent (no topology): an operator's own nutcracker.yml and Sentinels."""

from __future__ import annotations

import difflib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from redkeeper.errors import EXIT_CONFIG
from redkeeper.model import Address
from redkeeper.process import free_port
from tests.support import (
    BUG_MARKER,
    keys_on,
    load,
    run_cli,
    running_stack,
    sentinel_master,
    wait_until,
    write_topology,
)

pytestmark = pytest.mark.integration

HAND_WRITTEN = """\
# Our production pools -- hand-written, do not reformat!
alpha:   # the sharded cache
  listen: 127.0.0.1:{listen}
  hash: fnv1a_64
  distribution: ketama
  redis: true
  auto_eject_hosts: false
  servers:
    # weights matter: shard1 is the bigger box
    - {shard1}:3 shard1   # primary DC
    - '{shard2}:1 shard2'
beta:
  listen: 127.0.0.1:{beta}
  hash: murmur
  redis: true
  servers:
   - 127.0.0.1:6390:1 other1
   - 127.0.0.1:6391:1 other2
"""


def _agent(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin")
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "redkeeper", "agent", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def test_comments_weights_and_a_second_pool_survive_a_switch(tmp_path: Path) -> None:
    topology = load(write_topology(tmp_path))
    with running_stack(topology, with_agent=False) as stack:
        hand = tmp_path / "hand" / "nutcracker.yml"
        hand.parent.mkdir()
        before = HAND_WRITTEN.format(
            listen=topology.spec.proxy.listen.port,  # nutcracker from the stack answers there
            beta=free_port(),
            shard1=topology.shard("shard1").master,
            shard2=topology.shard("shard2").master,
        )
        hand.write_text(before)
        calls = tmp_path / "restarts"
        sentinels = [a for n in topology.spec.sentinel.nodes for a in ("--sentinel", str(n))]
        log = tmp_path / "agent.log"
        agent = _agent(
            [
                *sentinels,
                "--nutcracker-config",
                str(hand),
                "--metrics",
                "",
                "--restart-cmd",
                "sh",
                "-c",
                f"echo restarted >> {calls}",
            ],
            log,
        )
        try:
            old = topology.shard("shard1").master
            stack.signal("shard1-1", signal.SIGKILL)

            def promoted() -> Address | None:
                seen = sentinel_master(topology, "shard1")
                return (
                    Address.parse(seen.pop()) if len(seen) == 1 and str(old) not in seen else None
                )

            new = wait_until(promoted, 20, what="failover")
            wait_until(calls.exists, 10, what="restart command")
        finally:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(10) == 0
        after = hand.read_text()
        diff = [
            line
            for line in difflib.ndiff(before.splitlines(), after.splitlines())
            if line[:2] in ("- ", "+ ")
        ]
        assert diff == [
            f"-     - {old}:3 shard1   # primary DC",
            f"+     - {new}:3 shard1   # primary DC",
        ]
        assert calls.read_text() == "restarted\n"
        text = log.read_text()
        assert "Updating master shard1 to" in text and BUG_MARKER not in text
        assert (hand.parent / "nutcracker.yml.bak").read_text() == before
        assert keys_on(topology, "shard2")  # the ring still knows both names


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("alpha:\n  listen: 127.0.0.1:1\n  servers:\n    - [oops\n", "nutcracker.yml"),
        (
            "alpha:\n  listen: 127.0.0.1:1\n  servers:\n    - 127.0.0.1:6379:1\n",
            "has no name",
        ),
    ],
)
def test_corrupt_or_unnamed_config_is_refused_at_start(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "nutcracker.yml"
    path.write_text(content)
    result = run_cli(
        "agent",
        "--sentinel",
        f"127.0.0.1:{free_port()}",
        "--nutcracker-config",
        str(path),
        "--restart-cmd",
        "true",
        "--metrics",
        "",
        timeout=30,
    )
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert expected in result.stderr and str(path) in result.stderr
    assert path.read_text() == content
    assert not (tmp_path / "nutcracker.yml.bak").exists()


def test_standalone_usage_errors(tmp_path: Path) -> None:
    missing = run_cli("agent", "--sentinel", "127.0.0.1:1", timeout=30)
    assert missing.returncode == 2 and "--nutcracker-config" in missing.stderr
    path = tmp_path / "n.yml"
    path.write_text("a:\n  listen: 127.0.0.1:1\n  servers:\n    - 127.0.0.1:2:1 s\n")
    none = run_cli("agent", "--sentinel", "127.0.0.1:1", "--nutcracker-config", str(path))
    assert none.returncode == 2 and "restart strategy" in none.stderr
