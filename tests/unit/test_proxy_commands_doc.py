"""Unit: docs/proxy-commands.md lists exactly the proxy's command table, class by class, and
says for each command what nutcracker 0.5.0 does with it as `tests/nutcracker_facts.py`
records (which the differential integration test checks against the real binary).

`python -m tests.unit.test_proxy_commands_doc` prints the tables the document must contain.
"""

from __future__ import annotations

import re
from pathlib import Path

from redkeeper.server import commands
from redkeeper.server.commands import CommandSpec
from tests import nutcracker_facts as facts

DOC = Path(__file__).resolve().parents[2] / "docs" / "proxy-commands.md"

#: section heading (its start) -> the command-table classes it lists.
SECTIONS: dict[str, tuple[int, ...]] = {
    "## Single key": (commands.SINGLE,),
    "## Multi-key, split per shard and merged": (commands.SUM, commands.MGET, commands.MSET),
    "## Same shard only": (
        commands.SAME,
        commands.EVAL,
        commands.NUMKEYS,
        commands.STORE,
        commands.STREAMS,
    ),
    "## Answered by the proxy": (commands.LOCAL,),
    "## Transactions on one shard": (commands.TXN,),
    "## Refused, with the alternative": (commands.REFUSED,),
}
_ROW = re.compile(r"^\| `([A-Z_]+)` \|(.*)\|\s*$")
SAME_SHARD = SECTIONS["## Same shard only"]


def twemproxy(spec: CommandSpec) -> str:
    """The first word of the document's "twemproxy 0.5.0" cell for a command."""
    name = spec.name
    if name not in facts.KNOWN:
        return "closes"
    if (
        name in facts.WRONG
        or name in facts.NO_KEY
        or name in facts.FIXED_ARITY
        or spec.kind in SAME_SHARD
    ):
        return "differs"
    return "same"


def _keys(spec: CommandSpec) -> str:
    if spec.kind == commands.EVAL:
        return "the numkeys after argument 2 (at least 1)"
    if spec.kind == commands.NUMKEYS:
        lead = "1, and " if spec.first == 2 else ""
        return f"{lead}the numkeys after argument {spec.first}"
    if spec.kind == commands.STORE:
        return "1, and the STORE destination" + (" or STOREDIST" if spec.name != "SORT" else "")
    if spec.kind == commands.STREAMS:
        return "the streams after STREAMS (BLOCK refused)"
    if spec.last == spec.first + 1:
        return f"{spec.first} and {spec.last}"
    every = f", every {spec.step}" if spec.step > 1 else ""
    return f"{spec.first} to the last{every}"


def expected_tables() -> dict[str, list[str]]:
    """Section heading -> the table rows (with header) the document must contain."""
    out: dict[str, list[str]] = {}
    for heading, kinds in SECTIONS.items():
        specs = sorted(
            (s for s in commands.COMMANDS.values() if s.kind in kinds), key=lambda s: s.name
        )
        rows: list[str]
        if commands.REFUSED in kinds:
            rows = ["| command | use instead | twemproxy 0.5.0 |", "|---|---|---|"]
            rows += [f"| `{s.name}` | {s.hint} | {twemproxy(s)} |" for s in specs]
        elif commands.LOCAL in kinds or commands.TXN in kinds:
            rows = ["| command | twemproxy 0.5.0 |", "|---|---|"]
            rows += [f"| `{s.name}` | {twemproxy(s)} |" for s in specs]
        elif commands.SAME in kinds:
            rows = ["| command | keys (argument positions) | twemproxy 0.5.0 |", "|---|---|---|"]
            rows += [f"| `{s.name}` | {_keys(s)} | {twemproxy(s)} |" for s in specs]
        else:
            rows = ["| command | reads only | twemproxy 0.5.0 |", "|---|---|---|"]
            rows += [
                f"| `{s.name}` | {'yes' if s.readonly else 'no'} | {twemproxy(s)} |" for s in specs
            ]
        out[heading] = rows
    return out


def documented() -> dict[str, dict[str, list[str]]]:
    """Section heading -> command -> the cells after the command, as the document has them."""
    out: dict[str, dict[str, list[str]]] = {}
    counts: dict[str, int] = {}
    current: str | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = next((h for h in SECTIONS if line.startswith(h)), None)
            if current is not None:
                assert current not in out, f"section {current!r} twice"
                out[current] = {}
                counted = re.search(r"\((\d+) commands\)", line)
                assert counted, f"{line!r} does not say how many commands"
                counts[current] = int(counted.group(1))
            continue
        match = _ROW.match(line)
        if match and current is not None:
            name = match.group(1)
            assert name not in out[current], f"{name} twice in {current!r}"
            out[current][name] = [cell.strip() for cell in match.group(2).split(" | ")]
    for heading, rows in out.items():
        assert counts[heading] == len(rows), f"{heading}: says {counts[heading]}, lists {len(rows)}"
    return out


def test_every_section_is_there() -> None:
    assert set(documented()) == set(SECTIONS)


def test_the_document_lists_exactly_the_table() -> None:
    doc = documented()
    for heading, kinds in SECTIONS.items():
        want = {n for n, s in commands.COMMANDS.items() if s.kind in kinds}
        got = set(doc[heading])
        assert got == want, (
            f"{heading}: missing {sorted(want - got)}, not in the table {sorted(got - want)}"
        )


def test_twemproxy_column_matches_the_measured_facts() -> None:
    doc = documented()
    for heading, rows in doc.items():
        for name, cells in rows.items():
            spec = commands.COMMANDS[name]
            assert cells[-1].split()[0].rstrip(":") == twemproxy(spec), (heading, name, cells)


def test_refusals_name_the_alternative_the_proxy_gives() -> None:
    rows = documented()["## Refused, with the alternative"]
    for name, cells in rows.items():
        assert cells[0] == commands.COMMANDS[name].hint, name


def test_the_tables_are_the_generated_ones() -> None:
    text = DOC.read_text()
    for heading, rows in expected_tables().items():
        block = "\n".join(rows)
        assert block in text, (
            f"{heading}: regenerate with python -m tests.unit.test_proxy_commands_doc"
        )


def test_every_deviation_is_in_the_differences_section() -> None:
    text = DOC.read_text()
    differences = text[text.index("## Differences from twemproxy 0.5.0") :]
    names = [*facts.WRONG, *facts.NO_KEY, *facts.FIXED_ARITY, "HELLO", "CLIENT", "INFO"]
    names += ["SELECT", "ECHO", "MULTI", "KEYS", "SCAN"]
    for name in names:
        assert f"`{name}" in differences, name
    assert str(facts.MAX_KEY_BYTES) in differences.replace(",", "")
    keyed = [
        s
        for s in commands.COMMANDS.values()
        if s.kind not in (commands.LOCAL, commands.REFUSED, commands.TXN)
    ]
    closes = [s.name for s in keyed if s.name not in facts.KNOWN]
    assert f"{len(closes)} of the keyed commands the proxy serves" in differences
    for name in closes:
        assert f"`{name}`" in differences or name.startswith("X"), name


if __name__ == "__main__":
    for heading, rows in expected_tables().items():
        print(heading, "\n", "\n".join(rows), "\n", sep="")
