"""The self-contained HTML drill report (`redkeeper drill --report FILE`).

Per scenario: the bars, the targets, the per-shard figures and the timeline plot
(`drills.plots`, embedded as a base64 PNG). Needs the `report` extra (matplotlib).
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from redkeeper.drills import ScenarioFigures
from redkeeper.drills.measure import apply_p99
from redkeeper.drills.plots import plot_png, require_matplotlib, scenario_title
from redkeeper.drills.runner import DrillRun, ScenarioResult
from redkeeper.fsutil import atomic_write

__all__ = ["html_report", "write_html"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


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


def _lab(fig: ScenarioFigures) -> str:
    """A drill across the lab's hosts: its own figures, one row each."""
    if fig.lab is None:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(value))}</td></tr>"
        for name, value in asdict(fig.lab).items()
    )
    return f"<h3>Across hosts</h3><table>{rows}</table>"


def _scenario(result: ScenarioResult) -> str:
    fig = result.figures
    verdict = "<span class=ok>PASS</span>" if fig.passed else "<span class=bad>FAIL</span>"
    title = scenario_title(result.record, fig.passed)
    png = base64.b64encode(plot_png(result.record, title)).decode()
    steps = "; ".join(html.escape(s.describe()) for s in result.scenario.steps)
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in result.scenario.notes)
    error = f"<p class=bad>{html.escape(fig.error)}</p>" if fig.error else ""
    return (
        f"<h2 id={fig.scenario}>{fig.scenario} — {verdict}</h2>"
        f"<p>{html.escape(result.scenario.summary)}</p><p class=note>steps: {steps}; "
        f"{fig.ops} writes in {fig.duration_s:.1f} s, {fig.applies} agent apply(ies)</p>"
        f"{notes}{error}{_applies(fig)}{_checks('Bars (pass/fail)', fig.bars)}"
        f"{_checks('Targets (reported)', fig.targets)}{_lab(fig)}<h3>Per shard</h3>{_shards(fig)}"
        f"<img alt='timeline of {fig.scenario}' src='data:image/png;base64,{png}'>"
    )


def html_report(run: DrillRun) -> str:
    require_matplotlib()
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
