"""Where the agent applies a decision: nutcracker.yml + a restart strategy.

- ManagedTarget: the agent runs nutcracker as its child (what `redkeeper up` uses).
- CommandTarget: an argv command restarts it (`systemctl restart …`), exit status checked.
- StagingTarget: the new config goes to a staging file; `redkeeper apply-staged` (privileged)
  installs it and restarts.

A `<config>.restart-pending` marker is created before a write and removed after a successful
restart, so a crash or a failed restart between the two is repaired by the next cycle (or the
next agent) instead of leaving nutcracker on a config that is not the one on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from redkeeper.errors import ApplyError, NutcrackerConfigError, Problem
from redkeeper.fsutil import atomic_write, exclusive_lock
from redkeeper.model import Address
from redkeeper.process import pid_alive
from redkeeper.process.ports import port_open
from redkeeper.proxy.twemproxy import (
    load_pools,
    plan_repoint,
    repoint_file,
    validate_with_nutcracker,
)
from redkeeper.proxy.twemproxy.restart import ManagedNutcracker, RestartResult, run_command


@dataclass(frozen=True)
class ApplyOutcome:
    written: bool
    restart: RestartResult | None


def routes_from_text(text: str, source: str) -> dict[str, Address]:
    """shard (server name) → address, over every pool of a nutcracker.yml.

    Refuses (NutcrackerConfigError) a file that cannot be edited safely: corrupt, or with an
    unnamed server (its placement would change the day it gets a name). Cached by content:
    an idle agent re-reads the file every cycle but parses it only when it changed.
    """
    return dict(_parse_routes(text, source))


@functools.lru_cache(maxsize=8)
def _parse_routes(text: str, source: str) -> tuple[tuple[str, Address], ...]:
    plan_repoint(text, {}, source=source)  # validates: every server named, file parseable
    routes: dict[str, Address] = {}
    for pool in load_pools(text, source=source).values():
        for server in pool.servers:
            if server.name is not None:
                routes.setdefault(server.name, server.address)
    return tuple(routes.items())


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise NutcrackerConfigError(
            [Problem(str(path), "", f"cannot read: {exc.strerror}", "check the path and rights")]
        ) from None


LOCK_TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def locked(path: Path) -> AsyncIterator[None]:
    """The same `<file>.lock` flock that `redkeeper reconfig-hook` takes, so the agent and
    Sentinel's hook never interleave a read-modify-write-restart on one file."""
    lock = exclusive_lock(path, LOCK_TIMEOUT)
    await asyncio.to_thread(lock.__enter__)
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


class Target(Protocol):
    description: str

    async def prepare(self) -> None: ...

    def routes(self) -> dict[str, Address]: ...

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome: ...

    async def repair(self) -> RestartResult | None: ...


class _RestartingTarget:
    """Shared by the managed and command strategies: edit nutcracker.yml, then restart."""

    description = "nutcracker"

    def __init__(self, config: Path) -> None:
        self.config = config
        self.pending = config.with_name(config.name + ".restart-pending")

    def routes(self) -> dict[str, Address]:
        return routes_from_text(read_text(self.config), str(self.config))

    async def _restart(self) -> RestartResult:
        raise NotImplementedError

    async def prepare(self) -> None:
        self.routes()  # fail early and clearly: missing, corrupt, unnamed servers

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome:
        async with locked(self.config):
            self.pending.touch()
            written = await asyncio.to_thread(
                repoint_file, self.config, changes, validate=validate_with_nutcracker
            )
            if written is None:
                self.pending.unlink(missing_ok=True)
                return ApplyOutcome(False, None)
            result = await self._restart()
            if result.ok:
                self.pending.unlink(missing_ok=True)
            return ApplyOutcome(True, result)

    async def repair(self) -> RestartResult | None:
        """Restart when a previous write was not followed by a successful restart."""
        if not self.pending.exists():
            return None
        result = await self._restart()
        if result.ok:
            self.pending.unlink(missing_ok=True)
        return result


class ManagedTarget(_RestartingTarget):
    def __init__(self, config: Path, nutcracker: ManagedNutcracker) -> None:
        super().__init__(config)
        self.nutcracker = nutcracker
        self.description = f"managed nutcracker ({config})"

    async def prepare(self) -> None:
        await super().prepare()
        await self.nutcracker.ensure_running()

    async def _restart(self) -> RestartResult:
        return await self.nutcracker.restart()

    async def repair(self) -> RestartResult | None:
        pid = self.nutcracker.pid
        if pid is None or not pid_alive(pid):
            self.pending.unlink(missing_ok=True)  # a fresh start reads the file on disk
            started = time.monotonic()
            await self.nutcracker.ensure_running()
            elapsed = (time.monotonic() - started) * 1000
            return RestartResult(True, elapsed, "nutcracker was not running; started it")
        return await super().repair()


class CommandTarget(_RestartingTarget):
    def __init__(self, config: Path, argv: Sequence[str], listen: Address | None) -> None:
        super().__init__(config)
        if not argv:
            raise ApplyError("--restart-cmd needs a command (argv), e.g. systemctl restart …")
        self.argv = list(argv)
        self.listen = listen
        self.description = f"nutcracker via {' '.join(self.argv)}"

    async def _restart(self) -> RestartResult:
        started = time.monotonic()
        result = await run_command(self.argv)
        if result.ok and self.listen is not None:
            listen = self.listen
            deadline = time.monotonic() + 10.0
            while not await asyncio.to_thread(port_open, listen.host, listen.port, 0.05):
                if time.monotonic() > deadline:
                    return RestartResult(False, result.duration_ms, f"{listen} did not open")
                await asyncio.sleep(0.002)
        return RestartResult(
            result.ok, (time.monotonic() - started) * 1000, result.output, result.pid
        )


class StagingTarget:
    """Write the desired config to a staging file; a privileged watcher applies it."""

    def __init__(self, config: Path, staging: Path) -> None:
        self.config = config
        self.staging = staging
        self.description = f"staging file {staging} (applied by apply-staged)"

    def _desired_text(self) -> tuple[str, Path]:
        if self.staging.exists():
            return read_text(self.staging), self.staging
        return read_text(self.config), self.config

    async def prepare(self) -> None:
        self.routes()

    def routes(self) -> dict[str, Address]:
        text, path = self._desired_text()
        return routes_from_text(text, str(path))

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome:
        async with locked(self.staging):
            text, path = self._desired_text()
            new = plan_repoint(text, changes, source=str(path))
            if new is None:
                return ApplyOutcome(False, None)
            written = await asyncio.to_thread(
                atomic_write, self.staging, new, validate=validate_with_nutcracker, backup=False
            )
            return ApplyOutcome(written, None)

    async def repair(self) -> RestartResult | None:
        return None
