"""Pure value types shared by every layer: addresses and their parsing, and keys.

A Redis key is bytes. Where a key travels as a str (command-line arguments, redis-py replies
decoded with `surrogateescape`), bytes that are not UTF-8 are lone surrogates: `key_bytes`
gives the exact bytes back, `show_key` a printable form.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Address:
    """A TCP endpoint `host:port`."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `host:port` (IPv6 as `[::1]:port`). Raises ValueError with a clear message."""
        text = text.strip()
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or not rest.startswith(":"):
                raise ValueError(f"{text!r} is not [ipv6]:port")
            port_text = rest[1:]
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep or not host:
                raise ValueError(f"{text!r} is not host:port")
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"{text!r}: port {port_text!r} is not a number") from None
        if not 1 <= port <= 65535:
            raise ValueError(f"{text!r}: port {port} is outside 1-65535")
        return cls(host, port)

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def key_bytes(key: str | bytes) -> bytes:
    """The exact bytes of a key given as str (surrogate-escaped, like sys.argv) or bytes."""
    return key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")


def show_key(key: str | bytes) -> str:
    """A key for people and JSON: UTF-8, with invalid bytes and control characters escaped."""
    text = key_bytes(key).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
