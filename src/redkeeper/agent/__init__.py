"""The agent: keeps every proxy pointed at Sentinel's current masters (see docs/agent.md)."""

from redkeeper.agent.decide import Decision, Refusal, decide_routes
from redkeeper.agent.runner import Agent, AgentSettings

__all__ = ["Agent", "AgentSettings", "Decision", "Refusal", "decide_routes"]
