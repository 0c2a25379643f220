"""Starting one process of the local stack so that it can never escape `down`.

`launch` writes the intent first (stack.json), forks, then replaces the intent by the
record with the PID (`state` explains why). `orphans` finds the processes of intents whose
record was never written: an interrupted `up` or `start` (even a SIGKILLed one) leaves
nothing that `down` cannot stop.
"""

from __future__ import annotations

import time
from pathlib import Path

from redkeeper.process import ManagedProcess, ProcessRecord
from redkeeper.process.find import find_processes
from redkeeper.render import Layout
from redkeeper.stack import state


def launch(state_dir: Path, layout: Layout, name: str, argv: list[str]) -> ManagedProcess:
    """Start `name` with `argv` in its working dir, its output appended to its log."""
    workdir = layout.workdir(name)
    intent = state.Intent(name, tuple(argv), str(workdir), time.time())
    state.update(state_dir, lambda stack: stack.with_intent(intent))
    proc = ManagedProcess(name, argv, workdir, layout.log(name))
    try:
        record = proc.start()
    except BaseException:
        if not orphans_of(intent):  # it never ran: forget the intent
            state.update(state_dir, lambda stack: stack.without_intent(name))
        raise
    state.update(state_dir, lambda stack: stack.with_record(record))
    return proc


def orphans_of(intent: state.Intent) -> list[ProcessRecord]:
    return find_processes(intent.name, intent.argv, intent.cwd, intent.since)


def orphans(state_dir: Path) -> list[ProcessRecord]:
    """Live processes started for an intent of stack.json whose record was never written."""
    return [r for i in state.read_stack(state_dir).intents for r in orphans_of(i)]
