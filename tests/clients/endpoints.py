"""Endpoints for the client matrix: a real redis-server, a real nutcracker in front of it, and
a relay that makes a redis-server refuse RESP3 — each on an ephemeral loopback port, in a temp
dir, always stopped (processes by PID, threads joined, bounded waits).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import redis

from redkeeper.model import Address
from redkeeper.process import ManagedProcess, find_binary, free_port, wait_for_port

HOST = "127.0.0.1"
ATTEMPTS = 3


def owns_listener(pid: int, port: int) -> bool:
    """True when process `pid` holds the TCP socket listening on `port` (Linux /proc): the
    port race was not lost to someone else's server."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
    return False


@contextlib.contextmanager
def _started(name: str, argv: list[str], workdir: Path, port: int) -> Iterator[bool]:
    """Start `argv`; yield whether it listens on `port` itself within 10 s; always stop it."""
    process = ManagedProcess(name, argv, workdir, workdir / f"{name}.out")
    process.start()
    try:
        ready = (
            wait_for_port(HOST, port, 10.0)
            and process.alive()
            and process.pid is not None
            and owns_listener(process.pid, port)
        )
        yield ready
    finally:
        process.stop()


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[Address]:
    """A plain redis-server (no persistence) on an ephemeral port."""
    binary = find_binary("redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(ATTEMPTS):
        port = free_port(HOST)
        argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(workdir), "--logfile", str(workdir / "redis.log")]
        with _started("redis-server", argv, workdir, port) as ready:
            if ready:
                address = Address(HOST, port)
                with redis.Redis(host=HOST, port=port, socket_timeout=5) as probe:
                    assert probe.ping()
                yield address
                return
    raise AssertionError(f"redis-server did not start; see {workdir}")


def nutcracker_yaml(listen: Address, backend: Address, name: str = "shard1") -> str:
    """One pool, one named server: `HOST:PORT:1 NAME`, as redkeeper renders it."""
    return (
        "matrix:\n"
        f"  listen: {listen}\n"
        "  redis: true\n"
        "  hash: fnv1a_64\n"
        "  distribution: ketama\n"
        "  auto_eject_hosts: false\n"
        "  timeout: 10000\n"
        "  servers:\n"
        f"    - {backend.host}:{backend.port}:1 {name}\n"
    )


@contextlib.contextmanager
def nutcracker(workdir: Path, backend: Address) -> Iterator[Address]:
    """nutcracker (twemproxy) in front of `backend` on an ephemeral port."""
    binary = find_binary("nutcracker")
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(ATTEMPTS):
        listen, stats = free_port(HOST), free_port(HOST)
        conf = workdir / f"nutcracker-{attempt}.yml"
        conf.write_text(nutcracker_yaml(Address(HOST, listen), backend))
        argv = [binary, "-c", str(conf), "-s", str(stats), "-a", HOST]
        argv += ["-o", str(workdir / "nutcracker.log")]
        with _started("nutcracker", argv, workdir, listen) as ready:
            if ready:
                yield Address(HOST, listen)
                return
    log = (workdir / "nutcracker.log").read_text(errors="replace")[-2000:]
    raise AssertionError(f"nutcracker did not start: {log}")


#: `HELLO 3` as clients send it; the relay turns the 3 into a 4, which Redis refuses.
_HELLO_3 = re.compile(rb"(\*[23]\r\n\$5\r\nhello\r\n\$1\r\n)3(\r\n)", re.IGNORECASE)


@contextlib.contextmanager
def resp3_refusing_relay(backend: Address) -> Iterator[Address]:
    """A TCP relay to `backend` that rewrites `HELLO 3` into `HELLO 4`, so the server answers
    `-NOPROTO` as a RESP2-only proxy would, and passes every other byte through unchanged.

    Good for the handshake of today's clients (HELLO in a write of its own, first); not a
    RESP parser.
    """
    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    sockets: list[socket.socket] = [listener]
    threads: list[threading.Thread] = []

    def pump(src: socket.socket, dst: socket.socket, rewrite: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(_HELLO_3.sub(rb"\g<1>4\g<2>", data) if rewrite else data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection((backend.host, backend.port), timeout=5)
            server.settimeout(None)
            client.settimeout(None)
            sockets.extend((client, server))
            for args in ((client, server, True), (server, client, False)):
                thread = threading.Thread(target=pump, args=args, daemon=True)
                threads.append(thread)
                thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield Address(HOST, listener.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(5)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            thread.join(5)
