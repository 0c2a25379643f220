"""nutcracker.yml as typed pools, and repointing named servers in place, byte for byte.

This module owns the public side of the nutcracker.yml format: `ServerEntry` and `PoolView`,
`load_pools` (every check twemproxy 0.5.0's `src/nc_conf.c` makes, with every problem
reported as file + field path + line + fix), `plan_repoint` (pure: changes only the
`host:port` characters of named server entries and keeps every other byte, then re-parses
to prove it), `validate_with_nutcracker` (`nutcracker -t`) and `repoint_file` (plan, then
`redkeeper.fsutil.atomic_write` with validation and a `.bak`). The YAML reading itself
(ruamel.yaml scan/compose, never dump) lives in `redkeeper.proxy.twemproxy.syntax`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redkeeper.errors import BUG, ApplyError, NutcrackerConfigError, Problem, ProcessError
from redkeeper.fsutil import atomic_write
from redkeeper.model import Address
from redkeeper.process import find_binary
from redkeeper.proxy.twemproxy.syntax import (
    DISTRIBUTIONS,
    HASHES,
    INT_MAX,
    POOL_KEYS,
    Problems,
    RawPool,
    Scalar,
    is_digits,
    option_value,
    raw_pools,
)

__all__ = [
    "DISTRIBUTIONS",
    "HASHES",
    "POOL_KEYS",
    "PoolView",
    "ServerEntry",
    "checked_by_nutcracker",
    "load_pools",
    "plan_repoint",
    "repoint_file",
    "validate_with_nutcracker",
]

_KETAMA_PORT = 11211  # an unnamed server on this port hashes by host alone (libmemcached)
# Hosts we are willing to splice into a scalar: names, IPv4, bare IPv6 (+ zone). Nothing that
# YAML or twemproxy's "parse from the end" could read differently.
_HOST_RE = re.compile(r"[A-Za-z0-9_.:%][A-Za-z0-9_.:%-]*")


def _split_server(text: str) -> tuple[str, str, str, str | None]:
    """(host, port, weight, name) split like conf_add_server: from the end, ' ' then ':' ':'."""
    if text.startswith("/"):
        raise ValueError(f"server {text!r} is a unix socket; redkeeper manages TCP servers only")
    spec, space, name = text.rpartition(" ")
    if not space:
        spec, name_or_none = text, None
    else:
        name_or_none = name
    rest, colon1, weight = spec.rpartition(":")
    host, colon2, port = rest.rpartition(":")
    if not colon1 or not colon2:
        raise ValueError(f"server {text!r} is not 'host:port:weight name'")
    return host, port, weight, name_or_none


@dataclass(frozen=True)
class ServerEntry:
    """One `servers:` entry, `host:port:weight [name]`; IPv6 hosts are written bare (::1)."""

    host: str
    port: int
    weight: int
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> ServerEntry:
        """Parse like twemproxy 0.5.0 (from the end); ValueError says what is wrong."""
        host, port_text, weight_text, name = _split_server(text)
        if not host:
            raise ValueError(f"server {text!r} has an empty host")
        if not is_digits(port_text) or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"server {text!r}: port {port_text!r} is not a number in 1-65535")
        if not is_digits(weight_text) or not 1 <= int(weight_text) <= INT_MAX:
            raise ValueError(
                f"server {text!r}: weight {weight_text!r} is not a whole number >= 1"
                + (" (separate the name with exactly one space)" if " " in weight_text else "")
            )
        if name == "":
            raise ValueError(f"server {text!r} ends with a space but has no name after it")
        return cls(host, int(port_text), int(weight_text), name)

    def render(self) -> str:
        """`host:port:weight name` (no name part when unnamed)."""
        text = f"{self.host}:{self.port}:{self.weight}"
        return f"{text} {self.name}" if self.name is not None else text

    @property
    def address(self) -> Address:
        return Address(self.host, self.port)

    @property
    def hash_name(self) -> str:
        """The string twemproxy hashes and sorts servers by (never includes the weight)."""
        if self.name is not None:
            return self.name
        return self.host if self.port == _KETAMA_PORT else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class PoolView:
    """One pool of nutcracker.yml. Unset numbers are None (= nutcracker's default)."""

    name: str
    servers: tuple[ServerEntry, ...]
    listen: str
    hash: str = "fnv1a_64"
    distribution: str = "ketama"
    hash_tag: str | None = None
    redis: bool = False
    redis_auth: str | None = field(default=None, repr=False)
    auto_eject_hosts: bool = False
    preconnect: bool = False
    tcpkeepalive: bool = False
    timeout: int | None = None
    backlog: int | None = None
    client_connections: int | None = None
    redis_db: int | None = None
    server_connections: int | None = None
    server_retry_timeout: int | None = None
    server_failure_limit: int | None = None

    def server(self, name: str) -> ServerEntry | None:
        return next((s for s in self.servers if s.name == name), None)


# ---- pools (conf_validate_pool) ----------------------------------------------------------


def _pool_view(pool: RawPool, problems: Problems) -> PoolView | None:
    before = len(problems)
    values: dict[str, Any] = {}
    for key, scalar in pool.options.items():
        value, problem, fix = option_value(key, scalar.value)
        if problem:
            problems.add(f"{pool.name}.{key}", scalar.line, problem, fix)
        values[key] = value
    if "redis_auth" in pool.options and values.get("redis") is not True:
        line = pool.options["redis_auth"].line
        problems.add(
            f"{pool.name}.redis_auth", line, "only valid in a redis pool", "add redis: true"
        )
    servers: list[ServerEntry] = []
    seen: dict[str, int] = {}
    for i, scalar in enumerate(pool.servers):
        where = f"{pool.name}.servers[{i}]"
        try:
            entry = ServerEntry.parse(scalar.value)
        except ValueError as exc:
            problems.add(where, scalar.line, str(exc), "e.g. '127.0.0.1:6379:1 shard1'")
            continue
        if entry.hash_name in seen:
            problems.add(
                where,
                scalar.line,
                f"duplicate server name {entry.hash_name!r} "
                f"(also servers[{seen[entry.hash_name]}])",
                "give every server a unique name",
            )
        seen.setdefault(entry.hash_name, i)
        servers.append(entry)
    if len(problems) != before or "listen" not in values or not servers:
        return None  # the problem is recorded (here or by raw_pools)
    return PoolView(name=pool.name, servers=tuple(servers), **values)


def _load(text: str, source: str) -> tuple[list[RawPool], dict[str, PoolView]]:
    problems = Problems(source)
    raw = raw_pools(text, problems)
    views = {pool.name: view for pool in raw if (view := _pool_view(pool, problems))}
    listens: dict[str, str] = {}
    for view in views.values():
        if view.listen in listens:
            problems.add(
                f"{view.name}.listen",
                None,
                f"{view.listen!r} is also pool {listens[view.listen]!r}'s",
                "give each pool its own listen address",
            )
        listens.setdefault(view.listen, view.name)
    if problems:
        raise NutcrackerConfigError(problems)
    return raw, views


def load_pools(text: str, *, source: str) -> dict[str, PoolView]:
    """Every pool of a nutcracker.yml text, in file order. NutcrackerConfigError lists every
    problem: the file, the field path (`alpha.servers[2]`), the line, and the fix."""
    return _load(text, source)[1]


# ---- repointing ---------------------------------------------------------------------------


def _value_offset(scalar: Scalar, text: str) -> int | None:
    """Where the value starts inside its source text, or None when splicing is unsafe
    (block scalar, multi-line, escapes: the source is then not the value verbatim)."""
    src = text[scalar.start : scalar.end]
    if scalar.style is None and src == scalar.value:
        return 0
    if scalar.style in ("'", '"') and src == f"{scalar.style}{scalar.value}{scalar.style}":
        return 1
    return None


def plan_repoint(text: str, changes: Mapping[str, Address], *, source: str) -> str | None:
    """The new text with each server named in `changes` pointed at its new address, or None
    when every one of them is already there.

    Pure. Only the `host:port` characters of the matching entries change (in every pool that
    has the name); weights, names, quoting, comments, blank lines, indentation, key order and
    other pools keep every byte. The result is re-parsed and must differ from the input in
    exactly those servers' host and port, else NutcrackerConfigError. Every server in the
    file must have a name (the Sentinel master name). IPv6 hosts are written bare (::1).
    """
    problems = Problems(source)
    for name, address in changes.items():
        if not _HOST_RE.fullmatch(address.host) or not 1 <= address.port <= 65535:
            problems.add(
                name,
                None,
                f"refusing to write address {address!s}",
                "give a host name or IP address and a port in 1-65535",
            )
    raw, views = _load(text, source)
    found: set[str] = set()
    for pool in raw:
        for i, entry in enumerate(views[pool.name].servers):
            scalar = pool.servers[i]
            if entry.name is None:
                problems.add(
                    f"{pool.name}.servers[{i}]",
                    scalar.line,
                    f"server {scalar.value!r} has no name",
                    f"add the Sentinel master name: '{scalar.value} <master-name>'",
                )
            found.add(entry.name or "")
    for name in sorted(set(changes) - found):
        problems.add(
            "",
            None,
            f"no pool has a server named {name!r}",
            f"name a server '<host:port:weight> {name}' or check the Sentinel "
            f"master name (named here: {', '.join(sorted(found - {''})) or 'none'})",
        )
    if problems:
        raise NutcrackerConfigError(problems)

    edits: list[tuple[int, int, str]] = []
    for pool in raw:
        for i, entry in enumerate(views[pool.name].servers):
            target = changes.get(entry.name or "")
            if target is None or (entry.host, entry.port) == (target.host, target.port):
                continue
            scalar = pool.servers[i]
            offset = _value_offset(scalar, text)
            if offset is None:
                problems.add(
                    f"{pool.name}.servers[{i}]",
                    scalar.line,
                    "cannot edit a block, multi-line or escaped scalar in place",
                    f"write it on one line: - {entry.render()}",
                )
                continue
            host, port, _, _ = _split_server(scalar.value)
            start = scalar.start + offset
            edits.append((start, start + len(host) + 1 + len(port), f"{target.host}:{target.port}"))
    if problems:
        raise NutcrackerConfigError(problems)
    if not edits:
        return None

    new_text = text
    for start, end, replacement in sorted(edits, reverse=True):
        new_text = new_text[:start] + replacement + new_text[end:]

    def moved(entry: ServerEntry) -> ServerEntry:
        target = changes.get(entry.name or "")
        return entry if target is None else replace(entry, host=target.host, port=target.port)

    expected = {
        name: replace(view, servers=tuple(moved(s) for s in view.servers))
        for name, view in views.items()
    }
    try:
        actual: dict[str, PoolView] | None = load_pools(new_text, source=source)
    except NutcrackerConfigError:
        actual = None
    if actual != expected:
        raise problems.fail(
            "",
            None,
            "the edited text does not re-parse to exactly the intended change; nothing was written",
            f"{BUG}, with the file",
        )
    return new_text


def _said(output: str) -> str:
    """nutcracker 0.5.0 -t prints its one-line verdict twice, the first without a newline."""
    lines: list[str] = []
    for line in output.replace("nutcracker: ", "\nnutcracker: ").splitlines():
        if line.strip() and line.strip() not in lines:
            lines.append(line.strip())
    return "; ".join(lines)


def validate_with_nutcracker(
    path: Path, *, binary: str | None = None, timeout: float = 10.0
) -> None:
    """Run `nutcracker -t -c PATH`; NutcrackerConfigError when it exits non-zero.

    nutcracker 0.5.0 -t only says "syntax is invalid" (its log is not set up in test mode),
    so the error also carries redkeeper's own diagnosis of the file when it finds one. -t
    resolves every `listen:` host name: a name DNS cannot resolve fails validation.
    ProcessError when nutcracker cannot run or hangs past `timeout`.
    """
    exe = binary if binary is not None else find_binary("nutcracker")
    argv = [exe, "-t", "-c", str(path)]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProcessError(f"`{' '.join(argv)}` did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise ProcessError(f"cannot run {exe}: {exc.strerror}") from None
    if done.returncode == 0:
        return
    problems = Problems(str(path))
    said = _said(done.stdout + done.stderr) or f"exit status {done.returncode}"
    problems.add(
        "",
        None,
        f"nutcracker -t rejected it: {said}",
        "see the problems listed with it; if there are none, check that every "
        "listen: host name resolves on this machine",
    )
    try:
        load_pools(path.read_bytes().decode("utf-8", errors="replace"), source=str(path))
    except NutcrackerConfigError as exc:
        problems.extend(exc.problems)
    raise NutcrackerConfigError(problems)


def checked_by_nutcracker(
    real: Path, validate: Callable[[Path], None] = validate_with_nutcracker
) -> Callable[[Path], None]:
    """A validator for `atomic_write`: `validate` (`nutcracker -t`) on the temp file, its
    problems naming `real` instead of the temp file that was checked."""

    def check(tmp: Path) -> None:
        try:
            validate(tmp)
        except NutcrackerConfigError as exc:

            def fix(text: str) -> str:
                return text.replace(str(tmp), str(real)).replace(tmp.name, real.name)

            raise NutcrackerConfigError(
                [Problem(fix(p.file), p.field, fix(p.message), fix(p.fix)) for p in exc.problems]
            ) from None

    return check


def repoint_file(
    path: Path,
    changes: Mapping[str, Address],
    *,
    validate: Callable[[Path], None] | None = validate_with_nutcracker,
) -> str | None:
    """Repoint named servers in the nutcracker.yml at `path`; return the new text, or None
    when nothing changes (then nothing is written, not even the mtime).

    Planned by `plan_repoint`, checked by `validate` on the temp file, written atomically
    with the previous content kept in `nutcracker.yml.bak`. On every error the file and its
    backup are untouched: NutcrackerConfigError (file or result invalid), ProcessError
    (nutcracker could not run), ApplyError (the write itself failed).
    """
    problems = Problems(str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise problems.fail(
            "", None, f"cannot read it: {exc.strerror}", "check the path and its permissions"
        ) from None
    except UnicodeDecodeError as exc:
        raise problems.fail(
            "", None, f"is not UTF-8 ({exc.reason} at byte {exc.start})", "save it as UTF-8"
        ) from None
    new_text = plan_repoint(text, changes, source=str(path))
    if new_text is None:
        return None

    checked = None if validate is None else checked_by_nutcracker(path, validate)
    try:
        atomic_write(path, new_text.encode("utf-8"), validate=checked, backup=True)
    except OSError as exc:
        raise ApplyError(
            f"{path}: cannot write it: {exc.strerror or exc} "
            f"(fix: check the permissions and free space of {path.parent})"
        ) from exc
    return new_text
