"""TCP port helpers: pick a free one, probe, and wait (bounded); and whether a socket of
this host listens on an address (also one it does not hold: a VIP bound with
`ip_nonlocal_bind` while the peer holds it, which a connect would reach on the peer)."""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
_NET = Path("/proc/thread-self/net")


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_bindable(host: str, port: int) -> bool:
    """True when we could listen on host:port now (nothing holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout: float, interval: float = 0.01) -> bool:
    """Poll until host:port accepts connections or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if port_open(host, port):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _proc_address(text: str) -> tuple[str, int]:
    """`0100007F:1A0B` (/proc/net/tcp, little-endian words) -> ("127.0.0.1", 6667)."""
    raw, port = text.split(":")
    data = bytes.fromhex(raw)
    words = b"".join(data[i : i + 4][::-1] for i in range(0, len(data), 4))
    return str(ipaddress.ip_address(words)), int(port, 16)


def listening(host: str, port: int) -> bool | None:
    """A socket of this network namespace listens on host:port (a wildcard listener
    counts); None when /proc/net cannot be read."""
    try:
        wanted = ipaddress.ip_address(host)
    except ValueError:
        return None
    found = False
    for name in ("tcp", "tcp6"):
        try:
            lines = (_NET / name).read_text().splitlines()[1:]
        except OSError:
            if name == "tcp":
                return None
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != _LISTEN:
                continue
            address, bound = _proc_address(fields[1])
            ip = ipaddress.ip_address(address)
            if bound == port and (ip == wanted or ip.is_unspecified):
                found = True
    return found


def accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Something of this host accepts on host:port: a listening socket here (read from
    /proc, so a VIP the peer holds is not mistaken for ours), else a TCP connect."""
    here = listening(host, port)
    return here if here is not None else port_open(host, port, timeout)
