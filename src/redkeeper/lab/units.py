"""What a lab host runs (pure): the commands of the systemd units `render --host` wrote for
it, and the command line that runs one of them inside the host.

There is no systemd inside a namespace, so the lab runs each unit's `ExecStartPre=` lines,
then its `ExecStart=` line (the daemon, in the foreground), and after it stops its
`ExecStopPost=` lines. Each runs as

    ip netns exec <ns> sh -c '<mounts>; exec "$@"' sh <argv…>

`ip netns exec` gives the process a private mount namespace; the mounts put the host's own
rendered tree where the units expect it (`/etc/redkeeper`, `/etc/keepalived`,
`/var/lib/redkeeper`, `/var/log/redkeeper`), so every host sees exactly its files at the
real paths. A target that does not exist on this machine is made on a tmpfs overlay of
its parent, inside that mount namespace only: the machine's own file system is never
changed. Every step `exec`s, so the PID the lab records is the daemon's.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from redkeeper.render import REDKEEPER

#: The host's directories, mounted over the real paths (module docstring).
HOST_DIRS = (
    Path("/etc/redkeeper"),
    Path("/etc/keepalived"),
    Path("/var/lib/redkeeper"),
    Path("/var/log/redkeeper"),
)
OVERLAY_DIR = ".overlay"  # under the host's root: where the tmpfs for overlays is mounted
UNIT_SUFFIX = ".service"


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    ignore_failure: bool = False  # systemd's "-" prefix


@dataclass(frozen=True)
class Unit:
    """One rendered unit: its process name (`redkeeper-<name>.service`) and commands."""

    name: str
    start: tuple[str, ...]
    pre: tuple[Command, ...] = field(default=())
    post: tuple[Command, ...] = field(default=())
    writable: tuple[Path, ...] = field(default=())  # ReadWritePaths: dirs it writes in


def _command(value: str) -> Command:
    ignore = value.startswith("-")
    return Command(tuple(shlex.split(value.lstrip("-@+!"))), ignore)


def parse_unit(name: str, text: str) -> Unit:
    """The commands of a unit file; ValueError when it has no ExecStart."""
    start: tuple[str, ...] | None = None
    pre: list[Command] = []
    post: list[Command] = []
    writable: list[Path] = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "ExecStart":
            start = _command(value).argv
        elif key == "ExecStartPre":
            pre.append(_command(value))
        elif key == "ExecStopPost":
            post.append(_command(value))
        elif key == "ReadWritePaths":
            writable += [Path(p) for p in value.split()]
    if not start:
        raise ValueError(f"unit {name} has no ExecStart= line")
    return Unit(name, start, tuple(pre), tuple(post), tuple(writable))


def unit_process(filename: str) -> str:
    """`redkeeper-shard1-1.service` -> `shard1-1`."""
    return filename.removeprefix("redkeeper-").removesuffix(UNIT_SUFFIX)


def resolve(argv: tuple[str, ...], which: dict[str, str]) -> list[str]:
    """The unit's argv with its binary as found on this machine: `which` maps a rendered
    path (/usr/sbin/keepalived) to the local one; redkeeper is the one running the lab."""
    head = argv[0]
    if head == REDKEEPER:
        return [sys.executable, "-m", "redkeeper", *argv[1:]]
    return [which.get(head, head), *argv[1:]]


def mount_script(root: Path) -> str:
    """The shell text that mounts host root `root`'s directories over the real paths."""
    work = shlex.quote(str(root / OVERLAY_DIR))
    lines = ["set -e"]
    parents = list(dict.fromkeys(t.parent for t in HOST_DIRS))
    for target in HOST_DIRS:
        index = parents.index(target.parent)
        parent = shlex.quote(str(target.parent))
        upper, lower = f"{work}/u{index}", f"{work}/w{index}"
        quoted = shlex.quote(str(target))
        lines += [
            f"if [ ! -d {quoted} ]; then",
            f'  if [ -z "$overlay{index}" ]; then',
            f"    mountpoint -q {work} || mount -t tmpfs -o mode=0755 redkeeper-lab {work}",
            f"    mkdir -p {upper} {lower}",
            f"    mount -t overlay overlay -o lowerdir={parent},upperdir={upper},"
            f"workdir={lower} {parent}",
            f"    overlay{index}=1",
            "  fi",
            f"  mkdir -p {quoted}",
            "fi",
            f"mount --bind {shlex.quote(str(root / target.relative_to('/')))} {quoted}",
        ]
    lines.append('exec "$@"')
    return "\n".join(lines)


def host_argv(namespace: str, root: Path, argv: list[str]) -> list[str]:
    """The command line that runs `argv` inside lab host `namespace` with root `root`."""
    return ["ip", "netns", "exec", namespace, "sh", "-c", mount_script(root), "sh", *argv]
