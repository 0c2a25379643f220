"""Integration: `load`, `check` and `locate` on a real stack (2 shards x 3 nodes, 3 Sentinels,
nutcracker), including keys planted directly on the wrong master, deleted, or duplicated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from redkeeper.data import current_masters, expected_value, manifest_path, ring_for
from redkeeper.model import Address
from redkeeper.stack import probe
from redkeeper.topology import Topology
from tests.support import load, run_cli, running_stack, write_topology

pytestmark = pytest.mark.integration

KEYS = 2000
VALUE_SIZE = 32


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Topology]]:
    path = write_topology(tmp_path_factory.mktemp("data"))
    topology = load(path)
    with running_stack(topology):
        result = run_cli("load", "-c", str(path), "--keys", str(KEYS), "--value-size", "32")
        assert result.returncode == 0, result.stderr
        yield path, topology


def masters(topology: Topology) -> dict[str, Address]:
    return current_masters(topology, None).addresses


def direct(address: Address) -> redis.Redis:
    return probe.client(address, None, 2.0)


def check_json(path: Path, expect_rc: int) -> dict[str, Any]:
    result = run_cli("check", "-c", str(path), "--json")
    assert result.returncode == expect_rc, result.stderr + result.stdout
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def counts(report: dict[str, Any]) -> dict[str, int]:
    scan, proxy = report["scan"], report["proxy"]
    return {
        "unreadable": proxy["unreadable"]["count"],
        "wrong_value": proxy["wrong_value"]["count"],
        "errors": proxy["errors"]["count"],
        "wrong_shard": scan["wrong_shard"]["count"],
        "duplicated": scan["duplicated"]["count"],
        "missing": scan["missing"]["count"],
    }


CLEAN = dict.fromkeys(["unreadable", "wrong_value", "errors", "wrong_shard", "duplicated"], 0)


def test_load_then_check_is_clean(stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    manifest = json.loads(manifest_path(topology).read_text())
    assert (manifest["prefix"], manifest["count"], manifest["failed"]) == ("key:", KEYS, 0)
    report = check_json(path, 0)
    assert report["clean"] is True and report["defects"] == 0
    assert counts(report) == {**CLEAN, "missing": 0}
    assert report["proxy"]["checked"] == KEYS
    assert sum(report["scan"]["keys"].values()) == KEYS
    assert all(n > KEYS // 4 for n in report["scan"]["keys"].values())  # both shards used
    text = run_cli("check", "-c", str(path))
    assert text.returncode == 0, text.stderr
    assert "0 wrong-shard, 0 duplicated, 0 missing" in text.stdout
    assert text.stdout.rstrip().endswith("clean")


def test_load_prints_its_rate(tmp_path: Path, stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    other = tmp_path / "other.yaml"  # same stack, another state dir: its own manifest
    other.write_text(path.read_text().replace(str(topology.state_dir), str(tmp_path / "s")))
    result = run_cli("load", "-c", str(other), "--keys", "300", "--prefix", "rate:", "-q")
    assert result.returncode == 0, result.stderr
    assert "wrote 300 of 300 keys (rate:0..rate:299, 32-byte values)" in result.stdout
    assert " keys/s" in result.stdout
    with direct(masters(topology)["shard1"]) as one, direct(masters(topology)["shard2"]) as two:
        for i in range(300):
            (one if one.exists(f"rate:{i}") else two).delete(f"rate:{i}")


def test_locate_agrees_with_where_the_proxy_wrote(stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    keys = [f"key:{i}" for i in range(12)]
    result = run_cli("locate", "-c", str(path), "--json", *keys)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["master_unknown"] is None
    current = {name: str(a) for name, a in masters(topology).items()}
    homes = set()
    for row in report["keys"]:
        assert row["master"] == current[row["shard"]]
        homes.add(row["shard"])
        for shard, address in masters(topology).items():
            with direct(address) as conn:
                assert bool(conn.exists(row["key"])) == (shard == row["shard"]), row
    assert homes == {"shard1", "shard2"}


def test_a_key_set_on_the_wrong_master_is_wrong_shard(stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    ring = ring_for(topology)
    stray = next(f"stray:{i}" for i in range(100) if ring.locate(b"stray:%d" % i).name == "shard1")
    with direct(masters(topology)["shard2"]) as conn:
        conn.set(stray, "planted")
        try:
            report = check_json(path, 1)
        finally:
            conn.delete(stray)
    assert counts(report) == {**CLEAN, "wrong_shard": 1, "missing": 0}
    assert report["scan"]["wrong_shard"]["keys"] == [
        {"key": stray, "found_on": ["shard2"], "expected": "shard1"}
    ]
    check_json(path, 0)


def test_a_deleted_key_is_missing(stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    key = "key:1234"
    home = ring_for(topology).locate(key.encode()).name
    with direct(masters(topology)[home]) as conn:
        conn.delete(key)
        try:
            report = check_json(path, 1)
            text = run_cli("check", "-c", str(path))
        finally:
            conn.set(key, expected_value(key.encode(), VALUE_SIZE))
    assert counts(report) == {**CLEAN, "unreadable": 1, "missing": 1}
    assert report["scan"]["missing"]["keys"] == [key]
    assert report["proxy"]["unreadable"]["keys"] == [key]
    assert text.returncode == 1
    assert "missing: 1" in text.stdout and f"\n  {key}\n" in text.stdout
    assert "error: check found defects: 1 unreadable through the proxy, 1 missing" in text.stderr


def test_a_key_on_both_masters_is_duplicated(stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    key = "key:77"
    home = ring_for(topology).locate(key.encode()).name
    other = "shard2" if home == "shard1" else "shard1"
    with direct(masters(topology)[other]) as conn:
        conn.set(key, expected_value(key.encode(), VALUE_SIZE))
        try:
            report = check_json(path, 1)
        finally:
            conn.delete(key)
    assert counts(report) == {**CLEAN, "wrong_shard": 1, "duplicated": 1, "missing": 0}
    assert report["scan"]["duplicated"]["keys"] == [{"key": key, "shards": ["shard1", "shard2"]}]
    assert report["scan"]["wrong_shard"]["keys"] == [
        {"key": key, "found_on": [other], "expected": home}
    ]


def test_a_wrong_value_is_reported(stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    key = "key:5"
    with direct(topology.spec.proxy.listen) as proxy:
        proxy.set(key, "tampered")
        try:
            report = check_json(path, 1)
        finally:
            proxy.set(key, expected_value(key.encode(), VALUE_SIZE))
    assert counts(report) == {**CLEAN, "wrong_value": 1, "missing": 0}
    assert report["proxy"]["wrong_value"]["keys"] == [key]


def test_without_a_manifest_check_only_scans(stack: tuple[Path, Topology]) -> None:
    path, topology = stack
    manifest = manifest_path(topology)
    saved = manifest.read_bytes()
    manifest.unlink()
    try:
        result = run_cli("check", "-c", str(path), "--json")
    finally:
        manifest.write_bytes(saved)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["proxy"] is None and report["manifest"] is None
    assert report["scan"]["missing"] is None
    assert "no manifest (run `redkeeper load` first): only the shard scan" in result.stderr
