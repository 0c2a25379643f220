"""The lab's network I/O: `ip`/`iptables-restore` commands (bounded), entering a namespace,
and what the kernel says about a host (its addresses, which processes live in it).

Every command runs with a timeout and raises `LabEnvironmentError` with its stderr when it
fails (except the clean-ups, which may find nothing to clean). `enter` moves the *calling
thread* into a host's network namespace (setns): the lab's own probes, workloads and
observers run as threads of this process inside the client host (or, for a probe of an
isolated master, inside that master's host).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from redkeeper.errors import LabEnvironmentError
from redkeeper.lab.plan import LabPlan

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT = 10.0


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command (no shell), bounded; LabEnvironmentError when it fails and `check`."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabEnvironmentError(f"`{' '.join(argv)}` failed: {exc}") from exc
    if check and done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise LabEnvironmentError(
            f"`{' '.join(argv)}` failed (exit {done.returncode}): {why[-1] if why else '?'}"
        )
    return done


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabEnvironmentError(
            "redkeeper lab needs root (network namespaces, iptables, keepalived): run it as "
            "root, e.g. with sudo"
        )


def namespaces() -> list[str]:
    """Every named network namespace (`ip netns list`)."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_inode(name: str) -> int | None:
    try:
        return (NETNS_DIR / name).stat().st_ino
    except OSError:
        return None


def processes_in(names: Sequence[str]) -> dict[int, str]:
    """PID -> namespace name of every process living in one of the namespaces `names`."""
    inodes = {ino: name for name in names if (ino := netns_inode(name)) is not None}
    found: dict[int, str] = {}
    if not inodes:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            ino = (entry / "ns" / "net").stat().st_ino
        except OSError:
            continue
        if ino in inodes:
            found[int(entry.name)] = inodes[ino]
    return found


def delete_namespace(name: str) -> None:
    run(["ip", "netns", "del", name], check=False)


def build(plan: LabPlan, commands: Sequence[Sequence[str]]) -> None:
    for argv in commands:
        run(argv)


def set_link(plan: LabPlan, host: str, up: bool) -> None:
    """Take a host's link up or down at the bridge port and inside the host (a cut cable)."""
    target = plan.host(host)
    state = "up" if up else "down"
    run(["ip", "-n", plan.switch, "link", "set", "dev", target.veth, state])
    run(["ip", "-n", target.namespace, "link", "set", "dev", plan.interface, state])


def link_up(plan: LabPlan, host: str) -> bool:
    target = plan.host(host)
    out = run(["ip", "-n", plan.switch, "-j", "link", "show", "dev", target.veth], check=False)
    try:
        data = json.loads(out.stdout or "[]")
    except ValueError:
        return False
    return bool(data) and "UP" in data[0].get("flags", []) and data[0].get("operstate") != "DOWN"


def addresses(namespace: str, interface: str) -> list[str]:
    """The IPv4 addresses on `interface` inside `namespace` ([] when it cannot be read)."""
    out = run(["ip", "-n", namespace, "-j", "-4", "addr", "show", "dev", interface], check=False)
    try:
        data = json.loads(out.stdout or "[]")
    except ValueError:
        return []
    return [str(a["local"]) for entry in data for a in entry.get("addr_info", []) if "local" in a]


def holds(namespace: str, interface: str, address: str) -> bool:
    """`address` is on `interface` inside `namespace`, and the interface is up."""
    out = run(["ip", "-n", namespace, "-j", "-4", "addr", "show", "dev", interface], check=False)
    try:
        data = json.loads(out.stdout or "[]")
    except ValueError:
        return False
    return any(
        entry.get("operstate") == "UP"
        and any(a.get("local") == address for a in entry.get("addr_info", []))
        for entry in data
    )


def vip_holders(plan: LabPlan, vip: str) -> list[str]:
    """Names of the proxy hosts that have `vip` on their interface, with the link up."""
    return [h.name for h in plan.with_role("proxy") if holds(h.namespace, plan.interface, vip)]


def apply_rules(namespace: str, rules: str) -> None:
    """Replace the host's filter table (iptables-restore), atomically."""
    run(["ip", "netns", "exec", namespace, "iptables-restore"], stdin=rules)


def sysctl_file(namespace: str, path: Path) -> None:
    """Apply a sysctl drop-in inside the host (ip_nonlocal_bind is per namespace)."""
    run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-p", str(path)])


_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabEnvironmentError(f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def enter(namespace: str) -> Iterator[None]:
    """Run the calling thread inside `namespace` (threads it starts inherit it); back to
    where it was afterwards."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / namespace, os.O_RDONLY)
    except OSError as exc:
        os.close(own)
        raise LabEnvironmentError(f"no network namespace {namespace}: {exc.strerror}") from exc
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
