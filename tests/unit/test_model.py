"""Address parsing."""

from __future__ import annotations

import pytest

from redkeeper.model import Address


def test_parse_and_format() -> None:
    assert Address.parse("127.0.0.1:6379") == Address("127.0.0.1", 6379)
    assert str(Address.parse("[::1]:6379")) == "[::1]:6379"
    assert Address.parse("localhost:1").is_loopback
    assert Address.parse("127.0.0.5:1").is_loopback
    assert not Address.parse("10.0.0.1:1").is_loopback


@pytest.mark.parametrize("text", ["nohost", ":80", "h:0", "h:65536", "h:x", "[::1]6379"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        Address.parse(text)
