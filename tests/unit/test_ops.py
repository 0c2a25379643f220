"""The operations' pure parts: the topology file edit, the rings' rule of what moves, the plan,
the journals, Sentinel's replica entries and the steering values, interrupts."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from redkeeper.errors import ConfigError, OperationError, OperationInterruptedError
from redkeeper.model import Address
from redkeeper.ops import steer, topofile
from redkeeper.ops.handover import SwitchoverRecord, good_replicas
from redkeeper.ops.interrupt import Interrupts, reached
from redkeeper.ops.journal import Journal
from redkeeper.ops.reshard_model import (
    Hooks,
    ReshardRecord,
    ReshardSettings,
    build_context,
    shard_json,
)
from redkeeper.ops.reshard_plan import Plan, Rings, possible_moves
from redkeeper.placement import PoolServer, Ring
from redkeeper.topology import Topology, default_text, parse_topology
from redkeeper.topology.schema import ShardSpec

FLOW = """name: t
sentinel: {nodes: [127.0.0.1:26379], quorum: 1}
shards:
  - {name: shard1, master: 127.0.0.1:6666, replicas: [127.0.0.1:6667]}
  # the second one
  - {name: shard2, master: 127.0.0.1:7666, replicas: []}

# the endpoint
proxy:
  listen: 127.0.0.1:22121
