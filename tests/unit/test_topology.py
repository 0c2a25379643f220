"""Topology loading: the embedded default, every error at once with file/field/fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from redkeeper.errors import TopologyError
from redkeeper.model import Address
from redkeeper.topology import (
    DEFAULT_SOURCE,
    Topology,
    default_text,
    load_topology,
    parse_topology,
)
from redkeeper.topology.checks import SAFE_DOWN_AFTER_MS, check
from redkeeper.topology.resolve import resolve_hosts, same_socket

GOOD = """
sentinel: {nodes: [127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381], quorum: 2,
           down_after_ms: 1500, failover_timeout_ms: 10000}
shards:
  - {name: a, master: 127.0.0.1:6000, replicas: [127.0.0.1:6001]}
"""


def parse(text: str) -> Topology:
    return parse_topology(text, source="t.yaml", base_dir=Path("/srv"))


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


def test_embedded_default_matches_the_documented_stack() -> None:
    topology = load_topology(None)
    spec = topology.spec
    assert topology.source == DEFAULT_SOURCE
    assert [s.name for s in spec.shards] == ["shard1", "shard2"]
    assert spec.shards[0].master == Address("127.0.0.1", 6666)
    assert spec.shards[0].replicas == [Address("127.0.0.1", 6667), Address("127.0.0.1", 6668)]
    assert spec.shards[1].master == Address("127.0.0.1", 7666)
    assert [a.port for a in spec.sentinel.nodes] == [26379, 26380, 26381]
    assert spec.sentinel.quorum == 2
    assert spec.sentinel.down_after_ms == SAFE_DOWN_AFTER_MS == 1500
    assert spec.proxy.listen == Address("127.0.0.1", 22121)
    assert spec.proxy.stats == Address("127.0.0.1", 22222)
    assert (spec.proxy.hash, spec.proxy.distribution) == ("fnv1a_64", "ketama")
    assert spec.proxy.auto_eject_hosts is False
    assert spec.proxy.mode == "redkeeper"  # stock clients at their defaults can use it
    assert "debounce_ms" not in spec.agent.model_fields_set  # the mode's 0, not restart's 50
    assert topology.warnings == ()
    assert topology.state_dir == Path.cwd() / ".redkeeper"


def test_configuration_doc_shows_the_embedded_default_verbatim() -> None:
    lines = default_text().splitlines(keepends=True)
    body = "".join(line for line in lines if not line.startswith("#"))
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    assert f"```yaml\n{body}```\n" in doc, "docs/configuration.md: paste the embedded default"


def test_good_file_and_relative_state_dir() -> None:
    topology = parse_topology(GOOD, source="t.yaml", base_dir=Path("/srv/x"))
    assert topology.state_dir == Path("/srv/x/.redkeeper")
    assert topology.inventory() == {
        "a": frozenset({Address("127.0.0.1", 6000), Address("127.0.0.1", 6001)})
    }


def test_three_schema_mistakes_are_reported_together() -> None:
    found = problems(
        """
sentinel: {nodes: [127.0.0.1:26379], quorum: 1}
shards:
  - {name: "bad name", master: 127.0.0.1:6000}
  - {name: b, master: "127.0.0.1:notaport"}
proxy: {hash: fnv2}
"""
    )
    assert len(found) == 3, found
    assert any("shards[0].name" in p and "t.yaml" in p for p in found)
    assert any("shards[1].master" in p and "not a number" in p for p in found)
    assert any("proxy.hash" in p and "fnv1a_64" in p for p in found)


def test_three_cross_field_mistakes_are_reported_together() -> None:
    found = problems(
        """
sentinel: {nodes: [127.0.0.1:26379, 127.0.0.1:26380], quorum: 3,
           down_after_ms: 20000, failover_timeout_ms: 10000}
shards:
  - {name: a, master: 127.0.0.1:6000, replicas: [127.0.0.1:6000]}
