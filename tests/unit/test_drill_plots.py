"""Drill plots: the binning (pure), the marks, the PNG/HTML output, and the missing extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from redkeeper import drills as d
from redkeeper.drills import measure as m
from redkeeper.drills.html_report import html_report
from redkeeper.drills.plots import FAULT_COLOR, marks, plot_png, series, write_pngs
from redkeeper.drills.runner import DrillRun, ScenarioResult
from redkeeper.drills.scenarios import BY_NAME
from tests.support import REPO
from tests.unit.test_drill_measure import T0, kill_master_record, ops_every, record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bins_have_centres_and_a_drop_shows_in_the_bin_where_it_happened() -> None:
    # 100 writes/s on shard1, failing from 1.0 s on; the scenario lasts 2.0 s
    ops = ops_every("shard1", 0.0, 1.0, ok=True) + ops_every("shard1", 1.0, 2.0, ok=False)
    data = series(ops, ["shard1", "shard2"], T0, T0 + 2.0, bin_s=0.5)
    assert data.edges == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert data.centres == [0.25, 0.75, 1.25, 1.75]
    assert data.ok["shard1"] == [100.0, 100.0, 0.0, 0.0]  # full rate up to the failure
    assert data.errors["shard1"] == [0.0, 0.0, 100.0, 100.0]
    assert data.ok["shard2"] == data.errors["shard2"] == [0.0] * 4


def test_a_partial_last_bin_shows_no_fake_drop() -> None:
    ops = ops_every("s", 0.0, 2.1, ok=True)  # a steady 100 writes/s to the very end
    short = series(ops, ["s"], T0, T0 + 2.1, bin_s=0.5)  # 0.1 s left: merged into the last bin
    assert short.edges == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.1])
    assert short.centres[-1] == pytest.approx(1.8)
    assert short.ok["s"] == pytest.approx([100.0] * 4)
    ops = ops_every("s", 0.0, 2.4, ok=True)
    long = series(ops, ["s"], T0, T0 + 2.4, bin_s=0.5)  # 0.4 s left: its own, shorter bin
    assert long.edges == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.4])
    assert long.ok["s"] == pytest.approx([100.0] * 5)


def test_writes_outside_the_scenario_and_unknown_shards_are_left_out() -> None:
    late = d.Op(0, "s", "late", T0 + 5.0, T0 + 5.1, True)
    early = d.Op(0, "s", "early", T0 - 1.0, T0 - 0.5, True)
    other = d.Op(0, "other", "o", T0 + 0.1, T0 + 0.2, True)
    at_end = d.Op(0, "s", "end", T0 + 0.5, T0 + 1.0, True)
    data = series([late, early, other, at_end], ["s"], T0, T0 + 1.0, bin_s=0.5)
    assert data.ok == {"s": [0.0, 2.0]}  # the reply at the very end is in the last bin


def test_marks_faults_every_failover_and_applies() -> None:
    found = marks(kill_master_record())
    labels = [mark.label for mark in found]
    assert labels[0] == "kill shard1-1" and found[0].color == FAULT_COLOR
    switches = [x for x in labels if x.startswith("+switch-master")]
    assert switches == [
        "+switch-master shard1 -> 127.0.0.1:2 (sentinel-1)",  # once, not once per Sentinel
        "+switch-master shard2 -> 127.0.0.1:4 (sentinel-1)",
    ]
    assert sum(x.startswith("agent apply") for x in labels) == 2
    assert [mark.at for mark in found] == sorted(mark.at for mark in found)


def test_png_per_scenario_and_a_self_contained_html_report(tmp_path: Path) -> None:
    rec = kill_master_record()
    png = plot_png(rec, "kill-master")
    assert png.startswith(PNG_MAGIC)
    written = write_pngs([(rec, True), (record(scenario="stall-master"), True)], tmp_path)
    assert [p.name for p in written] == ["kill-master.png", "stall-master.png"]
    again = write_pngs([(rec, True), (rec, False)], tmp_path / "repeat")
    assert [p.name for p in again] == ["kill-master-1.png", "kill-master-2.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in [*written, *again])
    scenario = BY_NAME["kill-master"]
    run = DrillRun("test", "restart", 1000, 4, 100.0, True)
    run.results.append(ScenarioResult(scenario, rec, m.figures(rec, scenario.bars)))
    page = html_report(run)
    assert page.count("data:image/png;base64,") == 1
    assert "http://" not in page and "https://" not in page and "<script" not in page


BLOCK_MATPLOTLIB = "import sys; sys.modules['matplotlib'] = None; "


@pytest.mark.parametrize("option", ["--report=r.html", "--figures=plots"])
def test_drill_plots_without_matplotlib_fail_in_one_line_naming_the_extra(
    tmp_path: Path, option: str
) -> None:
    """Without the extra (import blocked, as if not installed), before any drill starts."""
    code = BLOCK_MATPLOTLIB + "from redkeeper.cli import main; sys.argv[0] = 'redkeeper'; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "drill", "kill-master", option, "-c", "/nonexistent.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        "error: drill --report/--figures needs matplotlib, which cannot be imported here "
        "(fix: pip install 'redkeeper[report]')"
    ]
    assert not list(tmp_path.iterdir())  # nothing written, no stack started


def test_json_and_the_table_need_no_matplotlib() -> None:
    code = BLOCK_MATPLOTLIB + (
        "import redkeeper.cli, redkeeper.drills.report, redkeeper.drills.runner; "
        "from redkeeper.drills import plots; "
        "print(plots.series([], ['s'], 0.0, 1.0).edges)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0.0, 0.25, 0.5, 0.75, 1.0]"


def test_the_dev_extra_pulls_in_the_report_extra() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert "\nreport = [" in text and '"redkeeper[report]"' in text
    dependencies = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "matplotlib" not in dependencies
