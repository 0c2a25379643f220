"""The lab drills' figures as a Markdown table (`python -m redkeeper.lab.summary FILE`): one
row per scenario of a `redkeeper drill --lab --json` document, the columns the drills are
judged by (docs/drills.md). Pure but for reading the file and printing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = (
    "scenario",
    "result",
    "WU via VIP",
    "lost / acked",
    "old master: refuses after / acks after the cut",
    "writes on old master after switch",
    "VIP on both (after heal)",
    "proxies route alike",
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.2f} s"


def row(scenario: dict[str, Any]) -> list[str]:
    lab = scenario.get("lab") or {}
    shards = scenario["shards"]
    lost = sum(s["lost"] for s in shards)
    acked = sum(s["acked"] for s in shards)
    old = [s["old_master_writes_after_switch"] for s in shards]
    old_writes = "-" if all(v is None for v in old) else str(sum(v or 0 for v in old))
    refusal = "-"
    if lab.get("refusal_after_cut_ms") is not None:
        refusal = f"{_ms(lab['refusal_after_cut_ms'])} / {lab.get('acked_after_cut')}"
    both = _ms(lab.get("vip_both_ms"))
    if lab.get("vip_both_after_heal_ms") is not None:
        both += f" ({_ms(lab['vip_both_after_heal_ms'])})"
    agree = (
        "yes" if lab.get("routes_always_agreed") else f"no ({_ms(lab.get('routes_disagree_ms'))})"
    )
    failed = [c["name"] for c in scenario["bars"] if not c["ok"]]
    result = "PASS" if scenario["passed"] else "FAIL " + ", ".join(failed)
    return [
        scenario["scenario"],
        result,
        _ms(lab.get("wu_ms")),
        f"{lost} / {acked}",
        refusal,
        old_writes,
        both,
        agree,
    ]


def markdown(document: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(s)) + " |" for s in document["scenarios"]]
    for scenario in document["scenarios"]:
        compare = (scenario.get("lab") or {}).get("compare")
        for name, counts in (compare or {}).items():
            lines.append(
                f"\n{scenario['scenario']}, {name}: {counts['ok']} ok, {counts['failed']} "
                f"failed, {counts['failed_after_heal']} failed after the heal "
                f"({counts['noreplicas_after_heal']} NOREPLICAS)"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m redkeeper.lab.summary DRILL.json", file=sys.stderr)
        return 2
    try:
        document = json.loads(Path(argv[0]).read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {argv[0]}: {exc}", file=sys.stderr)
        return 1
    print(markdown(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
