"""nutcracker as the agent's target: nutcracker.yml plus a restart strategy (`proxy.base`).

- `ManagedTarget`: the agent runs nutcracker as its child (what `redkeeper up` uses).
- `CommandTarget`: an argv command restarts it (`systemctl restart …`), exit status checked,
  then the listen port must accept.
- `StagingTarget`: the new config goes to a staging file; `redkeeper apply-staged`
  (privileged) installs it and restarts.

The managed and command targets write through `proxy.twemproxy.apply.install_and_restart`,
the one apply sequence (lock, pending marker, write, restart) shared with the hook and the
watcher. `routes()` is what the file on disk says.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from redkeeper.core.nodes import NodesView
from redkeeper.errors import ApplyError, NutcrackerConfigError, Problem
from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.process import pid_alive
from redkeeper.process.ports import accepts
from redkeeper.proxy.base import ApplyOutcome, RestartResult
from redkeeper.proxy.twemproxy.apply import (
    install_and_restart,
    locked,
    pending_path,
    repair_pending,
)
from redkeeper.proxy.twemproxy.config import (
    load_pools,
    plan_repoint,
    repoint_file,
    validate_with_nutcracker,
)
from redkeeper.proxy.twemproxy.restart import ManagedNutcracker, run_command
from redkeeper.waiting import poll_async


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


def file_routes(path: Path) -> dict[str, Address]:
    return routes_from_text(read_text(path), str(path))


class _RestartingTarget:
    """Shared by the managed and command strategies: edit nutcracker.yml, then restart."""

    description = "nutcracker"
    needs_nodes = False

    def __init__(self, config: Path, listen: Address | None) -> None:
        self.config = config
        self.listen = listen

    async def _restart(self) -> RestartResult:
        raise NotImplementedError

    async def prepare(self) -> None:
        file_routes(self.config)  # fail early and clearly: missing, corrupt, unnamed servers

    async def routes(self) -> dict[str, Address]:
        return file_routes(self.config)

    async def apply(self, changes: Mapping[str, Address]) -> ApplyOutcome:
        def write() -> bool:
            new = repoint_file(self.config, changes, validate=validate_with_nutcracker)
            return new is not None

        return await install_and_restart(self.config, write, self._restart)

    async def verify(self, changes: Mapping[str, Address]) -> None:
        routes = file_routes(self.config)
        wrong = [s for s, a in changes.items() if routes.get(s) != a]
        if wrong:
            raise ApplyError(f"{self.config} does not route {', '.join(sorted(wrong))} as applied")
        if self.listen is not None:
            listen = self.listen
            if not await asyncio.to_thread(accepts, listen.host, listen.port, 0.5):
                raise ApplyError(f"nutcracker does not accept on {listen} after the restart")

    async def repair(self, nodes: NodesView | None) -> RestartResult | None:
        return await repair_pending(self.config, self._restart)


class ManagedTarget(_RestartingTarget):
    def __init__(self, config: Path, nutcracker: ManagedNutcracker) -> None:
        super().__init__(config, nutcracker.listen)
        self.nutcracker = nutcracker
        self.description = f"managed nutcracker ({config})"

    async def prepare(self) -> None:
        await super().prepare()
        await self.nutcracker.ensure_running()

    async def _restart(self) -> RestartResult:
        return await self.nutcracker.restart()

    async def repair(self, nodes: NodesView | None) -> RestartResult | None:
        pid = self.nutcracker.pid
        if pid is None or not pid_alive(pid):
            started = time.monotonic()
            await self.nutcracker.ensure_running()
            pending_path(self.config).unlink(missing_ok=True)  # it read the file on disk
            elapsed = (time.monotonic() - started) * 1000
            return RestartResult(True, elapsed, "nutcracker was not running; started it")
        return await super().repair(nodes)


class CommandTarget(_RestartingTarget):
    def __init__(self, config: Path, argv: Sequence[str], listen: Address | None) -> None:
        super().__init__(config, listen)
        if not argv:
            raise ApplyError("--restart-cmd needs a command (argv), e.g. systemctl restart …")
        self.argv = list(argv)
        self.description = f"nutcracker via {' '.join(self.argv)}"

    async def _restart(self) -> RestartResult:
        started = time.monotonic()
        result = await run_command(self.argv)
        if result.ok and self.listen is not None:
            listen = self.listen
            opened = await poll_async(
                lambda: asyncio.to_thread(accepts, listen.host, listen.port, 0.05),
                timeout=10.0,
                interval=0.002,
            )
            if not opened:
                return RestartResult(False, result.duration_ms, f"{listen} did not open")
        return RestartResult(
            result.ok, (time.monotonic() - started) * 1000, result.output, result.pid
        )


class StagingTarget:
    """Write the desired config to a staging file; a privileged watcher applies it."""

    needs_nodes = False

    def __init__(self, config: Path, staging: Path) -> None:
        self.config = config
        self.staging = staging
        self.description = f"staging file {staging} (applied by apply-staged)"

    def _desired_text(self) -> tuple[str, Path]:
        if self.staging.exists():
            return read_text(self.staging), self.staging
        return read_text(self.config), self.config

    async def prepare(self) -> None:
        await self.routes()

    async def routes(self) -> dict[str, Address]:
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

    async def verify(self, changes: Mapping[str, Address]) -> None:
        routes = await self.routes()
        wrong = [s for s, a in changes.items() if routes.get(s) != a]
        if wrong:
            raise ApplyError(f"{self.staging} does not route {', '.join(sorted(wrong))}")

    async def repair(self, nodes: NodesView | None) -> RestartResult | None:
        return None
