"""nutcracker.yml syntax as twemproxy 0.5.0 reads it: tokens, structure, keys, values.

This module owns the YAML boundary of the twemproxy package: it composes and scans the text
with ruamel.yaml (never dumps it), refuses what `src/nc_conf.c` refuses (flow style, anchors,
tags, `---`, unknown or duplicate keys, nested values), and hands back plain typed records
(`RawPool`, `Scalar`) whose scalars keep their raw text and character offsets, which is what
a byte-preserving edit needs. ruamel's untyped nodes stay inside `_compose` and `raw_pools`;
`option_value` turns raw option text into values. `redkeeper.proxy.twemproxy.config` builds
the public types on top of it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import tokens as yaml_tokens
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from redkeeper.errors import NutcrackerConfigError, Problem

__all__ = [
    "BOOL_KEYS",
    "DISTRIBUTIONS",
    "HASHES",
    "INT_MAX",
    "NUMBER_KEYS",
    "POOL_KEYS",
    "Problems",
    "RawPool",
    "Scalar",
    "is_digits",
    "option_value",
    "raw_pools",
]

# src/nc_conf.c conf_commands[] of 0.5.0, in its order. Anything else is fatal ("reuseport"
# only exists in later versions).
POOL_KEYS = (
    "listen", "hash", "hash_tag", "distribution", "timeout", "backlog", "client_connections",
    "redis", "tcpkeepalive", "redis_auth", "redis_db", "preconnect", "auto_eject_hosts",
    "server_connections", "server_retry_timeout", "server_failure_limit", "servers",
)  # fmt: skip
HASHES = (
    "one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64", "fnv1_32",
    "fnv1a_32", "hsieh", "murmur", "jenkins",
)  # fmt: skip
DISTRIBUTIONS = ("ketama", "modula", "random")
NUMBER_KEYS = (
    "timeout", "backlog", "client_connections", "redis_db", "server_connections",
    "server_retry_timeout", "server_failure_limit",
)  # fmt: skip
BOOL_KEYS = ("redis", "tcpkeepalive", "preconnect", "auto_eject_hosts")
INT_MAX = 2**31 - 1  # nc_atoi works in a C int
_BLOCK_STYLE = "write block style: 'pool:', '  key: value', '  servers:', '   - host:port:w name'"
_FORBIDDEN_TOKENS: dict[type[Any], tuple[str, str]] = {
    yaml_tokens.DirectiveToken: ("a '%' directive", "remove the directive line"),
    yaml_tokens.DocumentStartToken: ("a '---' document start", "remove the '---' line"),
    yaml_tokens.DocumentEndToken: ("a '...' document end", "remove the '...' line"),
    yaml_tokens.FlowSequenceStartToken: ("flow style '[...]'", _BLOCK_STYLE),
    yaml_tokens.FlowMappingStartToken: ("flow style '{...}'", _BLOCK_STYLE),
    yaml_tokens.AnchorToken: ("an anchor '&...'", "write the value out in full"),
    yaml_tokens.AliasToken: ("an alias '*...'", "write the value out in full"),
    yaml_tokens.TagToken: ("a tag '!...'", "remove the tag"),
}


# ---- YAML boundary: ruamel nodes -> plain typed records --------------------------------


@dataclass(frozen=True)
class Scalar:
    value: str
    style: str | None  # None plain, "'" / '"' quoted, "|" / ">" block
    start: int  # character offsets of the scalar's source text (quotes included)
    end: int
    line: int  # 1-based


@dataclass
class RawPool:
    name: str
    options: dict[str, Scalar] = field(default_factory=dict)
    servers: list[Scalar] = field(default_factory=list)


class Problems(list[Problem]):
    """Collects every problem of one file, so the operator sees them all at once."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def add(self, where: str, line: int | None, message: str, fix: str) -> None:
        self.append(
            Problem(self.source, where, f"line {line}: {message}" if line else message, fix)
        )

    def fail(self, where: str, line: int | None, message: str, fix: str) -> NutcrackerConfigError:
        self.add(where, line, message, fix)
        return NutcrackerConfigError(self)


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: Any) -> Scalar:
    style = node.style if isinstance(node.style, str) else None
    start, end = int(node.start_mark.index), int(node.end_mark.index)
    return Scalar(str(node.value), style, start, end, _line(node))


def _compose(text: str, problems: Problems) -> Any:
    """The composed root node, after refusing every token nutcracker 0.5.0 refuses."""
    try:
        # Compose first so that broken YAML is reported as such, then look at the tokens.
        root = YAML(typ="safe", pure=True).compose(text)
        for token in YAML(typ="safe", pure=True).scan(text):
            forbidden = _FORBIDDEN_TOKENS.get(type(token))
            if forbidden is not None:
                what, fix = forbidden
                raise problems.fail(
                    "", _line(token), f"{what} is not allowed by nutcracker 0.5.0", fix
                )
        return root
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        line = int(mark.line) + 1 if mark is not None else None
        fix = "fix the YAML syntax"
        if "'\\t'" in what:  # PyYAML heritage: libyaml (nutcracker) accepts some of these tabs
            fix = "replace the tab with spaces (redkeeper's YAML reader refuses tabs there)"
        raise problems.fail("", line, f"invalid YAML: {what}", fix) from None
    except YAMLError as exc:
        raise problems.fail("", None, f"invalid YAML: {exc}", "fix the YAML syntax") from None


