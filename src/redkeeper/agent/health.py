"""`/healthz`: the agent's (and the redkeeper proxy's) health, one typed shape for the writer
and every reader (`status`, drills, benchmarks, tests).

`Health.to_json` is the HTTP body; `Health.from_json` parses it back (unknown keys ignored,
missing ones defaulted), so readers use attributes, never `.get("verdict")`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Apply:
    """One applied change set, as kept in the last 100 of /healthz."""

    time: float  # unix time the apply finished
    noticed: float | None  # unix time of the first notice
    changes: dict[str, str]  # shard -> address
    latency_ms: float | None  # first notice -> applied
    restart_ms: float | None  # nutcracker restart, when there was one


@dataclass(frozen=True)
class Health:
    ok: bool
    verdict: str
    fail_static: bool = False
    last_cycle_age_s: float | None = None
    last_error: str | None = None
    sentinels_configured: int = 0
    sentinels_answering: int = 0
    sentinel_links_up: int = 0
    routes: dict[str, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    applies: int = 0
    restarts: int = 0
    history: list[Apply] = field(default_factory=list)
    clients: int | None = None  # the redkeeper proxy: connected clients

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Health:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        apply_names = {f.name for f in fields(Apply)}
        values["history"] = [
            Apply(**{k: v for k, v in entry.items() if k in apply_names})
            for entry in values.get("history") or []
            if isinstance(entry, Mapping)
        ]
        values.setdefault("ok", False)
        values.setdefault("verdict", "?")
        return cls(**values)
