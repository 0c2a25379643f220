"""Golden files of a proxy pair's host files (keepalived.conf, notify script, sysctl drop-in,
units), per host; and the render CLI's per-host trees for several proxy hosts.

Regenerate after an intended change: REDKEEPER_UPDATE_GOLDEN=1 pytest tests/golden
"""

from __future__ import annotations

import stat
from pathlib import Path

from redkeeper.lab.lab import default_topology_text
from redkeeper.render import Layout, render_all
from redkeeper.render.files import EXEC_MODE, SECRET_MODE
from redkeeper.topology import Topology, parse_topology
from tests.golden.test_render_golden import _check
from tests.support import run_cli


def lab(text: str | None = None) -> Topology:
    return parse_topology(text or default_topology_text(), source="lab.yaml", base_dir=Path("/lab"))


def test_each_proxy_host_gets_its_keepalived_files() -> None:
    for host, case in (("10.213.0.21", "lab-p1"), ("10.213.0.22", "lab-p2")):
        files = render_all(lab(), Layout.for_system(), host=host, vrrp_password="s3cret")
        _check(files, case)
        modes = {f.path.name: f.mode for f in files}
        assert modes["keepalived.conf"] == SECRET_MODE  # it holds the VRRP pass
        assert modes["redkeeper-notify.sh"] == EXEC_MODE


def test_restart_mode_checks_nutcracker_stats_as_telnet() -> None:
    text = default_topology_text().replace(
        "mode: redkeeper", "mode: restart\n  stats: 0.0.0.0:22222"
    )
    files = render_all(lab(text), Layout.for_system(), host="10.213.0.21")
    conf = next(f for f in files if f.path.name == "keepalived.conf").text
    assert "telnet://127.0.0.1:22222" in conf and "--http0.9" not in conf
    assert "http://127.0.0.1:9121/healthz" in conf  # chk_routing: the agent's /healthz
    assert "auth_pass" not in conf  # no VRRP pass given


def test_render_writes_a_tree_per_host_for_a_proxy_pair(tmp_path: Path) -> None:
    topology = tmp_path / "lab.yaml"
    topology.write_text(default_topology_text())
    (tmp_path / "vrrp.pass").write_text("pw\n")
    out = tmp_path / "out"
    done = run_cli("render", str(topology), "--out", str(out))
    assert done.returncode == 0, done.stderr
    hosts = sorted(p.name for p in out.iterdir())
    assert hosts == ["10.213.0.11", "10.213.0.12", "10.213.0.13", "10.213.0.21", "10.213.0.22"]
    conf = out / "10.213.0.22/etc/keepalived/keepalived.conf"
    assert "priority 249" in conf.read_text() and "auth_pass pw" in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == SECRET_MODE
    assert (out / "10.213.0.21/etc/systemd/system/redkeeper-proxy.service").exists()
    assert not (out / "10.213.0.11/etc/keepalived").exists()
    assert "5 hosts" in done.stdout
