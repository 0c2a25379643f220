"""Drill figures from synthetic timelines (pure): WU, lost writes, healthy-shard errors, bars."""

from __future__ import annotations

import pytest

from redkeeper import drills as d
from redkeeper.drills import measure as m
from redkeeper.drills.bench import parse_csv
from redkeeper.drills.scenarios import (
    BY_NAME,
    SCENARIOS,
    Bars,
    DrillError,
    resolve_shards,
    resolve_targets,
    select,
    sentinel_group,
)
from redkeeper.drills.workload import KeyMaker
from redkeeper.model import Address

T0 = 1_700_000_000.0


def ops_every(
    shard: str, start: float, end: float, *, ok: bool, conns: int = 4, step: float = 0.01
) -> list[d.Op]:
    """One write every `step` seconds from `start` to `end`, round-robin over connections."""
    out: list[d.Op] = []
    count = round((end - start) / step)
    for i in range(count):
        t = T0 + start + i * step
        error = "" if ok else "ERR: Connection refused"
        out.append(d.Op(i % conns, shard, f"{shard}:{start}:{i}", t, t + 0.001, ok, error))
    return out


def switch(time: float, sentinel: str, shard: str, old: str, new: str) -> d.EventRecord:
    o, n = old.split(":"), new.split(":")
    payload = f"{shard} {o[0]} {o[1]} {n[0]} {n[1]}"
    return d.EventRecord(T0 + time, sentinel, "+switch-master", payload, shard, True)


def record(**kwargs: object) -> d.ScenarioRecord:
    base = d.ScenarioRecord(
        scenario="kill-master",
        shards=["shard1", "shard2"],
        down_after_ms=1000,
        failover_timeout_ms=10000,
        connections=4,
        started=T0,
        ended=T0 + 10.0,
    )
    for key, value in kwargs.items():
        setattr(base, key, value)
    return base


# ---------------------------------------------------------------- WU
def test_wu_runs_from_last_success_before_to_first_success_after() -> None:
    ops = (
        ops_every("shard1", 0.0, 1.0, ok=True)
        + ops_every("shard1", 1.2, 3.0, ok=False)
        + ops_every("shard1", 3.5, 5.0, ok=True)
    )
    wu, recovered, first_ok = m.write_unavailability(ops, (T0 + 1.0, T0 + 10.0), T0 + 10.0)
    # last success acked at 0.99 + 0.001, first success after at 3.5 + 0.001
    assert wu == pytest.approx(2510.0, abs=0.5)
    assert recovered
    assert first_ok == pytest.approx(T0 + 3.501)


def test_wu_is_censored_when_writes_never_come_back() -> None:
    ops = ops_every("shard1", 0.0, 1.0, ok=True) + ops_every("shard1", 1.0, 4.0, ok=False)
    wu, recovered, first_ok = m.write_unavailability(ops, (T0 + 1.0, T0 + 10.0), T0 + 6.0)
    assert not recovered and first_ok is None
    assert wu == pytest.approx((6.0 - 0.991) * 1000, abs=0.5)


def test_no_failure_means_no_wu_and_a_faulted_shard_reports_zero() -> None:
    ops = ops_every("shard1", 0.0, 5.0, ok=True)
    assert m.write_unavailability(ops, (T0 + 1.0, T0 + 5.0), T0 + 5.0) == (None, True, None)
    stall = [d.Fault(T0 + 1.0, 0, "stop", "shard1-1", "shard1", "master")]
    present = {"shard1": {op.key for op in ops}}
    figures = m.figures(record(ops=ops, faults=stall, present=present), Bars((), 0))
    assert figures.shards[0].wu_ms == 0.0
    assert figures.passed


