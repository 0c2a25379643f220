"""Cross-field rules of a topology (pure): what pydantic's per-field checks cannot see.

Returns problems (errors) and warnings; the loader raises on errors and logs warnings.
"""

from __future__ import annotations

from redkeeper.core.masters import majority
from redkeeper.errors import Problem
from redkeeper.model import Address
from redkeeper.topology.resolve import Resolver, resolve_hosts, same_socket
from redkeeper.topology.schema import TopologySpec
from redkeeper.topology.vips import check_proxy_hosts

#: The smallest `sentinel.down_after_ms` with no double failover measured here (0 in 30
#: failovers at 1500 ms; 3 in 20 at 1000 ms): `benchmarks/bench_double_failover.py`.
SAFE_DOWN_AFTER_MS = 1500


def _endpoints(spec: TopologySpec) -> list[tuple[str, Address]]:
    found: list[tuple[str, Address]] = []
    for i, shard in enumerate(spec.shards):
        found.append((f"shards[{i}].master", shard.master))
        found.extend((f"shards[{i}].replicas[{j}]", r) for j, r in enumerate(shard.replicas))
    found.extend((f"sentinel.nodes[{i}]", a) for i, a in enumerate(spec.sentinel.nodes))
    found.append(("proxy.listen", spec.proxy.listen))
    if spec.proxy.mode != "redkeeper":  # the redkeeper proxy has no stats port (agent.metrics)
        found.append(("proxy.stats", spec.proxy.stats))
    if spec.agent.metrics is not None:
        found.append(("agent.metrics", spec.agent.metrics))
    if spec.proxy.mode == "steady":
        found.extend(_haproxy_endpoints(spec))
    return found


def _haproxy_endpoints(spec: TopologySpec) -> list[tuple[str, Address]]:
    haproxy = spec.proxy.haproxy
    found: list[tuple[str, Address]] = []
    host = spec.proxy.listen.host
    for i, shard in enumerate(spec.shards):
        where = "frontends" if shard.name in haproxy.frontends else "frontend_port_base"
        found.append((f"proxy.haproxy.{where} ({shard.name})", haproxy.frontend(i, shard.name)))
        read = haproxy.read_frontend(i, shard.name, host)
        if read is not None:
            where = "read_frontends" if shard.name in haproxy.read_frontends else "read_port_base"
            found.append((f"proxy.haproxy.{where} ({shard.name})", read))
    if haproxy.write_frontend is not None:
        found.append(("proxy.haproxy.write_frontend", haproxy.write_frontend))
    if haproxy.stats is not None:
        found.append(("proxy.haproxy.stats", haproxy.stats))
    return found


def _check_haproxy(spec: TopologySpec, source: str) -> tuple[list[Problem], list[Problem]]:
    """Steady mode's HAProxy section: shard names, port ranges, the write frontend."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    haproxy = spec.proxy.haproxy
    if spec.proxy.mode != "steady":
        if "haproxy" in spec.proxy.model_fields_set:
            warnings.append(
                Problem(
                    source,
                    "proxy.haproxy",
                    "ignored: proxy.mode is restart (nutcracker points at the masters)",
                    "set proxy.mode: steady to route through HAProxy, or remove proxy.haproxy",
                )
            )
        return errors, warnings
    names = {shard.name for shard in spec.shards}
    for field in ("frontends", "read_frontends"):
        for name in getattr(haproxy, field):
            if name not in names:
                errors.append(
                    Problem(
                        source,
                        f"proxy.haproxy.{field}.{name}",
                        f"no shard is named {name!r}",
                        f"use shard names: {', '.join(sorted(names))}",
                    )
                )
    for field, address in _haproxy_endpoints(spec):
        if not 1 <= address.port <= 65535:
            errors.append(
                Problem(
                    source,
                    field,
                    f"port {address.port} is outside 1-65535",
                    "lower the base port or give this shard an explicit address",
                )
            )
    if haproxy.write_frontend is not None and len(spec.shards) != 1:
        errors.append(
            Problem(
                source,
                "proxy.haproxy.write_frontend",
                f"a write frontend serves one shard, but there are {len(spec.shards)}",
                "remove it (clients of several shards use proxy.listen), or keep one shard",
            )
        )
    if spec.agent.restart != "managed":
        warnings.append(
            Problem(
                source,
                "agent.restart",
                f"{spec.agent.restart}: steady mode never restarts nutcracker on a failover; "
                "it is run by its own unit",
                "use restart: managed to have the agent run nutcracker",
            )
        )
    return errors, warnings


def _check_redkeeper(spec: TopologySpec, source: str) -> tuple[list[Problem], list[Problem]]:
    """`proxy.mode: redkeeper`: what the redkeeper proxy cannot do, and unused settings."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    proxy = spec.proxy
    if proxy.mode != "redkeeper":
        if "redkeeper" in proxy.model_fields_set:
            warnings.append(
                Problem(
                    source,
                    "proxy.redkeeper",
                    f"ignored: proxy.mode is {proxy.mode}",
                    "set proxy.mode: redkeeper to use the redkeeper proxy, or remove it",
                )
            )
        return errors, warnings
    if proxy.distribution == "random":
        errors.append(
            Problem(
                source,
                "proxy.distribution",
                "random gives no key a home shard; the redkeeper proxy routes by key",
                "use ketama (nutcracker's default) or modula",
            )
        )
    if proxy.redis_db != 0:
        errors.append(
            Problem(
                source,
                "proxy.redis_db",
                f"the redkeeper proxy serves database 0 only (got {proxy.redis_db})",
                "remove redis_db, or keep mode: restart for nutcracker's redis_db",
            )
        )
    if proxy.redkeeper.read_from == "replica":
        bare = [shard.name for shard in spec.shards if not shard.replicas]
        if bare:
            errors.append(
                Problem(
                    source,
                    "proxy.redkeeper.read_from",
                    f"replica, but {', '.join(bare)} has no replicas: its reads would all fail",
                    "use replica-preferred, or add replicas",
                )
            )
    if spec.agent.metrics is None:
        warnings.append(
            Problem(
                source,
                "agent.metrics",
                "unset: the redkeeper proxy serves no /metrics or /healthz, and `status` "
                "cannot see its routes",
                "set agent.metrics to a host:port",
            )
        )
    return errors, warnings