def raw_pools(text: str, problems: Problems) -> list[RawPool]:
    """Structure and key checks (conf_validate_structure, conf_handler)."""
    root = _compose(text, problems)
    if root is None:
        raise problems.fail("", None, "has no pools", "add a pool with listen: and servers:")
    if not isinstance(root, MappingNode):
        raise problems.fail(
            "", _line(root), "must be a mapping of pool names to pools", "start with 'alpha:'"
        )
    pools: list[RawPool] = []
    for key, value in root.value:
        if not isinstance(key, ScalarNode):
            problems.add("", _line(key), "a pool name must be text", "write e.g. 'alpha:'")
            continue
        pool = RawPool(str(key.value))
        if any(p.name == pool.name for p in pools):
            problems.add(pool.name, _line(key), "duplicate pool name", "rename one of them")
        pools.append(pool)
        if not isinstance(value, MappingNode):
            problems.add(
                pool.name,
                _line(value),
                "must be a mapping",
                "indent listen:, servers:, ... under it",
            )
            continue
        keys: set[str] = set()
        for k_node, v_node in value.value:
            k = str(k_node.value) if isinstance(k_node, ScalarNode) else "?"
            where, line = f"{pool.name}.{k}", _line(k_node)
            if k not in POOL_KEYS:
                close = difflib.get_close_matches(k, POOL_KEYS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problems.add(
                    where,
                    line,
                    "unknown key (fatal in nutcracker 0.5.0)",
                    f"{hint}remove it; known keys: {', '.join(POOL_KEYS)}",
                )
            elif k in pool.options or (k == "servers" and pool.servers):
                problems.add(where, line, "duplicate key", "keep only one")
            elif k == "servers":
                if not isinstance(v_node, SequenceNode) or not v_node.value:
                    problems.add(
                        where,
                        line,
                        "must be a non-empty list",
                        "one '- host:port:weight name' per line",
                    )
                    continue
                for i, item in enumerate(v_node.value):
                    if isinstance(item, ScalarNode):
                        pool.servers.append(_scalar(item))
                    else:
                        problems.add(
                            f"{where}[{i}]",
                            _line(item),
                            "must be one line of text",
                            "write '- host:port:weight name'",
                        )
            elif not isinstance(v_node, ScalarNode):
                problems.add(
                    where, line, "must be a single value", f"write '{k}: value' on one line"
                )
            else:
                pool.options[k] = replace(_scalar(v_node), line=line)  # an empty value's
                # mark is on the next line
            keys.add(k)
        if "listen" not in keys:
            problems.add(f"{pool.name}.listen", _line(key), "is missing",
                         "add e.g. listen: 127.0.0.1:22121")  # fmt: skip
        if "servers" not in keys:
            problems.add(f"{pool.name}.servers", _line(key), "is missing",
                         "add servers: with one '- host:port:weight name' per line")  # fmt: skip
    return pools


# ---- values (conf_set_*) ------------------------------------------------------------------


def is_digits(text: str) -> bool:
    """What nc_atoi accepts: ASCII digits only (no sign, no spaces, no other scripts)."""
    return text.isascii() and text.isdigit()


def option_value(key: str, text: str) -> tuple[Any, str, str]:
    """(value, problem, fix) for one pool option, like the conf_set_* functions."""
    if text == "":
        return None, "has no value", "give it a value or remove the key"
    if key == "listen":
        host, _, port = text.rpartition(":")
        if text.startswith("/") or (host and is_digits(port) and 1 <= int(port) <= 65535):
            return text, "", ""
        return None, f"{text!r} is not host:port", "e.g. listen: 127.0.0.1:22121"
    if key == "hash" and text not in HASHES:
        return None, f"{text!r} is not a hash", f"one of: {', '.join(HASHES)}"
    if key == "distribution" and text not in DISTRIBUTIONS:
        return None, f"{text!r} is not a distribution", "ketama, modula or random"
    if key == "hash_tag" and len(text.encode("utf-8")) != 2:
        return None, f"{text!r} is not exactly two bytes", 'e.g. hash_tag: "{}"'
    if key in BOOL_KEYS:
        if text not in ("true", "false"):
            return None, f"{text!r} is not true or false", "write true or false (lower case)"
        return text == "true", "", ""
    if key in NUMBER_KEYS:
        if not is_digits(text) or int(text) > INT_MAX:
            return None, f"{text!r} is not a whole number >= 0", "write digits only"
        if key == "server_connections" and int(text) == 0:
            return None, "cannot be 0", "remove it (default 1) or set it >= 1"
        return int(text), "", ""
    return text, "", ""
