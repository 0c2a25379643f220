"""Where the Debian binaries live, and a clear error when one is missing."""

from __future__ import annotations

import os
import shutil

from redkeeper.errors import BinaryNotFoundError

# Debian puts nutcracker and haproxy in /usr/sbin, which is not on a normal user's PATH.
_EXTRA_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")

PACKAGE_OF = {
    "redis-server": "redis-server",
    "redis-sentinel": "redis-sentinel",
    "redis-cli": "redis-tools",
    "redis-benchmark": "redis-tools",
    "nutcracker": "nutcracker",
    "haproxy": "haproxy",
    "keepalived": "keepalived",
    "iptables": "iptables",
    "iptables-restore": "iptables",
    "ip": "iproute2",
    "curl": "curl",
}


def find_binary(name: str) -> str:
    """Absolute path of executable `name`; BinaryNotFoundError names the package to install."""
    env_override = os.environ.get(f"REDKEEPER_{name.upper().replace('-', '_')}")
    if env_override:
        if os.access(env_override, os.X_OK):
            return env_override
        raise BinaryNotFoundError(
            f"{env_override} (from REDKEEPER_{name.upper().replace('-', '_')}) is not executable"
        )
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_EXTRA_DIRS)
    found = shutil.which(name, path=path)
    if found is None:
        package = PACKAGE_OF.get(name, name)
        raise BinaryNotFoundError(
            f"{name} not found on PATH or in /usr/sbin (fix: apt-get install {package}, "
            f"or run `make setup`)"
        )
    return found
