"""The local stack's state dir: which processes it started, and the last known masters.

Files: STATE/stack.json and STATE/masters.json (shard -> master, saved by `down` so the
next `up` restarts on the promoted masters instead of replicating old data over new).

stack.json holds the stack's id (one per `up`: a foreground `up` notices when its stack was
taken down, or replaced, from elsewhere), the process records, and the **intents**: a
process is written down as an intent (name, argv, working dir, time) *before* it is forked,
and its intent is replaced by its record (with the PID) right after. Whatever interrupts
`up` or `start` in between, the intent lets `down` find the process (`process.find`) and
stop it: nothing escapes. Every change is a read-modify-write under an exclusive lock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redkeeper.fsutil import atomic_write, exclusive_lock
from redkeeper.model import Address
from redkeeper.process import ProcessRecord, read_record, write_record
from redkeeper.proxy.twemproxy.restart import RECORD_NAME

STACK_FILE = "stack.json"
MASTERS_FILE = "masters.json"
PROXY_RECORD = RECORD_NAME
LOCK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Intent:
    """A process about to be started: enough to find it if its record is never written."""

    name: str
    argv: tuple[str, ...]
    cwd: str
    since: float  # unix time, just before the fork

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "argv": list(self.argv), "cwd": self.cwd, "since": self.since}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Intent:
        return cls(
            str(data["name"]),
            tuple(str(a) for a in data["argv"]),
            str(data["cwd"]),
            float(data["since"]),
        )


@dataclass(frozen=True)
class StackFile:
    stack_id: str | None = None
    processes: tuple[ProcessRecord, ...] = ()
    intents: tuple[Intent, ...] = field(default=())

    def with_record(self, record: ProcessRecord) -> StackFile:
        """`record` replaces the record and the intent of the same name (or is added)."""
        kept = [r for r in self.processes if r.name != record.name]
        order = [r.name for r in self.processes]
        records = sorted(
            [*kept, record], key=lambda r: order.index(r.name) if r.name in order else len(order)
        )
        intents = tuple(i for i in self.intents if i.name != record.name)
        return replace(self, processes=tuple(records), intents=intents)

    def with_intent(self, intent: Intent) -> StackFile:
        intents = tuple(i for i in self.intents if i.name != intent.name)
        return replace(self, intents=(*intents, intent))

    def without_intent(self, name: str) -> StackFile:
        return replace(self, intents=tuple(i for i in self.intents if i.name != name))


def new_stack_id() -> str:
    return uuid.uuid4().hex[:12]


def read_stack(state_dir: Path) -> StackFile:
    try:
        data: Any = json.loads((state_dir / STACK_FILE).read_text())
        return StackFile(
            str(data["stack_id"]) if data.get("stack_id") else None,
            tuple(ProcessRecord.from_json(item) for item in data.get("processes", [])),
            tuple(Intent.from_json(item) for item in data.get("intents", [])),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return StackFile()


def _write(state_dir: Path, stack: StackFile) -> None:
    payload = {
        "stack_id": stack.stack_id,
        "processes": [r.to_json() for r in stack.processes],
        "intents": [i.to_json() for i in stack.intents],
    }
    atomic_write(state_dir / STACK_FILE, json.dumps(payload, indent=2) + "\n", backup=False)


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(state_dir / STACK_FILE, LOCK_TIMEOUT):
        yield


def update(state_dir: Path, change: Callable[[StackFile], StackFile]) -> StackFile:
    """Read, change and write stack.json atomically under the state dir's lock."""
    with _locked(state_dir):
        stack = change(read_stack(state_dir))
        _write(state_dir, stack)
        return stack


def read_records(state_dir: Path) -> list[ProcessRecord]:
    return list(read_stack(state_dir).processes)


def write_records(state_dir: Path, records: list[ProcessRecord]) -> None:
    update(state_dir, lambda stack: replace(stack, processes=tuple(records)))


def clear_records(state_dir: Path) -> None:
    if not state_dir.exists():
        return
    with _locked(state_dir):
        (state_dir / STACK_FILE).unlink(missing_ok=True)


def proxy_record_path(state_dir: Path) -> Path:
    return state_dir / PROXY_RECORD


def read_proxy_record(state_dir: Path) -> ProcessRecord | None:
    """The nutcracker the agent runs in managed mode (it restarts it, so its PID changes)."""
    return read_record(proxy_record_path(state_dir))


def write_proxy_record(state_dir: Path, record: ProcessRecord | None) -> None:
    write_record(proxy_record_path(state_dir), record)


def read_masters(state_dir: Path) -> dict[str, Address]:
    try:
        data: Any = json.loads((state_dir / MASTERS_FILE).read_text())
        return {str(k): Address.parse(str(v)) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def write_masters(state_dir: Path, masters: dict[str, Address]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({k: str(v) for k, v in sorted(masters.items())}, indent=2) + "\n"
    atomic_write(state_dir / MASTERS_FILE, text, backup=False)
