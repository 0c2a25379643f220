"""Synchronous, bounded probes of running components (redis-py sync client, raw stats socket).

Used by `up` (readiness), `status`, `down` (the saved masters), the data tools and the
drills. Every call has a timeout and never raises for a component that is down: it returns
None / an error string instead.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import redis
from redis.exceptions import RedisError

from redkeeper.agent.health import Health
from redkeeper.core.masters import MasterReport, SentinelAnswer
from redkeeper.model import Address
from redkeeper.rediskit import sync_client
from redkeeper.sentinel.replies import (
    needs_current_address,
    parse_master_addr,
    parse_masters_reply,
)


def client(address: Address, password: str | None = None, timeout: float = 0.5) -> redis.Redis:
    return sync_client(address, password, timeout)


@dataclass(frozen=True)
class ReplicationInfo:
    role: str  # "master" | "slave"
    master: Address | None
    link_up: bool | None
    offset: int
    connected_replicas: int
    good_replicas: int | None = None  # min_slaves_good_slaves: only with min-replicas-to-write


def replication(
    address: Address, password: str | None = None, timeout: float = 0.5
) -> ReplicationInfo | None:
    """INFO replication of a redis-server, or None when it does not answer."""
    try:
        with client(address, password, timeout) as conn:
            info: dict[str, Any] = conn.info("replication")
    except (RedisError, OSError):
        return None
    role = str(info.get("role", "?"))
    if role == "slave":
        master = Address(str(info["master_host"]), int(info["master_port"]))
        return ReplicationInfo(
            role,
            master,
            info.get("master_link_status") == "up",
            int(info.get("slave_repl_offset", 0)),
            int(info.get("connected_slaves", 0)),
        )
    good = info.get("min_slaves_good_slaves")
    return ReplicationInfo(
        role,
        None,
        None,
        int(info.get("master_repl_offset", 0)),
        int(info.get("connected_slaves", 0)),
        None if good is None else int(good),
    )


def sentinel_answer(
    address: Address, password: str | None = None, timeout: float = 0.5
) -> SentinelAnswer:
    """One Sentinel's `SENTINEL MASTERS` (plus `GET-MASTER-ADDR-BY-NAME` for a master in
    failover: the fact `core.masters` needs), as the agent asks it; an answer without
    reports when it does not answer (or answers something unparseable)."""
    try:
        with client(address, password, timeout) as conn:
            reports = parse_masters_reply(address, conn.execute_command("SENTINEL", "MASTERS"))
            for name, report in list(reports.items()):
                if needs_current_address(report):
                    raw = conn.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
                    reports[name] = replace(report, current_address=parse_master_addr(raw))
    except (RedisError, OSError, ValueError) as exc:
        return SentinelAnswer(address, None, str(exc) or type(exc).__name__)
    return SentinelAnswer(address, reports)


def ask_sentinels(
    addresses: Sequence[Address], password: str | None = None, timeout: float = 0.5
) -> list[SentinelAnswer]:
    """`sentinel_answer` of every address, asked in parallel (bounded by `timeout` each)."""
    unique = list(dict.fromkeys(addresses))
    with ThreadPoolExecutor(max_workers=max(1, len(unique))) as pool:
        return list(pool.map(lambda a: sentinel_answer(a, password, timeout), unique))


def sentinel_masters(
    address: Address, password: str | None = None, timeout: float = 0.5
) -> dict[str, MasterReport] | None:
    """The reports of `sentinel_answer` keyed by master name, or None when it is silent."""
    reports = sentinel_answer(address, password, timeout).reports
    return None if reports is None else dict(reports)


def ckquorum(
    address: Address, name: str, password: str | None = None, timeout: float = 0.5
) -> str | None:
    """None when SENTINEL CKQUORUM NAME is OK, else the reason."""
    try:
        with client(address, password, timeout) as conn:
            conn.execute_command("SENTINEL", "CKQUORUM", name)
    except (RedisError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return None


def ping(address: Address, password: str | None = None, timeout: float = 0.5) -> bool:
    try:
        with client(address, password, timeout) as conn:
            return bool(conn.ping())
    except (RedisError, OSError):
        return False


def nutcracker_stats(address: Address, timeout: float = 0.5) -> dict[str, Any] | None:
    """The JSON object nutcracker's stats port sends on connect, or None."""
    chunks: list[bytes] = []
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout) as sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return None
    try:
        parsed: Any = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


#: Never through an HTTP proxy of the environment (http_proxy): /healthz is asked directly.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def agent_health(address: Address, timeout: float = 0.5) -> Health | None:
    """The agent's /healthz (whatever its HTTP status), or None when it does not answer."""
    url = f"http://{address}/healthz"
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (OSError, ValueError):
        return None
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return None
    return Health.from_json(parsed) if isinstance(parsed, dict) else None
