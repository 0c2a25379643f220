"""Drill figures (pure): what one scenario's recorded writes, events and applies mean.

Owns every figure computed from a `ScenarioRecord` into `ScenarioFigures` (both are the data
model in `redkeeper.drills`):

- write unavailability (WU) per fault window: from the last success before the first failure
  to the first success after the last failure (censored at the workload's end when writes
  never came back); for pauses, where writes wait rather than fail, the longest time without
  an acknowledged write (`longest_ack_gap`);
- acknowledged writes lost: acked keys missing from the shard's current master (read back);
- errors on healthy shards: failures on a shard outside its own fault windows, per connection;
- agent apply latency (the agent's history) and the client-observed one (agent's first notice
  → first successful write after the failure);
- failovers observed: +switch-master per shard, deduplicated across Sentinels;
- keys on the wrong shard, writes accepted by a resumed old master after the switch;
- pass/fail against the scenario's bars, and the report-only targets.

No I/O, no clock: everything is a function of its arguments.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from redkeeper.drills import (
    Check,
    EventRecord,
    Fault,
    Op,
    ScenarioFigures,
    ScenarioRecord,
    ShardFigures,
)
from redkeeper.drills.scenarios import Bars, resolve_shards

# Events after which the new master accepts writes (the "switch" of a failover).
SWITCH_KINDS = frozenset(
    {"+failover-state-send-slaveof-noone", "+promoted-slave", "+switch-master"}
)
FAULT_ACTIONS = frozenset({"kill", "stop"})
QUIET_S = 1.0  # seconds of failure-free successful writes that end an outage
TARGET_WU_EXTRA_MS = 1000.0
TARGET_APPLY_P99_MS = 200.0
BAR_WU_EXTRA_MS = 5000.0


# ---------------------------------------------------------------- windows and WU
Window = tuple[float, float]


def fault_windows(
    faults: Sequence[Fault], shards: Sequence[str], end: float
) -> dict[str, list[Window]]:
    """Per shard, the time ranges that belong to its own faults.

    A window opens at a step that kills or stops a node of the shard and closes when a later
    step faults nodes of other shards only (so the healthy shard's errors during another
    shard's failover are not its WU), or at `end`.
    """
    groups: dict[int, tuple[float, set[str]]] = {}
    for fault in faults:
        if fault.action in FAULT_ACTIONS and fault.shard is not None:
            time, members = groups.get(fault.group, (fault.time, set()))
            groups[fault.group] = (min(time, fault.time), members | {fault.shard})
    ordered = sorted(groups.values(), key=lambda g: g[0])
    windows: dict[str, list[Window]] = {s: [] for s in shards}
    for i, (start, members) in enumerate(ordered):
        for shard in members:
            if windows.get(shard) and windows[shard][-1][1] >= start:
                continue  # still inside this shard's previous window
            close = next((t for t, m in ordered[i + 1 :] if shard not in m), end)
            windows.setdefault(shard, []).append((start, close))
    return windows


def in_windows(time: float, windows: Sequence[Window]) -> bool:
    return any(start <= time < end for start, end in windows)


def outages(ops: Sequence[Op], window: Window) -> list[list[Op]]:
    """The failed writes of one shard in `window`, split into outages: a failure starts a new
    outage only when it was sent `QUIET_S` or more after the shard answered a write again
    following every earlier failure (requests still hanging keep an outage open)."""
    start, end = window
    failures = sorted((op for op in ops if not op.ok and start <= op.start < end), key=_start)
    ok_ends = sorted(op.end for op in ops if op.ok)
    groups: list[list[Op]] = []
    last_end = 0.0
    for failure in failures:
        index = bisect_left(ok_ends, last_end)
        back = ok_ends[index] if index < len(ok_ends) else None
        if not groups or (back is not None and failure.start >= back + QUIET_S):
            groups.append([failure])
            last_end = failure.end
        else:
            groups[-1].append(failure)
            last_end = max(last_end, failure.end)
    return groups


def _start(op: Op) -> float:
    return op.start


def outage_wu(
    ops: Sequence[Op], failures: Sequence[Op], since: float, run_end: float
) -> tuple[float | None, bool, float | None]:
    """(WU ms, recovered, first success after the last failure) of `failures` of one shard.

    WU runs from the last success before the first failure (or `since`) to the first success
    after the last failure; to `run_end`, with recovered False, when none came. None when
    nothing failed."""
    if not failures:
        return None, True, None
    first_fail = min(op.end for op in failures)
    last_fail = max(op.end for op in failures)
    before = [op.end for op in ops if op.ok and op.end <= first_fail]
    last_ok = max(before) if before else since
    after = [op.end for op in ops if op.ok and op.end >= last_fail]
    if not after:
        return (run_end - last_ok) * 1000.0, False, None
    first_ok = min(after)
    return (first_ok - last_ok) * 1000.0, True, first_ok


def write_unavailability(
    ops: Sequence[Op], window: Window, run_end: float
) -> tuple[float | None, bool, float | None]:
    """The issue's WU over a whole window (every failure in it, however many outages)."""
    failures = [op for op in ops if not op.ok and window[0] <= op.start < window[1]]
    return outage_wu(ops, failures, window[0], run_end)


def longest_ack_gap(ops: Sequence[Op], shard: str, window: Window) -> float:
    """Seconds of the longest time in `window` during which no write to `shard` was
    acknowledged: the write unavailability of a pause, where writes wait rather than fail
    (a planned switchover, a reshard's cutover). From `window`'s start to the first
    acknowledgement, between two, and from the last one to its end."""
    start, end = window
    acked = sorted(op.end for op in ops if op.ok and op.shard == shard and start <= op.end < end)
    marks = [start, *acked, end]
    return max(b - a for a, b in itertools.pairwise(marks))


# ---------------------------------------------------------------- events
def failovers(events: Iterable[EventRecord], shard: str) -> list[tuple[float, str, str]]:
    """(time, old, new) of each failover of `shard`, one per switch however many Sentinels
    published it (a repeat of the same old → new pair is the same failover)."""
    found: list[tuple[float, str, str]] = []
    for event in sorted(events, key=lambda e: e.time):
        if event.channel != "+switch-master" or event.shard != shard:
            continue
        words = event.payload.split()
        if len(words) < 5:
            continue
        old, new = f"{words[1]}:{words[2]}", f"{words[3]}:{words[4]}"
        if any(o == old and n == new for _, o, n in found[-1:]):
            continue
        found.append((event.time, old, new))
    return found


def switch_time(events: Iterable[EventRecord], shard: str) -> float | None:
    """When the first failover of `shard` made a new master writable (earliest Sentinel word)."""
    times = [e.time for e in events if e.shard == shard and e.channel in SWITCH_KINDS]
    return min(times) if times else None


def old_master_writes(values: Mapping[str, str], switched_at: float | None) -> int:
    """Keys a resumed old master holds whose write was sent after the switch (value = send
    time)."""
    if switched_at is None:
        return 0
    count = 0
    for value in values.values():
        try:
            sent = float(value)
        except ValueError:
            continue
        if sent > switched_at:
            count += 1
    return count


# ---------------------------------------------------------------- placement
def misplaced_keys(
    keys_by_shard: Mapping[str, Iterable[str]], locate: Callable[[str], str]
) -> dict[str, list[str]]:
    """Per shard, the keys found on its master that the placement puts elsewhere."""
    return {
        shard: [key for key in keys if locate(key) != shard]
        for shard, keys in keys_by_shard.items()
    }


# ---------------------------------------------------------------- figures
def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _error_kind(error: str) -> str:
    return error.split(":", 1)[0] if error else "?"


def shard_figures(record: ScenarioRecord, shard: str, windows: Sequence[Window]) -> ShardFigures:
    ops = [op for op in record.ops if op.shard == shard]
    ok = [op for op in ops if op.ok]
    failed = [op for op in ops if not op.ok]
    wu: float | None = None  # the fault's own outage (the first of its window)
    whole: float | None = None  # every failure of the window (a second outage included)
    recovered = True
    first_ok: float | None = None
    count = 0
    for window in windows:
        groups = outages(ops, window)
        count += len(groups)
        if not groups:
            continue
        value, _back, first = outage_wu(ops, groups[0], window[0], record.ended)
        if value is not None and (wu is None or value > wu):
            wu, first_ok = value, first
        span, back, _first = write_unavailability(ops, window, record.ended)
        recovered = recovered and back
        if span is not None and (whole is None or span > whole):
            whole = span
    if windows and wu is None:
        wu = whole = 0.0  # faulted, yet no write failed (a stall shorter than the timeouts)
    acked = {op.key for op in ok}
    present = record.present.get(shard, set())
    lost = sorted(acked - present)
    healthy = [op for op in failed if not in_windows(op.start, windows)]
    per_conn = Counter(op.conn for op in healthy)
    switches = failovers(record.events, shard)
    applies = [a for a in record.applies if shard in a.changes]
    latencies = [a.latency_ms for a in applies if a.latency_ms is not None]
    noticed = [a.noticed for a in applies if a.noticed is not None]
    client_ms = None
    if first_ok is not None and noticed and min(noticed) <= first_ok:
        client_ms = (first_ok - min(noticed)) * 1000.0
    old_writes = None
    if shard in record.old_master_values:
        old_writes = old_master_writes(
            record.old_master_values[shard], switch_time(record.events, shard)
        )
    return ShardFigures(
        shard=shard,
        faulted=bool(windows),
        writes_ok=len(ok),
        writes_failed=len(failed),
        wu_ms=wu,
        wu_window_ms=whole,
        outages=count,
        recovered=recovered,
        acked=len(acked),
        lost=len(lost),
        lost_sample=lost[:10],
        healthy_errors=len(healthy),
        healthy_errors_max_per_conn=max(per_conn.values(), default=0),
        failovers=len(switches),
        switches=[f"{old} -> {new}" for _, old, new in switches],
        apply_latency_ms=latencies,
        client_apply_ms=client_ms,
        misplaced=record.misplaced.get(shard, 0),
        old_master_writes_after_switch=old_writes,
        errors_by_kind=dict(Counter(_error_kind(op.error) for op in failed)),
        max_write_ms=max(((op.end - op.start) * 1000.0 for op in ok), default=None),
    )


def lost_bound(bars: Bars, shards: Sequence[str], connections: int) -> int:
    """connections × masters at risk: with one request in flight per connection, a killed or
    frozen master can have acknowledged at most that many writes its replicas never got in
    its last event-loop pass (docs/drills.md)."""
    risk = len(shards) if bars.masters_at_risk == "*" else bars.masters_at_risk
    return connections * risk


def figures(record: ScenarioRecord, bars: Bars) -> ScenarioFigures:
    windows = fault_windows(record.faults, record.shards, record.ended)
    per_shard = [shard_figures(record, s, windows.get(s, [])) for s in record.shards]
    bound = lost_bound(bars, record.shards, record.connections)
    observed = any(s.fail_static for s in record.samples)
    applies = [a for a in record.applies if record.started <= a.time]
    result = ScenarioFigures(
        scenario=record.scenario,
        started=record.started,
        duration_s=round(record.ended - record.started, 3),
        ops=len(record.ops),
        lost_bound=bound,
        fail_static_observed=observed,
        applies=len(applies),
        apply_latency_ms=[a.latency_ms for a in applies if a.latency_ms is not None],
        apply_log=[
            f"+{a.time - record.started:.2f} s "
            + ", ".join(f"{k} -> {v}" for k, v in sorted(a.changes.items()))
            + f" ({_fmt(a.latency_ms)} after the notice)"
            for a in applies
        ],
        shards=per_shard,
        bars=[],
        targets=[],
        error=record.error,
    )
    result.bars = evaluate_bars(result, bars, record)
    result.targets = evaluate_targets(result, bars, record.down_after_ms)
    return result


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f} ms"


