"""Editing the `shards` list of a topology file, and nothing else (`redkeeper reshard`).

`with_shard_added` / `with_shard_removed` return the new text: the lines of one list item are
inserted (in the style of the list's last item: flow `- {name: …}` or block `- name: …`) or
deleted; every other byte of the file stays as the operator wrote it (comments, order,
quoting). `checked` parses the result and refuses it unless it differs from the old topology
in `shards` only, and exactly as asked. `write_shards` writes it atomically with a `.bak` of
the previous content (`fsutil.atomic_write`, validated on the temp file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from redkeeper.errors import ConfigError, Problem
from redkeeper.fsutil import atomic_write
from redkeeper.topology import Topology, parse_topology
from redkeeper.topology.schema import ShardSpec

FIX = "edit the shards list by hand as docs/operations.md shows, then run the command again"


def _problem(source: str, message: str) -> ConfigError:
    return ConfigError([Problem(source, "shards", message, FIX)])


def _items(text: str, source: str) -> tuple[list[str], list[tuple[int, int, int]]]:
    """The file's lines and, per shard item, (first line with its comments, its `- ` line,
    end): [first, end) is the item."""
    try:
        data: Any = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise _problem(source, f"cannot be read for editing: {exc}") from None
    shards = data.get("shards") if hasattr(data, "get") else None
    if shards is None or not hasattr(shards, "lc") or len(shards) == 0:
        raise _problem(source, "no shards list to edit")
    if shards.fa.flow_style():
        raise _problem(source, "the shards list is written inline ([...]): it cannot be edited")
    lines = text.splitlines(keepends=True)
    keys = list(data.keys())
    after = keys[keys.index("shards") + 1 :]
    end = min((data.lc.key(k)[0] for k in after), default=len(lines))
    end = max(end, shards.lc.item(len(shards) - 1)[0] + 1)
    while end > 0 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1  # blank lines and top-level comments before the next key are not the item's
    items = [shards.lc.item(i)[0] for i in range(len(shards))]
    starts = list(items)
    for i in range(1, len(starts)):  # comment lines right above an item are that item's
        while starts[i] - 1 > items[i - 1] and lines[starts[i] - 1].lstrip().startswith("#"):
            starts[i] -= 1
    ends = [*starts[1:], end]
    return lines, list(zip(starts, items, ends, strict=True))


def _render(shard: ShardSpec, style_line: str) -> str:
    indent = style_line[: style_line.index("-")]  # the list item's own line, not a comment
    replicas = ", ".join(str(r) for r in shard.replicas)
    weight = [f"weight: {shard.weight}"] if shard.weight != 1 else []
    if style_line.lstrip().startswith("- {"):
        fields = [f"name: {shard.name}", f"master: {shard.master}", f"replicas: [{replicas}]"]
        return f"{indent}- {{{', '.join(fields + weight)}}}\n"
    inner = indent + "  "
    lines = [f"{indent}- name: {shard.name}", f"{inner}master: {shard.master}"]
    lines.append(f"{inner}replicas: [{replicas}]")
    lines += [f"{inner}{w}" for w in weight]
    return "\n".join(lines) + "\n"


def with_shard_added(text: str, shard: ShardSpec, source: str) -> str:
    lines, items = _items(text, source)
    _first, line, end = items[-1]
    body = lines[:end]
    if body and not body[-1].endswith("\n"):
        body[-1] += "\n"
    return "".join([*body, _render(shard, lines[line]), *lines[end:]])


def with_shard_removed(text: str, name: str, source: str) -> str:
    lines, items = _items(text, source)
    data: Any = YAML(typ="rt").load(text)
    names = [str(item.get("name")) for item in data["shards"]]
    if name not in names:
        raise _problem(source, f"no shard named {name!r} in the file")
    first, _line, end = items[names.index(name)]
    return "".join(lines[:first] + lines[end:])


def checked(old: Topology, text: str, shards: list[ShardSpec]) -> Topology:
    """`text` parsed; ConfigError unless it is `old` with exactly `shards` as its shards."""
    new = parse_topology(text, source=old.source, base_dir=old.base_dir)
    if list(new.spec.shards) != shards:
        raise _problem(old.source, "the edited file does not hold the expected shards")
    if new.spec.model_copy(update={"shards": old.spec.shards}) != old.spec:
        raise _problem(old.source, "the edit would change more than the shards list")
    return new


def write_shards(path: Path, text: str, check: Topology) -> bool:
    """Write `text` (already `checked` into `check`) atomically with a backup; the temp file
    is parsed again before it replaces the file."""

    def validate(tmp: Path) -> None:
        again = parse_topology(tmp.read_text(), source=check.source, base_dir=check.base_dir)
        if again.spec != check.spec:
            raise _problem(check.source, "the written file does not parse back the same")

    return atomic_write(path, text, validate=validate, backup=True)