"""
NEW = ShardSpec.model_validate(
    {"name": "shard3", "master": "127.0.0.1:8666", "replicas": ["127.0.0.1:8667"]}
)


def parse(text: str) -> Topology:
    return parse_topology(text, source="t.yaml", base_dir=Path("/srv"))


def ring(*names: str, weights: tuple[int, ...] = (), distribution: str = "ketama") -> Ring:
    return Ring(
        [PoolServer("h", 1000 + i, (weights or (1,) * len(names))[i], n) for i, n in
         enumerate(names)],
        distribution=distribution,
    )  # fmt: skip


# --------------------------------------------------------------------------- topofile
@pytest.mark.parametrize("text", [FLOW, default_text()], ids=["flow", "block"])
def test_adding_then_removing_a_shard_gives_the_file_back(text: str) -> None:
    old = parse(text)
    added = topofile.with_shard_added(text, NEW, "t.yaml")
    new = topofile.checked(old, added, [*old.spec.shards, NEW])
    assert [s.name for s in new.shards][-1] == "shard3"
    assert set(text.splitlines()) <= set(added.splitlines())  # every other line is kept
    assert len(added.splitlines()) - len(text.splitlines()) in (1, 3)  # the item's lines
    assert topofile.with_shard_removed(added, "shard3", "t.yaml") == text


def test_the_new_item_follows_the_style_of_the_list() -> None:
    added = topofile.with_shard_added(FLOW, NEW, "t.yaml")
    line = "  - {name: shard3, master: 127.0.0.1:8666, replicas: [127.0.0.1:8667]}\n"
    assert line in added
    assert added.index(line) < added.index("# the endpoint")
    block = topofile.with_shard_added(default_text(), NEW, "t.yaml")
    assert "  - name: shard3\n    master: 127.0.0.1:8666\n    replicas: [127.0.0.1:8667]\n" in block


def test_removing_a_shard_keeps_the_comments_of_the_others() -> None:
    removed = topofile.with_shard_removed(FLOW, "shard1", "t.yaml")
    assert "name: shard1" not in removed and "# the second one" in removed
    assert [s.name for s in parse(removed).shards] == ["shard2"]
    removed = topofile.with_shard_removed(FLOW, "shard2", "t.yaml")
    assert "# the second one" not in removed and "# the endpoint" in removed


def test_edits_that_cannot_be_made_safely_are_refused(tmp_path: Path) -> None:
    inline = FLOW.replace(
        "shards:\n  - {name: shard1, master: 127.0.0.1:6666, replicas: [127.0.0.1:6667]}\n"
        "  # the second one\n  - {name: shard2, master: 127.0.0.1:7666, replicas: []}\n",
        "shards: [{name: shard1, master: 127.0.0.1:6666}]\n",
    )
    with pytest.raises(ConfigError, match="inline"):
        topofile.with_shard_added(inline, NEW, "t.yaml")
    with pytest.raises(ConfigError, match="no shard named"):
        topofile.with_shard_removed(FLOW, "shard9", "t.yaml")
    old = parse(FLOW)
    other = topofile.with_shard_added(FLOW, NEW, "t.yaml").replace("22121", "22122")
    with pytest.raises(ConfigError, match="more than the shards"):
        topofile.checked(old, other, [*old.spec.shards, NEW])
    path = tmp_path / "t.yaml"
    path.write_text(FLOW)
    added = topofile.with_shard_added(FLOW, NEW, "t.yaml")
    assert topofile.write_shards(path, added, topofile.checked(old, added, [*old.shards, NEW]))
    assert path.read_text() == added and (tmp_path / "t.yaml.bak").read_text() == FLOW


# --------------------------------------------------------------------------- rings, plan
def test_a_key_moves_only_from_its_own_shard_to_its_new_home() -> None:
    old, new = ring("shard1", "shard2"), ring("shard1", "shard2", "shard3")
    rings = Rings(old, new)
    for i in range(2000):
        key = b"k%d" % i
        was, now = old.locate(key).name, new.locate(key).name
        assert rings.homes(key) == (was, now)
        assert rings.destination(was, key) == (None if now == was else now)
        other = "shard2" if was == "shard1" else "shard1"
        assert rings.destination(other, key) is None  # a stray never moves
    plan = Plan()
    keys = [b"k%d" % i for i in range(3000)]
    plan.feed(rings, "shard1", keys)
    on_shard1 = [k for k in keys if old.locate(k).name == "shard1"]
    assert plan.strays == {"shard1": len(keys) - len(on_shard1)}
    moving = sum(1 for k in on_shard1 if new.locate(k).name == "shard3")
    assert plan.moves == {("shard1", "shard3"): moving}
    assert 0.25 < moving / len(on_shard1) < 0.42  # about 1/3 under ketama
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_possible_moves_come_from_the_rings_alone() -> None:
    two, three = ring("shard1", "shard2"), ring("shard1", "shard2", "shard3")
    assert possible_moves(two, three) == {("shard1", "shard3"), ("shard2", "shard3")}
    assert possible_moves(three, two) == {("shard3", "shard1"), ("shard3", "shard2")}
    heavier = ring("shard1", "shard2", "shard3", weights=(2, 2, 1))
    moves = possible_moves(two, heavier)
    assert moves is not None and ("shard1", "shard2") in moves  # weights differ: cross moves
    assert possible_moves(ring("a", "b", distribution="modula"), two) is None


def _record(topology: Topology, shards: list[ShardSpec]) -> ReshardRecord:
    old = [shard_json(s) for s in topology.shards]
    return ReshardRecord("add", "shard3", "t.yaml", old, [shard_json(s) for s in shards], {})


def test_a_change_whose_sources_also_receive_keys_is_refused(tmp_path: Path) -> None:
    topology = parse(FLOW.replace("/srv", str(tmp_path)))
    journal = Journal(tmp_path, "reshard")
    settings, hooks = ReshardSettings(), Hooks()
    context = build_context(
        topology, _record(topology, [*topology.shards, NEW]), journal, settings, hooks,
        Interrupts(),
    )  # fmt: skip
    assert (context.sources, context.destinations) == (["shard1", "shard2"], ["shard3"])
    heavy = NEW.model_copy(update={"weight": 3})
    with pytest.raises(OperationError, match="weights differ"):
        build_context(
            topology, _record(topology, [*topology.shards, heavy]), journal, settings, hooks,
            Interrupts(),
        )  # fmt: skip


# --------------------------------------------------------------------------- journals
def test_journal_round_trips_keeps_the_last_finished_and_names_a_corrupt_one(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, "reshard")
    assert journal.read() is None
    record = _record(parse(FLOW), [*parse(FLOW).shards, NEW])
    record.notify = {"127.0.0.1:6666": ""}
    journal.write(record.to_json())
    again = ReshardRecord.from_json(journal, journal.read() or {})
    assert again == record
    assert journal.finish() == tmp_path / "ops" / "reshard.done.json"
    assert journal.read() is None
    journal.path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"reshard\.json"):
        journal.read()
    journal.path.write_text(json.dumps({**record.to_json(), "phase": "nonsense"}))
    with pytest.raises(ConfigError, match="unknown phase"):
        ReshardRecord.from_json(journal, journal.read() or {})


def test_switchover_record_round_trips(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "switchover")
    record = SwitchoverRecord(
        "shard1", Address("h", 1), Address("h", 2), Address("h", 26379), {Address("h", 2): 100},
        "paused", 12.5, 1,
    )  # fmt: skip
    journal.write(record.to_json())
    assert SwitchoverRecord.from_json(journal, journal.read() or {}) == record
    journal.write({"shard": "shard1"})
    with pytest.raises(ConfigError, match="old_master"):
        SwitchoverRecord.from_json(journal, journal.read() or {})


def test_a_journal_lock_is_exclusive_and_released_with_its_holder(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "switchover")
    with journal.locked(1.0):
        other = Journal(tmp_path, "switchover")
        busy = "another switchover is under way"
        with pytest.raises(OperationError, match=busy), other.locked(0.2):
            pass  # pragma: no cover
        with Journal(tmp_path, "reshard").locked(0.2):  # another kind: its own lock
            pass
    holder = os.fork()
    if holder == 0:  # pragma: no cover - the child holds the lock until it is killed
        with journal.locked(1.0):
            os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(0)
    try:
        os.waitpid(holder, os.WUNTRACED)  # stopped: it holds the lock
        with pytest.raises(OperationError), journal.locked(0.2):
            pass  # pragma: no cover
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)
    with journal.locked(1.0):  # the kernel released it with the killed holder
        pass


# --------------------------------------------------------------------------- steering
def test_sentinel_replica_entries_and_the_values_that_steer_it() -> None:
    entry = steer.parse_replica(
        ["ip", "127.0.0.1", "port", "6667", "flags", "slave", "master-link-status", "ok",
         "slave-repl-offset", "42", "slave-priority", "100", "info-refresh", "650"]
    )  # fmt: skip
    assert entry.address == Address("127.0.0.1", 6667) and not entry.down
    assert (entry.priority, entry.offset, entry.info_age_s) == (100, 42, 0.65)
    with pytest.raises(ValueError, match="malformed"):
        steer.parse_replica(["ip", "127.0.0.1"])
    a, b, c = (Address("h", p) for p in (1, 2, 3))
    assert steer.wanted_priorities(a, {a: 100, b: 100, c: 0}) == {a: 1}
    assert steer.wanted_priorities(a, {a: 1, b: 1, c: 100}) == {b: 2}


def test_good_replicas_counts_online_replicas_within_the_lag() -> None:
    info = {
        "role": "master",
        "slave0": {"ip": "h", "port": 1, "state": "online", "lag": 0},
        "slave1": {"ip": "h", "port": 2, "state": "wait_bgsave", "lag": 0},
        "slave2": {"ip": "h", "port": 3, "state": "online", "lag": 30},
        "slave_read_only": 1,
    }
    assert good_replicas(info, 10) == 1


# --------------------------------------------------------------------------- interrupts
def test_a_signal_stops_an_operation_only_at_a_safe_point() -> None:
    with Interrupts() as interrupts:
        interrupts.check("before")
        os.kill(os.getpid(), signal.SIGINT)  # handled: a flag, no KeyboardInterrupt
        with interrupts.critical():
            interrupts.check("inside a cutover")  # ignored
        with pytest.raises(OperationInterruptedError, match="SIGINT received; stopped later"):
            interrupts.check("later")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    reached("anything")  # the kill hook is off without REDKEEPER_KILL_AT
