"""The drill's timeline plot: one PNG per scenario run (matplotlib, the `report` extra).

Owns what the plot shows and how the writes are binned (`series`, pure, no matplotlib):
per shard, acknowledged and failed writes per second by reply time, in bins that are drawn
over their exact extent (steps, `Axes.stairs`), so a drop appears where it happened and the
last, partial bin is merged into its neighbour instead of showing a fake drop. Every shard has
its own axes (same scale), so no series hides another. Vertical lines mark the steps' faults,
the first Sentinel event of each kind per master (every failover), Sentinel link changes and
the agent's applies; they are numbered on top and listed on the right.

matplotlib is optional (`pip install 'redkeeper[report]'`): `require_matplotlib` raises
MissingExtraError naming the extra; the CLI calls it before a drill starts.
"""

from __future__ import annotations

import bisect
import importlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from redkeeper.drills import Op, ScenarioRecord
from redkeeper.errors import MissingExtraError
from redkeeper.fsutil import atomic_write

__all__ = ["Mark", "Series", "marks", "plot_png", "require_matplotlib", "series", "write_pngs"]

EXTRA = "report"
BIN_S = 0.25
MAX_BINS = 100_000

# Sentinel events worth a line on the plot (first occurrence per master).
MARKED = ("+sdown", "+odown", "+try-failover", "+promoted-slave", "+switch-master", "+tilt")
MARK_COLORS = {
    "+sdown": "#b58900",
    "+odown": "#cb4b16",
    "+try-failover": "#d33682",
    "+promoted-slave": "#6c71c4",
    "+switch-master": "#268bd2",
    "+tilt": "#dc322f",
}
FAULT_COLOR, LINK_COLOR, APPLY_COLOR = "black", "gray", "#2aa198"
OK_COLOR, ERROR_COLOR = "#1f77b4", "#d62728"


def require_matplotlib() -> None:
    """MissingExtraError (one line naming the extra) when matplotlib is not installed."""
    try:
        importlib.import_module("matplotlib.figure")
    except ImportError:
        raise MissingExtraError(
            "drill --report/--figures needs matplotlib, which cannot be imported here "
            f"(fix: pip install 'redkeeper[{EXTRA}]')"
        ) from None


# ---------------------------------------------------------------- data (pure)
@dataclass(frozen=True)
class Series:
    """Per shard, acknowledged (`ok`) and failed (`errors`) writes per second, by reply time.

    Bin i covers [edges[i], edges[i + 1]) seconds from the scenario start (the last bin also
    includes its end); `centres` are the bins' midpoints. Every bin is `bin_s` wide except the
    last, which absorbs a remainder shorter than half a bin (a longer one is its own bin), so
    a steady rate stays flat to the end.
    """

    edges: list[float]
    ok: dict[str, list[float]]
    errors: dict[str, list[float]]

    @property
    def centres(self) -> list[float]:
        return [(a + b) / 2 for a, b in zip(self.edges, self.edges[1:], strict=False)]


