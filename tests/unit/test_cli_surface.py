"""The command line as a new operator meets it (no stack needed): help, exit codes, bad
input, defaults, and output that scripts can use."""

from __future__ import annotations

import io
import re
from pathlib import Path

import click
import pytest
from rich.console import Console

from redkeeper.cli import cli, main
from redkeeper.cli.app import PIPE_WIDTH, make_console
from redkeeper.cli.status_view import print_status
from redkeeper.errors import BUG, EXIT_BUG, EXIT_CODES, EXIT_CONFIG, EXIT_USAGE
from redkeeper.stack.status import NodeStatus, ProxyStatus, SentinelStatus, ShardStatus, StackStatus
from redkeeper.topology import load_topology
from tests.support import REPO, run_cli, write_topology

JARGON = re.compile(r"\bseeds?\b|\bcase \d\b|\bWU\b(?! ?:)")


def _commands() -> list[click.Command]:
    """Every command, the subcommands of groups (`lab up`…) included."""
    assert isinstance(cli, click.Group)
    found: list[click.Command] = []
    for command in cli.commands.values():
        found.append(command)
        if isinstance(command, click.Group):
            found.extend(command.commands.values())
    return found


def test_every_command_and_option_has_help_without_jargon() -> None:
    missing: list[str] = []
    texts: list[str] = []
    for command in _commands():
        if not command.help:
            missing.append(command.name or "?")
        texts.append(command.help or "")
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                if not (param.help or "").strip():
                    missing.append(f"{command.name} {param.opts[0]}")
                texts.append(param.help or "")
    assert not missing, f"options without help text: {missing}"
    jargon = [t for t in texts if JARGON.search(t)]
    assert not jargon, jargon
    listing = run_cli("drill", "--list")
    assert listing.returncode == 0 and not JARGON.search(listing.stdout), listing.stdout


def test_exit_codes_are_documented_in_help_and_readme() -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0
    readme = (REPO / "README.md").read_text()
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", helped.stdout, re.M), code
        assert f"| {code} |" in readme, f"README's exit status table lacks {code}"
    assert EXIT_USAGE != EXIT_CONFIG
    assert "reconfig-hook: 0 done, 1 retry later, 2 give up" in helped.stdout


def test_usage_errors_and_config_errors_exit_differently(tmp_path: Path) -> None:
    usage = run_cli("status", "--no-such-option")
    assert usage.returncode == EXIT_USAGE and "No such option" in usage.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("sentinel: {nodes: [127.0.0.1:1], quorum: 5}\nshards: []\n")
    config = run_cli("validate", str(bad))
    assert config.returncode == EXIT_CONFIG and f"error: {bad}: " in config.stderr


def test_unexpected_exception_is_one_line_asking_for_a_bug_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr("redkeeper.cli.topology_cmds.default_text", broken)
    monkeypatch.setattr("sys.argv", ["redkeeper", "init", str(tmp_path / "x.yaml")])
    monkeypatch.delenv("REDKEEPER_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: unexpected RuntimeError: boom (at test_cli_surface.py:")
    assert BUG in line


def test_init_writes_the_safe_default_and_validate_warns_below_it(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    assert run_cli("init", str(target)).returncode == 0
    assert load_topology(target).spec.sentinel.down_after_ms >= 1500
    risky = tmp_path / "risky.yaml"
    risky.write_text(target.read_text().replace("down_after_ms: 1500", "down_after_ms: 1000"))
    checked = run_cli("validate", str(risky))
    assert checked.returncode == 0, checked.stderr
    assert f"warning: {risky}: sentinel.down_after_ms: 1000 ms is below 1500 ms" in checked.stderr
    assert "fails over the master it has just promoted" in checked.stderr
    assert "OK with 1 warning(s)" in checked.stdout


def test_the_same_socket_under_two_names_is_refused_before_any_file(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    text = path.read_text()
    port = load_topology(path).spec.shards[0].master.port
    path.write_text(text.replace(", 127.0.0.1:", f", localhost:{port}, 127.0.0.1:", 1))
    for args in (["validate", str(path)], ["up", str(path), "--detach"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == EXIT_CONFIG, result.stderr
        assert f"localhost:{port} is already used by" in result.stderr
        assert f"(127.0.0.1:{port}: the same socket)" in result.stderr
    assert not (tmp_path / "state").exists()


def test_status_with_nothing_running_says_so_first(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    result = run_cli("status", "-c", str(path))
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stdout.startswith(f"nothing running from {tmp_path / 'state'}: ")


def test_logs_of_an_unknown_name_lists_the_valid_ones(tmp_path: Path) -> None:
    path = write_topology(tmp_path)
    result = run_cli("logs", "-c", str(path), "bogus")
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "no process named 'bogus'; valid names: shard1-1, shard1-2" in result.stderr
    assert "sentinel-3, agent, nutcracker" in result.stderr


def test_agent_help_says_which_sentinels_it_follows_by_default() -> None:
    helped = " ".join(run_cli("agent", "--help").stdout.split())
    assert "Without -c or --sentinel it follows the embedded default topology's Sentinels" in helped
    assert "(127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381)" in helped


# ----------------------------------------------------------------------------- output
LONG = "very-long-hostname.redis.internal.example.com:26379"


def _status() -> StackStatus:
    nodes = [
        NodeStatus("shard1", "shard1-1", LONG.replace("26379", "6666"), True, "master"),
        NodeStatus(
            "shard1", "shard1-2", "127.0.0.1:6667", True, "replica",
            master=LONG.replace("26379", "6666"), link_up=True, lag_bytes=0,
        ),
    ]  # fmt: skip
    sentinel = SentinelStatus("sentinel-1", LONG, True, {"shard1": "127.0.0.1:6667"}, {"shard1": 3})
    return StackStatus(
        [ShardStatus("shard1", "127.0.0.1:6667", nodes)],
        [sentinel],
        ProxyStatus("127.0.0.1:22121", True),
        None,
        ["shard1: refuses writes: master 127.0.0.1:6667 has 0 of 1 required replicas"],
    )


def test_a_terminal_never_cuts_an_address() -> None:
    out = io.StringIO()
    print_status(_status(), Console(file=out, width=70, force_terminal=True, color_system=None))
    text = out.getvalue()
    assert "…" not in text
    # folded at worst, never truncated: every character of every address is there
    assert LONG in text or LONG in "".join(text.replace("│", "").split())


def test_without_a_terminal_nothing_wraps_or_is_cut() -> None:
    out = io.StringIO()
    console = make_console(out)
    assert console.width == PIPE_WIDTH
    print_status(_status(), console)
    text = out.getvalue()
    assert "…" not in text and LONG in text
    assert "problem: shard1: refuses writes: master 127.0.0.1:6667 has 0 of 1 required" in text