def _duplicates(spec: TopologySpec, source: str, resolve: Resolver) -> list[Problem]:
    """Two endpoints on the same socket: same port, and hosts that resolve to a shared IP
    (`localhost` = `127.0.0.1`), or a wildcard listener beside any address of its family."""
    endpoints = _endpoints(spec)
    resolved = resolve(a.host for _, a in endpoints)

    def ips(address: Address) -> frozenset[str]:
        return resolved.get(address.host) or frozenset({address.host.lower()})

    problems: list[Problem] = []
    for j, (field, address) in enumerate(endpoints):
        for other_field, other in endpoints[:j]:
            if other.port != address.port or not same_socket(ips(other), ips(address)):
                continue
            same = "" if other == address else f" ({other}: the same socket)"
            problems.append(
                Problem(
                    source,
                    field,
                    f"address {address} is already used by {other_field}{same}",
                    "give every Redis node, Sentinel and listener its own host:port",
                )
            )
            break
    return problems


def check(
    spec: TopologySpec, source: str, resolve: Resolver = resolve_hosts
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for a schema-valid topology; `resolve` maps host names to IPs
    (the duplicate-address check; injected so unit tests need no DNS)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []

    seen_names: dict[str, int] = {}
    for i, shard in enumerate(spec.shards):
        if shard.name in seen_names:
            errors.append(
                Problem(
                    source,
                    f"shards[{i}].name",
                    f"duplicate shard name {shard.name!r} (also shards[{seen_names[shard.name]}])",
                    "give every shard a unique name",
                )
            )
        else:
            seen_names[shard.name] = i

    errors += _duplicates(spec, source, resolve)

    sentinel = spec.sentinel
    count = len(sentinel.nodes)
    if not 1 <= sentinel.quorum <= count:
        errors.append(
            Problem(
                source,
                "sentinel.quorum",
                f"quorum {sentinel.quorum} is not between 1 and the {count} Sentinel(s)",
                f"set quorum to at most {count} (usually a majority: {majority(count)})",
            )
        )
    if count < 3:
        warnings.append(
            Problem(
                source,
                "sentinel.nodes",
                f"only {count} Sentinel(s): a failover needs a majority, so one lost Sentinel "
                "can stop failovers",
                "run at least 3 Sentinels on separate hosts",
            )
        )
    if sentinel.down_after_ms >= sentinel.failover_timeout_ms:
        errors.append(
            Problem(
                source,
                "sentinel.down_after_ms",
                f"down_after_ms {sentinel.down_after_ms} must be below failover_timeout_ms "
                f"{sentinel.failover_timeout_ms}",
                "lower down_after_ms or raise failover_timeout_ms",
            )
        )
    if sentinel.down_after_ms < SAFE_DOWN_AFTER_MS:
        warnings.append(
            Problem(
                source,
                "sentinel.down_after_ms",
                f"{sentinel.down_after_ms} ms is below {SAFE_DOWN_AFTER_MS} ms: Sentinel 7.0 "
                "then sometimes fails over the master it has just promoted, one second later "
                "(a second outage of 10-16 s; docs/drills.md)",
                f"set down_after_ms: {SAFE_DOWN_AFTER_MS} or more",
            )
        )

    if spec.auth.password_env and spec.auth.password_file:
        errors.append(
            Problem(
                source,
                "auth",
                "both password_env and password_file are set",
                "keep only one source for the password",
            )
        )

    remote = [n for s in spec.shards for n in s.nodes if not n.is_loopback]
    if remote and not (spec.auth.password_env or spec.auth.password_file):
        warnings.append(
            Problem(
                source,
                "auth",
                f"no password, and Redis listens on other hosts' network ({remote[0]}…): "
                "every Redis accepts commands from any host that reaches it "
                "(protected-mode no is rendered, or replicas could not connect)",
                "set auth.password_env or auth.password_file, or firewall the Redis ports",
            )
        )

    agent = spec.agent
    if agent.restart == "command" and not agent.restart_cmd:
        errors.append(
            Problem(
                source,
                "agent.restart_cmd",
                "restart: command needs restart_cmd",
                "set restart_cmd to an argv list, e.g. [systemctl, restart, nutcracker]",
            )
        )
    if agent.restart == "staging" and agent.staging is None:
        errors.append(
            Problem(
                source,
                "agent.staging",
                "restart: staging needs a staging path",
                "set staging to a file the privileged apply-staged watcher reads",
            )
        )

    for section in (_check_haproxy, _check_redkeeper, check_proxy_hosts):
        section_errors, section_warnings = section(spec, source)
        errors += section_errors
        warnings += section_warnings

    if spec.proxy.distribution == "random":
        warnings.append(
            Problem(
                source,
                "proxy.distribution",
                "random distribution puts each request on any shard: keys cannot be located",
                "use ketama for a sharded store",
            )
        )
    if spec.proxy.auto_eject_hosts:
        warnings.append(
            Problem(
                source,
                "proxy.auto_eject_hosts",
                "true moves keys to other shards whenever a master is briefly unreachable",
                "set it to false and let Sentinel handle failures",
            )
        )
    return errors, warnings