def wu_bar_ms(bars: Bars, down_after_ms: int, failover_timeout_ms: int) -> float | None:
    if bars.wu == "none":
        return None
    extra = 2.0 * failover_timeout_ms if bars.wu == "dam+2ft+5s" else 0.0
    return down_after_ms + BAR_WU_EXTRA_MS + extra


def evaluate_bars(result: ScenarioFigures, bars: Bars, record: ScenarioRecord) -> list[Check]:
    checks: list[Check] = []
    if record.error is not None:
        checks.append(Check("completed", False, record.error))
    expected = set(resolve_shards(bars.failover_shards, record.shards))
    counts = {s.shard: s.failovers for s in result.shards}
    checks.append(
        Check(
            "failovers",
            all(counts[s] == (1 if s in expected else 0) for s in counts),
            ", ".join(f"{s} {n}/{1 if s in expected else 0}" for s, n in counts.items()),
        )
    )
    lost = sum(s.lost for s in result.shards)
    checks.append(Check("lost writes", lost <= result.lost_bound, f"{lost} ≤ {result.lost_bound}"))
    wrong = sum(s.misplaced for s in result.shards)
    scope = "" if record.scan_complete else " (scan truncated)"
    checks.append(Check("wrong shard", wrong == 0, f"{wrong} of {record.keys_scanned} keys{scope}"))
    limit = wu_bar_ms(bars, record.down_after_ms, record.failover_timeout_ms)
    if limit is not None:
        faulted = [s for s in result.shards if s.faulted]
        ok = all(s.recovered and (s.wu_ms or 0.0) <= limit for s in faulted)
        detail = ", ".join(f"{s.shard} {_fmt(s.wu_ms)}" for s in faulted)
        checks.append(Check("WU", ok, f"{detail} ≤ {limit:.0f} ms"))
        again = [f"{s.shard} {s.outages} ({_fmt(s.wu_window_ms)} in all)" for s in faulted]
        single = all(s.outages <= 1 for s in faulted)
        checks.append(Check("one outage", single, ", ".join(again) or "no faulted shard"))
    if bars.fail_static:
        checks.append(
            Check(
                "fail static",
                result.fail_static_observed,
                "observed" if result.fail_static_observed else "never seen",
            )
        )
    if bars.healthy_errors_zero:
        healthy = [s for s in result.shards if not s.faulted]
        errors = sum(s.healthy_errors for s in healthy)
        checks.append(Check("healthy shard", errors == 0, f"{errors} errors"))
    if bars.old_master_quiet:
        writes = sum(s.old_master_writes_after_switch or 0 for s in result.shards)
        seen = any(s.old_master_writes_after_switch is not None for s in result.shards)
        checks.append(
            Check(
                "old master",
                writes == 0 and seen,
                f"{writes} writes after the switch" if seen else "not read",
            )
        )
    return checks


