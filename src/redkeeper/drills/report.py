"""Drill reports: the terminal table (rich) and the JSON document.

Owns presentation only, and needs no optional extra. The HTML report is `drills.html_report`, the
timeline plots `drills.plots` (matplotlib, `pip install 'redkeeper[report]'`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from redkeeper.drills.measure import apply_p99
from redkeeper.drills.runner import DrillRun


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
                "bars_text": r.scenario.bars_text(),
            }
            for r in run.results
        ],
    }
