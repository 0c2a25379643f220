"""`proxy.redkeeper.workers: N > 1`: N worker processes serve the port together
(SO_REUSEPORT), one supervisor follows Sentinel and tells them the routes.

The supervisor (`redkeeper proxy`) runs the agent's loop with a route table of its own; every
change (`RouterTarget.publish`) is written as one JSON line to each worker's stdin:

    {"topology": {"text": …, "source": …, "base_dir": …}}      at start and on SIGHUP
    {"masters": {"shard1": "host:port" | null, …}, "replicas": {"shard1": ["host:port", …]}}

A worker (`python -m redkeeper.endpoint.workers`) builds its router from the topology text,
waits for its first routes, then listens; it drains and exits on SIGTERM/SIGINT or when its
stdin closes (the supervisor is gone: no orphan keeps serving stale routes). The supervisor
restarts a worker that dies (bounded backoff) and sends it the current state. Data-plane
metrics are per worker and not aggregated; /healthz is the supervisor's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from redkeeper.errors import BUG, RedkeeperError
from redkeeper.model import Address
from redkeeper.topology import Topology, parse_topology

log = logging.getLogger("redkeeper.proxy")

RESPAWN_MIN, RESPAWN_MAX = 0.1, 5.0
STOP_SECONDS = 8.0


def topology_message(topology: Topology) -> dict[str, Any]:
    text = Path(topology.source).read_text() if Path(topology.source).is_file() else None
    return {
        "topology": {
            "text": text,
            "source": topology.source,
            "base_dir": str(topology.base_dir),
            "state_dir": str(topology.state_dir),
        }
    }


def routes_message(
    masters: Mapping[str, Address | None], replicas: Mapping[str, Sequence[Address]]
) -> dict[str, Any]:
    return {
        "masters": {k: None if v is None else str(v) for k, v in masters.items()},
        "replicas": {k: [str(a) for a in v] for k, v in replicas.items()},
    }


class Supervisor:
    """Runs and feeds `count` workers (see the module docstring)."""

    def __init__(self, topology: Topology, count: int) -> None:
        self.count = count
        self._topology = topology_message(topology)
        self._routes: dict[str, Any] | None = None
        self._ring_with_routes = False
        self._procs: list[asyncio.subprocess.Process | None] = [None] * count
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def publish(
        self, masters: Mapping[str, Address | None], replicas: Mapping[str, Sequence[Address]]
    ) -> None:
        self._routes = routes_message(masters, replicas)
        if self._ring_with_routes:  # one line: the worker swaps ring and routes in one step
            self._ring_with_routes = False
            self._broadcast({**self._topology, **self._routes})
        else:
            self._broadcast(self._routes)

    def reload(self, topology: Topology, *, with_routes: bool = False) -> None:
        """Send the new topology now, or (`with_routes`) in the same line as the next routes
        (a ring that adds shards: `RouterTarget.stage_ring`)."""
        self._topology = topology_message(topology)
        if with_routes:
            self._ring_with_routes = True
        else:
            self._broadcast(self._topology)

    def _broadcast(self, message: Mapping[str, Any]) -> None:
        line = (json.dumps(message) + "\n").encode()
        for proc in self._procs:
            if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.write(line)

    async def start(
        self, masters: Mapping[str, Address | None], replicas: Mapping[str, Sequence[Address]]
    ) -> None:
        """Spawn the workers; they listen once they have these (or later) routes."""
        if self._routes is None:
            self._routes = routes_message(masters, replicas)
        self._tasks = [
            asyncio.create_task(self._keep(i), name=f"worker-{i}") for i in range(self.count)
        ]

    async def _keep(self, index: int) -> None:
        delay = RESPAWN_MIN
        while not self._stopping:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "redkeeper.endpoint.workers", str(index),
                stdin=asyncio.subprocess.PIPE,
            )  # fmt: skip
            self._procs[index] = proc
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(self._topology) + "\n").encode())
            if self._routes is not None:
                proc.stdin.write((json.dumps(self._routes) + "\n").encode())
            code = await proc.wait()
            self._procs[index] = None
            if self._stopping:
                return
            log.error("proxy worker %d (pid %d) exited with %s; restarting", index, proc.pid, code)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESPAWN_MAX)

    async def stop(self) -> None:
        """Close every worker's stdin (they drain and exit), bounded; then SIGKILL."""
        self._stopping = True
        for proc in self._procs:
            if proc is not None and proc.stdin is not None:
                proc.stdin.close()
        procs = [p for p in self._procs if p is not None]
        if procs:
            _done, pending = await asyncio.wait(
                [asyncio.create_task(p.wait()) for p in procs], timeout=STOP_SECONDS
            )
            if pending:
                for proc in procs:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --- the worker side --------------------------------------------------------------------


def _parse_topology(message: Mapping[str, Any]) -> Topology:
    from redkeeper.topology import load_topology  # noqa: PLC0415

    data = message["topology"]
    if data["text"] is None:  # the embedded default
        topology = load_topology(None)
    else:
        topology = parse_topology(
            data["text"], source=data["source"], base_dir=Path(data["base_dir"])
        )
    spec = topology.spec.model_copy(update={"state_dir": Path(data["state_dir"])})
    return replace(topology, spec=spec)


async def _worker(index: int) -> None:
    from redkeeper.data.ring import ring_for, shard_names  # noqa: PLC0415
    from redkeeper.endpoint.app import DRAIN_SECONDS, new_router, proxy_settings  # noqa: PLC0415
    from redkeeper.server import ProxyServer  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    first = json.loads(await reader.readline())
    topology = _parse_topology(first)
    router = new_router(topology)
    server = ProxyServer(router, proxy_settings(topology, reuse_port=True))

    def handle(message: Mapping[str, Any]) -> None:
        if "topology" in message:
            ring = ring_for(_parse_topology(message))
            router.set_ring(ring, shard_names(ring))
        if "masters" in message:
            router.set_routes(
                {k: None if v is None else Address.parse(v) for k, v in message["masters"].items()},
                {k: [Address.parse(a) for a in v] for k, v in message["replicas"].items()},
            )

    started = False

    async def pump() -> None:
        nonlocal started
        while True:
            line = await reader.readline()
            if not line:
                stop.set()  # the supervisor is gone
                return
            try:
                handle(json.loads(line))
            except (RedkeeperError, ValueError, KeyError) as exc:
                log.error("proxy worker %d: bad message from the supervisor: %s", index, exc)
            if not started and router.routes.version > 0:  # the first routes: listen now
                started = True
                await server.start()

    task = asyncio.create_task(pump())
    await stop.wait()
    task.cancel()
    if started:
        await server.drain(DRAIN_SECONDS)


def main() -> None:
    import uvloop  # noqa: PLC0415

    from redkeeper.agent import logs  # noqa: PLC0415

    logs.setup("text")
    try:
        uvloop.run(_worker(int(sys.argv[1])))
    except Exception:
        log.exception("proxy worker: unexpected error; %s", BUG)
        sys.exit(70)


if __name__ == "__main__":
    main()
