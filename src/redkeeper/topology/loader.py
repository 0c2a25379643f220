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
        found.append(self.spec.proxy.listen.host)
        return list(dict.fromkeys(found))

    def password(self) -> str | None:
        """The shared password from the environment or a file, or None when auth is off."""
        auth = self.spec.auth
        if auth.password_env:
            value = os.environ.get(auth.password_env)
            if not value:
                raise TopologyError(
                    [
                        Problem(
                            self.source,
                            "auth.password_env",
                            f"environment variable {auth.password_env} is not set or empty",
                            f"export {auth.password_env}=<password> before running redkeeper",
                        )
                    ]
                )
            return value
        if auth.password_file:
            path = auth.password_file
            path = path if path.is_absolute() else self.base_dir / path
            try:
                value = path.read_text().strip()
            except OSError as exc:
                raise TopologyError(
                    [
                        Problem(
                            self.source,
                            "auth.password_file",
                            f"cannot read {path}: {exc.strerror}",
                            "create the file (mode 0600) with the password on one line",
                        )
                    ]
                ) from exc
            if not value:
                raise TopologyError(
                    [Problem(self.source, "auth.password_file", f"{path} is empty", "")]
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
