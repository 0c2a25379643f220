"""Sentinel layer: event parsing (pure), the majority/epoch view (pure), and the asyncio
client that queries and subscribes to every configured Sentinel."""

from redkeeper.sentinel.client import (
    SentinelQuerier,
    SentinelWatcher,
    query_all,
    query_sentinel,
)
from redkeeper.sentinel.events import WAKING_KINDS, SentinelEvent, parse_event
from redkeeper.sentinel.view import (
    MasterReport,
    MasterVerdict,
    SentinelAnswer,
    Status,
    decide,
    majority,
    parse_master_entry,
    parse_masters_reply,
)

__all__ = [
    "WAKING_KINDS",
    "MasterReport",
    "MasterVerdict",
    "SentinelAnswer",
    "SentinelEvent",
    "SentinelQuerier",
    "SentinelWatcher",
    "Status",
    "decide",
    "majority",
    "parse_event",
    "parse_master_entry",
    "parse_masters_reply",
    "query_all",
    "query_sentinel",
]
