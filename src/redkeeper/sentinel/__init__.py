"""Sentinel edge: event parsing and reply parsing (pure), and the asyncio client that queries
and subscribes to every configured Sentinel. Who is master is decided in `redkeeper.core`."""

from redkeeper.sentinel.client import SentinelQuerier, SentinelWatcher, query_sentinel
from redkeeper.sentinel.events import WAKING_KINDS, SentinelEvent, parse_event
from redkeeper.sentinel.replies import (
    needs_current_address,
    parse_master_addr,
    parse_master_entry,
    parse_masters_reply,
)

__all__ = [
    "WAKING_KINDS",
    "SentinelEvent",
    "SentinelQuerier",
    "SentinelWatcher",
    "needs_current_address",
    "parse_event",
    "parse_master_addr",
    "parse_master_entry",
    "parse_masters_reply",
    "query_sentinel",
]