def test_a_second_outage_after_recovery_is_counted_and_fails_its_bar() -> None:
    """A spurious second failover: writes back at 3 s, fine for 2 s, failing again 5-7 s."""
    ops = (
        ops_every("shard1", 0.0, 1.0, ok=True)
        + ops_every("shard1", 1.0, 3.0, ok=False)
        + ops_every("shard1", 3.0, 5.0, ok=True)
        + ops_every("shard1", 5.0, 7.0, ok=False)
        + ops_every("shard1", 7.0, 9.0, ok=True)
    )
    window = (T0 + 1.0, T0 + 10.0)
    assert [len(g) for g in m.outages(ops, window)] == [200, 200]
    assert m.write_unavailability(ops, window, T0 + 10.0)[0] == pytest.approx(6010.0, abs=0.5)
    kill = [d.Fault(T0 + 1.0, 0, "kill", "shard1-1", "shard1", "master")]
    present = {"shard1": {op.key for op in ops if op.ok}}
    figures = m.figures(record(ops=ops, faults=kill, present=present), Bars(("1",), 1))
    shard1 = figures.shards[0]
    assert shard1.outages == 2
    assert shard1.wu_ms == pytest.approx(2010.0, abs=0.5)  # the fault's own outage
    assert shard1.wu_window_ms == pytest.approx(6010.0, abs=0.5)
    assert {c.name for c in figures.bars if not c.ok} == {"one outage", "failovers"}


def test_restart_errors_and_hangs_stay_in_one_outage() -> None:
    restart = [
        d.Op(c, "shard1", f"r{c}", T0 + 3.0 + c * 0.01, T0 + 3.001 + c * 0.01, False, "x")
        for c in range(4)
    ]
    hung = [
        d.Op(0, "shard1", f"h{i}", T0 + 1.0 + i * 1.5, T0 + 2.0 + i * 1.5, False, "timeout")
        for i in range(2)
    ]  # 1.5 s apart, nothing answered in between
    ops = (
        ops_every("shard1", 0.0, 1.0, ok=True)
        + hung
        + ops_every("shard1", 2.99, 3.0, ok=True)
        + restart
        + ops_every("shard1", 3.05, 6.0, ok=True)
    )
    groups = m.outages(ops, (T0 + 1.0, T0 + 10.0))
    assert len(groups) == 1 and len(groups[0]) == 6


# ---------------------------------------------------------------- windows, healthy errors
def kill_master_record() -> d.ScenarioRecord:
    """shard1 killed at 1 s (down to 3 s), shard2 at 4 s (down to 6 s). At 3 s the restart
    for shard1 costs shard2 one error on each of 4 connections; at 6 s shard1 gets one."""
    ops = (
        ops_every("shard1", 0.0, 1.0, ok=True)
        + ops_every("shard1", 1.0, 3.0, ok=False)
        + ops_every("shard1", 3.0, 6.0, ok=True)
        + [d.Op(0, "shard1", "s1-restart", T0 + 6.0, T0 + 6.001, False, "connection: closed")]
        + ops_every("shard1", 6.01, 8.0, ok=True)
        + ops_every("shard2", 0.0, 3.0, ok=True)
        + [d.Op(c, "shard2", f"r{c}", T0 + 3.0, T0 + 3.001, False, "connection") for c in range(4)]
        + ops_every("shard2", 3.01, 4.0, ok=True)
        + ops_every("shard2", 4.0, 6.0, ok=False)
        + ops_every("shard2", 6.0, 8.0, ok=True)
    )  # fmt: skip
    faults = [
        d.Fault(T0 + 1.0, 0, "kill", "shard1-1", "shard1", "master"),
        d.Fault(T0 + 4.0, 3, "kill", "shard2-1", "shard2", "master"),
    ]
    acked = {op.key for op in ops if op.ok}
    events = [
        switch(2.8, "sentinel-1", "shard1", "127.0.0.1:1", "127.0.0.1:2"),
        switch(2.9, "sentinel-2", "shard1", "127.0.0.1:1", "127.0.0.1:2"),
        switch(3.8, "sentinel-3", "shard1", "127.0.0.1:1", "127.0.0.1:2"),
        switch(5.8, "sentinel-1", "shard2", "127.0.0.1:3", "127.0.0.1:4"),
    ]
    applies = [
        d.ApplyRecord(T0 + 2.95, T0 + 2.85, {"shard1": "127.0.0.1:2"}, 100.0, 5.0),
        d.ApplyRecord(T0 + 5.95, T0 + 5.85, {"shard2": "127.0.0.1:4"}, 100.0, 5.0),
    ]
    return record(
        ops=ops,
        faults=faults,
        events=events,
        applies=applies,
        present={"shard1": {k for k in acked if k.startswith("shard1")}, "shard2": set()},
        ended=T0 + 8.0,
    )


