"""Sentinel pub/sub events: parse a (channel, payload) pair into a typed `SentinelEvent`.

Pure. Owns the knowledge of Sentinel's event payload formats (redis `src/sentinel.c`,
`sentinelEvent`), checked against redis-sentinel 7.0:

- `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>`
- instance events (`%@`): `<type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>`
  for a replica or a Sentinel, and `master <name> <ip> <port>` for a master; any of them may be
  followed by extras (`+odown master m 127.0.0.1 6379 #quorum 2/2`,
  `-role-change slave ... new reported role is master`). A replica's `<name>` is `ip:port`,
  a Sentinel's is its run id.
- others carry no instance: `+new-epoch 3`, `+vote-for-leader <runid> <epoch>`,
  `+tilt #tilt mode entered`.

Parsing never raises: what cannot be parsed is left as None; `raw` keeps the payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from redkeeper.model import Address

INSTANCE_ROLES = frozenset({"master", "slave", "sentinel"})

# Events after which the agent re-reads the truth from the Sentinels at once.
WAKING_KINDS = frozenset(
    {
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
)


@dataclass(frozen=True)
class SentinelEvent:
    """One message published by a Sentinel.

    `instance` is the instance the event is about (for `+switch-master`, None: see
    `old_master`/`new_master`). `master_address` is the address of the master the event
    concerns as the Sentinel saw it when publishing (the part after `@`, or the instance
    itself for a master instance, or the new address for `+switch-master`).
    """

    kind: str
    master_name: str | None
    instance_role: str | None
    instance: Address | None
    new_master: Address | None
    old_master: Address | None
    raw: str
    master_address: Address | None = None

    @property
    def wakes_agent(self) -> bool:
        """True when the event may mean the master of a shard changed (or is changing)."""
        return self.kind in WAKING_KINDS


def _address(host: str, port_text: str) -> Address | None:
    """An Address from Sentinel's `<ip> <port>` tokens, None when they are not one."""
    if not host or not port_text.isascii() or not port_text.isdigit():
        return None
    port = int(port_text)
    if not 1 <= port <= 65535:
        return None
    return Address(host, port)


def _bare(kind: str, payload: str) -> SentinelEvent:
    return SentinelEvent(
        kind=kind,
        master_name=None,
        instance_role=None,
        instance=None,
        new_master=None,
        old_master=None,
        raw=payload,
    )


def _switch_master(kind: str, payload: str, tokens: list[str]) -> SentinelEvent:
    name = tokens[0] if tokens else None
    old = _address(tokens[1], tokens[2]) if len(tokens) >= 3 else None
    new = _address(tokens[3], tokens[4]) if len(tokens) >= 5 else None
    return SentinelEvent(
        kind=kind,
        master_name=name,
        instance_role=None,
        instance=None,
        new_master=new,
        old_master=old,
        raw=payload,
        master_address=new,
    )


def _instance_event(kind: str, payload: str, tokens: list[str]) -> SentinelEvent:
    role = tokens[0]
    name = tokens[1] if len(tokens) >= 2 else None
    instance = _address(tokens[2], tokens[3]) if len(tokens) >= 4 else None
    if role == "master":
        return SentinelEvent(
            kind=kind,
            master_name=name,
            instance_role=role,
            instance=instance,
            new_master=None,
            old_master=None,
            raw=payload,
            master_address=instance,
        )
    master_name: str | None = None
    master_address: Address | None = None
    if len(tokens) >= 6 and tokens[4] == "@":
        master_name = tokens[5]
        if len(tokens) >= 8:
            master_address = _address(tokens[6], tokens[7])
    return SentinelEvent(
        kind=kind,
        master_name=master_name,
        instance_role=role,
        instance=instance,
        new_master=None,
        old_master=None,
        raw=payload,
        master_address=master_address,
    )


def parse_event(channel: str, payload: str) -> SentinelEvent:
    """Parse one Sentinel pub/sub message. Never raises; unparsed parts are None."""
    tokens = payload.split()
    if channel == "+switch-master":
        return _switch_master(channel, payload, tokens)
    if tokens and tokens[0] in INSTANCE_ROLES:
        return _instance_event(channel, payload, tokens)
    return _bare(channel, payload)