def _edges(duration: float, bin_s: float) -> list[float]:
    full = max(1, int(duration // bin_s))
    edges = [i * bin_s for i in range(full + 1)]
    rest = duration - edges[-1]
    if rest >= bin_s / 2:
        edges.append(duration)
    elif rest > 0:
        edges[-1] = duration
    return edges


def series(
    ops: Sequence[Op], shards: Sequence[str], start: float, end: float, bin_s: float = BIN_S
) -> Series:
    duration = max(end - start, 0.0)
    bin_s = max(bin_s, duration / MAX_BINS)
    edges = _edges(duration, bin_s)
    bins = len(edges) - 1
    ok = {s: [0.0] * bins for s in shards}
    errors = {s: [0.0] * bins for s in shards}
    for op in ops:
        at = op.end - start
        if op.shard not in ok or not 0.0 <= at <= edges[-1]:
            continue
        index = min(bisect.bisect_right(edges, at) - 1, bins - 1)
        (ok if op.ok else errors)[op.shard][index] += 1.0
    for counts in (*ok.values(), *errors.values()):
        for i in range(bins):
            counts[i] /= edges[i + 1] - edges[i]
    return Series(edges, ok, errors)


@dataclass(frozen=True)
class Mark:
    """A vertical line: seconds from the start, what happened, its colour and line style."""

    at: float
    label: str
    color: str
    style: str


def marks(record: ScenarioRecord) -> list[Mark]:
    """Every vertical line of the plot, by time: the steps' faults and restarts, the first
    Sentinel event of each kind per master (so every failover is marked), Sentinel link
    changes, the agent's applies."""
    found: list[Mark] = []
    start = record.started
    for fault in record.faults:
        found.append(Mark(fault.time - start, f"{fault.action} {fault.process}", FAULT_COLOR, "--"))
    first: set[tuple[str, str]] = set()
    for event in sorted(record.events, key=lambda e: e.time):
        if event.channel in MARKED and event.about_master:
            key = (event.channel, " ".join(event.payload.split()[:5]))
            if key in first:
                continue
            first.add(key)
            words = event.payload.split()
            where = f"{words[1]} {words[2]}:{words[3]}" if len(words) >= 4 else event.payload
            if event.channel == "+switch-master" and len(words) >= 5:
                where = f"{words[0]} -> {words[3]}:{words[4]}"
            label = f"{event.channel} {where} ({event.sentinel})"
            found.append(Mark(event.time - start, label, MARK_COLORS[event.channel], ":"))
        elif event.channel in ("link-down", "link-up"):
            label = f"{event.sentinel} {event.channel}"
            found.append(Mark(event.time - start, label, LINK_COLOR, ":"))
    for apply in record.applies:
        label = "agent apply " + ", ".join(sorted(apply.changes))
        found.append(Mark(apply.time - start, label, APPLY_COLOR, "-"))
    return sorted(found, key=lambda m: m.at)


def _groups(found: Sequence[Mark], span: float) -> list[tuple[float, str]]:
    """Numbers to print above the lines: marks closer than 4.5 % of the span to the previous
    label share it ("3-5"), so a burst of events (sdown, odown, try-failover in the same ms)
    stays legible."""
    groups: list[tuple[float, int, int]] = []
    for number, mark in enumerate(found, start=1):
        if groups and mark.at - groups[-1][0] < span * 0.045:
            groups[-1] = (groups[-1][0], groups[-1][1], number)
        else:
            groups.append((mark.at, number, number))
    return [(at, str(a) if a == b else f"{a}-{b}") for at, a, b in groups]


# ---------------------------------------------------------------- drawing
def plot_png(record: ScenarioRecord, title: str = "") -> bytes:
    """The scenario's timeline as a PNG: one axes per shard, marks numbered and listed."""
    require_matplotlib()
    from matplotlib.figure import Figure  # noqa: PLC0415 (the optional extra)

    data = series(record.ops, record.shards, record.started, record.ended)
    span = max(1.0, record.ended - record.started)
    found = marks(record)[:60]
    rows = len(record.shards)
    figure = Figure(figsize=(13, 1.2 + 1.9 * rows), dpi=100)
    grid = figure.add_gridspec(rows, 1, left=0.07, right=0.64, top=0.88, bottom=0.1, hspace=0.12)
    axes = [figure.add_subplot(grid[i, 0]) for i in range(rows)]
    top = max([1.0, *(v for s in (*data.ok.values(), *data.errors.values()) for v in s)])
    for ax, shard in zip(axes, record.shards, strict=True):
        ax.stairs(data.ok[shard], data.edges, color=OK_COLOR, linewidth=1.4, baseline=None,
                  label="acknowledged writes/s", zorder=3)  # fmt: skip
        ax.stairs(data.errors[shard], data.edges, color=ERROR_COLOR, linewidth=1.2, fill=True,
                  alpha=0.35, label="failed writes/s", zorder=4)  # fmt: skip
        for mark in found:
            ax.axvline(mark.at, color=mark.color, linestyle=mark.style, linewidth=1, zorder=2)
        ax.set_xlim(0, span)
        ax.set_ylim(-top * 0.03, top * 1.08)  # a rate of 0 stays visible above the axis
        ax.set_ylabel(f"{shard}\nwrites/s")
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        if ax is not axes[-1]:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel(f"seconds since the scenario started ({BIN_S:g} s bins, by reply time)")
    for at, text in _groups(found, span):
        axes[0].annotate(
            text, (at, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
            textcoords="offset points", ha="center", va="bottom", fontsize=7,
        )  # fmt: skip
    figure.suptitle(title or record.scenario, x=0.07, ha="left", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.65, 0.995), ncol=2,
                  fontsize=8, frameon=False)  # fmt: skip
    listing = [
        "lines: -- step (fault, restore)  : Sentinel  - agent apply",
        "",
        *(f"{n:>2} {m.at:6.2f} s  {m.label}" for n, m in enumerate(found, start=1)),
    ]
    figure.text(0.655, 0.88, "\n".join(listing), fontsize=6.5, family="monospace", va="top")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", pil_kwargs={"optimize": True})
    return buffer.getvalue()


def scenario_title(record: ScenarioRecord, passed: bool) -> str:
    return (
        f"{record.scenario} ({'PASS' if passed else 'FAIL'}): down-after "
        f"{record.down_after_ms} ms, {record.connections} connections"
    )


def write_pngs(results: Sequence[tuple[ScenarioRecord, bool]], directory: Path) -> list[Path]:
    """One `<scenario>.png` per run (`<scenario>-<n>.png` when a scenario ran more than once)."""
    require_matplotlib()
    directory.mkdir(parents=True, exist_ok=True)
    names = [record.scenario for record, _ in results]
    written: list[Path] = []
    seen: dict[str, int] = {}
    for record, passed in results:
        seen[record.scenario] = seen.get(record.scenario, 0) + 1
        repeated = names.count(record.scenario) > 1
        name = f"{record.scenario}-{seen[record.scenario]}" if repeated else record.scenario
        path = directory / f"{name}.png"
        atomic_write(path, plot_png(record, scenario_title(record, passed)), backup=False)
        written.append(path)
    return written
