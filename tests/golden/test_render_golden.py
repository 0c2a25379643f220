"""Golden files for every renderer; every rendered nutcracker.yml passes the real `nutcracker -t`.

Regenerate after an intended change: REDKEEPER_UPDATE_GOLDEN=1 pytest tests/golden
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from redkeeper.process import find_binary
from redkeeper.render import Layout, render_all
from redkeeper.render.files import RenderedFile
from redkeeper.topology import Topology, load_topology, parse_topology
from tests.support import default_in_mode, run_cli

HERE = Path(__file__).parent
UPDATE = os.environ.get("REDKEEPER_UPDATE_GOLDEN") == "1"

AUTH_TOPOLOGY = """
name: prod
sentinel:
  nodes: [10.0.0.1:26379, 10.0.0.2:26379, 10.0.0.3:26379]
  quorum: 2
  down_after_ms: 5000
  failover_timeout_ms: 60000
shards:
  - {name: alpha, master: 10.0.0.1:6379, replicas: [10.0.0.2:6380], weight: 2}
  - {name: beta, master: 10.0.0.2:6379, replicas: [10.0.0.3:6380]}
proxy: {listen: 10.0.0.9:22121, stats: 10.0.0.9:22222, hash: murmur, hash_tag: "{}"}
auth: {password_env: REDKEEPER_PASSWORD}
agent: {restart: command, restart_cmd: [systemctl, restart, redkeeper-nutcracker.service]}
"""


def _check(files: list[RenderedFile], case: str) -> None:
    root = HERE / case
    for rendered in files:
        golden = root / rendered.path.relative_to("/")
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(rendered.text)
        assert golden.exists(), f"missing golden file {golden} (REDKEEPER_UPDATE_GOLDEN=1)"
        assert rendered.text == golden.read_text(), f"{rendered.path} differs from {golden}"
    expected = {p.relative_to(root) for p in root.rglob("*") if p.is_file()}
    assert expected == {f.path.relative_to("/") for f in files}


def test_default_topology_system_layout() -> None:
    """The embedded default (`mode: redkeeper`): the redkeeper proxy, no nutcracker.yml."""
    files = render_all(load_topology(None), Layout.for_system())
    _check(files, "default")
    assert all(not f.secret for f in files)
    names = {f.path.name for f in files}
    assert "redkeeper-proxy.service" in names and "nutcracker.yml" not in names


def _restart_default() -> Topology:
    return parse_topology(
        default_in_mode("restart"), source="restart.yaml", base_dir=Path("/etc/redkeeper")
    )


def test_restart_default_topology_system_layout() -> None:
    """The embedded default with `mode: restart`: nutcracker and the agent."""
    files = render_all(_restart_default(), Layout.for_system())
    _check(files, "restart")
    names = {f.path.name for f in files}
    assert {"nutcracker.yml", "redkeeper-agent.service"} <= names


def test_auth_topology_with_password_and_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDKEEPER_PASSWORD", "golden-pw")
    topology = parse_topology(AUTH_TOPOLOGY, source="prod.yaml", base_dir=Path("/etc/redkeeper"))
    files = render_all(topology, Layout.for_system(), password=topology.password())
    _check(files, "auth")
    secrets = {f.path.name for f in files if f.secret}
    assert "nutcracker.yml" in secrets
    assert "alpha-1.conf" in secrets and "sentinel-1.conf" in secrets
    pool = next(f for f in files if f.path.name == "nutcracker.yml").text
    assert "- 10.0.0.1:6379:2 alpha" in pool and "- 10.0.0.2:6379:1 beta" in pool
    assert "auto_eject_hosts: false" in pool
    sentinel = next(f for f in files if f.path.name == "sentinel-1.conf").text
    assert 'sentinel auth-pass alpha "golden-pw"' in sentinel


def test_only_one_host() -> None:
    topology = parse_topology(AUTH_TOPOLOGY, source="prod.yaml", base_dir=Path("/"))
    files = render_all(topology, Layout.for_system(), password="x", host="10.0.0.9")
    names = sorted(f.path.name for f in files)
    assert names == ["nutcracker.yml", "redkeeper-agent.service", "redkeeper-nutcracker.service"]


def test_rendered_nutcracker_yml_passes_nutcracker_t(tmp_path: Path) -> None:
    nutcracker = find_binary("nutcracker")
    cases = [render_all(_restart_default(), Layout.for_system())]
    topology = parse_topology(AUTH_TOPOLOGY, source="prod.yaml", base_dir=Path("/"))
    cases.append(render_all(topology, Layout.for_system(), password="pw with spaces"))
    for i, files in enumerate(cases):
        pool = next(f for f in files if f.path.name == "nutcracker.yml")
        path = tmp_path / f"pool{i}.yml"
        path.write_text(pool.text)
        result = subprocess.run(
            [nutcracker, "-t", "-c", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "syntax is ok" in result.stderr


def test_render_cli_writes_secrets_0600_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topo = tmp_path / "prod.yaml"
    topo.write_text(AUTH_TOPOLOGY)
    out = tmp_path / "out"
    monkeypatch.setenv("REDKEEPER_PASSWORD", "pw")
    first = run_cli("render", str(topo), "--out", str(out))
    assert first.returncode == 0, first.stderr
    pool = out / "etc/redkeeper/nutcracker.yml"
    assert stat.S_IMODE(pool.stat().st_mode) == 0o600
    assert (
        stat.S_IMODE((out / "etc/systemd/system/redkeeper-agent.service").stat().st_mode) == 0o644
    )
    again = run_cli("render", str(topo), "--out", str(out))
    assert "0 changed" in again.stdout
    missing = run_cli("render", str(topo), "--out", str(tmp_path / "o2"), "--host", "1.2.3.4")
    assert missing.returncode != 0 and "--host" in missing.stderr
    assert not (tmp_path / "o2").exists()


STEADY_AUTH_TOPOLOGY = """
name: single
sentinel:
  nodes: [10.0.0.1:26379, 10.0.0.2:26379, 10.0.0.3:26379]
  down_after_ms: 5000
