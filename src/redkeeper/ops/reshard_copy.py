"""Moving keys: copy them with their TTL, track the ones written meanwhile, delete the old
copies. The data path of `redkeeper reshard`.

- `Tracker`: keyspace notifications of the sources (`__keyspace@<db>__:*`, with
  `notify-keyspace-events` set by the caller). One thread reads every source's subscription
  and keeps, per source, the *moving* keys (`Rings.destination`) written, deleted, expired or
  evicted since the last `take`. `barrier` proves that every notification of a write the
  source ran before it was read (a PING on the subscription is answered after them): with the
  sources' writes paused, nothing is missed. A subscription that drops is reported
  (`broken`): the copy must start again.
- `Copier` (one per source: `Copiers`, whose full passes run in parallel threads):
  `PEXPIRETIME` + `DUMP` pipelined on the source (reads: they run during `CLIENT
  PAUSE WRITE` too), then `RESTORE … REPLACE [ABSTTL]` pipelined on each destination, or `DEL`
  there when the key is gone from the source. It keeps the set of keys moved that exist (for
  the summary) and the bytes copied.
- `delete_moved` / `purge_copies`: UNLINK, pipelined, of the moving keys left on a source
  after the switch, or of the copies on a destination (a rollback, a restarted copy).
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import hiredis

from redkeeper.data.load import Wire, command, describe
from redkeeper.errors import OperationError
from redkeeper.model import Address
from redkeeper.ops.reshard_plan import Rings, scan_keys

BATCH = 1000
Progress = Callable[[int], None]
# The copy's commands, encoded in one formatting each (the hot path of the copy).
_DUMP = b"*2\r\n$11\r\nPEXPIRETIME\r\n$%d\r\n%b\r\n*2\r\n$4\r\nDUMP\r\n$%d\r\n%b\r\n"
_RESTORE = b"*5\r\n$7\r\nRESTORE\r\n$%d\r\n%b\r\n$1\r\n0\r\n$%d\r\n%b\r\n$7\r\nREPLACE\r\n"
_RESTORE_AT = (
    b"*6\r\n$7\r\nRESTORE\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$7\r\nREPLACE\r\n"
    b"$6\r\nABSTTL\r\n"
)


# --------------------------------------------------------------------------- tracking
@dataclass
class _Subscription:
    shard: str
    address: Address
    sock: socket.socket
    reader: hiredis.Reader = field(default_factory=hiredis.Reader)
    pongs: int = 0


class Tracker:
    """See the module docstring. `sources`: shard → master address."""

    def __init__(
        self,
        sources: Mapping[str, Address],
        password: str | None,
        rings: Rings,
        *,
        db: int = 0,
        timeout: float = 5.0,
    ) -> None:
        self.rings = rings
        self.prefix = b"__keyspace@%d__:" % db
        self.timeout = timeout
        self.broken: str | None = None
        self._lock = threading.Lock()
        self._dirty: dict[str, set[bytes]] = {name: set() for name in sources}
        self._subs = [self._subscribe(n, a, password) for n, a in sources.items()]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reshard-tracker", daemon=True)
        self._thread.start()

    def _subscribe(self, shard: str, address: Address, password: str | None) -> _Subscription:
        try:
            sock = socket.create_connection((address.host, address.port), self.timeout)
            sock.settimeout(self.timeout)
            sub = _Subscription(shard, address, sock)
            if password is not None:
                sock.sendall(command(b"AUTH", password.encode()))
                self._expect(sub, lambda r: r == b"OK")
            sock.sendall(command(b"PSUBSCRIBE", self.prefix + b"*"))
            self._expect(sub, lambda r: isinstance(r, list) and r[0] == b"psubscribe")
        except (OSError, hiredis.ProtocolError) as exc:
            raise OperationError(
                f"cannot subscribe to {shard}'s master {address}: {describe(exc)}"
            ) from None
        return sub

    def _expect(self, sub: _Subscription, ok: Callable[[object], bool]) -> None:
        while True:
            reply = sub.reader.gets()
            if reply is not False:
                if not ok(reply):
                    raise OSError(f"unexpected reply {reply!r}")
                return
            data = sub.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            sub.reader.feed(data)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for each in self._subs:
            each.sock.setblocking(False)
            selector.register(each.sock, selectors.EVENT_READ, each)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    sub: _Subscription = key.data
                    try:
                        data = sub.sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        data, why = b"", describe(exc)
                    else:
                        why = "closed by the server"
                    if not data:
                        self.broken = f"the subscription to {sub.shard} ({sub.address}): {why}"
                        selector.unregister(sub.sock)
                        continue
                    sub.reader.feed(data)
                    self._drain(sub)
        finally:
            selector.close()

    def _drain(self, sub: _Subscription) -> None:
        prefix, plen = self.prefix, len(self.prefix)
        destination = self.rings.destination
        found: list[bytes] = []
        while (message := sub.reader.gets()) is not False:
            if isinstance(message, list) and len(message) == 4 and message[0] == b"pmessage":
                channel = message[2]
                if channel.startswith(prefix):
                    key = channel[plen:]
                    if destination(sub.shard, key) is not None:
                        found.append(key)
            elif isinstance(message, list) and message and message[0] == b"pong":
                sub.pongs += 1
        if found:
            with self._lock:
                self._dirty[sub.shard].update(found)

    def take(self, shard: str) -> set[bytes]:
        """The moving keys of `shard` touched since the last take."""
        with self._lock:
            keys, self._dirty[shard] = self._dirty[shard], set()
        return keys

    def pending(self) -> int:
        with self._lock:
            return sum(len(keys) for keys in self._dirty.values())

    def barrier(self, timeout: float) -> None:
        """Every notification sent before now has been read (module docstring)."""
        wanted = {id(sub): sub.pongs + 1 for sub in self._subs}
        for sub in self._subs:
            try:
                sub.sock.sendall(command(b"PING"))
            except OSError as exc:
                self.broken = f"the subscription to {sub.shard}: {describe(exc)}"
        deadline = time.monotonic() + timeout
        while any(sub.pongs < wanted[id(sub)] for sub in self._subs):
            if self.broken is not None:
                raise OperationError(f"lost track of writes: {self.broken}")
            if time.monotonic() >= deadline:
                raise OperationError(f"keyspace notifications did not catch up in {timeout} s")
            time.sleep(0.0005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        for sub in self._subs:
            sub.sock.close()


# --------------------------------------------------------------------------- copying
@dataclass
class CopyStats:
    copied: int = 0  # RESTOREs (a key copied twice counts twice)
    removed: int = 0  # DELs on a destination of keys gone from their source
    bytes: int = 0


class Copier:
    """Copies moving keys of the sources to their destinations (module docstring)."""

    def __init__(
        self,
        masters: Mapping[str, Address],
        password: str | None,
        rings: Rings,
        *,
        db: int = 0,
        timeout: float = 10.0,
    ) -> None:
        self.masters = dict(masters)
        self.rings = rings
        self.db = db
        self.stats = CopyStats()
        self.present: dict[str, set[bytes]] = {}  # per source: moving keys copied that exist
        self._wires = {name: Wire(a, password, timeout) for name, a in self.masters.items()}
        self._selected: set[str] = set()
        self._unread: dict[str, int] = {}  # per destination: replies not read yet

    def _wire(self, shard: str) -> Wire:
        wire = self._wires[shard]
        if self.db and shard not in self._selected:
            wire.roundtrip(command(b"SELECT", b"%d" % self.db), 1)
            self._selected.add(shard)
        return wire

    def _fail(self, what: str, shard: str, exc: BaseException) -> OperationError:
        self._selected.discard(shard)
        return OperationError(
            f"{what} on {shard}'s master {self.masters[shard]} failed: {describe(exc)} "
            "(fix: check `redkeeper status`, then run the command again: it resumes)"
        )

    def copy(self, source: str, keys: list[bytes]) -> None:
        """Copy `keys` (moving keys of `source`) as they are on `source` now."""
        destination = self.rings.destination
        moving = [(k, d) for k in keys if (d := destination(source, k)) is not None]
        for start in range(0, len(moving), BATCH):
            self._copy_batch(source, moving[start : start + BATCH])
        self.flush()

    def _copy_batch(self, source: str, moving: list[tuple[bytes, str]]) -> None:
        keys = [k for k, _ in moving]
        payload = b"".join([_DUMP % (len(k), k, len(k), k) for k in keys])
        try:
            replies = self._wire(source).roundtrip(payload, 2 * len(keys))
        except (OSError, hiredis.ProtocolError) as exc:
            raise self._fail("DUMP", source, exc) from None
        by_destination: dict[str, list[bytes]] = {}
        present = self.present.setdefault(source, set())
        for i, (key, dst) in enumerate(moving):
            expires, data = replies[2 * i], replies[2 * i + 1]
            if isinstance(data, bytes) and isinstance(expires, int) and expires != -2:
                if expires >= 0:
                    at = b"%d" % expires
                    restore = _RESTORE_AT % (len(key), key, len(at), at, len(data), data)
                else:
                    restore = _RESTORE % (len(key), key, len(data), data)
                by_destination.setdefault(dst, []).append(restore)
                present.add(key)
                self.stats.copied += 1
                self.stats.bytes += len(data)
            elif data is None:
                by_destination.setdefault(dst, []).append(command(b"DEL", key))
                present.discard(key)
                self.stats.removed += 1
            else:
                raise OperationError(f"DUMP {key!r} on {source}: {data!r}")
        for dst, commands in by_destination.items():
            self._collect(dst)  # the previous batch's replies: one batch in flight at most
            try:
                self._wire(dst).send(b"".join(commands))
            except (OSError, hiredis.ProtocolError) as exc:
                raise self._fail("RESTORE", dst, exc) from None
            self._unread[dst] = len(commands)

    def _collect(self, dst: str) -> None:
        """Read the replies of the RESTOREs / DELs sent to `dst` and not read yet."""
        count = self._unread.pop(dst, 0)
        if not count:
            return
        try:
            answers = self._wire(dst).receive(count)
        except (OSError, hiredis.ProtocolError) as exc:
            raise self._fail("RESTORE", dst, exc) from None
        errors = [a for a in answers if isinstance(a, hiredis.ReplyError)]
        if errors:
            raise OperationError(
                f"RESTORE on {dst}'s master {self.masters[dst]}: {errors[0]} "
                f"({len(errors)} of {len(answers)} failed; fix: see its log, then rerun)"
            )

    def flush(self) -> None:
        """Every copy sent so far is done (its reply read, errors raised)."""
        for dst in list(self._unread):
            self._collect(dst)

    def full_pass(self, source: str, progress: Progress | None = None) -> int:
        """SCAN `source` and copy every moving key; the number of keys scanned."""
        scanned = 0
        label = f"{source}'s master {self.masters[source]}"
        wire = Wire(self.masters[source], self._wires[source].password, 10.0)
        destination = self.rings.destination
        batch: list[tuple[bytes, str]] = []
        waiting = 0  # keys scanned whose moving ones are in `batch`
        with wire:
            for keys in scan_keys(wire, label, db=self.db):
                scanned += len(keys)
                waiting += len(keys)
                batch += [(k, d) for k in keys if (d := destination(source, k)) is not None]
                if len(batch) >= BATCH:
                    self._copy_batch(source, batch)
                    batch = []
                    if progress:
                        progress(waiting)
                    waiting = 0
            if batch:
                self._copy_batch(source, batch)
            self.flush()
            if progress:
                progress(waiting)
        return scanned

    def moved(self) -> int:
        self.flush()
        return sum(len(keys) for keys in self.present.values())

    def close(self) -> None:
        for wire in self._wires.values():
            wire.close()


class Copiers:
    """One `Copier` per source, each with its own connections, so that the full pass runs the
    sources in parallel threads (the waits for Redis overlap; Python's share does not)."""

    def __init__(
        self,
        sources: list[str],
        masters: Mapping[str, Address],
        password: str | None,
        rings: Rings,
        *,
        db: int = 0,
    ) -> None:
        self.by_source = {s: Copier(masters, password, rings, db=db) for s in sources}

    def copy(self, source: str, keys: list[bytes]) -> None:
        self.by_source[source].copy(source, keys)

    def full_pass(self, progress: Progress | None = None) -> None:
        """Every source's full pass at once; the first error is raised after all ended."""
        with ThreadPoolExecutor(max_workers=len(self.by_source) or 1) as pool:
            futures = [
                pool.submit(copier.full_pass, source, progress)
                for source, copier in self.by_source.items()
            ]
        for future in futures:
            future.result()

    @property
    def stats(self) -> CopyStats:
        total = CopyStats()
        for copier in self.by_source.values():
            total.copied += copier.stats.copied
            total.removed += copier.stats.removed
            total.bytes += copier.stats.bytes
        return total

    def moved(self) -> int:
        return sum(copier.moved() for copier in self.by_source.values())

    def close(self) -> None:
        for copier in self.by_source.values():
            copier.close()


# --------------------------------------------------------------------------- deleting
def unlink_where(
    address: Address,
    password: str | None,
    label: str,
    wanted: Callable[[bytes], bool],
    *,
    db: int = 0,
    progress: Progress | None = None,
) -> int:
    """UNLINK every key of `address` for which `wanted(key)`; how many existed."""
    removed = 0
    scanner, writer = Wire(address, password, 10.0), Wire(address, password, 10.0)
    with scanner, writer:
        try:
            if db:
                writer.roundtrip(command(b"SELECT", b"%d" % db), 1)
            for keys in scan_keys(scanner, label, db=db):
                doomed = [k for k in keys if wanted(k)]
                if doomed:
                    (count,) = writer.roundtrip(command(b"UNLINK", *doomed), 1)
                    if not isinstance(count, int):
                        raise OSError(f"UNLINK: {count!r}")
                    removed += count
                if progress:
                    progress(len(keys))
        except (OSError, hiredis.ProtocolError) as exc:
            raise OperationError(
                f"UNLINK on {label} failed: {describe(exc)} (fix: check `redkeeper status`, "
                "then run the command again: it resumes)"
            ) from None
    return removed