def evaluate_targets(result: ScenarioFigures, bars: Bars, down_after_ms: int) -> list[Check]:
    """The report-only targets: WU ≤ down-after + 1 s, apply p99 ≤ 200 ms, healthy shard
    ≤ 1 error per connection per failover (of the other shards)."""
    targets: list[Check] = []
    if bars.wu != "none":
        limit = down_after_ms + TARGET_WU_EXTRA_MS
        faulted = [s for s in result.shards if s.faulted and s.wu_ms is not None]
        if faulted:
            ok = all(s.recovered and (s.wu_ms or 0.0) <= limit for s in faulted)
            detail = ", ".join(f"{s.shard} {_fmt(s.wu_ms)}" for s in faulted)
            targets.append(Check("WU ≤ down-after + 1 s", ok, f"{detail} (≤ {limit:.0f} ms)"))
    latencies = result.apply_latency_ms
    p99 = percentile(latencies, 99)
    if p99 is not None:
        targets.append(
            Check(
                "apply p99 ≤ 200 ms",
                p99 <= TARGET_APPLY_P99_MS,
                f"p99 {p99:.0f} ms over {len(latencies)}",
            )
        )
    total = sum(s.failovers for s in result.shards)
    for shard in result.shards:
        allowed = total - shard.failovers
        if shard.healthy_errors or allowed:
            targets.append(
                Check(
                    f"{shard.shard} healthy ≤ 1 error/conn/failover",
                    shard.healthy_errors_max_per_conn <= allowed,
                    f"max {shard.healthy_errors_max_per_conn}/connection, {allowed} failover(s)",
                )
            )
    return targets


def apply_p99(results: Iterable[ScenarioFigures]) -> tuple[float | None, int]:
    """p99 of every agent apply latency over a whole run, and how many there were."""
    values = [ms for r in results for ms in r.apply_latency_ms]
    return percentile(values, 99), len(values)
