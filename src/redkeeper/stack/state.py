"""The local stack's state dir: which processes it started, and the last known masters.

Files: STATE/stack.json (process records, written after every start so a crash mid-`up`
still lets `down` clean up) and STATE/masters.json (shard -> master, saved by `down` so the
next `up` restarts on the promoted masters instead of replicating old data over new).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.process import ProcessRecord, read_record, write_record
from redkeeper.proxy.twemproxy.restart import RECORD_NAME

STACK_FILE = "stack.json"
MASTERS_FILE = "masters.json"
PROXY_RECORD = RECORD_NAME


def read_records(state_dir: Path) -> list[ProcessRecord]:
    path = state_dir / STACK_FILE
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [ProcessRecord.from_json(item) for item in data.get("processes", [])]


def write_records(state_dir: Path, records: list[ProcessRecord]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    payload = {"processes": [r.to_json() for r in records]}
    atomic_write(state_dir / STACK_FILE, json.dumps(payload, indent=2) + "\n", backup=False)


def clear_records(state_dir: Path) -> None:
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