"""
    )
    assert len(found) == 3, found
    assert any("sentinel.quorum" in p and "fix:" in p for p in found)
    assert any("sentinel.down_after_ms" in p for p in found)
    assert any("shards[0].replicas[0]" in p and "already used" in p for p in found)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD + "proxy: {distribution: rendezvous}\n", "proxy.distribution"),
        (GOOD + "proxy: {hash_tag: '{'}\n", "proxy.hash_tag"),
        (GOOD + "colour: red\n", "colour"),
        (GOOD.replace("name: a", "name: 'a:b'"), "shards[0].name"),
        (GOOD + "auth: {password_env: X, password_file: /f}\n", "auth"),
        (GOOD + "agent: {restart: command}\n", "agent.restart_cmd"),
        ("shards: []\n", "sentinel"),
        ("- just\n- a list\n", ""),
        ("sentinel: [\n", "line"),
    ],
)
def test_each_mistake_names_its_field(text: str, field: str) -> None:
    found = problems(text)
    assert any(p.startswith(f"t.yaml: {field}") for p in found), found


def test_warnings_do_not_fail() -> None:
    text = GOOD.replace(
        "[127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381], quorum: 2",
        "[127.0.0.1:26379], quorum: 1",
    )
    topology = parse_topology(
        text + "proxy: {auto_eject_hosts: true}\n", source="t", base_dir=Path(".")
    )
    fields = sorted(w.field for w in topology.warnings)
    assert fields == ["proxy.auto_eject_hosts", "sentinel.nodes"]


def test_down_after_below_the_safe_value_warns_with_the_reason() -> None:
    risky = parse(GOOD.replace("down_after_ms: 1500", "down_after_ms: 1000"))
    (warning,) = [w for w in risky.warnings if w.field == "sentinel.down_after_ms"]
    assert "1000 ms is below 1500 ms" in str(warning)
    assert "fails over the master it has just promoted" in str(warning)
    assert "fix: set down_after_ms: 1500 or more" in str(warning)
    safe = parse(GOOD)
    assert safe.warnings == ()


def test_the_same_socket_spelled_twice_is_a_duplicate() -> None:
    text = GOOD.replace("replicas: [127.0.0.1:6001]", "replicas: [localhost:6000]")
    found = problems(text)
    assert any(
        p.startswith(
            "t.yaml: shards[0].replicas[0]: address localhost:6000 is already used by "
            "shards[0].master (127.0.0.1:6000: the same socket)"
        )
        for p in found
    ), found


def test_duplicates_use_the_injected_resolver() -> None:
    spec = load_topology(None).spec
    moved = spec.model_copy(
        update={
            "proxy": spec.proxy.model_copy(
                update={"listen": Address("db.example", spec.shards[0].master.port)}
            )
        }
    )
    names = {"db.example": frozenset({"127.0.0.1"})}

    def fake(hosts: object) -> dict[str, frozenset[str]]:
        return {h: names.get(h) or frozenset({h}) for h in hosts}  # type: ignore[attr-defined]

    errors, _warnings = check(moved, "t.yaml", resolve=fake)
    assert [e.field for e in errors] == ["proxy.listen"]
    errors, _warnings = check(moved, "t.yaml", resolve=lambda hosts: {})
    assert errors == []  # unknown names are compared by spelling


def test_resolution_and_wildcards() -> None:
    found = resolve_hosts(["localhost", "127.0.0.1", "no-such-host.invalid"], timeout=5)
    assert "127.0.0.1" in found["localhost"]
    assert found["127.0.0.1"] == frozenset({"127.0.0.1"})
    assert found["no-such-host.invalid"] == frozenset()
    assert same_socket(frozenset({"0.0.0.0"}), frozenset({"127.0.0.1"}))
    assert not same_socket(frozenset({"0.0.0.0"}), frozenset({"::1"}))
    assert not same_socket(frozenset({"10.0.0.1"}), frozenset({"10.0.0.2"}))
    assert not same_socket(frozenset({"::"}), frozenset({"somehost"}))


def test_password_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topology = parse_topology(
        GOOD + "auth: {password_env: RK_TEST_PW}\n", source="t", base_dir=tmp_path
    )
    monkeypatch.delenv("RK_TEST_PW", raising=False)
    with pytest.raises(TopologyError, match="RK_TEST_PW is not set"):
        topology.password()
    monkeypatch.setenv("RK_TEST_PW", "s3cret")
    assert topology.password() == "s3cret"
    (tmp_path / "pw").write_text("from-file\n")
    topology = parse_topology(GOOD + "auth: {password_file: pw}\n", source="t", base_dir=tmp_path)
    assert topology.password() == "from-file"


def test_missing_file_error_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="redkeeper init"):
        load_topology(tmp_path / "nope.yaml")
