"""`check`: is every key readable through the proxy, and does every key live on its own shard?

Owns the two passes and their report:

1. through the proxy, every manifest key must read back with its expected value (MGET of
   `MGET_KEYS` keys per command, `batch` keys per round trip; nutcracker splits an MGET per
   shard, which measured about 4x faster than pipelined GETs; a failing MGET is retried key by
   key so every error is attributed);
2. directly on every shard's current master (from Sentinel, `redkeeper.data.masters`), SCAN
   all keys, all masters interleaved, and classify each key with the ring (`Classifier`, pure):
   *wrong-shard* (any key on a master the ring does not assign it to), *duplicated* (a key on
   more than one master), *missing* (a manifest key on no master).

The scan is a snapshot: keys written or moved while it runs may be misreported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hiredis

from redkeeper.data.load import (
    MAX_CONSECUTIVE_FAILURES,
    DataError,
    Manifest,
    Progress,
    Wire,
    command,
    describe,
    expected_value,
    read_manifest,
)
from redkeeper.data.masters import current_masters
from redkeeper.data.ring import ring_for, shard_names
from redkeeper.model import Address, show_key
from redkeeper.topology import Topology

MGET_KEYS = 100
SCAN_COUNT = 1000
EXISTS_BATCH = 1000
JSON_CAP = 10_000


@dataclass
class Defects:
    """A count and the first `cap` offending items."""

    cap: int = JSON_CAP
    count: int = 0
    items: list[Any] = field(default_factory=list)

    def add(self, item: Any) -> None:
        self.count += 1
        if len(self.items) < self.cap:
            self.items.append(item)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "keys": self.items}


# --------------------------------------------------------------------------- pass 1: proxy
@dataclass
class ProxyReport:
    checked: int = 0
    unreadable: Defects = field(default_factory=Defects)  # nil through the proxy
    wrong_value: Defects = field(default_factory=Defects)
    errors: Defects = field(default_factory=Defects)  # error replies, failed round trips
    seconds: float = 0.0

    def categories(self) -> dict[str, Defects]:
        return {
            "unreadable": self.unreadable,
            "wrong_value": self.wrong_value,
            "errors": self.errors,
        }

    def to_json(self) -> dict[str, Any]:
        found = {name: d.to_json() for name, d in self.categories().items()}
        return {"checked": self.checked, **found, "seconds": round(self.seconds, 3)}


def read_through_proxy(
    address: Address,
    password: str | None,
    manifest: Manifest,
    *,
    batch: int = 5000,
    timeout: float = 10.0,
    progress: Progress | None = None,
) -> ProxyReport:
    """Read every manifest key through the proxy and compare it with its expected value."""
    report = ProxyReport()
    prefix, size = manifest.prefix.encode(), manifest.value_size
    started = time.perf_counter()
    consecutive = 0
    with Wire(address, password, timeout) as wire:
        try:
            wire.roundtrip(command(b"PING"), 1)
        except (OSError, hiredis.ProtocolError) as exc:
            raise DataError(
                f"cannot talk to the proxy at {address}: {describe(exc)} "
                "(fix: start the stack with `redkeeper up`, check `redkeeper status`)"
            ) from None
        for start in range(0, manifest.count, batch):
            keys = [prefix + b"%d" % i for i in range(start, min(manifest.count, start + batch))]
            report.checked += len(keys)
            chunks = [keys[i : i + MGET_KEYS] for i in range(0, len(keys), MGET_KEYS)]
            done = 0  # chunks judged
            try:
                if consecutive >= MAX_CONSECUTIVE_FAILURES:
                    raise ConnectionError("not tried: the proxy failed repeatedly")
                payload = b"".join([command(b"MGET", *chunk) for chunk in chunks])
                for chunk, values in zip(chunks, wire.roundtrip(payload, len(chunks)), strict=True):
                    if not isinstance(values, list):  # retry key by key to attribute the error
                        payload = b"".join([command(b"GET", k) for k in chunk])
                        values = wire.roundtrip(payload, len(chunk))  # noqa: PLW2901
                    for key, got in zip(chunk, values, strict=True):
                        if got.__class__ is bytes and got == expected_value(key, size):
                            continue
                        if got is None:
                            report.unreadable.add(show_key(key))
                        elif isinstance(got, bytes):
                            report.wrong_value.add(show_key(key))
                        else:
                            report.errors.add({"key": show_key(key), "error": str(got)})
                    done += 1
                consecutive = 0
            except (OSError, hiredis.ProtocolError) as exc:
                consecutive += 1
                for chunk in chunks[done:]:
                    for key in chunk:
                        report.errors.add({"key": show_key(key), "error": describe(exc)})
            if progress:
                progress(len(keys))
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- pass 2: shards
ExistsOn = Callable[[int, list[bytes]], set[bytes]]


class Classifier:
    """Pure classification of the keys each shard holds (fed SCAN replies, shard by index).

    `index_of` is the ring's key -> shard index; `names` the shard name of each index. SCAN may
    return a key twice: every structure here is idempotent.
    """

    def __init__(
        self,
        index_of: Callable[[bytes], int],
        names: list[str],
        manifest: Manifest | None,
        cap: int = JSON_CAP,
    ) -> None:
        self.index_of = index_of
        self.names = names
        self.manifest = manifest
        self.cap = cap
        self.scanned = [0] * len(names)
        self.seen = bytearray(manifest.count) if manifest is not None else None
        self.wrong: dict[bytes, set[int]] = {}  # key -> shards holding it that should not

    def feed(self, shard: int, keys: list[bytes]) -> None:
        """Keys found on shard `shard`'s master (one SCAN reply)."""
        self.scanned[shard] += len(keys)
        index_of, wrong = self.index_of, self.wrong
        seen = self.seen
        prefix = self.manifest.prefix.encode() if self.manifest is not None else b""
        plen = len(prefix)
        limit = len(seen) if seen is not None else 0
        for key in keys:
            if index_of(key) != shard:
                wrong.setdefault(key, set()).add(shard)
            if seen is not None and key.startswith(prefix):
                tail = key[plen:]
                if tail.isdigit() and (tail[0] != 48 or len(tail) == 1):  # 48: b"0"
                    i = int(tail)
                    if i < limit:
                        seen[i] = 1

    def finish(self, exists_on: ExistsOn) -> ScanFindings:
        """Wrong-shard, duplicated and missing keys; `exists_on(shard, keys)` says which of
        `keys` the master of `shard` holds (asked only for wrong-shard keys' own shard)."""
        findings = ScanFindings(
            wrong_shard=Defects(self.cap),
            duplicated=Defects(self.cap),
            missing=Defects(self.cap) if self.seen is not None else None,
        )
        by_home: dict[int, list[bytes]] = {}
        for key in self.wrong:
            by_home.setdefault(self.index_of(key), []).append(key)
        at_home: set[bytes] = set()
        for home, keys in sorted(by_home.items()):
            at_home |= exists_on(home, keys)
        for key in sorted(self.wrong):
            home = self.index_of(key)
            found = sorted(self.wrong[key] | ({home} if key in at_home else set()))
            findings.wrong_shard.add(
                {
                    "key": show_key(key),
                    "found_on": [self.names[i] for i in sorted(self.wrong[key])],
                    "expected": self.names[home],
                }
            )
            if len(found) > 1:
                findings.duplicated.add(
                    {"key": show_key(key), "shards": [self.names[i] for i in found]}
                )
        if self.seen is not None and self.manifest is not None and findings.missing is not None:
            findings.missing.count = self.seen.count(0)
            position = self.seen.find(0)
            while position >= 0 and len(findings.missing.items) < self.cap:
                findings.missing.items.append(show_key(self.manifest.key(position)))
                position = self.seen.find(0, position + 1)
        return findings


