"""The topology file's schema (pydantic): every field, its type, default and bounds.

Cross-field rules (duplicates, quorum, timing) live in `checks.py`; loading and error
formatting in `loader.py`. Addresses are parsed into `redkeeper.model.Address` here.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    field_validator,
)

from redkeeper.model import Address

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

HASHES = (
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
)
DISTRIBUTIONS = ("ketama", "modula", "random")


def _parse_address(value: Any) -> Address:
    if isinstance(value, Address):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a 'host:port' string, like '127.0.0.1:6379'")
    return Address.parse(value)


Addr = Annotated[Address, PlainValidator(_parse_address), PlainSerializer(str, return_type=str)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SentinelSpec(_Strict):
    nodes: list[Addr] = Field(min_length=1)
    quorum: int = Field(default=2, ge=1)
    down_after_ms: int = Field(default=5000, ge=100)
    failover_timeout_ms: int = Field(default=60000, ge=1000)
    parallel_syncs: int = Field(default=1, ge=1)


class ShardSpec(_Strict):
    name: str
    master: Addr
    replicas: list[Addr] = Field(default_factory=list)
    weight: int = Field(default=1, ge=1, le=100000)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError(
                "must be 1-64 characters of letters, digits, '.', '_' or '-' starting with a "
                "letter or digit (it is the Sentinel master name and the nutcracker server name)"
            )
        return value

    @property
    def nodes(self) -> list[Address]:
        return [self.master, *self.replicas]


class RedisSpec(_Strict):
    """Settings rendered into every redis.conf."""

    appendonly: bool = True
    save: str = "3600 1 300 100 60 10000"
    min_replicas_to_write: int = Field(default=1, ge=0)
    # 3, not 10: a master cut off from its replicas acknowledges writes (all lost after the
    # failover) for max_lag + ~0.3 s; no false refusal was measured at any value down to 1
    # (benchmarks/bench_max_lag.py); 3 s tolerates two missed ACKs (docs/operations.md)
    min_replicas_max_lag: int = Field(default=3, ge=1)
    maxmemory: str | None = None
    maxmemory_policy: str = "noeviction"
    repl_diskless_sync_delay: int | None = Field(
        default=None, ge=0, description="None: 0 for local stacks, Redis's default otherwise"
    )


class HAProxySpec(_Strict):
    """Steady mode: the local HAProxy between nutcracker and the masters (docs/steady.md).

    Shard i (0-based, in file order) gets the local frontend 127.0.0.1:(frontend_port_base + i)
    that nutcracker's server `shard` points at, and the read frontend
    <proxy.listen host>:(read_port_base + i); `frontends` / `read_frontends` override them
    per shard. Relative paths are relative to the state dir.
    """

    frontend_port_base: int = Field(default=22131, ge=1, le=65535)
    frontends: dict[str, Addr] = Field(default_factory=dict)
    read_port_base: int | None = Field(default=22141, ge=1, le=65535)
    read_frontends: dict[str, Addr] = Field(default_factory=dict)
    write_frontend: Addr | None = None
    stats: Addr | None = Field(default_factory=lambda: Address("127.0.0.1", 8404))
    admin_socket: Path | None = None
    server_state_file: Path | None = None
    check_interval_ms: int = Field(default=1000, ge=50, le=60000)

    def frontend(self, index: int, shard: str) -> Address:
        """The local frontend nutcracker's server `shard` points at."""
        return self.frontends.get(shard) or Address("127.0.0.1", self.frontend_port_base + index)

    def read_frontend(self, index: int, shard: str, host: str) -> Address | None:
        """Shard `shard`'s read frontend (its replicas), or None when reads are not split."""
        if shard in self.read_frontends:
            return self.read_frontends[shard]
        if self.read_port_base is None:
            return None
        return Address(host, self.read_port_base + index)


READ_FROM = ("master", "replica", "replica-preferred")

DEFAULT_PRIORITY = 250  # VipSpec: the preferred host's VRRP priority
IFNAME_RE = re.compile(r"^[^\s/:]{1,15}$")


class VipSpec(_Strict):
    """One virtual IP that keepalived (VRRP) moves between the proxy hosts (docs/lab.md).

    `priorities`: one per proxy host, in `proxy.hosts` order; by default 250, 249, 248, …
    starting, for the i-th VIP, at the i-th host (VIPs spread their preferred host). High
    on purpose: a backup takes over 3 × advert_int + (256 − priority)/256 s after the last
    advert, so 100 (seed 002's) adds 0.6 s to every failover, 249 adds 0.03 s.
    """

    address: str
    prefix: int = Field(default=24, ge=1, le=32)
    interface: str = "eth0"
    router_id: int = Field(ge=1, le=255)
    priorities: list[int] | None = None

    @field_validator("address")
    @classmethod
    def _address_ok(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IPv4 address; keepalived moves an IPv4 address, "
                "like 10.0.0.100"
            ) from None

    @field_validator("interface")
    @classmethod
    def _interface_ok(cls, value: str) -> str:
        if not IFNAME_RE.fullmatch(value):
            raise ValueError("must be a network interface name (1-15 characters, like eth0)")
        return value


class KeepalivedSpec(_Strict):
    """keepalived on every proxy host: VRRP timing, peers, authentication, the track scripts.

    Each proxy host's keepalived asks its own endpoint's /healthz (at `agent.metrics`'s port
    on 127.0.0.1, bounded by `check_timeout_ms`): no answer → FAULT (the VIP leaves that
    host); an answer that is not ok (no Sentinel majority) → `routing_weight` less priority,
    so a healthy peer takes the VIP while a lone degraded proxy keeps serving.
    """

    advert_int: int = Field(default=1, ge=1, le=255)
    unicast: bool = True
    auth_pass_env: str | None = None
    auth_pass_file: Path | None = None
    preempt: bool = True
    check_interval_s: int = Field(default=1, ge=1, le=60)
    check_timeout_ms: int = Field(default=800, ge=50, le=60000)
    routing_weight: int = Field(default=2, ge=0, le=253)


