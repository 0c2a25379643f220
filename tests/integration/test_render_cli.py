"""`redkeeper render --dry-run --diff` and re-rendering after a topology change, as an operator
runs them (python -m redkeeper; nutcracker -t and haproxy -c validate the real files)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import default_in_mode, run_cli

pytestmark = pytest.mark.integration


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root`: content and mtime (ns)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


#: The embedded default on nutcracker (mode: restart): these tests read its nutcracker.yml.
RESTART = default_in_mode("restart")


def listed(stdout: str, kind: str) -> set[str]:
    """The file names `render` lists as `kind` (added / changed)."""
    return {
        Path(line.split()[1]).name for line in stdout.splitlines() if line.startswith(f"  {kind} ")
    }


SENTINEL_CONFS = {"sentinel-1.conf", "sentinel-2.conf", "sentinel-3.conf"}


def test_dry_run_diff_shows_the_change_and_writes_nothing(tmp_path: Path) -> None:
    topo, out = tmp_path / "t.yaml", tmp_path / "out"
    topo.write_text(RESTART)

    dry = run_cli("render", str(topo), "--out", str(out), "--dry-run", "--diff")
    assert dry.returncode == 0, dry.stderr
    assert not out.exists()  # not even the directory
    assert "--- /dev/null" in dry.stdout and "nutcracker.yml" in listed(dry.stdout, "added")
    total = len(listed(dry.stdout, "added"))
    assert f"would be {total} changed ({total} added), 0 unchanged" in dry.stdout

    first = run_cli("render", str(topo), "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    assert len(before) == total

    old = re.search(r"down_after_ms: (\d+)", RESTART)
    assert old is not None and old[1] != "2500"
    topo.write_text(RESTART.replace(old[0], "down_after_ms: 2500", 1))
    dry = run_cli("render", str(topo), "--out", str(out), "--dry-run", "--diff")
    assert dry.returncode == 0, dry.stderr
    assert snapshot(out) == before  # nothing written, not even an mtime
    assert listed(dry.stdout, "changed") == {*SENTINEL_CONFS, "topology.yaml"}
    assert f"-sentinel down-after-milliseconds shard1 {old[1]}" in dry.stdout
    assert "+sentinel down-after-milliseconds shard1 2500" in dry.stdout
    assert f"would be 4 changed (0 added), {total - 4} unchanged" in dry.stdout

    real = run_cli("render", str(topo), "--out", str(out))
    assert real.returncode == 0, real.stderr
    after = snapshot(out)
    differ = {name for name in before if after.get(name) != before[name]}
    backups = {name for name in after if name.endswith(".bak")}
    affected = {*SENTINEL_CONFS, "topology.yaml"}
    assert {Path(n).name for n in differ} == affected
    assert {Path(n).name for n in backups} == {f"{n}.bak" for n in affected}
    assert "4 changed (0 added)" in real.stdout


def test_secrets_are_masked_and_an_invalid_file_fails_the_dry_run(tmp_path: Path) -> None:
    topo, out = tmp_path / "t.yaml", tmp_path / "out"
    text = RESTART.replace("auth: {} ", "auth: {password_env: RK_TEST_PW}")
    topo.write_text(text)
    env = {"RK_TEST_PW": "first-Secret"}
    first = run_cli("render", str(topo), "--out", str(out), env=env)
    assert first.returncode == 0, first.stderr

    env = {"RK_TEST_PW": "second-Secret"}
    dry = run_cli("render", str(topo), "--out", str(out), "--dry-run", "--diff", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Secret" not in dry.stdout
    assert "-requirepass <secret, not shown>" in dry.stdout
    assert "+masterauth <secret, not shown>" in dry.stdout
    assert "first-Secret" in (out / "etc/redkeeper/nutcracker.yml").read_text()

    # nutcracker -t resolves every listen host: the dry run catches what `render` would refuse
    topo.write_text(text.replace("listen: 127.0.0.1:22121", "listen: no-such-host.invalid:22121"))
    bad = run_cli("render", str(topo), "--out", str(out), "--dry-run", env=env)
    assert bad.returncode == 78  # a configuration error
    assert f"{out}/etc/redkeeper/nutcracker.yml: nutcracker -t rejected it" in bad.stderr
    assert "first-Secret" in (out / "etc/redkeeper/nutcracker.yml").read_text()
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))