@dataclass
class ScanFindings:
    wrong_shard: Defects
    duplicated: Defects
    missing: Defects | None  # None without a manifest

    def categories(self) -> dict[str, Defects]:
        found = {"wrong_shard": self.wrong_shard, "duplicated": self.duplicated}
        return found if self.missing is None else {**found, "missing": self.missing}


@dataclass
class ScanReport:
    masters: dict[str, Address]
    keys: dict[str, int]  # DBSIZE of each master before the scan
    scanned: dict[str, int]
    findings: ScanFindings
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "masters": {name: str(a) for name, a in self.masters.items()},
            "keys": self.keys,
            "scanned": self.scanned,
            "wrong_shard": self.findings.wrong_shard.to_json(),
            "duplicated": self.findings.duplicated.to_json(),
            "missing": self.findings.missing.to_json() if self.findings.missing else None,
            "seconds": round(self.seconds, 3),
        }


def scan_masters(
    masters: dict[str, Address],
    password: str | None,
    classifier: Classifier,
    *,
    count: int = SCAN_COUNT,
    timeout: float = 10.0,
    progress: Progress | None = None,
    on_total: Callable[[str, int], None] | None = None,
) -> ScanReport:
    """SCAN every master (interleaved: the next SCAN is sent before a reply is classified)."""
    names = classifier.names
    wires = [Wire(masters[name], password, timeout) for name in names]
    started = time.perf_counter()
    current = -1  # the shard being talked to, for the error message
    count_arg = b"%d" % count
    try:
        sizes: dict[str, int] = {}
        for current, wire in enumerate(wires):
            (size,) = wire.roundtrip(command(b"DBSIZE"), 1)
            if not isinstance(size, int):
                raise OSError(f"DBSIZE: {size}")
            sizes[names[current]] = size
        if on_total:
            on_total("scanning masters", sum(sizes.values()))
        pending = list(range(len(wires)))
        for current in pending:
            wires[current].send(command(b"SCAN", b"0", b"COUNT", count_arg))
        while pending:
            for current in list(pending):
                (reply,) = wires[current].receive(1)
                if not isinstance(reply, list):
                    raise OSError(f"SCAN: {reply}")
                cursor, keys = reply
                if cursor == b"0":
                    pending.remove(current)
                else:  # the master works on the next page while this one is classified
                    wires[current].send(command(b"SCAN", cursor, b"COUNT", count_arg))
                classifier.feed(current, keys)
                if progress:
                    progress(len(keys))

        def exists_on(shard: int, keys: list[bytes]) -> set[bytes]:
            nonlocal current
            current = shard
            present: set[bytes] = set()
            for i in range(0, len(keys), EXISTS_BATCH):
                part = keys[i : i + EXISTS_BATCH]
                payload = b"".join([command(b"EXISTS", k) for k in part])
                replies = wires[shard].roundtrip(payload, len(part))
                present.update(k for k, r in zip(part, replies, strict=True) if r == 1)
            return present

        findings = classifier.finish(exists_on)
    except (OSError, hiredis.ProtocolError) as exc:
        name = names[current]
        raise DataError(
            f"SCAN of {name}'s master {masters[name]} failed: {describe(exc)} "
            "(fix: check `redkeeper status`; retry when the shard's master is up)"
        ) from None
    finally:
        for wire in wires:
            wire.close()
    scanned = dict(zip(names, classifier.scanned, strict=True))
    return ScanReport(masters, sizes, scanned, findings, time.perf_counter() - started)


