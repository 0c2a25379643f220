"""The lab drills' figures on synthetic recordings (pure): VIP time on both hosts, route
agreement, the old master's loss window, the comparison writers, and the bars."""

from __future__ import annotations

import json

from redkeeper.drills import Op, ScenarioRecord
from redkeeper.lab.figures import LabRecord, scenario_figures
from redkeeper.lab.observe import RouteSample, VipSample
from redkeeper.lab.scenarios import BY_NAME, LabBars, select
from redkeeper.lab.summary import markdown
from redkeeper.process.ports import _proc_address

T0 = 1000.0
SHARDS = ["shard1", "shard2"]


def ops(fail_from: float, fail_to: float, end: float = 20.0) -> list[Op]:
    """One write per shard every 0.1 s; those sent in [fail_from, fail_to) fail."""
    found: list[Op] = []
    t = 0.0
    while t < end:
        for shard in SHARDS:
            ok = not fail_from <= t < fail_to
            found.append(Op(0, shard, f"k{t:.1f}{shard}", T0 + t, T0 + t + 0.01, ok,
                            "" if ok else "timeout: x"))  # fmt: skip
        t += 0.1
    return found


def record(op_list: list[Op]) -> ScenarioRecord:
    rec = ScenarioRecord("proxy-pair-split", SHARDS, 1500, 5000, 4, T0, T0 + 20.0, op_list)
    rec.present = {s: {o.key for o in op_list if o.ok and o.shard == s} for s in SHARDS}
    return rec


def lab_record(op_list: list[Op], **kwargs: object) -> LabRecord:
    base: dict[str, object] = {
        "vip": "10.0.0.100:22121",
        "active": "p1",
        "standby": "p2",
        "advert_s": 1.0,
        "fault_start": T0 + 2.0,
        "fault_end": T0 + 15.0,
    }
    base.update(kwargs)
    return LabRecord(record(op_list), **base)  # type: ignore[arg-type]


def test_wu_through_the_vip_and_the_advert_bar() -> None:
    rec = lab_record(ops(3.0, 6.0))
    figures = scenario_figures(rec, LabBars())
    assert figures.lab is not None
    assert 3000 <= (figures.lab.wu_ms or 0) <= 3250
    wu = next(c for c in figures.bars if c.name == "WU via VIP")
    assert wu.ok and "≤ 4000 ms" in wu.detail
    slow = scenario_figures(lab_record(ops(3.0, 7.5)), LabBars())
    assert not next(c for c in slow.bars if c.name == "WU via VIP").ok
    assert next(c for c in figures.bars if c.name == "lost writes").ok


def test_vip_on_both_hosts_after_the_heal() -> None:
    samples = [VipSample(T0 + t / 10, frozenset({"p1"})) for t in range(0, 50)]
    samples += [VipSample(T0 + 5 + t / 10, frozenset({"p1", "p2"})) for t in range(0, 60)]
    samples += [VipSample(T0 + 11 + t / 10, frozenset({"p1"})) for t in range(0, 40)]
    rec = lab_record(ops(0, 0), vip_samples=samples, heal_time=T0 + 10.0)
    figures = scenario_figures(rec, LabBars(vip_after_heal=True))
    assert figures.lab is not None
    assert 5900 <= figures.lab.vip_both_ms <= 6100
    assert 900 <= (figures.lab.vip_both_after_heal_ms or 0) <= 1100
    assert next(c for c in figures.bars if c.name == "VIP after heal").ok
    late = scenario_figures(lab_record(ops(0, 0), vip_samples=samples, heal_time=T0 + 8.0),
                            LabBars(vip_after_heal=True))  # fmt: skip
    assert not next(c for c in late.bars if c.name == "VIP after heal").ok


