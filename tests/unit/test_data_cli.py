"""The data commands as an operator runs them, with nothing listening (no stack needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from redkeeper.data import ring_for
from tests.support import load, run_cli, write_topology


def test_locate_without_sentinels_still_places_keys(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    result = run_cli("locate", "-c", str(path), "user:1", "user:2", "é")
    assert result.returncode == 0, result.stderr
    ring = ring_for(load(path))
    for key in ("user:1", "user:2", "é"):
        placement = ring.locate(key.encode())
        line = next(line for line in result.stdout.splitlines() if f" {key} " in line)
        assert placement.name in line and str(placement.key_hash) in line
        assert str(placement.point) in line and "unknown" in line
    assert "master unknown: only 0 of 3 Sentinels answered" in result.stderr


def test_locate_json(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    result = run_cli("locate", "-c", str(path), "--json", "a", "b")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ring = ring_for(load(path))
    assert report["hash"] == "fnv1a_64" and report["distribution"] == "ketama"
    assert report["shards"] == ["shard1", "shard2"]
    assert report["master_unknown"].startswith("only 0 of 3 Sentinels answered")
    for row, key in zip(report["keys"], ["a", "b"], strict=True):
        placement = ring.locate(key.encode())
        assert row == {
            "key": key,
            "key_hex": key.encode().hex(),
            "shard": placement.name,
            "index": placement.index,
            "hash": placement.key_hash,
            "point": placement.point,
            "master": None,
        }


def test_random_distribution_is_a_clear_error(tmp_path: Path) -> None:
    path = write_topology(tmp_path, extra="")
    path.write_text(path.read_text().replace("proxy:\n", "proxy:\n  distribution: random\n"))
    for args in (["locate", "k"], ["check"]):
        result = run_cli(*args, "-c", str(path))
        assert result.returncode == 1, result.stderr
        assert 'error: distribution "random" picks a server per request' in result.stderr


def test_check_without_sentinels_fails_clearly(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 5
    assert "error: only 0 of 3 Sentinels answered (2 needed)" in result.stderr
    assert "sentinel-1 (127.0.0.1:" in result.stderr


def test_load_without_a_proxy_fails_clearly(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    listen = load(path).spec.proxy.listen
    result = run_cli("load", "-c", str(path), "--keys", "10")
    assert result.returncode == 1
    assert f"error: cannot talk to {listen}: ConnectionRefusedError" in result.stderr
    assert not (tmp_path / "state" / "data" / "manifest.json").exists()


def test_locate_takes_any_key_bytes_as_argument_or_hex(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    raw = b"\xff\xfeuser:\x01"
    as_arg = run_cli("locate", "-c", str(path), "--json", os.fsdecode(raw))
    as_hex = run_cli("locate", "-c", str(path), "--json", "--hex", raw.hex())
    placement = ring_for(load(path)).locate(raw)
    for result in (as_arg, as_hex):
        assert result.returncode == 0, result.stderr
        (row,) = json.loads(result.stdout)["keys"]
        assert row["key_hex"] == raw.hex() and row["key"] == "\\xff\\xfeuser:\\x01"
        assert (row["shard"], row["hash"]) == (placement.name, placement.key_hash)
    table = run_cli("locate", "-c", str(path), os.fsdecode(raw))
    assert table.returncode == 0 and "\\xff\\xfeuser:\\x01" in table.stdout, table.stderr
    bad = run_cli("locate", "-c", str(path), "--hex", "zz")
    assert bad.returncode == 2 and "is not hex" in bad.stderr
