"""The proxy's listener: accepting clients, limits, the periodic tick, and bounded drain.

Owns `ProxyServer`, the composition of the data plane: a `Router` (placement and routes,
driven by the caller), the `BackendPool`, `LocalCommands` and `ProxyMetrics`, and the
listening socket (optionally SO_REUSEPORT so several worker processes share one port). It
enforces the client limits of `ProxySettings` (max clients with Redis's error, idle timeout,
request size, in-flight requests), pauses every client's reads while a backend's output is
saturated, and `drain(timeout)` stops accepting, answers what is in flight and closes, bounded.
Signal handling belongs to the caller.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from dataclasses import dataclass

from redkeeper import __version__
from redkeeper.errors import RedkeeperError
from redkeeper.server.client import PAUSE_BACKEND, PAUSE_DRAIN, ClientConnection
from redkeeper.server.local import REDIS_VERSION, LocalCommands, Session
from redkeeper.server.metrics import ProxyMetrics
from redkeeper.server.pool import BackendPool, PoolSettings
from redkeeper.server.router import Router

MAX_CLIENTS_ERROR = b"-ERR max number of clients reached\r\n"


class ProxyStartError(RedkeeperError):
    """The proxy could not listen (address in use, bad address) or was started twice."""


@dataclass(frozen=True)
class ProxySettings:
    """Limits and endpoints of one proxy process."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port (see ProxyServer.port)
    password: str | None = None  # clients must AUTH with it; backends are sent it
    max_clients: int = 10_000
    max_request_bytes: int = 512 * 1024 * 1024  # like proto-max-bulk-len
    max_multibulk: int = 1024 * 1024  # arguments in one request
    max_inflight: int = 10_000  # requests of one client waiting for replies
    client_idle_timeout: float = 0.0  # seconds; 0 = never
    timeout: float = 5.0  # per-request server timeout, seconds; 0 = none
    connect_timeout: float = 1.0
    backoff_min: float = 0.05
    backoff_max: float = 1.0
    client_write_high: int = 1024 * 1024  # pause reading a client above this unsent output
    client_write_low: int = 256 * 1024
    backend_write_high: int = 4 * 1024 * 1024  # a backend above this pauses all clients
    reuse_port: bool = False
    backlog: int = 511
    tick: float = 0.05  # seconds between timeout checks


