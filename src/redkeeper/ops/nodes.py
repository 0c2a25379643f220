"""Bounded commands to one Redis node or Sentinel, for the operations.

`Node` wraps one connection (`rediskit.sync_client`: RESP2, no hidden retries, a socket
timeout on every call) and turns every failure into one OperationError line that names the
node, the command and the fix. The commands are the ones a switchover and a reshard need:
replication facts, `replica-priority` and `notify-keyspace-events`, `CLIENT PAUSE WRITE` /
`UNPAUSE`, cutting normal clients, and turning an old master into a replica exactly as
Sentinel does it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import redis
from redis.exceptions import RedisError, ResponseError

from redkeeper.errors import OperationError
from redkeeper.model import Address
from redkeeper.rediskit import sync_client

FIX = "check the node with `redkeeper status`, then run the command again"


class NodeReplyError(OperationError):
    """The node answered the command with an error reply (it did not fail to answer)."""


class Node:
    """One node (`label` names it in messages: "shard1's master 127.0.0.1:6666")."""

    def __init__(
        self, address: Address, password: str | None, label: str = "", timeout: float = 2.0
    ) -> None:
        self.address = address
        self.label = f"{label} {address}" if label else str(address)
        self._client: redis.Redis = sync_client(address, password, timeout)

    def call(self, *args: str | bytes | int, fix: str = FIX) -> Any:
        """One command; OperationError (one line) when it fails or the node is unreachable."""
        execute = cast(Callable[..., object], self._client.execute_command)
        try:
            return execute(*args)
        except (RedisError, OSError) as exc:
            words = " ".join(str(a) for a in args[:3])
            kind = NodeReplyError if isinstance(exc, ResponseError) else OperationError
            raise kind(
                f"{self.label}: {words} failed: {exc or type(exc).__name__} (fix: {fix})"
            ) from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ facts
    def replication(self) -> dict[str, Any]:
        info: dict[str, Any] = self.call("INFO", "replication")
        return info

    def offset(self) -> int:
        """The replication offset it has processed (a master's, or a replica's)."""
        info = self.replication()
        key = "master_repl_offset" if info.get("role") == "master" else "slave_repl_offset"
        return int(info.get(key, -1))

    def config_get(self, name: str) -> str:
        reply = self.call("CONFIG", "GET", name)
        if isinstance(reply, dict):
            value = reply.get(name)
        elif isinstance(reply, list) and len(reply) == 2:
            value = reply[1]
        else:
            value = None
        if value is None:
            raise OperationError(f"{self.label}: CONFIG GET {name} gave nothing (fix: {FIX})")
        return str(value)

    def config_set(self, name: str, value: str) -> None:
        self.call("CONFIG", "SET", name, value)

    # ------------------------------------------------------------------ writes, clients
    def pause_writes(self, milliseconds: int) -> None:
        """CLIENT PAUSE WRITE: writes wait (they do not fail); Redis ends it by itself after
        `milliseconds` (a longer pause replaces a shorter one)."""
        self.call("CLIENT", "PAUSE", str(max(1, milliseconds)), "WRITE")

    def unpause(self) -> None:
        self.call("CLIENT", "UNPAUSE")

    def kill_normal_clients(self) -> int:
        """Cut every normal client but this one: a command it had sent and that was waiting
        (paused) is never run; the client gets a connection error."""
        return int(self.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))

    def follow(self, master: Address) -> None:
        """Become a replica of `master` as Sentinel makes an old master one (REPLICAOF,
        CONFIG REWRITE, CLIENT KILL TYPE normal, in one transaction). A CONFIG REWRITE that
        fails (no writable config file) does not undo the rest."""
        pipe = self._client.pipeline(transaction=True)
        queue = cast(Callable[..., object], pipe.execute_command)
        queue("REPLICAOF", master.host, str(master.port))
        queue("CONFIG", "REWRITE")
        queue("CLIENT", "KILL", "TYPE", "normal")
        try:
            pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            raise OperationError(
                f"{self.label}: REPLICAOF {master} failed: {exc} (fix: {FIX})"
            ) from None