class RedkeeperProxySpec(_Strict):
    """`proxy.mode: redkeeper`: the redkeeper proxy process (docs/proxy.md).

    It listens on `proxy.listen` with nutcracker's placement (`hash`, `distribution`,
    `hash_tag`, shard names and weights), uses `proxy.timeout_ms` per request and serves
    /metrics and /healthz at `agent.metrics`.
    """

    workers: int = Field(default=1, ge=1, le=64)
    read_from: Literal["master", "replica", "replica-preferred"] = "master"
    max_replica_lag_s: int = Field(default=2, ge=0, le=3600)
    max_clients: int = Field(default=10000, ge=1, le=1_000_000)
    client_idle_timeout_s: int = Field(default=0, ge=0)
    max_request_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)


class ProxySpec(_Strict):
    """The endpoint: the routing mode, the pool's placement (every twemproxy 0.5.0 pool key;
    the redkeeper proxy uses the same placement keys) and each mode's own settings.

    `hosts`: the proxy hosts, each running the endpoint (empty: the one host of `listen`);
    `vips` + `keepalived`: the virtual IP(s) keepalived moves between them (docs/lab.md).
    """

    mode: Literal["restart", "steady", "redkeeper"] = "restart"
    hosts: list[str] = Field(default_factory=list)
    vips: list[VipSpec] = Field(default_factory=list)
    keepalived: KeepalivedSpec = Field(default_factory=KeepalivedSpec)
    haproxy: HAProxySpec = Field(default_factory=HAProxySpec)
    redkeeper: RedkeeperProxySpec = Field(default_factory=RedkeeperProxySpec)
    pool: str = "redkeeper"
    listen: Addr = Field(default_factory=lambda: Address("127.0.0.1", 22121))
    stats: Addr = Field(default_factory=lambda: Address("127.0.0.1", 22222))
    stats_interval_ms: int = Field(default=1000, ge=100)
    hash: str = "fnv1a_64"
    distribution: str = "ketama"
    hash_tag: str | None = None
    timeout_ms: int | None = Field(default=1000, ge=1)
    backlog: int = Field(default=1024, ge=1)
    redis_db: int = Field(default=0, ge=0)
    preconnect: bool = True
    auto_eject_hosts: bool = False
    server_connections: int = Field(default=1, ge=1)
    server_retry_timeout_ms: int = Field(default=2000, ge=1)
    server_failure_limit: int = Field(default=2, ge=1)
    tcpkeepalive: bool = True
    mbuf_size: int | None = Field(default=None, ge=512)

    def proxy_hosts(self) -> list[str]:
        """Every host that runs the endpoint, in file order."""
        return list(self.hosts) if self.hosts else [self.listen.host]

    def priorities(self, vip_index: int) -> list[int]:
        """VRRP priority of each proxy host (in `proxy_hosts` order) for VIP `vip_index`."""
        vip = self.vips[vip_index]
        if vip.priorities is not None:
            return list(vip.priorities)
        count = len(self.proxy_hosts())
        return [DEFAULT_PRIORITY - (i - vip_index) % count for i in range(count)]

    @field_validator("hosts")
    @classmethod
    def _hosts_ok(cls, value: list[str]) -> list[str]:
        for host in value:
            if not host or any(c.isspace() for c in host) or host.count(":") == 1:
                raise ValueError(f"{host!r}: a proxy host is an address or a name, no port")
        return value

    @field_validator("hash")
    @classmethod
    def _hash_ok(cls, value: str) -> str:
        if value not in HASHES:
            raise ValueError(f"unknown hash {value!r}; one of: {', '.join(HASHES)}")
        return value

    @field_validator("distribution")
    @classmethod
    def _distribution_ok(cls, value: str) -> str:
        if value not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {value!r}; one of: {', '.join(DISTRIBUTIONS)}")
        return value

    @field_validator("hash_tag")
    @classmethod
    def _hash_tag_ok(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 2:
            raise ValueError("must be exactly 2 characters, like '{}'")
        return value

    @field_validator("pool")
    @classmethod
    def _pool_ok(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("must be letters, digits, '.', '_' or '-'")
        return value


class AuthSpec(_Strict):
    """Where the one shared password comes from; never the YAML itself."""

    password_env: str | None = None
    password_file: Path | None = None


class AgentSpec(_Strict):
    metrics: Addr | None = Field(default_factory=lambda: Address("127.0.0.1", 9121))
    debounce_ms: int = Field(default=50, ge=0, le=10000)
    coalesce_ms: int = Field(default=1500, ge=0, le=60000)
    period_ms: int = Field(default=1000, ge=50, le=600000)
    sentinel_timeout_ms: int = Field(default=500, ge=10, le=60000)
    restart: Literal["managed", "command", "staging"] = "managed"
    restart_cmd: list[str] | None = None
    staging: Path | None = None


class TopologySpec(_Strict):
    """The whole topology file."""

    name: str = "redkeeper"
    state_dir: Path = Path(".redkeeper")
    sentinel: SentinelSpec
    shards: list[ShardSpec] = Field(min_length=1)
    proxy: ProxySpec = Field(default_factory=ProxySpec)
    redis: RedisSpec = Field(default_factory=RedisSpec)
    auth: AuthSpec = Field(default_factory=AuthSpec)
    agent: AgentSpec = Field(default_factory=AgentSpec)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("must be letters, digits, '.', '_' or '-'")
        return value
