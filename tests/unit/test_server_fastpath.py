"""Unit: the hot loops of the proxy (fastpath): the C extension against the pure-Python code.

`route` must take exactly the run of complete single-key requests with a valid arity, group
them by (shard, read-only) as the client's raw bytes, and stop before anything else; `frames`
must count complete reply frames and stop before a push; `interleave` must put per-group
replies back in request order. The C versions (`_speedups`, when built) must agree with the
Python ones on every input, malformed ones included.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redkeeper.server import fastpath, resp

SHARD_OF = {b"a": 0, b"b": 1, b"c": 0, b"d": 1}


def index_of(key: bytes) -> int:
    return SHARD_OF.get(key, len(key) % 3)


def _speedups() -> ModuleType:
    try:
        return importlib.import_module("redkeeper.server._speedups")
    except ImportError:
        pytest.skip("the optional C extension redkeeper.server._speedups is not built")


def _route(
    impl: Callable[..., tuple[int, bytes, list[tuple[int, bytes, int]]]],
    buf: bytes,
    pos: int = 0,
    max_bulk: int = 1 << 20,
    max_requests: int = 1024,
) -> tuple[int, bytes, list[tuple[int, bytes, int]]]:
    cache = {b"a": 0}
    return impl(buf, pos, fastpath.FAST_COMMANDS, cache, index_of, 1000, max_bulk, max_requests)


IMPLS = ["python", "c"]


def _impl(name: str, function: str) -> Callable[..., Any]:
    if name == "c":
        return getattr(_speedups(), function)  # type: ignore[no-any-return]
    return getattr(fastpath, function + "_py")  # type: ignore[no-any-return]


@pytest.mark.parametrize("impl", IMPLS)
def test_route_groups_raw_requests_by_shard_and_stops_before_others(impl: str) -> None:
    route = _impl(impl, "route")
    set_a = resp.command("SET", "a", "1")
    get_b = resp.command("get", "b")
    get_a = resp.command("GET", "a")
    buf = set_a + get_b + get_a + resp.command("MGET", "a", "b") + get_a
    end, order, groups = _route(route, buf)
    assert end == len(set_a + get_b + get_a)
    assert order == bytes([0, 1, 0])  # one group per shard, in request order
    assert groups == [(0, set_a + get_a, 2), (3, get_b, 1)]  # shard*2 + (all read-only)
    reads = get_a + get_b + get_a
    assert _route(route, reads)[2] == [(1, get_a + get_a, 2), (3, get_b, 1)]
    # a read, a write, a read of one key: one payload in request order, to the master
    read_write_read = get_a + set_a + get_a
    assert _route(route, read_write_read)[2] == [(0, read_write_read, 3)]
    assert _route(route, buf, pos=end) == (end, b"", [])
    two = resp.command("SET", "a", "1") + resp.command("SET", "c", "2")
    assert _route(route, two) == (len(two), b"\x00\x00", [(0, two, 2)])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "buf",
    [
        b"GET a\r\n",  # inline
        b"*2\r\n$3\r\nGET\r\n$1\r\na\r",  # incomplete
        b"*2\r\n$3\r\nGET\r\n:1\r\n",  # a non-bulk argument
        b"*3\r\n$3\r\nGET\r\n$1\r\na\r\n$1\r\nb\r\n",  # wrong arity
        b"*1\r\n$3\r\nGET\r\n",  # no key
        b"*2\r\n$3\r\nGeT\r\n$1\r\na\r\n",  # mixed case: the general path
        b"*2\r\n$3\r\nGET\r\n$1\r\nab\r\n",  # a bulk longer than said
        b"*2\r\n$3\r\nGET\r\n$-1\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"*99999999999999999999\r\n",
        b"*2\r\n$3\r\nGET\r\n$99999999999\r\n",
        b"*2\r\n$4\r\nPING\r\n$1\r\na\r\n",  # not a single-key command
        b"*2\r\n$3\r\nGET\r\n$2\r\naa\r\n",  # over max_bulk (1 here)
    ],
)
def test_route_leaves_what_the_general_path_must_see(impl: str, buf: bytes) -> None:
    assert _route(_impl(impl, "route"), buf, max_bulk=1) == (0, b"", [])


@pytest.mark.parametrize("impl", IMPLS)
def test_route_bounds_a_run(impl: str) -> None:
    route = _impl(impl, "route")
    buf = resp.command("GET", "a") * 5
    end, order, groups = _route(route, buf, max_requests=2)
    assert end == 2 * len(resp.command("GET", "a")) and len(order) == 2
    many = b"".join(resp.command("GET", f"key{i}") for i in range(600))
    wide = {b"key%d" % i: i for i in range(600)}

    def spread(key: bytes) -> int:
        return wide[key]

    end, order, groups = route(many, 0, fastpath.FAST_COMMANDS, {}, spread, 10, 100, 1000)
    assert len(groups) == len(order) == fastpath.MAX_GROUPS  # one group per shard, at most


KEYS = st.sampled_from([b"a", b"b", b"c", b"d", b"", b"k\r\n", b"\x00\xff", b"long" * 40])
REQUESTS = st.one_of(
    st.tuples(st.sampled_from([b"GET", b"get", b"TTL", b"GETDEL"]), KEYS),
    st.tuples(st.sampled_from([b"SET", b"set", b"APPEND"]), KEYS, st.binary(max_size=20)),
    st.tuples(st.just(b"SET"), KEYS, st.binary(max_size=5), st.just(b"EX"), st.just(b"10")),
    st.tuples(st.sampled_from([b"MGET", b"DEL", b"PING", b"NOPE", b"GET"]), KEYS, KEYS),
    st.tuples(st.just(b"HSET"), KEYS, KEYS, st.binary(max_size=5)),
)


@settings(max_examples=300, deadline=None)
@given(
    requests=st.lists(REQUESTS, max_size=12),
    cut=st.integers(min_value=0, max_value=2000),
    garbage=st.sampled_from([b"", b"PING\r\n", b"*x\r\n", b"$3\r\nabc\r\n", b"*2\r\n$3\r\n"]),
    max_requests=st.integers(min_value=1, max_value=20),
)
def test_route_c_equals_python(
    requests: list[tuple[bytes, ...]], cut: int, garbage: bytes, max_requests: int
) -> None:
    c_route = _speedups().route
    buf = b"".join(resp.command(*r) for r in requests) + garbage
    buf = buf[: max(cut, len(buf) // 2)]
    for pos in (0, min(len(buf), 7)):
        expected = _route(fastpath.route_py, buf, pos, 64, max_requests)
        assert _route(c_route, buf, pos, 64, max_requests) == expected


FRAMES = st.sampled_from(
    [
        b"+OK\r\n",
        b"-ERR x\r\n",
        b":12\r\n",
        b"$3\r\nabc\r\n",
        b"$-1\r\n",
        b"$4\r\na\r\nb\r\n",
        b"_\r\n",
        b"#t\r\n",
        b",1.5\r\n",
        b"(123\r\n",
        b"!3\r\nerr\r\n",
        b"=7\r\ntxt:abc\r\n",
        b"*2\r\n:1\r\n$1\r\nx\r\n",
        b"*-1\r\n",
        b"%1\r\n+k\r\n*1\r\n_\r\n",
        b"~2\r\n+a\r\n+b\r\n",
        b"|1\r\n+ttl\r\n:3\r\n+OK\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(FRAMES, max_size=8),
    cut=st.integers(min_value=0, max_value=200),
    need=st.integers(min_value=0, max_value=10),
    push=st.booleans(),
)
def test_frames_c_equals_python_and_counts_complete_frames(
    frames: list[bytes], cut: int, need: int, push: bool
) -> None:
    buf = b"".join(frames) + (b">2\r\n+x\r\n+y\r\n+OK\r\n" if push else b"")
    buf = buf[:cut] if cut < len(buf) else buf
    expected = fastpath.frames_py(buf, 0, need)
    assert _speedups().frames(buf, 0, need) == expected
    count, end = expected
    assert count <= need and count <= len(frames)
    position = 0
    for frame in frames[:count]:
        position += len(frame)
    assert end == position


@pytest.mark.parametrize("impl", IMPLS)
def test_frames_stop_before_a_push_and_reject_garbage(impl: str) -> None:
    frames = _impl(impl, "frames")
    assert frames(b"+OK\r\n>1\r\n+x\r\n:1\r\n", 0, 5) == (1, 5)
    with pytest.raises((ValueError, resp.RespError)):
        frames(b"?what\r\n", 0, 1)
    with pytest.raises((ValueError, resp.RespError)):
        frames(b"$3\r\nabcd\r\n", 0, 1)


@pytest.mark.parametrize("impl", IMPLS)
def test_interleave_puts_replies_back_in_request_order(impl: str) -> None:
    interleave = _impl(impl, "interleave")
    parts = [b"+a\r\n*1\r\n_\r\n", b"$1\r\nb\r\n-ERR c\r\n"]
    assert interleave(bytes([0, 1, 1, 0]), parts) == b"+a\r\n$1\r\nb\r\n-ERR c\r\n*1\r\n_\r\n"
    with pytest.raises((ValueError, resp.RespError)):
        interleave(bytes([0, 1]), parts)  # frames left over
    with pytest.raises((ValueError, resp.RespError)):
        interleave(bytes([0, 0, 0, 1, 1]), parts)  # too few frames


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=3), FRAMES), max_size=12))
def test_interleave_c_equals_python(items: list[tuple[int, bytes]]) -> None:
    parts = [b"".join(f for g, f in items if g == group) for group in range(4)]
    order = bytes(g for g, _ in items)
    expected = b"".join(f for _, f in items)
    assert fastpath.interleave_py(order, parts) == expected
    assert _speedups().interleave(order, parts) == expected


def test_command_info_round_trips() -> None:
    info = fastpath.FAST_COMMANDS[b"SET"]
    assert (info & 0x7F, (info >> 7) & 1, (info >> 8) - 128) == (1, 0, -3)
    info = fastpath.FAST_COMMANDS[b"get"]
    assert (info & 0x7F, (info >> 7) & 1, (info >> 8) - 128) == (1, 1, 2)
    assert b"MGET" not in fastpath.FAST_COMMANDS and b"PING" not in fastpath.FAST_COMMANDS


PIECES = st.sampled_from(
    [b"*", b"$", b"2", b"3", b"-1", b"-", b"\r\n", b"\r", b"GET", b"a", b"x", b":1", b"0" * 19]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(REQUESTS, max_size=3), st.lists(PIECES, max_size=12), st.integers(0, 300))
def test_request_end_c_equals_python(
    requests: list[tuple[bytes, ...]], pieces: list[bytes], cut: int
) -> None:
    c_end = _speedups().request_end
    whole = b"".join(resp.command(*r) for r in requests)
    for buf in (whole, whole[:cut], b"".join(pieces), whole + b"".join(pieces)):
        for pos in (0, 1):
            assert c_end(buf, pos) == fastpath.request_end_py(buf, pos), (buf, pos)
        assert _route(_speedups().route, buf) == _route(fastpath.route_py, buf)


def test_at_boundary() -> None:
    one = resp.command("SET", "a", "1")
    assert fastpath.at_boundary(b"") and fastpath.at_boundary(one + one)
    assert not fastpath.at_boundary(one + b"*2\r\n$3\r\nGET\r\n")  # between two arguments
    assert not fastpath.at_boundary(one[:-1])
