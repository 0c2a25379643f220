"""Figures of a drill across the lab's hosts (pure): what the recorded writes, VIP samples,
proxy samples and the old master's probe mean, and the bars of `lab.scenarios`.

The per-shard figures are those of `drills.measure` (the same JSON shape as `redkeeper
drill --json`), with one fault window per scenario: from its first fault to the start of the
restore. Write unavailability through the VIP is the longest single outage of any shard in
that window (a second outage, like the VIP's return after a frozen proxy thaws, is counted
in `outages`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from redkeeper.drills import Check, LabFigures, Op, ScenarioFigures, ScenarioRecord
from redkeeper.drills.measure import failovers, outage_wu, outages, shard_figures
from redkeeper.lab.observe import RouteSample, VipSample
from redkeeper.lab.scenarios import LabBars

ROUTES_TOLERANCE_MS = 500.0  # a failover applied by one proxy a sample before the other


@dataclass
class LabRecord:
    """Everything a lab scenario recorded beyond the `ScenarioRecord`."""

    record: ScenarioRecord
    vip: str
    active: str
    standby: str | None
    advert_s: float
    fault_start: float
    fault_end: float  # the restore started
    heal_time: float | None = None
    cut_time: float | None = None  # the old master's host was cut off
    old_master: str | None = None
    max_lag_s: int | None = None
    cut_shards: list[str] = field(default_factory=list)  # masters on the cut host
    vip_samples: list[VipSample] = field(default_factory=list)
    route_samples: list[RouteSample] = field(default_factory=list)
    probe_ops: list[Op] = field(default_factory=list)
    compare: dict[str, list[Op]] = field(default_factory=dict)


def _span(samples: Sequence[tuple[float, bool]], since: float | None = None) -> float:
    """Milliseconds during which the flag was true, from consecutive samples."""
    total = 0.0
    for (time, flag), (after, _) in itertools.pairwise(samples):
        if flag and (since is None or time >= since):
            total += after - time
    return total * 1000.0


def worst_outage_ms(ops: Sequence[Op], window: tuple[float, float], end: float) -> float | None:
    worst: float | None = None
    for group in outages(ops, window):
        value, _back, _first = outage_wu(ops, group, window[0], end)
        if value is not None and (worst is None or value > worst):
            worst = value
    return worst


def lab_figures(lab: LabRecord) -> LabFigures:
    record = lab.record
    window = (lab.fault_start, lab.fault_end)
    worst: float | None = None
    for shard in record.shards:
        ops = [op for op in record.ops if op.shard == shard]
        value = worst_outage_ms(ops, window, record.ended)
        if value is not None and (worst is None or value > worst):
            worst = value
    vip = [(s.time, len(s.holders) >= 2) for s in lab.vip_samples]
    none = [(s.time, not s.holders) for s in lab.vip_samples]
    periods = [b.time - a.time for a, b in itertools.pairwise(lab.vip_samples)]
    disagree: list[tuple[float, bool]] = []
    for sample in lab.route_samples:
        answers = [r for r in sample.routes.values() if r is not None]
        disagree.append((sample.time, len(answers) > 1 and any(a != answers[0] for a in answers)))
    figures = LabFigures(
        vip=lab.vip,
        active_proxy=lab.active,
        standby_proxy=lab.standby,
        wu_ms=worst if worst is not None else 0.0,
        wu_bound_ms=None,
        vip_holders_end=sorted(lab.vip_samples[-1].holders) if lab.vip_samples else [],
        vip_both_ms=round(_span(vip), 1),
        vip_both_after_heal_ms=None
        if lab.heal_time is None
        else round(_span(vip, lab.heal_time), 1),
        vip_none_ms=round(_span(none), 1),
        vip_resolution_ms=round(1000.0 * max(periods, default=0.0), 1),
        routes_always_agreed=not any(flag for _, flag in disagree),
        routes_disagree_ms=round(_span(disagree), 1),
        old_master=lab.old_master,
        min_replicas_max_lag_s=lab.max_lag_s,
    )
    if lab.cut_time is not None and lab.probe_ops:
        after = [op for op in lab.probe_ops if op.start >= lab.cut_time]
        refused = [op for op in after if not op.ok and op.error.startswith("NOREPLICAS")]
        acked = [op for op in after if op.ok]
        figures.refusal_after_cut_ms = (
            round((min(op.end for op in refused) - lab.cut_time) * 1000.0, 1) if refused else None
        )
        figures.acked_after_cut = len(acked)
        figures.last_ack_after_cut_ms = (
            round((max(op.end for op in acked) - lab.cut_time) * 1000.0, 1) if acked else None
        )
    if lab.heal_time is not None:
        figures.heal_errors = sum(
            1 for op in record.ops if not op.ok and lab.heal_time <= op.start < lab.fault_end
        )
    if lab.compare:
        heal = lab.heal_time if lab.heal_time is not None else lab.fault_end
        figures.compare = {
            name: {
                "ok": sum(op.ok for op in ops),
                "failed": sum(not op.ok for op in ops),
                "failed_after_heal": sum(
                    1 for op in ops if not op.ok and heal <= op.start < lab.fault_end
                ),
                "noreplicas_after_heal": sum(
                    1
                    for op in ops
                    if op.error.startswith("NOREPLICAS") and heal <= op.start < lab.fault_end
                ),
            }
            for name, ops in lab.compare.items()
        }
    return figures


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def evaluate(figures: ScenarioFigures, lab: LabFigures, bars: LabBars, rec: LabRecord) -> None:
    """Fill `figures.bars` (and the WU bound of `lab`) from the scenario's `bars`."""
    record = rec.record
    checks: list[Check] = []
    if record.error is not None:
        checks.append(Check("completed", False, record.error))
    if bars.wu != "none":
        bound = (
            3000.0 * rec.advert_s + 1000.0 if bars.wu == "advert" else record.down_after_ms + 5000.0
        )
        lab.wu_bound_ms = bound
        recovered = all(s.recovered for s in figures.shards)
        ok = recovered and (lab.wu_ms or 0.0) <= bound
        checks.append(Check("WU via VIP", ok, f"{_ms(lab.wu_ms)} ≤ {bound:.0f} ms"))
    lost = sum(s.lost for s in figures.shards)
    if bars.lost != "report":
        bound_lost = lost_bound(bars, rec)
        checks.append(Check("lost writes", lost <= bound_lost, f"{lost} ≤ {bound_lost}"))
    counts = {s: len(failovers(record.events, s)) for s in record.shards}
    expected = {s: (1 if bars.failover and s in rec.cut_shards else 0) for s in record.shards}
    checks.append(
        Check(
            "failovers",
            counts == expected,
            ", ".join(f"{s} {counts[s]}/{expected[s]}" for s in record.shards),
        )
    )
    wrong = sum(s.misplaced for s in figures.shards)
    checks.append(Check("wrong shard", wrong == 0, f"{wrong} of {record.keys_scanned} keys"))
    if bars.vip_moves:
        moved = any(s.holders == frozenset({rec.standby}) for s in rec.vip_samples)
        checks.append(Check("VIP moved", moved, f"to {rec.standby}" if moved else "never"))
    if bars.refusal:
        limit = ((rec.max_lag_s or 0) + 1.5) * 1000.0
        value = lab.refusal_after_cut_ms
        checks.append(
            Check(
                "old master refuses",
                value is not None and value <= limit,
                f"{_ms(value)} after the cut ≤ {limit:.0f} ms "
                f"({lab.acked_after_cut} writes acknowledged after the cut, all lost)",
            )
        )
    if bars.vip_after_heal:
        both = lab.vip_both_after_heal_ms
        limit = 2000.0 * rec.advert_s
        checks.append(
            Check(
                "VIP after heal",
                both is not None and both <= limit,
                f"on both hosts {_ms(both)} ≤ {limit:.0f} ms",
            )
        )
    if bars.routes_agree:
        checks.append(
            Check(
                "same routes",
                lab.routes_disagree_ms <= ROUTES_TOLERANCE_MS,
                f"disagreed {_ms(lab.routes_disagree_ms)} (≤ {ROUTES_TOLERANCE_MS:.0f} ms)",
            )
        )
    if bars.heal_errors_zero:
        errors = lab.heal_errors
        checks.append(Check("after heal", errors == 0, f"{errors} write errors through the VIP"))
    figures.bars = checks


