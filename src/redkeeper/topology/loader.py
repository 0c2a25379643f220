"""Loading a topology file: YAML → schema → cross-field checks, every problem at once.

`Topology` is the validated, resolved view the rest of redkeeper uses (node names, paths,
the password). Errors name the file, the field path, what is wrong and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from redkeeper.errors import Problem, TopologyError
from redkeeper.model import Address
from redkeeper.topology.checks import check
from redkeeper.topology.schema import ShardSpec, TopologySpec

DEFAULT_SOURCE = "<embedded default>"
VRRP_PASS_MAX = 8


def default_text() -> str:
    """The embedded default topology, with its comments (what `redkeeper init` writes)."""
    return resources.files("redkeeper.topology").joinpath("default.yaml").read_text()


@dataclass(frozen=True)
class RedisNode:
    """One redis-server of a shard. `name` is stable across failovers (shard1-1, shard1-2…)."""

    shard: str
    index: int
    address: Address

    @property
    def name(self) -> str:
        return f"{self.shard}-{self.index}"


@dataclass(frozen=True)
class SentinelNode:
    index: int
    address: Address

    @property
    def name(self) -> str:
        return f"sentinel-{self.index}"


@dataclass(frozen=True)
class Topology:
    """A validated topology and where it came from."""

    spec: TopologySpec
    source: str
    base_dir: Path
    warnings: tuple[Problem, ...] = field(default=())

    @property
    def state_dir(self) -> Path:
        path = self.spec.state_dir
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def shards(self) -> list[ShardSpec]:
        return list(self.spec.shards)

    def shard(self, name: str) -> ShardSpec:
        for shard in self.spec.shards:
            if shard.name == name:
                return shard
        raise KeyError(name)

    def redis_nodes(self) -> list[RedisNode]:
        return [
            RedisNode(shard.name, i + 1, address)
            for shard in self.spec.shards
            for i, address in enumerate(shard.nodes)
        ]

    def sentinel_nodes(self) -> list[SentinelNode]:
        return [SentinelNode(i + 1, a) for i, a in enumerate(self.spec.sentinel.nodes)]

    def inventory(self) -> dict[str, frozenset[Address]]:
        """Per shard, every address that may ever be its master."""
        return {shard.name: frozenset(shard.nodes) for shard in self.spec.shards}

    def hosts(self) -> list[str]:
        found: list[str] = []
        for node in self.redis_nodes():
            found.append(node.address.host)
        found.extend(s.address.host for s in self.sentinel_nodes())
        found.extend(self.proxy_hosts())
        return list(dict.fromkeys(found))

    def proxy_hosts(self) -> list[str]:
        """Every host that runs the endpoint (`proxy.hosts`, or the host of `proxy.listen`)."""
        return self.spec.proxy.proxy_hosts()

    def health_addresses(self) -> dict[str, Address]:
        """Where each proxy host serves /healthz: `agent.metrics`, on the host's own address
        when it listens on a wildcard and there are several proxy hosts."""
        metrics = self.spec.agent.metrics
        if metrics is None:
            return {}
        hosts = self.proxy_hosts()
        if metrics.host in ("0.0.0.0", "::") and self.spec.proxy.hosts:
            return {host: Address(host, metrics.port) for host in hosts}
        return {hosts[0]: metrics}

    def password(self) -> str | None:
        """The shared password from the environment or a file, or None when auth is off."""
        auth = self.spec.auth
        return self._secret("auth", auth.password_env, auth.password_file, "password")

    def vrrp_password(self) -> str | None:
        """keepalived's VRRP authentication pass (`proxy.keepalived.auth_pass_*`), or None.
        VRRPv2's PASS authentication keeps 8 characters: a longer one is refused here."""
        keepalived = self.spec.proxy.keepalived
        value = self._secret(
            "proxy.keepalived", keepalived.auth_pass_env, keepalived.auth_pass_file, "auth_pass"
        )
        if value is not None and (len(value) > VRRP_PASS_MAX or not value.isprintable()):
            raise TopologyError(
                [
                    Problem(
                        self.source,
                        "proxy.keepalived.auth_pass_env"
                        if keepalived.auth_pass_env
                        else "proxy.keepalived.auth_pass_file",
                        f"the VRRP pass has {len(value)} characters; keepalived uses the first "
                        f"{VRRP_PASS_MAX} only (or it is not printable)",
                        f"use a printable pass of at most {VRRP_PASS_MAX} characters",
                    )
                ]
            )
        return value

    def _secret(self, section: str, env: str | None, file: Path | None, what: str) -> str | None:
        """A secret named by an environment variable or a file (relative to the topology)."""
        prefix = "password" if what == "password" else what
        if env:
            value = os.environ.get(env)
            if not value:
                raise TopologyError(
                    [
                        Problem(
                            self.source,
                            f"{section}.{prefix}_env",
                            f"environment variable {env} is not set or empty",
                            f"export {env}=<{what}> before running redkeeper",
                        )
                    ]
                )
            return value
        if file:
            path = file if file.is_absolute() else self.base_dir / file
            try:
                value = path.read_text().strip()
            except OSError as exc:
                raise TopologyError(
                    [
                        Problem(
                            self.source,
                            f"{section}.{prefix}_file",
                            f"cannot read {path}: {exc.strerror}",
                            f"create the file (mode 0600) with the {what} on one line",
                        )
                    ]
                ) from exc
            if not value:
                raise TopologyError(
                    [Problem(self.source, f"{section}.{prefix}_file", f"{path} is empty", "")]
                )
            return value
        return None


