"""The agent's small HTTP endpoint: /metrics (Prometheus text) and /healthz (JSON)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from redkeeper.agent.health import Health
from redkeeper.agent.metrics import AgentMetrics
from redkeeper.model import Address

HealthSource = Callable[[], Health]


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    metrics: AgentMetrics,
    health: HealthSource,
) -> None:
    try:
        request = await asyncio.wait_for(reader.readline(), timeout=2.0)
        while (await asyncio.wait_for(reader.readline(), timeout=2.0)) not in (b"\r\n", b"\n", b""):
            pass
        parts = request.decode("latin-1").split()
        path = parts[1] if len(parts) > 1 else "/"
        if path == "/metrics":
            status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
        elif path == "/healthz":
            current = health()
            status = "200 OK" if current.ok else "503 Service Unavailable"
            ctype, body = "application/json", json.dumps(current.to_json()).encode() + b"\n"
        else:
            status, ctype, body = "404 Not Found", "text/plain", b"try /metrics or /healthz\n"
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await asyncio.wait_for(writer.drain(), timeout=2.0)
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout=1.0)


async def serve(address: Address, metrics: AgentMetrics, health: HealthSource) -> asyncio.Server:
    return await asyncio.start_server(
        lambda r, w: _handle(r, w, metrics, health), address.host, address.port
    )
