"""Sentinel's raw replies parsed into the core's types (pure, the parsing boundary).

`SENTINEL MASTERS` / `SENTINEL MASTER <name>` entries become `core.MasterReport`s; a
malformed reply raises ValueError naming what is wrong. Who is master is decided in
`redkeeper.core.masters`, never here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from redkeeper.core.masters import MasterReport
from redkeeper.model import Address


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _fields(entry: object) -> dict[str, str]:
    if isinstance(entry, Mapping):  # RESP3 maps
        return {_text(k): _text(v) for k, v in entry.items()}
    if not isinstance(entry, list | tuple) or len(entry) % 2:
        raise ValueError("a master entry is not a list of field/value pairs")
    if entry and type(entry[0]) is str:  # decoded replies (the usual case): one pass in C
        items = iter(entry)
        fields = dict(zip(items, items, strict=True))
        if all(type(v) is str for v in fields.values()):
            return fields
    return {_text(entry[i]): _text(entry[i + 1]) for i in range(0, len(entry), 2)}


def _int(fields: Mapping[str, str], key: str) -> int:
    if key not in fields:
        raise ValueError(f"field {key!r} is missing")
    try:
        return int(fields[key])
    except ValueError:
        raise ValueError(f"field {key!r} is not a number: {fields[key]!r}") from None


def parse_master_entry(sentinel: Address, entry: object) -> MasterReport:
    """One entry of `SENTINEL MASTERS` (or the reply of `SENTINEL MASTER <name>`)."""
    fields = _fields(entry)
    for key in ("name", "ip", "flags", "port", "config-epoch", "num-other-sentinels", "quorum",
                "num-slaves"):  # fmt: skip
        if key not in fields:
            raise ValueError(f"field {key!r} is missing")
    return _report(
        sentinel,
        fields["name"],
        fields["ip"],
        fields["port"],
        fields["config-epoch"],
        fields["flags"],
        fields["num-other-sentinels"],
        fields["quorum"],
        fields["num-slaves"],
    )


@functools.lru_cache(maxsize=4096)
def _report(
    sentinel: Address,
    name: str,
    ip: str,
    port_text: str,
    epoch: str,
    flags: str,
    others: str,
    quorum: str,
    replicas: str,
) -> MasterReport:
    """The report of these field values (cached: an idle Sentinel says the same every second,
    and 100 masters × 3 Sentinels a second would otherwise cost the proxy ~1 % of a core)."""
    values = {"config-epoch": epoch, "num-other-sentinels": others, "quorum": quorum,
              "num-slaves": replicas, "port": port_text}  # fmt: skip
    port = _int(values, "port")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return MasterReport(
        sentinel=sentinel,
        name=name,
        address=Address(ip, port),
        config_epoch=_int(values, "config-epoch"),
        flags=frozenset(f for f in flags.split(",") if f),
        num_other_sentinels=_int(values, "num-other-sentinels"),
        quorum=_int(values, "quorum"),
        num_replicas=_int(values, "num-slaves"),
    )


def parse_masters_reply(sentinel: Address, raw: object) -> dict[str, MasterReport]:
    """The reports in a raw `SENTINEL MASTERS` reply; ValueError names what is malformed."""
    if not isinstance(raw, list | tuple):
        raise ValueError(f"SENTINEL MASTERS reply is not a list: {type(raw).__name__}")
    reports: dict[str, MasterReport] = {}
    for entry in raw:
        report = parse_master_entry(sentinel, entry)
        reports[report.name] = report
    return reports


def needs_current_address(report: MasterReport) -> bool:
    """Whether the edge must also ask `GET-MASTER-ADDR-BY-NAME` for this entry (the failover
    leader's quirk, see `core.masters`)."""
    return "failover_in_progress" in report.flags


def parse_master_addr(raw: object) -> Address | None:
    """The reply of `SENTINEL GET-MASTER-ADDR-BY-NAME`, or None when it is not an address."""
    if isinstance(raw, list | tuple) and len(raw) == 2:
        host, port = (_text(v) if isinstance(v, bytes | str) else str(v) for v in raw)
        if host and port.isdigit() and 1 <= int(port) <= 65535:
            return Address(host, int(port))
    return None
