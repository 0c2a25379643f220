"""Drill reports: the terminal table (rich), the JSON document, and one self-contained HTML file.

Owns presentation only. The HTML has, per scenario, the bars, the targets, the per-shard
figures and a timeline plot (matplotlib, Agg, embedded as a base64 PNG): successful writes/s
and errors/s per shard, with the faults, the first Sentinel events of each kind and the agent's
applies marked as vertical lines.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from redkeeper.drills import Op, ScenarioFigures, ScenarioRecord
from redkeeper.drills.measure import apply_p99
from redkeeper.drills.runner import DrillRun, ScenarioResult
from redkeeper.drills.scenarios import describe_bars
from redkeeper.fsutil import atomic_write

# Sentinel events worth a line on the plot (first occurrence per shard).
MARKED = ("+sdown", "+odown", "+try-failover", "+promoted-slave", "+switch-master", "+tilt")
MARK_COLORS = {
    "+sdown": "#b58900",
    "+odown": "#cb4b16",
    "+try-failover": "#d33682",
    "+promoted-slave": "#6c71c4",
    "+switch-master": "#268bd2",
    "+tilt": "#dc322f",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


# ---------------------------------------------------------------- terminal
def table(run: DrillRun) -> Table:
    out = Table(
        title=f"redkeeper drill — {run.mode} mode, down-after {run.down_after_ms} ms, "
        f"{run.connections} connections × {run.rate:g} writes/s",
        title_justify="left",
    )
    for column in (
        "scenario",
        "shard",
        "WU ms",
        "lost/acked",
        "healthy errs (max/conn)",
        "apply ms",
        "failovers",
        "wrong shard",
        "result",
    ):
        out.add_column(column, justify="left" if column in ("scenario", "shard") else "right")
    for result in run.results:
        fig = result.figures
        failed = [c.name for c in fig.bars if not c.ok]
        verdict = "[green]PASS[/]" if fig.passed else f"[red]FAIL[/] {', '.join(failed)}"
        for i, shard in enumerate(fig.shards):
            wu = _ms(shard.wu_ms) + ("" if shard.recovered else "+ (down)")
            if shard.outages > 1:
                wu += f" +{shard.outages - 1} outage"
            out.add_row(
                fig.scenario if i == 0 else "",
                shard.shard,
                wu if shard.faulted else "-",
                f"{shard.lost}/{shard.acked}",
                f"{shard.healthy_errors} ({shard.healthy_errors_max_per_conn})",
                ", ".join(f"{v:.0f}" for v in shard.apply_latency_ms) or "-",
                str(shard.failovers),
                str(shard.misplaced),
                verdict if i == 0 else "",
            )
        out.add_section()
    return out


def print_run(run: DrillRun, console: Console) -> None:
    console.print(table(run))
    p99, count = apply_p99(r.figures for r in run.results)
    missed = [
        f"{r.figures.scenario}: {c.name} ({c.detail})"
        for r in run.results
        for c in r.figures.targets
        if not c.ok
    ]
    console.print(
        f"agent apply latency p99 {_ms(p99)} ms over {count} applies; "
        f"targets missed: {len(missed)}",
        highlight=False,
    )
    for line in missed:
        console.print(f"  [yellow]target[/] {line}", highlight=False)
    for result in run.results:
        if result.figures.error:
            console.print(f"[red]{result.figures.scenario}:[/] {result.figures.error}")
    passed = sum(r.figures.passed for r in run.results)
    console.print(f"{passed}/{len(run.results)} scenarios passed their bars", highlight=False)


# ---------------------------------------------------------------- JSON
def run_json(run: DrillRun) -> dict[str, Any]:
    p99, count = apply_p99(r.figures for r in run.results)
    return {
        "topology": run.topology,
        "mode": run.mode,
        "down_after_ms": run.down_after_ms,
        "connections": run.connections,
        "rate_per_connection": run.rate,
        "own_stack": run.own_stack,
        "passed": run.passed,
        "error": run.error,
        "apply_latency_p99_ms": p99,
        "applies": count,
        "scenarios": [
            {
                **asdict(r.figures),
                "passed": r.figures.passed,
                "summary": r.scenario.summary,
                "bars_text": describe_bars(r.scenario.bars),
            }
            for r in run.results
        ],
    }


# ---------------------------------------------------------------- plot
@dataclass(frozen=True)
class Series:
    """Per shard, successes and failures per second in bins from the scenario start."""

    times: list[float]
    ok: dict[str, list[float]]
    errors: dict[str, list[float]]


def series(
    ops: Sequence[Op], shards: Sequence[str], start: float, end: float, bin_s: float = 0.25
) -> Series:
    bins = max(1, min(100_000, math.ceil((end - start) / bin_s)))
    ok = {s: [0.0] * bins for s in shards}
    errors = {s: [0.0] * bins for s in shards}
    for op in ops:
        index = int((op.end - start) / bin_s)
        if 0 <= index < bins and op.shard in ok:
            (ok if op.ok else errors)[op.shard][index] += 1.0 / bin_s
    return Series([i * bin_s for i in range(bins)], ok, errors)


def marks(record: ScenarioRecord) -> list[tuple[float, str, str, str]]:
    """(seconds from start, label, color, style) of every vertical line of the plot, by time:
    the steps' faults and restarts, the first Sentinel word of each kind per master (so every
    failover is marked), Sentinel link changes, the agent's applies."""
    found: list[tuple[float, str, str, str]] = []
    start = record.started
    for fault in record.faults:
        found.append((fault.time - start, f"{fault.action} {fault.process}", "black", "--"))
    first: set[tuple[str, str]] = set()
    for event in sorted(record.events, key=lambda e: e.time):
        if event.channel in MARKED and event.about_master:
            key = (event.channel, " ".join(event.payload.split()[:5]))
            if key not in first:
                first.add(key)
                words = event.payload.split()
                where = f"{words[1]} {words[2]}:{words[3]}" if len(words) >= 4 else event.payload
                if event.channel == "+switch-master" and len(words) >= 5:
                    where = f"{words[0]} -> {words[3]}:{words[4]}"
                label = f"{event.channel} {where} ({event.sentinel})"
                found.append((event.time - start, label, MARK_COLORS[event.channel], ":"))
        elif event.channel in ("link-down", "link-up"):
            found.append((event.time - start, f"{event.sentinel} {event.channel}", "gray", ":"))
    for apply in record.applies:
        label = "agent apply " + ", ".join(sorted(apply.changes))
        found.append((apply.time - start, label, "#2aa198", "-"))
    return sorted(found, key=lambda m: m[0])


