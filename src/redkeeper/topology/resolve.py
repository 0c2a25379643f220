"""Name resolution for the topology's duplicate-address check (the one I/O of validation).

`localhost:6667` and `127.0.0.1:6667` are the same socket: the check compares the IP
addresses each host resolves to, bounded in time. A name that does not resolve here (it may
resolve only on the target hosts) is compared by its spelling.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

#: host -> the IP addresses it stands for (empty: unknown here).
Resolver = Callable[[Iterable[str]], dict[str, frozenset[str]]]

WILDCARDS = frozenset({"0.0.0.0", "::"})


def _one(host: str) -> frozenset[str]:
    try:
        return frozenset({str(ipaddress.ip_address(host))})
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos)


def resolve_hosts(hosts: Iterable[str], timeout: float = 2.0) -> dict[str, frozenset[str]]:
    """Each host's IP addresses (an IP literal is itself); names that do not resolve within
    `timeout` seconds (all together) map to an empty set."""
    unique = sorted(set(hosts))
    names = [h for h in unique if not _is_ip(h)]
    found = {h: _one(h) for h in unique if _is_ip(h)}
    if not names:
        return found
    deadline = time.monotonic() + timeout
    pool = ThreadPoolExecutor(max_workers=min(8, len(names)))
    futures = {h: pool.submit(_one, h) for h in names}
    for host, future in futures.items():
        try:
            found[host] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            found[host] = frozenset()
    pool.shutdown(wait=False, cancel_futures=True)
    return found


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def same_socket(a: frozenset[str], b: frozenset[str]) -> bool:
    """Two resolved hosts on the same port collide: a shared IP, or a wildcard listener
    (0.0.0.0 / ::) beside any address of its family."""
    if a & b:
        return True
    for one, other in ((a, b), (b, a)):
        for wildcard in one & WILDCARDS:
            family = 6 if ":" in wildcard else 4
            if any(_is_ip(ip) and ipaddress.ip_address(ip).version == family for ip in other):
                return True
    return False
