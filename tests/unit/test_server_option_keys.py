"""Unit: the keys of SORT / GEORADIUS* with STORE and of XREAD[GROUP], found as Redis finds them.

Found by the differential test against nutcracker: `GEORADIUSBYMEMBER k store 300 m` (a member
named "store") made the proxy take "300" for a STORE destination and refuse the request as
spanning shards; Redis (and nutcracker, which routes by the first key) run it. Likewise a
stream, group or consumer named "block" made XREAD[GROUP] be refused as blocking, and a group
named "streams" sent XREADGROUP to the shard of its consumer name.
"""

from __future__ import annotations

import pytest

from redkeeper.server.commands import CommandError, keys_of, lookup


def _keys(*args: bytes) -> list[bytes]:
    spec = lookup(args[0])
    assert spec is not None
    return keys_of(spec, list(args))


@pytest.mark.parametrize("member", [b"store", b"STORE", b"storedist"])
def test_georadiusbymember_member_named_store_is_no_option(member: bytes) -> None:
    assert _keys(b"GEORADIUSBYMEMBER", b"k", member, b"300", b"m", b"ASC") == [b"k"]
    args = (b"GEORADIUSBYMEMBER", b"k", member, b"300", b"m", b"STORE", b"d")
    assert _keys(*args) == [b"k", b"d"]


def test_georadius_options() -> None:
    assert _keys(b"GEORADIUS", b"k", b"15", b"37", b"200", b"km", b"ASC") == [b"k"]
    args = (b"GEORADIUS", b"k", b"15", b"37", b"200", b"km", b"COUNT", b"2", b"STOREDIST", b"d")
    assert _keys(*args) == [b"k", b"d"]


def test_sort_option_arguments_named_store_are_no_option() -> None:
    assert _keys(b"SORT", b"k", b"BY", b"store", b"GET", b"#") == [b"k"]
    assert _keys(b"SORT", b"k", b"GET", b"store", b"ALPHA") == [b"k"]
    assert _keys(b"SORT", b"k", b"LIMIT", b"0", b"1", b"STORE", b"d") == [b"k", b"d"]
    assert _keys(b"SORT", b"k", b"BY", b"w_*", b"STORE", b"d") == [b"k", b"d"]
    assert _keys(b"SORT", b"k", b"STORE") == [b"k"]  # Redis: a syntax error, on k's shard


def test_xread_names_that_look_like_options() -> None:
    assert _keys(b"XREAD", b"COUNT", b"1", b"STREAMS", b"block", b"0") == [b"block"]
    assert _keys(b"XREAD", b"STREAMS", b"a", b"streams", b"0", b"0") == [b"a", b"streams"]
    args: tuple[bytes, ...]
    args = (b"XREADGROUP", b"GROUP", b"streams", b"block", b"COUNT", b"1", b"STREAMS", b"k", b">")
    assert _keys(*args) == [b"k"]
    args = (b"XREADGROUP", b"GROUP", b"g", b"c", b"NOACK", b"STREAMS", b"k", b"j", b">", b">")
    assert _keys(*args) == [b"k", b"j"]


def test_xread_option_errors() -> None:
    with pytest.raises(CommandError, match="BLOCK is not supported"):
        _keys(b"XREAD", b"COUNT", b"1", b"BLOCK", b"0", b"STREAMS", b"a", b"0")
    with pytest.raises(CommandError, match="BLOCK is not supported"):
        _keys(b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"10", b"STREAMS", b"a", b">")
    with pytest.raises(CommandError, match="syntax error"):
        _keys(b"XREAD", b"COUNT", b"1", b"a", b"0")
    with pytest.raises(CommandError, match="syntax error"):
        _keys(b"XREAD", b"GROUP", b"g", b"c", b"STREAMS", b"a", b"0")
    with pytest.raises(CommandError, match="Unbalanced XREAD list of streams"):
        _keys(b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS", b"a", b"b", b">")
    with pytest.raises(CommandError, match="Unbalanced XREAD list of streams"):
        _keys(b"XREAD", b"STREAMS", b"a")