# --------------------------------------------------------------------------- both
@dataclass
class CheckReport:
    manifest: Manifest | None
    proxy: ProxyReport | None
    scan: ScanReport
    warnings: list[str]

    def categories(self) -> dict[str, Defects]:
        found = {
            f"{k} through the proxy": d
            for k, d in (self.proxy or ProxyReport()).categories().items()
        }
        return {**found, **self.scan.findings.categories()}

    @property
    def defects(self) -> int:
        return sum(d.count for d in self.categories().values())

    def summary(self) -> str:
        """The non-zero defect counts, like "1 wrong-shard, 1 duplicated"; "" when clean."""
        found = self.categories().items()
        return ", ".join(f"{d.count:,} {k.replace('_', '-')}" for k, d in found if d.count)

    def to_json(self) -> dict[str, Any]:
        return {
            "clean": self.defects == 0,
            "defects": self.defects,
            "manifest": self.manifest.to_json() if self.manifest else None,
            "proxy": self.proxy.to_json() if self.proxy else None,
            "scan": self.scan.to_json(),
            "warnings": self.warnings,
        }


def check_data(
    topology: Topology,
    *,
    batch: int = 5000,
    timeout: float = 10.0,
    cap: int = JSON_CAP,
    progress: Progress | None = None,
    on_total: Callable[[str, int], None] | None = None,
) -> CheckReport:
    """Both passes. `on_total(label, n)` starts a pass of n keys, `progress(k)` advances it."""
    ring = ring_for(topology)  # NotDeterministicError first: nothing to check with "random"
    password = topology.password()
    manifest = read_manifest(topology)
    masters = current_masters(topology, password)
    warnings: list[str] = []
    proxy: ProxyReport | None = None
    if manifest is None:
        warnings.append(
            "no manifest (run `redkeeper load` first): only the shard scan was done, "
            "missing keys and values cannot be checked"
        )
    else:
        changes = manifest.placement_changes(topology)
        if changes:
            warnings.append(
                "the placement changed since `load` wrote the keys ("
                + "; ".join(changes)
                + "): keys written before may show as wrong-shard"
            )
        if manifest.failed:
            warnings.append(f"`load` reported {manifest.failed} key(s) it failed to write")
        if on_total:
            on_total("reading through the proxy", manifest.count)
        listen = topology.spec.proxy.listen
        proxy = read_through_proxy(
            listen, password, manifest, batch=batch, timeout=timeout, progress=progress
        )
    classifier = Classifier(ring.index_of, shard_names(ring), manifest, cap)
    scan = scan_masters(
        masters.addresses,
        password,
        classifier,
        timeout=timeout,
        progress=progress,
        on_total=on_total,
    )
    return CheckReport(manifest, proxy, scan, warnings)