def test_fault_windows_close_when_another_shard_is_faulted() -> None:
    rec = kill_master_record()
    windows = m.fault_windows(rec.faults, rec.shards, rec.ended)
    assert windows == {"shard1": [(T0 + 1.0, T0 + 4.0)], "shard2": [(T0 + 4.0, T0 + 8.0)]}


def test_faults_of_one_step_share_their_window_and_sentinel_faults_open_none() -> None:
    faults = [
        d.Fault(T0 + 0.5, 0, "kill", "sentinel-1"),
        d.Fault(T0 + 1.0, 1, "kill", "shard1-1", "shard1", "master"),
        d.Fault(T0 + 1.01, 1, "kill", "shard2-1", "shard2", "master"),
        d.Fault(T0 + 1.02, 1, "kill", "shard1-2", "shard1", "replica"),
        d.Fault(T0 + 5.0, 2, "restart", "shard1-1", "shard1", "master"),
    ]
    windows = m.fault_windows(faults, ["shard1", "shard2"], T0 + 9.0)
    assert windows == {"shard1": [(T0 + 1.0, T0 + 9.0)], "shard2": [(T0 + 1.0, T0 + 9.0)]}


def test_kill_master_figures_per_shard() -> None:
    figures = m.figures(kill_master_record(), BY_NAME["kill-master"].bars)
    shard1, shard2 = figures.shards
    assert shard1.wu_ms == pytest.approx(2010.0, abs=0.5)
    assert shard2.wu_ms == pytest.approx(2010.0, abs=0.5)
    # the other shard's failover cost: errors outside the shard's own window, per connection
    assert (shard1.healthy_errors, shard1.healthy_errors_max_per_conn) == (1, 1)
    assert (shard2.healthy_errors, shard2.healthy_errors_max_per_conn) == (4, 1)
    assert shard1.failovers == 1 and shard1.switches == ["127.0.0.1:1 -> 127.0.0.1:2"]
    assert shard1.apply_latency_ms == [100.0]
    assert shard1.client_apply_ms == pytest.approx(151.0, abs=0.5)  # noticed 2.85, first ok 3.001
    assert shard1.lost == 0
    assert shard2.lost == shard2.acked > 0  # nothing of shard2 was read back
    lost_bar = next(c for c in figures.bars if c.name == "lost writes")
    assert not lost_bar.ok and lost_bar.detail.endswith("≤ 8")
    assert not figures.passed
    assert {c.name for c in figures.targets if c.ok} >= {
        "apply p99 ≤ 200 ms",
        "shard1 healthy ≤ 1 error/conn/failover",
        "shard2 healthy ≤ 1 error/conn/failover",
    }


def test_lost_writes_within_the_bound_pass() -> None:
    rec = kill_master_record()
    acked = [op.key for op in rec.ops if op.ok and op.shard == "shard2"]
    rec.present["shard2"] = set(acked[3:])  # 3 acked writes missing
    figures = m.figures(rec, BY_NAME["kill-master"].bars)
    assert figures.shards[1].lost == 3
    assert figures.shards[1].lost_sample == sorted(acked[:3])
    assert figures.passed, figures.bars
    wu = next(c for c in figures.targets if c.name.startswith("WU"))
    assert not wu.ok  # 2 s > down-after + 1 s: reported, not a bar


