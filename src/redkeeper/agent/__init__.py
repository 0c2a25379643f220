"""The agent: keeps a proxy target pointed at Sentinel's current masters (docs/agent.md).

`runner` is the loop (observe → `core.decide` → apply → record), `observe` its I/O,
`health` the /healthz shape, `http` and `metrics` its endpoint, `logs` its log format.
"""

from redkeeper.agent.health import Health
from redkeeper.agent.runner import Agent, AgentSettings

__all__ = ["Agent", "AgentSettings", "Health"]
