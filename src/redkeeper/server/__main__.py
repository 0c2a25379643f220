"""Development entry point of the redkeeper proxy: static routes, no Sentinel.

A tool for development, benchmarks and tests, not the production entry (the agent and CLI
drive `Router.set_routes` from Sentinel and the topology). Usage:

    python -m redkeeper.server --listen 127.0.0.1:PORT --hash fnv1a_64 --distribution ketama \\
        [--hash-tag '{}'] --server shard1=127.0.0.1:6666[:weight] --server shard2=... \\
        [--password-env VAR] [--timeout-ms 5000] [--read-from master] [--reuse-port] \\
        [--max-clients N] [--idle-timeout-s S] [--metrics 127.0.0.1:PORT]

Each `--server NAME=HOST:PORT[:WEIGHT]` is one nutcracker server entry and its master.
Runs on uvloop; SIGTERM/SIGINT drain within --drain-s seconds, then exit. Prints
"ready HOST:PORT" on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import uvloop

from redkeeper.errors import RedkeeperError
from redkeeper.model import Address
from redkeeper.placement import DISTRIBUTIONS, HASHES, PoolServer, Ring
from redkeeper.server.metrics import ProxyMetrics
from redkeeper.server.router import READ_FROM, Router
from redkeeper.server.server import ProxyServer, ProxySettings


def _server_entry(text: str) -> tuple[str, Address, int]:
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=HOST:PORT[:WEIGHT]")
    parts = rest.split(":")
    weight = 1
    if len(parts) == 3:
        weight = int(parts[2])
        rest = ":".join(parts[:2])
    try:
        return name, Address.parse(rest), weight
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m redkeeper.server", description=__doc__)
    parser.add_argument("--listen", type=Address.parse, required=True)
    parser.add_argument("--hash", default="fnv1a_64", choices=HASHES)
    parser.add_argument("--distribution", default="ketama", choices=DISTRIBUTIONS)
    parser.add_argument("--hash-tag", default=None)
    parser.add_argument("--server", type=_server_entry, action="append", required=True)
    parser.add_argument("--password-env", default=None, help="env var holding the password")
    parser.add_argument("--timeout-ms", type=int, default=5000, help="server timeout; 0 = none")
    parser.add_argument("--read-from", default="master", choices=READ_FROM)
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--max-clients", type=int, default=10_000)
    parser.add_argument("--idle-timeout-s", type=float, default=0.0)
    parser.add_argument("--max-request-bytes", type=int, default=512 * 1024 * 1024)
    parser.add_argument("--drain-s", type=float, default=5.0)
    parser.add_argument("--metrics", type=Address.parse, default=None)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    entries: list[tuple[str, Address, int]] = args.server
    ring = Ring(
        [PoolServer(a.host, a.port, w, name) for name, a, w in entries],
        args.hash,
        args.distribution,
        args.hash_tag,
    )
    router = Router(ring, [name for name, _, _ in entries], read_from=args.read_from)
    router.set_routes({name: address for name, address, _ in entries})
    password = os.environ.get(args.password_env) if args.password_env else None
    settings = ProxySettings(
        host=args.listen.host,
        port=args.listen.port,
        password=password or None,
        max_clients=args.max_clients,
        max_request_bytes=args.max_request_bytes,
        client_idle_timeout=args.idle_timeout_s,
        timeout=args.timeout_ms / 1000,
        reuse_port=args.reuse_port,
    )
    metrics = ProxyMetrics()
    if args.metrics is not None:
        from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

        registry = CollectorRegistry()
        metrics.register(registry)
        start_http_server(args.metrics.port, args.metrics.host, registry=registry)
    server = ProxyServer(router, settings, metrics)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {settings.host}:{server.port}", flush=True)
    await stop.wait()
    await server.drain(args.drain_s)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        uvloop.run(serve(args))
    except RedkeeperError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
