"""The decision core (pure): who is master (`masters`) and what one cycle does (`cycle`).

Used by the agent (restart and steady modes), the redkeeper proxy, `status`, `down` and the
data tools; nothing else counts Sentinel votes or decides a route.
"""

from redkeeper.core.cycle import (
    CycleSettings,
    Decision,
    Memory,
    Observation,
    Outcome,
    Refusal,
    RefusalReason,
    Timing,
    candidates,
    decide,
    next_wait,
    timing_for,
)
from redkeeper.core.masters import (
    FAILOVER_FLAGS,
    MasterReport,
    MastersView,
    MasterVerdict,
    SentinelAnswer,
    Status,
    decide_masters,
    majority,
)

__all__ = [
    "FAILOVER_FLAGS",
    "CycleSettings",
    "Decision",
    "MasterReport",
    "MasterVerdict",
    "MastersView",
    "Memory",
    "Observation",
    "Outcome",
    "Refusal",
    "RefusalReason",
    "SentinelAnswer",
    "Status",
    "Timing",
    "candidates",
    "decide",
    "decide_masters",
    "majority",
    "next_wait",
    "timing_for",
]