def test_routes_agreement() -> None:
    a = {"shard1": "10.0.0.11:6379"}
    b = {"shard1": "10.0.0.12:6379"}
    samples = [
        RouteSample(T0 + 1, {"p1": a, "p2": a}, {}),
        RouteSample(T0 + 2, {"p1": a, "p2": b}, {}),
        RouteSample(T0 + 3, {"p1": b, "p2": b}, {}),
        RouteSample(T0 + 4, {"p1": None, "p2": b}, {}),  # one silent: no disagreement
        RouteSample(T0 + 5, {"p1": b, "p2": b}, {}),
    ]
    figures = scenario_figures(lab_record(ops(0, 0), route_samples=samples), LabBars())
    assert figures.lab is not None
    assert not figures.lab.routes_always_agreed
    assert figures.lab.routes_disagree_ms == 1000.0
    assert not next(c for c in figures.bars if c.name == "same routes").ok


def test_old_master_loss_window_and_refusal_bar() -> None:
    cut = T0 + 2.0
    probe = [Op(-1, "shard1", f"p{i}", cut + i * 0.1, cut + i * 0.1 + 0.001, True)
             for i in range(0, 100)]  # fmt: skip
    probe.append(Op(-1, "shard1", "late", cut + 10.3, cut + 10.31, False, "NOREPLICAS: x"))
    rec = lab_record(ops(0, 0), cut_time=cut, probe_ops=probe, max_lag_s=10)
    figures = scenario_figures(rec, LabBars(refusal=True))
    assert figures.lab is not None
    assert figures.lab.acked_after_cut == 100
    assert figures.lab.refusal_after_cut_ms == 10310.0
    refusal = next(c for c in figures.bars if c.name == "old master refuses")
    assert refusal.ok and "100 writes acknowledged after the cut" in refusal.detail
    rec.max_lag_s = 5
    assert not next(
        c
        for c in scenario_figures(rec, LabBars(refusal=True)).bars
        if c.name == "old master refuses"
    ).ok


def test_comparison_writers_and_heal_errors() -> None:
    heal = T0 + 8.0
    good = [Op(-1, "shard1", f"v{i}", heal + i * 0.1, heal + i * 0.1, True) for i in range(20)]
    bad = [Op(-1, "shard1", f"h{i}", heal + i * 0.1, heal + i * 0.1, i % 2 == 0,
              "" if i % 2 == 0 else "NOREPLICAS: no") for i in range(20)]  # fmt: skip
    rec = lab_record(ops(0, 0), heal_time=heal, compare={"vip": good, "haproxy": bad})
    figures = scenario_figures(rec, LabBars(heal_errors_zero=True))
    assert figures.lab is not None and figures.lab.compare is not None
    assert figures.lab.compare["haproxy"]["noreplicas_after_heal"] == 10
    assert figures.lab.compare["vip"]["failed_after_heal"] == 0
    assert next(c for c in figures.bars if c.name == "after heal").ok


def test_failover_bar_counts_every_master_on_the_cut_host() -> None:
    rec = lab_record(ops(0, 0), cut_shards=["shard1", "shard2"])
    figures = scenario_figures(rec, LabBars(failover=True, lost="inflight"))
    failover = next(c for c in figures.bars if c.name == "failovers")
    assert not failover.ok and failover.detail == "shard1 0/1, shard2 0/1"
    assert figures.lost_bound == 8  # 4 connections × 2 masters cut off


def test_registry_summary_and_proc_addresses() -> None:
    assert [s.name for s in select([])][:2] == ["proxy-host-dies", "proxy-dies"]
    assert BY_NAME["jepsen-split"].bars.lost == "report"
    rec = lab_record(ops(3.0, 4.0))
    document = {
        "scenarios": [
            {
                "scenario": "x",
                "passed": True,
                "bars": [],
                "shards": [{"lost": 0, "acked": 5, "old_master_writes_after_switch": None}],
                "lab": json.loads(json.dumps(scenario_figures(rec, LabBars()).lab.__dict__)),
            }
        ]
    }
    table = markdown(document)
    assert "| x | PASS |" in table
    assert _proc_address("0100007F:1A0B") == ("127.0.0.1", 6667)
    assert _proc_address("00000000000000000000000001000000:0050") == ("::1", 80)