def lost_bound(bars: LabBars, rec: LabRecord) -> int:
    if bars.lost == "zero":
        return 0
    return rec.record.connections * max(1, len(rec.cut_shards))


def scenario_figures(rec: LabRecord, bars: LabBars) -> ScenarioFigures:
    """The drill's figures of one lab scenario (`drills.measure`'s shape, plus `lab`)."""
    record = rec.record
    windows = [(rec.fault_start, rec.fault_end)]
    shards = [shard_figures(record, s, windows) for s in record.shards]
    applies = [a for a in record.applies if a.time >= record.started]
    result = ScenarioFigures(
        scenario=record.scenario,
        started=record.started,
        duration_s=round(record.ended - record.started, 3),
        ops=len(record.ops),
        lost_bound=lost_bound(bars, rec),
        fail_static_observed=any(s.fail_static for s in record.samples),
        applies=len(applies),
        apply_latency_ms=[a.latency_ms for a in applies if a.latency_ms is not None],
        apply_log=[
            f"+{a.time - record.started:.2f} s "
            + ", ".join(f"{k} -> {v}" for k, v in sorted(a.changes.items()))
            for a in applies
        ],
        shards=shards,
        bars=[],
        targets=[],
        error=record.error,
    )
    lab = lab_figures(rec)
    result.lab = lab
    evaluate(result, lab, bars, rec)
    return result