class ProxyServer:
    """The redkeeper proxy's data plane; `start`, then `drain` (or `close`)."""

    def __init__(
        self, router: Router, settings: ProxySettings, metrics: ProxyMetrics | None = None
    ) -> None:
        self.router = router
        self.settings = settings
        self.metrics = metrics or ProxyMetrics()
        self.clients: dict[int, ClientConnection] = {}
        self.draining = False
        self.rejected = 0
        self.started = time.monotonic()
        self._ids = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.local = LocalCommands(settings.password, self._sections, self._client_lines)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Lengths with as many digits as the limits: checked exactly before hiredis sees them.
        digits = len(str(settings.max_multibulk))
        bulk_digits = len(str(settings.max_request_bytes))
        pattern = rb"\*[0-9]{%d}|\$[0-9]{%d}" % (digits, bulk_digits)
        self.suspicious = re.compile(pattern).search
        self._pool: BackendPool | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise ProxyStartError("the proxy is not started")
        return self._loop

    @property
    def pool(self) -> BackendPool:
        if self._pool is None:
            raise ProxyStartError("the proxy is not started")
        return self._pool

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise ProxyStartError("the proxy is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Create the backend pool and listen. Raises ProxyStartError when it cannot."""
        if self._server is not None:
            raise ProxyStartError("the proxy is already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        s = self.settings
        pool_settings = PoolSettings(
            s.password,
            s.connect_timeout,
            s.timeout,
            s.backoff_min,
            s.backoff_max,
            s.backend_write_high,
        )
        self._pool = BackendPool(self.router, pool_settings, self.metrics, loop, self._saturated)
        self.metrics.clients = lambda: len(self.clients)
        self.metrics.backend_requests = self._backend_requests
        try:
            self._server = await loop.create_server(
                self._new_client,
                s.host,
                s.port,
                backlog=s.backlog,
                reuse_address=True,
                reuse_port=s.reuse_port or None,
            )
        except OSError as exc:
            raise ProxyStartError(f"cannot listen on {s.host}:{s.port}: {exc}") from exc
        self._ticker = loop.create_task(self._tick())

    def _new_client(self) -> ClientConnection:
        session = Session(next(self._ids), authed=self.settings.password is None)
        return ClientConnection(self, session)

    def admit(self, client: ClientConnection) -> bool:
        """Register a new client, or refuse it like Redis when the limit is reached."""
        transport = client.transport
        assert transport is not None
        if self.draining or len(self.clients) >= self.settings.max_clients:
            self.rejected += 1
            self.metrics.error("max_clients")
            transport.write(MAX_CLIENTS_ERROR)
            transport.close()
            client.closed = True
            return False
        self.metrics.clients_total += 1
        self.clients[client.session.id] = client
        if self.pool.saturation:
            client.pause(PAUSE_BACKEND)
            # uvloop starts reading right after connection_made: pause again on the next step
            self.loop.call_soon(client.reapply_pause)
        return True

    def forget(self, client: ClientConnection) -> None:
        self.clients.pop(client.session.id, None)

    def _saturated(self, saturated: bool) -> None:
        for client in list(self.clients.values()):
            if saturated:
                client.pause(PAUSE_BACKEND)
            else:
                client.resume(PAUSE_BACKEND)

    def _backend_requests(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for link in self.pool.links.values():
            totals[link.shard] = totals.get(link.shard, 0) + link.requests
        return totals

    async def _tick(self) -> None:
        period = self.settings.tick
        idle = self.settings.client_idle_timeout
        next_check = 0.0
        while True:
            await asyncio.sleep(period)
            now = self.loop.time()
            self.pool.tick(now)
            if now < next_check:
                continue
            # Clients only flag that they read something; their last_active is set here.
            next_check = now + (min(1.0, idle / 2) if idle > 0 else 1.0)
            for client in list(self.clients.values()):
                if client.active:
                    client.active = False
                    client.session.last_active = now
                elif idle > 0 and not client.queue and now - client.session.last_active > idle:
                    client.close_now()

    async def drain(self, timeout: float) -> None:
        """Stop accepting, let in-flight requests be answered, close everything; bounded."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        for client in list(self.clients.values()):
            client.pause(PAUSE_DRAIN)
            if not client.queue and client.transport is not None:
                client.transport.close()
        deadline = time.monotonic() + max(0.0, timeout)
        while self.clients and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for client in list(self.clients.values()):
            client.close_now()
        if self._pool is not None:
            self._pool.close_all("ERR redkeeper: the proxy is shutting down")
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self.clients.clear()

    async def close(self) -> None:
        """Drain with no grace period."""
        await self.drain(0.0)

    # -- what INFO and CLIENT LIST show ------------------------------------------------------
    def _sections(self) -> list[tuple[str, list[tuple[str, object]]]]:
        s = self.settings
        processed = sum(self.metrics.requests)
        uptime = int(time.monotonic() - self.started)
        port = self.port if self._server is not None and self._server.sockets else s.port
        return [
            (
                "Server",
                [
                    ("redis_version", REDIS_VERSION),
                    ("redis_mode", "standalone"),
                    ("redkeeper_version", __version__),
                    ("redkeeper_role", "proxy"),
                    ("os", os.uname().sysname),
                    ("arch_bits", 64),
                    ("process_id", os.getpid()),
                    ("tcp_port", port),
                    ("uptime_in_seconds", uptime),
                    ("uptime_in_days", uptime // 86400),
                ],
            ),
            (
                "Clients",
                [
                    ("connected_clients", len(self.clients)),
                    ("maxclients", s.max_clients),
                    ("blocked_clients", 0),
                ],
            ),
            ("Persistence", [("loading", 0), ("async_loading", 0)]),
            (
                "Stats",
                [
                    ("total_connections_received", self.metrics.clients_total),
                    ("total_commands_processed", processed),
                    ("rejected_connections", self.rejected),
                ],
            ),
            ("Replication", [("role", "master"), ("connected_slaves", 0)]),
            ("Keyspace", []),
        ]

    def _client_lines(self, now: float) -> list[str]:
        return [client.session.line(now) for client in self.clients.values()]
