"""Unit tests of Sentinel event parsing, on payloads captured from redis-sentinel 7.0."""

from __future__ import annotations

import pytest

from redkeeper.model import Address
from redkeeper.sentinel.events import WAKING_KINDS, SentinelEvent, parse_event

A = Address("127.0.0.1", 17001)
B = Address("127.0.0.1", 17002)


def test_switch_master() -> None:
    ev = parse_event("+switch-master", "mymaster 127.0.0.1 17001 127.0.0.1 17002")
    assert ev == SentinelEvent(
        kind="+switch-master",
        master_name="mymaster",
        instance_role=None,
        instance=None,
        new_master=B,
        old_master=A,
        raw="mymaster 127.0.0.1 17001 127.0.0.1 17002",
        master_address=B,
    )
    assert ev.wakes_agent


def test_master_instance_event() -> None:
    ev = parse_event("+sdown", "master mymaster 127.0.0.1 17001")
    assert (ev.kind, ev.master_name, ev.instance_role) == ("+sdown", "mymaster", "master")
    assert ev.instance == A
    assert ev.master_address == A
    assert ev.new_master is None and ev.old_master is None
    assert ev.wakes_agent


def test_master_instance_event_with_trailing_extras() -> None:
    ev = parse_event("+odown", "master shard1 127.0.0.1 6666 #quorum 2/2")
    assert ev.master_name == "shard1"
    assert ev.instance == Address("127.0.0.1", 6666)
    assert ev.raw == "master shard1 127.0.0.1 6666 #quorum 2/2"


def test_slave_instance_event() -> None:
    ev = parse_event(
        "+promoted-slave", "slave 127.0.0.1:17002 127.0.0.1 17002 @ mymaster 127.0.0.1 17001"
    )
    assert ev.instance_role == "slave"
    assert ev.instance == B
    assert ev.master_name == "mymaster"
    assert ev.master_address == A
    assert ev.wakes_agent


def test_slave_event_with_trailing_text() -> None:
    ev = parse_event(
        "-role-change",
        "slave 127.0.0.1:17002 127.0.0.1 17002 @ mymaster 127.0.0.1 17001 "
        "new reported role is master",
    )
    assert (ev.instance, ev.master_name, ev.master_address) == (B, "mymaster", A)
    assert not ev.wakes_agent


def test_sentinel_instance_event() -> None:
    ev = parse_event(
        "+config-update-from",
        "sentinel aaad97197bad00618ebce30d247dd8ba15940205 127.0.0.1 27002 "
        "@ mymaster 127.0.0.1 17001",
    )
    assert ev.instance_role == "sentinel"
    assert ev.instance == Address("127.0.0.1", 27002)
    assert ev.master_name == "mymaster"
    assert ev.wakes_agent


def test_ipv6_and_hostnames() -> None:
    ev = parse_event("+switch-master", "m ::1 6379 redis-b.example 6380")
    assert ev.old_master == Address("::1", 6379)
    assert ev.new_master == Address("redis-b.example", 6380)


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        ("+tilt", "#tilt mode entered"),
        ("-tilt", "#tilt mode exited"),
        ("+new-epoch", "1"),
        ("+vote-for-leader", "aaad97197bad00618ebce30d247dd8ba15940205 1"),
        ("__sentinel__:hello", "127.0.0.1,26379,abc,0,mymaster,127.0.0.1,6379,0"),
        ("+anything", ""),
    ],
)
def test_events_without_instance(channel: str, payload: str) -> None:
    ev = parse_event(channel, payload)
    assert ev.kind == channel
    assert ev.raw == payload
    assert ev.master_name is None
    assert ev.instance_role is None
    assert ev.instance is None
    assert ev.new_master is None and ev.old_master is None


@pytest.mark.parametrize(
    ("payload", "old", "new"),
    [
        ("", None, None),
        ("mymaster", None, None),
        ("mymaster 127.0.0.1", None, None),
        ("mymaster 127.0.0.1 notaport 127.0.0.1 17002", None, B),
        ("mymaster 127.0.0.1 0 127.0.0.1 99999", None, None),
        ("mymaster 127.0.0.1 -5 127.0.0.1 \u0663", None, None),
    ],
)
def test_malformed_switch_master_never_raises(
    payload: str, old: Address | None, new: Address | None
) -> None:
    ev = parse_event("+switch-master", payload)
    assert ev.kind == "+switch-master"
    assert (ev.old_master, ev.new_master) == (old, new)


def test_malformed_switch_master_keeps_what_parses() -> None:
    ev = parse_event("+switch-master", "mymaster 127.0.0.1 17001 127.0.0.1 x")
    assert ev.master_name == "mymaster"
    assert ev.old_master == A
    assert ev.new_master is None


@pytest.mark.parametrize(
    "payload",
    [
        "slave",
        "slave 127.0.0.1:1",
        "slave 127.0.0.1:1 127.0.0.1",
        "slave 127.0.0.1:1 127.0.0.1 port @ m",
        "sentinel id 127.0.0.1 26379 @",
        "master m 127.0.0.1 70000",
        "slave a b c d e f g h i j",
    ],
)
def test_malformed_instance_events_never_raise(payload: str) -> None:
    ev = parse_event("+sdown", payload)
    assert ev.instance_role == payload.split(maxsplit=1)[0]
    assert ev.instance is None or isinstance(ev.instance, Address)
    assert ev.raw == payload


def test_slave_event_without_master_part() -> None:
    ev = parse_event("+sdown", "slave 127.0.0.1:17002 127.0.0.1 17002")
    assert ev.instance == B
    assert ev.master_name is None and ev.master_address is None


def test_waking_kinds() -> None:
    expected = {
        "+switch-master",
        "+promoted-slave",
        "+failover-end",
        "+config-update-from",
        "+convert-to-slave",
        "+sdown",
        "-sdown",
        "+odown",
        "-odown",
        "+tilt",
        "-tilt",
        "+failover-state-reconf-slaves",
        "+slave-reconf-done",
        "+reboot",
    }
    assert expected == WAKING_KINDS
    for kind in ("+slave", "+sentinel", "+new-epoch", "+try-failover", "+elected-leader"):
        assert not parse_event(kind, "master m 127.0.0.1 1").wakes_agent