def _loc(parts: tuple[int | str, ...]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _fix_for(kind: str) -> str:
    if kind == "missing":
        return "add this field"
    if kind == "extra_forbidden":
        return "remove it or fix its spelling (see docs/configuration.md)"
    if kind in ("int_parsing", "int_type"):
        return "use a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return "use true or false"
    if kind in ("list_type",):
        return "use a YAML list, like [a, b]"
    if kind in ("too_short",):
        return "add at least one entry"
    if kind.startswith(("greater_than", "less_than")):
        return "use a value in the allowed range"
    if kind == "literal_error":
        return "use one of the values listed"
    if kind == "value_error":
        return ""  # our validators' messages already say what is allowed
    return "see docs/configuration.md"


def _problems_from_validation(error: ValidationError, source: str) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem(source, _loc(loc), message, _fix_for(item["type"])))
    return problems


def parse_topology(text: str, *, source: str, base_dir: Path) -> Topology:
    """Parse and validate topology text; TopologyError lists every problem found."""
    yaml = YAML(typ="safe", pure=True)
    try:
        data: Any = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise TopologyError(
            [Problem(source, where, f"not valid YAML: {exc.problem}", "fix the YAML syntax")]
        ) from None
    except YAMLError as exc:
        raise TopologyError([Problem(source, "", f"not valid YAML: {exc}", "")]) from None
    if not isinstance(data, dict):
        raise TopologyError(
            [
                Problem(
                    source,
                    "",
                    "the file must be a YAML mapping with sentinel: and shards:",
                    "start from `redkeeper init`",
                )
            ]
        )
    try:
        spec = TopologySpec.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(_problems_from_validation(exc, source)) from None
    errors, warnings = check(spec, source)
    if errors:
        raise TopologyError(errors)
    return Topology(spec=spec, source=source, base_dir=base_dir, warnings=tuple(warnings))


def load_topology(path: Path | None) -> Topology:
    """Load `path`, or the embedded default (state dir relative to the current directory)."""
    if path is None:
        return parse_topology(default_text(), source=DEFAULT_SOURCE, base_dir=Path.cwd())
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(
            [
                Problem(
                    str(path),
                    "",
                    f"cannot read the topology file: {exc.strerror}",
                    "check the path, or run `redkeeper init FILE` to create one",
                )
            ]
        ) from None
    return parse_topology(text, source=str(path), base_dir=path.resolve().parent)
