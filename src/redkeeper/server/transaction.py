"""Transactions through the proxy: MULTI ... EXEC on one shard, on the shared connections.

Owns the queue-time rules of a transaction (pure: no I/O). Between MULTI and EXEC a client's
commands are checked as they arrive and buffered here as packed requests; each accepted one
is answered `+QUEUED` by the proxy. As in Redis, a command refused at queue time (unknown or
refused by the proxy, wrong arity, bad numkeys) gets its error and marks the transaction
aborted, so EXEC answers `-EXECABORT` without touching a backend. The proxy adds one rule:
every key of the transaction must be on the shard of its first key (a command whose key is
elsewhere is refused the same way). At EXEC the client connection writes `block()` (MULTI,
the commands, EXEC) as one contiguous run on that shard's master connection, so Redis runs
it atomically, and forwards only EXEC's reply.

Keyless commands that Redis would queue and that mean the same on any backend (PING, ECHO,
TIME, UNWATCH) are queued as they are; other connection commands are refused inside MULTI.
A transaction is bounded like a request: at most `max_commands` commands and `max_bytes`
bytes buffered (past either, it is aborted and its buffer freed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from redkeeper.server import commands, resp, split
from redkeeper.server.commands import CommandSpec

MULTI_REQUEST: Final = resp.command("MULTI")
EXEC_REQUEST: Final = resp.command("EXEC")
QUEUED: Final = b"+QUEUED\r\n"
EMPTY: Final = b"*0\r\n"
EXECABORT: Final = resp.error("EXECABORT Transaction discarded because of previous errors.")
NESTED: Final = resp.error("ERR MULTI calls can not be nested")
EXEC_WITHOUT_MULTI: Final = resp.error("ERR EXEC without MULTI")
DISCARD_WITHOUT_MULTI: Final = resp.error("ERR DISCARD without MULTI")
WATCH_INSIDE_MULTI: Final = resp.error("ERR WATCH inside MULTI is not allowed")
#: keyless commands queued as sent: any backend answers them as Redis would at EXEC.
KEYLESS: Final = frozenset({"PING", "ECHO", "TIME", "UNWATCH"})

_PACK: Callable[[tuple[bytes, ...]], bytes] = resp.pack


class Transaction:
    """The commands a client queued since MULTI, and whether EXEC must abort."""

    __slots__ = ("aborted", "key", "max_bytes", "max_commands", "requests", "shard", "size")

    def __init__(self, max_commands: int, max_bytes: int) -> None:
        self.max_commands = max_commands
        self.max_bytes = max_bytes
        self.requests: list[bytes] = []
        self.size = 0
        self.aborted = False
        self.key: bytes | None = None  # the first key: its shard runs the transaction
        self.shard: int | None = None

    def queue(
        self,
        spec: CommandSpec | None,
        args: list[bytes],
        index_of: Callable[[bytes], int],
        shard_names: Sequence[str],
        hash_tag: str | None,
    ) -> bytes:
        """Check and buffer one command sent inside MULTI; return the reply it gets now.

        `spec` is None for a command the proxy does not know. EXEC, DISCARD, QUIT and RESET
        are the caller's. Raises `resp.RespError` for an argument that is not a bulk string.
        """
        if spec is None:
            return self._abort(commands.unknown_error(args[0]))
        if not spec.arity_ok(len(args)):
            return self._abort(commands.arity_error(args[0]))
        kind = spec.kind
        name = spec.name
        if name == "MULTI":
            return NESTED  # as Redis: an error, the transaction goes on
        if name == "WATCH":
            return WATCH_INSIDE_MULTI
        if kind == commands.REFUSED:
            return self._abort(commands.refused_error(spec))
        for arg in args:
            if type(arg) is not bytes:
                raise resp.RespError("expected '$' bulk strings in the request")
        if kind in (commands.LOCAL, commands.TXN):
            if name not in KEYLESS:
                return self._abort(
                    f"ERR redkeeper: {name} inside MULTI is not supported through the proxy; "
                    "send it before MULTI"
                )
            return self._add(args)
        if kind == commands.MSET and (len(args) - 1) % 2:
            return self._abort(commands.arity_error(args[0]))
        try:
            keys = commands.keys_of(spec, args)
        except commands.CommandError as exc:
            return self._abort(str(exc))
        where = split.one_shard(spec, keys, index_of, shard_names, hash_tag)
        if isinstance(where, str):
            return self._abort(where)
        if self.shard is None:
            self.shard = where
            self.key = keys[0]
        elif where != self.shard:
            return self._abort(
                f"ERR redkeeper: a transaction runs on one shard: the keys of this {name} are on "
                f"{shard_names[where]}, the transaction's first key is on "
                f"{shard_names[self.shard]}; {split.hash_tag_fix(hash_tag)}"
            )
        return self._add(args)

    def _add(self, args: list[bytes]) -> bytes:
        if self.aborted:
            return QUEUED  # as Redis: still queued, EXEC will abort anyway
        request = _PACK(tuple(args))
        size = self.size + len(request)
        if len(self.requests) >= self.max_commands or size > self.max_bytes:
            return self._abort(
                f"ERR redkeeper: transaction too large (more than {self.max_commands} commands "
                f"or {self.max_bytes} bytes queued); split it or use EVAL"
            )
        self.size = size
        self.requests.append(request)
        return QUEUED

    def _abort(self, message: str) -> bytes:
        self.aborted = True
        self.requests = []
        self.size = 0
        return resp.error(message)

    def shard_at_exec(self, index_of: Callable[[bytes], int]) -> int:
        """The shard to run on: the first key's (placed again, the ring may have moved), or
        the first shard for a transaction without keys."""
        return 0 if self.key is None else index_of(self.key)

    def block(self) -> list[bytes]:
        """MULTI, the queued requests and EXEC: what EXEC writes as one run."""
        return [MULTI_REQUEST, *self.requests, EXEC_REQUEST]