def test_lost_bound_is_connections_times_masters_at_risk() -> None:
    assert m.lost_bound(Bars(("*",), "*"), ["a", "b", "c"], 4) == 12
    assert m.lost_bound(Bars((), 0), ["a", "b"], 4) == 0


# ---------------------------------------------------------------- events
def test_failovers_deduplicated_across_sentinels() -> None:
    events = [
        switch(1.0, "sentinel-1", "shard1", "h:1", "h:2"),
        switch(1.1, "sentinel-2", "shard1", "h:1", "h:2"),
        switch(2.0, "sentinel-3", "shard1", "h:1", "h:2"),  # the leader, at failover end
        switch(9.0, "sentinel-1", "shard1", "h:2", "h:1"),  # a second failover, back
        switch(1.5, "sentinel-1", "shard2", "h:3", "h:4"),
    ]
    assert [(o, n) for _, o, n in m.failovers(events, "shard1")] == [
        ("h:1", "h:2"),
        ("h:2", "h:1"),
    ]
    assert len(m.failovers(events, "shard2")) == 1
    assert m.failovers(events, "shard3") == []


def test_switch_time_and_old_master_writes() -> None:
    promoted = d.EventRecord(
        T0 + 2.0, "sentinel-2", "+promoted-slave", "slave ...", "shard1", False
    )
    events = [promoted, switch(2.5, "sentinel-1", "shard1", "h:1", "h:2")]
    assert m.switch_time(events, "shard1") == T0 + 2.0
    values = {"a": f"{T0 + 1.0:.6f}", "b": f"{T0 + 2.5:.6f}", "c": "not a time"}
    assert m.old_master_writes(values, T0 + 2.0) == 1
    assert m.old_master_writes(values, None) == 0


def test_no_sentinel_majority_bars() -> None:
    bars = BY_NAME["no-sentinel-majority"].bars
    ops = (
        ops_every("shard1", 0.0, 2.0, ok=True)
        + ops_every("shard1", 2.0, 8.0, ok=False)
        + ops_every("shard2", 0.0, 8.0, ok=True)
    )
    acked = {op.key for op in ops if op.ok}
    faults = [
        d.Fault(T0 + 0.5, 0, "kill", "sentinel-1"),
        d.Fault(T0 + 0.5, 0, "kill", "sentinel-2"),
        d.Fault(T0 + 2.0, 2, "kill", "shard1-1", "shard1", "master"),
    ]
    present = {s: {k for k in acked if k.startswith(s)} for s in ("shard1", "shard2")}
    sample = d.AgentSample(T0 + 1.5, True, True, "fail static: 1/3 Sentinels answered")
    rec = record(ops=ops, faults=faults, present=present, ended=T0 + 8.0, samples=[sample])
    figures = m.figures(rec, bars)
    assert figures.passed, figures.bars
    assert figures.shards[0].wu_ms is not None and not figures.shards[0].recovered
    assert figures.shards[0].errors_by_kind == {"ERR": 600}

    rec.samples = []
    rec.events = [switch(5.0, "sentinel-3", "shard1", "h:1", "h:2")]
    failed = {c.name for c in m.figures(rec, bars).bars if not c.ok}
    assert failed == {"failovers", "fail static"}


def test_a_broken_run_fails_its_bars() -> None:
    figures = m.figures(record(error="no failover of shard1 within 21 s"), Bars(("1",), 1))
    assert not figures.passed
    assert figures.bars[0].name == "completed"


def test_misplaced_keys_and_percentile() -> None:
    locate = {"a": "shard1", "b": "shard2", "c": "shard1"}.__getitem__
    assert m.misplaced_keys({"shard1": ["a", "b"], "shard2": ["b", "c"]}, locate) == {
        "shard1": ["b"],
        "shard2": ["c"],
    }
    assert m.percentile([], 99) is None
    assert m.percentile([float(v) for v in range(1, 101)], 99) == 99.0
    assert m.percentile([5.0], 99) == 5.0


