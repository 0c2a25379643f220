"""The local stack: start/stop every process of a topology on loopback, and report status."""

from redkeeper.stack.local import LocalStack, Timings
from redkeeper.stack.status import StackStatus
from redkeeper.stack.status import collect as collect_status

__all__ = ["LocalStack", "StackStatus", "Timings", "collect_status"]