shards:
  - {name: main, master: 10.0.0.1:6379, replicas: [10.0.0.2:6379, 10.0.0.3:6379]}
proxy:
  listen: 10.0.0.9:22121
  stats: 10.0.0.9:22222
  mode: steady
  haproxy: {write_frontend: 10.0.0.9:6379, stats: 10.0.0.9:8404, check_interval_ms: 500}
auth: {password_env: REDKEEPER_PASSWORD}
"""


def _steady_default() -> Topology:
    text = default_in_mode("steady")
    assert "mode: steady" in text
    return parse_topology(text, source="steady.yaml", base_dir=Path("/etc/redkeeper"))


def test_steady_default_topology_system_layout() -> None:
    """The embedded default with `mode: steady`: nutcracker points at HAProxy's frontends."""
    files = render_all(_steady_default(), Layout.for_system())
    _check(files, "steady")
    names = {f.path.name for f in files}
    assert {"haproxy.cfg", "redkeeper-haproxy.service"} <= names
    pool = next(f for f in files if f.path.name == "nutcracker.yml").text
    assert "- 127.0.0.1:22131:1 shard1" in pool and "- 127.0.0.1:22132:1 shard2" in pool
    cfg = next(f for f in files if f.path.name == "haproxy.cfg")
    assert not cfg.secret and "AUTH" not in cfg.text
    assert cfg.text.count(" disabled\n") == 2 + 6  # every server starts in maintenance


def test_steady_auth_single_shard_with_write_frontend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDKEEPER_PASSWORD", "golden-pw")
    topology = parse_topology(
        STEADY_AUTH_TOPOLOGY, source="single.yaml", base_dir=Path("/etc/redkeeper")
    )
    files = render_all(topology, Layout.for_system(), password=topology.password())
    _check(files, "steady-auth")
    cfg = next(f for f in files if f.path.name == "haproxy.cfg")
    assert cfg.secret  # it holds the password (in tcp-check AUTH)
    hexed = cfg.text.split("send-binary ")[1].split()[0]
    assert bytes.fromhex(hexed) == b"*2\r\n$4\r\nAUTH\r\n$9\r\ngolden-pw\r\n"
    assert "backend main:write" in cfg.text and "bind 10.0.0.9:6379" in cfg.text


def test_rendered_haproxy_cfg_passes_haproxy_c(tmp_path: Path) -> None:
    haproxy = find_binary("haproxy")
    topology = parse_topology(STEADY_AUTH_TOPOLOGY, source="s.yaml", base_dir=Path("/"))
    cases = [
        render_all(_steady_default(), Layout.for_system()),
        render_all(topology, Layout.for_system(), password='pw with "quotes" and spaces'),
    ]
    for i, files in enumerate(cases):
        cfg = next(f for f in files if f.path.name == "haproxy.cfg")
        path = tmp_path / f"haproxy{i}.cfg"
        path.write_text(cfg.text)
        result = subprocess.run(
            [haproxy, "-c", "-f", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Configuration file is valid" in result.stdout + result.stderr
