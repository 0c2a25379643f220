"""Stopping the local stack: every recorded process, every orphan of an intent, in order.

The order: the agent (or the redkeeper proxy), then the nutcracker it ran (re-read after the
agent is gone: it may have restarted it), HAProxy, the Sentinels (so no failover starts
while Redis stops), then Redis, then anything else. Each stage: SIGTERM to all, then a
bounded wait per process (SIGKILL after it). Stops only what stack.json (and the agent's
proxy record) name.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from redkeeper.process import ProcessRecord, stop_pid
from redkeeper.stack import state
from redkeeper.stack.launch import orphans

STAGES: tuple[Callable[[ProcessRecord], bool], ...] = (
    lambda r: r.name in ("agent", "proxy"),
    lambda r: r.name == "nutcracker",
    lambda r: r.name == "haproxy",
    lambda r: r.name.startswith("sentinel-"),
    lambda r: True,
)


def live_processes(state_dir: Path) -> list[ProcessRecord]:
    """Every live process of the stack: records, the agent's nutcracker, intents' orphans."""
    proxy = state.read_proxy_record(state_dir)
    records = [*state.read_records(state_dir), *([proxy] if proxy else []), *orphans(state_dir)]
    return [r for r in records if r.alive()]


def stop_all(state_dir: Path, timeout: float) -> list[ProcessRecord]:
    """Stop every live process of the stack (stage by stage); clear the records."""
    stopped: list[ProcessRecord] = []
    for in_stage in STAGES:
        group = [r for r in live_processes(state_dir) if in_stage(r) and r not in stopped]
        for record in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
        for record in group:
            stop_pid(record.pid, record.start_ticks, timeout)
        stopped.extend(group)
    state.clear_records(state_dir)
    state.write_proxy_record(state_dir, None)
    return stopped