def plot_png(record: ScenarioRecord) -> bytes:
    """Writes/s and errors/s per shard; numbered vertical marks, listed on the right."""
    data = series(record.ops, record.shards, record.started, record.ended)
    figure = Figure(figsize=(13, 4.8), dpi=100)
    axes = figure.add_axes((0.05, 0.11, 0.6, 0.82))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf"]
    for i, shard in enumerate(record.shards):
        color = palette[i % len(palette)]
        axes.plot(data.times, data.ok[shard], color=color, label=f"{shard} writes/s")
        axes.plot(
            data.times, data.errors[shard], color=color, linestyle="--", alpha=0.7,
            label=f"{shard} errors/s",
        )  # fmt: skip
    top = max([1.0, *(v for s in data.ok.values() for v in s)])
    listing = []
    for number, (x, label, color, style) in enumerate(marks(record)[:45], start=1):
        axes.axvline(x, color=color, linestyle=style, linewidth=1)
        row = 1.0 + 0.035 * (number % 2)  # alternate heights: neighbours stay readable
        axes.text(x, top * row, str(number), fontsize=7, ha="center", va="bottom", color=color)
        listing.append(f"{number:>2} {x:6.2f} s  {label}")
    axes.set_ylim(0, top * 1.09)
    axes.set_xlim(0, max(1.0, record.ended - record.started))
    axes.set_xlabel("seconds since the scenario started")
    axes.set_ylabel("per second (0.25 s bins)")
    axes.legend(loc="lower left", fontsize=7, ncol=2)
    figure.text(0.665, 0.93, "\n".join(listing), fontsize=6.5, family="monospace", va="top")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ---------------------------------------------------------------- HTML
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:right}td:first-child,th:first-child{text-align:left}
.ok{color:#080}.bad{color:#c00;font-weight:bold}.note{color:#555;font-size:13px}
img{max-width:100%;border:1px solid #ddd}h2{margin-top:2em;border-bottom:1px solid #ccc}
"""


def _checks(title: str, checks: Sequence[Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td class={'ok' if c.ok else 'bad'}>"
        f"{'met' if c.ok else 'MISSED'}</td><td>{html.escape(c.detail)}</td></tr>"
        for c in checks
    )
    return f"<h3>{title}</h3><table><tr><th>check</th><th></th><th>detail</th></tr>{rows}</table>"


def _shards(fig: ScenarioFigures) -> str:
    head = (
        "<tr><th>shard</th><th>writes ok</th><th>failed</th><th>WU ms</th><th>outages (WU of "
        "all)</th><th>lost/acked</th>"
        "<th>healthy errors (max/conn)</th><th>apply ms (agent)</th><th>client-seen apply ms"
        "</th><th>failovers</th><th>wrong shard</th><th>errors by kind</th></tr>"
    )
    rows = ""
    for s in fig.shards:
        wu = (_ms(s.wu_ms) + ("" if s.recovered else " (not back)")) if s.faulted else "-"
        rows += (
            f"<tr><td>{s.shard}</td><td>{s.writes_ok}</td><td>{s.writes_failed}</td>"
            f"<td>{wu}</td><td>{s.outages} ({_ms(s.wu_window_ms)})</td><td>{s.lost}/{s.acked}</td>"
            f"<td>{s.healthy_errors} ({s.healthy_errors_max_per_conn})</td>"
            f"<td>{', '.join(f'{v:.0f}' for v in s.apply_latency_ms) or '-'}</td>"
            f"<td>{_ms(s.client_apply_ms)}</td><td>{s.failovers} "
            f"{html.escape('; '.join(s.switches))}</td><td>{s.misplaced}</td>"
            f"<td>{html.escape(str(s.errors_by_kind or '-'))}</td></tr>"
        )
    return f"<table>{head}{rows}</table>"


def _applies(fig: ScenarioFigures) -> str:
    if not fig.apply_log:
        return "<p class=note>agent applies: none</p>"
    return "<p class=note>agent applies: " + html.escape("; ".join(fig.apply_log)) + "</p>"


def _scenario(result: ScenarioResult) -> str:
    fig = result.figures
    verdict = "<span class=ok>PASS</span>" if fig.passed else "<span class=bad>FAIL</span>"
    png = base64.b64encode(plot_png(result.record)).decode()
    steps = "; ".join(html.escape(s.describe()) for s in result.scenario.steps)
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in result.scenario.notes)
    error = f"<p class=bad>{html.escape(fig.error)}</p>" if fig.error else ""
    return (
        f"<h2 id={fig.scenario}>{fig.scenario} — {verdict}</h2>"
        f"<p>{html.escape(result.scenario.summary)}</p><p class=note>steps: {steps}; "
        f"{fig.ops} writes in {fig.duration_s:.1f} s, {fig.applies} agent apply(ies)</p>"
        f"{notes}{error}{_applies(fig)}{_checks('Bars (pass/fail)', fig.bars)}"
        f"{_checks('Targets (reported)', fig.targets)}<h3>Per shard</h3>{_shards(fig)}"
        f"<img alt='timeline of {fig.scenario}' src='data:image/png;base64,{png}'>"
    )


def html_report(run: DrillRun) -> str:
    p99, count = apply_p99(r.figures for r in run.results)
    passed = sum(r.figures.passed for r in run.results)
    index = "".join(
        f"<li><a href='#{r.figures.scenario}'>{r.figures.scenario}</a>: "
        f"{'PASS' if r.figures.passed else 'FAIL'}</li>"
        for r in run.results
    )
    head = (
        f"<h1>redkeeper drill report</h1><p>{time.strftime('%Y-%m-%d %H:%M:%S %Z')} — "
        f"topology {html.escape(run.topology)}, {run.mode} mode, down-after "
        f"{run.down_after_ms} ms, workload {run.connections} connections × {run.rate:g} "
        f"writes/s through nutcracker.</p><p>{passed}/{len(run.results)} scenarios passed "
        f"their bars; agent apply latency p99 {_ms(p99)} ms over {count} applies.</p>"
        f"<ul>{index}</ul>"
    )
    body = "".join(_scenario(r) for r in run.results)
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>redkeeper drill report</title>"
        f"<style>{_STYLE}</style></head><body>{head}{body}</body></html>\n"
    )


def write_html(run: DrillRun, path: Path) -> None:
    atomic_write(path, html_report(run), backup=False)
