"""HAProxy for steady mode: the Runtime API client (admin socket) and its typed answers."""

from redkeeper.proxy.haproxy.runtime import (
    HAProxyCommandError,
    HAProxyUnavailableError,
    RuntimeAPI,
    ServerState,
    parse_servers_state,
)

__all__ = [
    "HAProxyCommandError",
    "HAProxyUnavailableError",
    "RuntimeAPI",
    "ServerState",
    "parse_servers_state",
]