# ---------------------------------------------------------------- scenarios, keys, parsing
def test_the_registry() -> None:
    assert [s.name for s in SCENARIOS] == [
        "kill-master",
        "kill-both-masters",
        "kill-master-and-replica",
        "freeze-master",
        "stall-master",
        "sentinel-minority-down",
        "no-sentinel-majority",
        "agent-restart",
        "sentinel-restart",
    ]
    for scenario in SCENARIOS:
        assert "bars:" in scenario.describe()
    assert select([]) == list(SCENARIOS)
    with pytest.raises(DrillError, match="unknown scenario"):
        select(["kill-everything"])


def test_selectors() -> None:
    assert resolve_shards(["1", "2"], ["s1"]) == ["s1"]
    assert resolve_shards(["*", "1"], ["s1", "s2"]) == ["s1", "s2"]
    assert sentinel_group("minority", 3) == [1]
    assert sentinel_group("majority", 3) == [1, 2]
    assert sentinel_group("minority", 5) == [1, 2]
    assert sentinel_group("majority", 5) == [1, 2, 3]


def test_key_maker_hands_out_unique_keys_for_the_shard_asked() -> None:
    def locate(key: str) -> str:
        return "even" if int(key.rsplit(":", 1)[1]) % 3 else "odd"

    maker = KeyMaker("drill:x", 2, locate)
    keys = [maker.next_for("odd") for _ in range(5)] + [maker.next_for("even") for _ in range(5)]
    assert len(set(keys)) == 10
    assert all(k.startswith("drill:x:2:") for k in keys)
    assert [locate(k) for k in keys] == ["odd"] * 5 + ["even"] * 5


def test_parse_redis_benchmark_csv() -> None:
    text = (
        '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms"\n'
        '"SET","99009.90","0.263","0.080","0.255","0.399"\n'
        '"LPUSH (needed to benchmark LRANGE)","95238.10","0.3","0.1","0.287","0.5"\n'
    )
    assert parse_csv(text) == {"SET": (99009.90, 0.255), "LPUSH": (95238.10, 0.287)}


def test_targets_resolve_against_the_masters_at_the_start() -> None:
    def at(port: int) -> Address:
        return Address("127.0.0.1", port)

    nodes = [
        ("shard1-1", "shard1", at(1)),
        ("shard1-2", "shard1", at(2)),
        ("shard1-3", "shard1", at(3)),
        ("shard2-1", "shard2", at(4)),
        ("shard2-2", "shard2", at(5)),
    ]
    targets = resolve_targets(nodes, {"shard1": at(2), "shard2": at(4)}, 3)

    def names(key: str) -> list[str]:
        return [t.process for t in targets[key]]

    assert names("master:1") == ["shard1-2"]
    assert names("master:*") == ["shard1-2", "shard2-1"]
    assert names("replica:*") == ["shard1-1", "shard2-2"]
    assert names("replica:2") == ["shard2-2"]
    assert targets["master:1"][0].role == "master" and targets["master:1"][0].shard == "shard1"
    assert names("sentinels:minority") == ["sentinel-1"]
    assert names("sentinels:majority") == ["sentinel-1", "sentinel-2"]
    assert names("sentinel:3") == ["sentinel-3"] and names("agent") == ["agent"]
    assert "master:3" not in targets


def test_longest_ack_gap_counts_waiting_writes_and_failures_alike() -> None:
    ops = [
        d.Op(0, "shard1", "a", 10.0, 10.01, True),
        d.Op(1, "shard1", "b", 10.02, 10.5, True),  # waited 0.48 s (paused)
        d.Op(2, "shard1", "c", 10.03, 10.6, False, "ERR moved"),  # waited, then failed
        d.Op(2, "shard1", "d", 10.61, 10.62, True),
        d.Op(3, "shard2", "e", 10.1, 10.11, True),
    ]
    assert abs(m.longest_ack_gap(ops, "shard1", (10.0, 10.7)) - 0.49) < 1e-9
    assert m.longest_ack_gap([], "shard1", (1.0, 2.0)) == 1.0
