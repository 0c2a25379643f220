"""HAProxy's Runtime API (the admin socket): one command per connection, bounded, typed.

HAProxy's non-interactive CLI reads one line, answers, and closes the connection; this client
does exactly that, with asyncio (`RuntimeAPI.execute`; blocking callers such as `status` use
`asyncio.run`). Every exchange is bounded by `timeout` (connect + send + read until HAProxy
closes).

`show servers state` is parsed into `ServerState` rows by its header line (format 1 of
HAProxy 2.x). Failures are `ApplyError` subclasses: `HAProxyUnavailableError` (no socket, no
answer) and `HAProxyCommandError` (HAProxy refused the command: no such backend, ...).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from redkeeper.errors import ApplyError
from redkeeper.model import Address

# srv_op_state
OP_STOPPED, OP_STARTING, OP_RUNNING, OP_STOPPING = 0, 1, 2, 3
# srv_admin_state bits (HAProxy's SRV_ADMF_*)
ADMIN_FMAINT, ADMIN_IMAINT, ADMIN_FDRAIN, ADMIN_IDRAIN, ADMIN_RMAINT = 0x01, 0x02, 0x08, 0x10, 0x20
# any maintenance: forced, inherited, resolution (not CMAINT 0x04, the config's `disabled`)
ADMIN_MAINT_MASK = ADMIN_FMAINT | ADMIN_IMAINT | ADMIN_RMAINT
ADMIN_DRAIN_MASK = ADMIN_FDRAIN | ADMIN_IDRAIN

_READ_LIMIT = 16 * 1024 * 1024
_OP_NAMES = {OP_STOPPED: "DOWN", OP_STARTING: "STARTING", OP_RUNNING: "UP", OP_STOPPING: "NOLB"}


class HAProxyUnavailableError(ApplyError):
    """The admin socket does not exist, refuses, or does not answer in time."""


class HAProxyCommandError(ApplyError):
    """HAProxy answered, but refused or did not understand the command."""


@dataclass(frozen=True)
class ServerState:
    """One row of `show servers state`."""

    backend: str
    server: str
    address: Address
    op_state: int
    admin_state: int
    check_status: str = ""

    @property
    def maint(self) -> bool:
        return bool(self.admin_state & ADMIN_MAINT_MASK)

    @property
    def up(self) -> bool:
        return self.op_state == OP_RUNNING

    @property
    def routable(self) -> bool:
        """Ready (not in maintenance or drain) and UP: new connections may go there."""
        return self.up and not self.maint and not self.admin_state & ADMIN_DRAIN_MASK

    @property
    def state(self) -> str:
        """What HAProxy's stats page would say: MAINT, DRAIN, UP, DOWN…"""
        if self.maint:
            return "MAINT"
        if self.admin_state & ADMIN_DRAIN_MASK:
            return "DRAIN"
        return _OP_NAMES.get(self.op_state, str(self.op_state))


def parse_servers_state(text: str, source: str = "show servers state") -> list[ServerState]:
    """Rows of `show servers state` (format 1). ValueError for anything else."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{source}: empty answer")
    if lines[0].strip() != "1":
        raise ValueError(f"{source}: unknown format {lines[0].strip()!r} (expected 1)")
    if len(lines) < 2 or not lines[1].startswith("#"):
        raise ValueError(f"{source}: no header line")
    columns = lines[1].lstrip("#").split()
    needed = ("be_name", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_port")
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(f"{source}: header lacks {', '.join(missing)}")
    index = {name: i for i, name in enumerate(columns)}
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if len(fields) < len(needed) or len(fields) < max(index[c] for c in needed) + 1:
            raise ValueError(f"{source}: line {number} has {len(fields)} fields: {line!r}")
        try:
            rows.append(
                ServerState(
                    backend=fields[index["be_name"]],
                    server=fields[index["srv_name"]],
                    address=Address(fields[index["srv_addr"]], int(fields[index["srv_port"]])),
                    op_state=int(fields[index["srv_op_state"]]),
                    admin_state=int(fields[index["srv_admin_state"]]),
                    check_status=fields[index["srv_check_status"]]
                    if "srv_check_status" in index
                    else "",
                )
            )
        except ValueError as exc:
            raise ValueError(f"{source}: line {number}: {exc}: {line!r}") from None
    return rows


_OK_PREFIXES = ("IP changed from", "no need to change", "port changed from")


def _check_reply(command: str, reply: str) -> str:
    """Raise HAProxyCommandError unless `reply` is what HAProxy says on success."""
    text = reply.strip()
    if command.startswith(("show ", "help")):
        if text.startswith(("Unknown command", "Permission denied")):
            raise HAProxyCommandError(f"HAProxy refused {command!r}: {text}")
        return reply
    if not text or text.startswith(_OK_PREFIXES):
        return reply
    raise HAProxyCommandError(f"HAProxy refused {command!r}: {text.splitlines()[0]}")


def _validate(command: str) -> None:
    if not command or any(c in command for c in "\n\r;"):
        raise ValueError(f"not a single Runtime API command: {command!r}")


ServerAdminState = Literal["ready", "maint", "drain"]


class RuntimeAPI:
    """A client of one HAProxy admin socket (`stats socket … level admin`)."""

    def __init__(self, path: Path, timeout: float = 1.0) -> None:
        self.path = path
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RuntimeAPI({str(self.path)!r})"

    def _unavailable(self, what: str) -> HAProxyUnavailableError:
        return HAProxyUnavailableError(
            f"HAProxy admin socket {self.path}: {what} (is haproxy running with this config?)"
        )

    async def execute(self, command: str) -> str:
        """Send one command, return HAProxy's whole answer; raise on refusal or no answer."""
        _validate(command)
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(str(self.path))
                writer.write(command.encode() + b"\n")
                await writer.drain()
                data = await reader.read(_READ_LIMIT)
                while chunk := await reader.read(_READ_LIMIT):
                    data += chunk
        except TimeoutError:
            raise self._unavailable(f"no answer to {command!r} within {self.timeout:g} s") from None
        except OSError as exc:
            raise self._unavailable(exc.strerror or str(exc)) from None
        finally:
            if writer is not None:
                writer.close()
        return _check_reply(command, data.decode(errors="replace"))

    # ---- typed commands ------------------------------------------------------------------

    def _parse(self, text: str) -> list[ServerState]:
        try:
            return parse_servers_state(text, f"show servers state on {self.path}")
        except ValueError as exc:
            raise HAProxyCommandError(str(exc)) from None

    async def servers_state(self) -> list[ServerState]:
        return self._parse(await self.execute("show servers state"))

    async def state_file_text(self) -> str:
        """`show servers state` verbatim: what HAProxy reads back from its server-state file."""
        text = await self.execute("show servers state")
        self._parse(text)
        return text

    async def set_address(self, backend: str, server: str, address: Address) -> None:
        await self.execute(f"set server {backend}/{server} addr {address.host} port {address.port}")

    async def set_state(self, backend: str, server: str, state: ServerAdminState) -> None:
        await self.execute(f"set server {backend}/{server} state {state}")

    async def set_health_up(self, backend: str, server: str) -> None:
        """Mark UP now instead of after the next successful check (the check still runs)."""
        await self.execute(f"set server {backend}/{server} health up")

    async def shutdown_sessions(self, backend: str, server: str) -> None:
        """Cut every established session of the server (clients reconnect elsewhere)."""
        await self.execute(f"shutdown sessions server {backend}/{server}")
