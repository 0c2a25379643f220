"""Unit tests of redkeeper.placement.ring: naming, order, hash tags, ketama and modula."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redkeeper.errors import ConfigError, RedkeeperError
from redkeeper.placement import (
    DISTRIBUTIONS,
    HASHES,
    NotDeterministicError,
    PoolServer,
    Ring,
    hash_key,
    ketama_point_count,
    tag_content,
)


def named(*names: str, weight: int = 1) -> list[PoolServer]:
    return [PoolServer("127.0.0.1", 7000 + i, weight, name) for i, name in enumerate(names)]


def md5_points(text: str) -> list[int]:
    digest = hashlib.md5(text.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


# --- names and order -----------------------------------------------------------------------


def test_hash_name_rules() -> None:
    assert PoolServer("10.0.0.1", 6379, 3, "shard-a").hash_name == "shard-a"
    assert PoolServer("10.0.0.1", 6379, 3).hash_name == "10.0.0.1:6379"
    assert PoolServer("10.0.0.1", 11211, 3).hash_name == "10.0.0.1"
    assert PoolServer("10.0.0.1", 11211, 3, "x").hash_name == "x"


def test_weight_is_never_part_of_the_name() -> None:
    assert PoolServer("h", 6379, 1).hash_name == PoolServer("h", 6379, 99).hash_name


def test_servers_sort_shorter_names_first_then_bytewise() -> None:
    ring = Ring(named("srv10", "srv9", "b", "aa", "srv100", "a", "Z", "srv2"))
    assert [s.name for s in ring.servers] == [
        "Z",
        "a",
        "b",
        "aa",
        "srv2",
        "srv9",
        "srv10",
        "srv100",
    ]


def test_sort_length_counts_utf8_bytes() -> None:
    ring = Ring(named("é", "ab", "b"))  # "é" is 2 bytes: it sorts after "b", beside "ab"
    assert [s.name for s in ring.servers] == ["b", "ab", "é"]


def test_port_11211_elision_changes_name_order_and_points() -> None:
    short = PoolServer("127.0.0.2", 11211)
    longer = PoolServer("127.0.0.1", 6380)
    ring = Ring([longer, short])
    assert ring.servers == (short, longer)
    continuum = ring.continuum()
    mine = sorted(p for p, index in continuum if index == 0)
    expected = sorted(p for i in range(40) for p in md5_points(f"127.0.0.2-{i}"))
    assert mine == expected


def test_ketama_points_come_from_name_dash_index() -> None:
    ring = Ring(named("server1", "server2"))
    points = {p for p, index in ring.continuum() if index == 0}
    assert set(md5_points("server1-8")) <= points
    assert 3853726576 in points and 2667054752 in points


# --- ketama point counts --------------------------------------------------------------------


@pytest.mark.parametrize("n", [25, 47, 50, 55, 100])
def test_float32_quirk_gives_156_points(n: int) -> None:
    assert ketama_point_count(1, n, n) == 156


@pytest.mark.parametrize("n", [1, 2, 3, 4, 10, 24, 26, 46])
def test_160_points_usually(n: int) -> None:
    assert ketama_point_count(1, n, n) == 160


def test_25_equal_servers_get_156_points_each() -> None:
    ring = Ring(named(*(f"shard{i}" for i in range(25))))
    assert ring.point_counts == (156,) * 25
    assert len(ring.continuum()) == 25 * 156


def test_weights_100000_to_1_leave_the_small_server_without_points() -> None:
    ring = Ring(
        [PoolServer("127.0.0.1", 7000, 100000, "big"), PoolServer("127.0.0.1", 7001, 1, "tiny")]
    )
    assert [s.name for s in ring.servers] == ["big", "tiny"]
    assert ring.point_counts == (316, 0)
    assert {index for _, index in ring.continuum()} == {0}
    assert all(ring.index_of(f"k{i}".encode()) == 0 for i in range(500))


def test_weighted_point_counts() -> None:
    ring = Ring(
        [PoolServer("h", 1, 1, "a"), PoolServer("h", 2, 2, "b"), PoolServer("h", 3, 5, "c")]
    )
    assert ring.point_counts == (60, 120, 300)


def test_very_long_names_are_cut_like_snprintf() -> None:
    ring = Ring(named("x" * 300, "y"))
    first = {p for p, index in ring.continuum() if index == 1}  # the long name sorts last
    assert first == set(md5_points("x" * 272))


# --- dispatch ---------------------------------------------------------------------------------


def test_ketama_lookup_is_first_point_at_or_above_the_hash_with_wrap() -> None:
    ring = Ring(named("a", "b", "c"))
    continuum = ring.continuum()
    for i in range(300):
        key = f"key:{i}".encode()
        placement = ring.locate(key)
        h = hash_key("fnv1a_64", key)
        above = [(p, index) for p, index in continuum if p >= h]
        point, index = above[0] if above else continuum[0]
        assert (placement.point, placement.index, placement.key_hash) == (point, index, h)
        assert placement.server == ring.servers[index]
        assert placement.name == ring.servers[index].hash_name


def test_modula_one_slot_per_weight_unit() -> None:
    ring = Ring(
        [PoolServer("h", 1, 1, "a"), PoolServer("h", 2, 2, "b")], hash="md5", distribution="modula"
    )
    for i in range(300):
        key = f"key:{i}".encode()
        h = hash_key("md5", key)
        placement = ring.locate(key)
        assert placement.point is None
        assert placement.index == (0 if h % 3 == 0 else 1)


def test_modula_with_a_huge_total_weight_bisects() -> None:
    weights = [1 << 21, 3, 1 << 20]
    ring = Ring(
        [PoolServer("h", i + 1, w, f"s{i}") for i, w in enumerate(weights)], distribution="modula"
    )
    for i in range(300):
        key = f"key:{i}".encode()
        slot = hash_key("fnv1a_64", key) % sum(weights)
        expected = 0 if slot < weights[0] else 1 if slot < weights[0] + 3 else 2
        assert ring.index_of(key) == expected == ring.locate(key).index


@pytest.mark.parametrize("distribution", ["ketama", "modula"])
def test_empty_key_hashes_to_zero(distribution: str) -> None:
    ring = Ring(named("a", "b", "c"), distribution=distribution)
    placement = ring.locate(b"")
    assert placement.key_hash == 0
    if distribution == "ketama":
        assert placement.point == ring.continuum()[0][0]
        assert placement.index == ring.continuum()[0][1]
    else:
        assert placement.index == 0
    assert ring.index_of(b"") == placement.index


@pytest.mark.parametrize("distribution", ["ketama", "modula"])
def test_one_server_pool_is_always_index_0(distribution: str) -> None:
    ring = Ring(named("only"), hash="crc16", distribution=distribution)
    for key in (b"", b"apple", b"\xff" * 10):
        assert ring.index_of(key) == 0
        assert ring.locate(key).index == 0
        assert ring.locate(key).key_hash == 0


# --- hash tags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "hashed"),
    [
        (b"user:{1000}:name", b"1000"),
        (b"{a}", b"a"),
        (b"{}", b"{}"),  # empty content: the whole key
        (b"x{}y", b"x{}y"),
        (b"{}{x}", b"{}{x}"),  # only the first tag counts, even when empty
        (b"{a}{b}", b"a"),  # only the first tag
        (b"{{a}}", b"{a"),  # nested: from the first "{" to the first "}" after it
        (b"{a{b}c}", b"a{b"),
        (b"{abc", b"{abc"),  # unbalanced
        (b"abc}", b"abc}"),
        (b"a}b{c", b"a}b{c"),
        (b"}{a}", b"a"),
        (b"", b""),
        (b"{\xe9}", b"\xe9"),
    ],
)
def test_tag_content(key: bytes, hashed: bytes) -> None:
    assert tag_content(key, b"{}") == hashed
    ring = Ring(named("a", "b", "c"), hash_tag="{}")
    expected = hash_key("fnv1a_64", hashed) if hashed else 0
    assert ring.locate(key).key_hash == expected


def test_tag_with_the_same_opening_and_closing_character() -> None:
    assert tag_content(b"a$b$c", b"$$") == b"b"
    assert tag_content(b"a$$c", b"$$") == b"a$$c"


def test_tagged_keys_land_together() -> None:
    ring = Ring(named(*(f"s{i}" for i in range(10))), hash_tag="{}")
    homes = {ring.index_of(f"{{user42}}:{field}".encode()) for field in range(50)}
    assert len(homes) == 1


def test_without_hash_tag_braces_are_plain_bytes() -> None:
    ring = Ring(named("a", "b", "c"))
    assert ring.locate(b"{a}").key_hash == hash_key("fnv1a_64", b"{a}")


# --- consistency and errors ---------------------------------------------------------------


@settings(max_examples=60)
@given(
    keys=st.lists(st.binary(max_size=40), min_size=1, max_size=30),
    hash_name=st.sampled_from(HASHES),
    distribution=st.sampled_from(["ketama", "modula"]),
    tag=st.sampled_from([None, "{}", "$$"]),
    weights=st.lists(st.integers(1, 5), min_size=1, max_size=6),
)
def test_index_of_agrees_with_locate(
    keys: list[bytes], hash_name: str, distribution: str, tag: str | None, weights: list[int]
) -> None:
    servers = [PoolServer("127.0.0.1", 7000 + i, w) for i, w in enumerate(weights)]
    ring = Ring(servers, hash=hash_name, distribution=distribution, hash_tag=tag)
    for key in keys:
        placement = ring.locate(key)
        assert ring.index_of(key) == placement.index
        assert 0 <= placement.index < len(servers)
        assert ring.servers[placement.index] == placement.server


def test_distributions() -> None:
    assert DISTRIBUTIONS == ("ketama", "modula", "random")


def test_random_is_not_deterministic() -> None:
    with pytest.raises(NotDeterministicError) as info:
        Ring(named("a", "b"), distribution="random")
    assert isinstance(info.value, RedkeeperError)
    assert "random" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hash": "sha256"}, "hash"),
        ({"distribution": "rendezvous"}, "distribution"),
        ({"hash_tag": "{"}, "hash_tag"),
        ({"hash_tag": "{}}"}, "hash_tag"),
        ({"hash_tag": ""}, "hash_tag"),
    ],
)
def test_bad_pool_settings(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Ring(named("a", "b"), **kwargs)
    problems = info.value.problems
    assert [p.field for p in problems] == [field]
    assert problems[0].file == "<pool>"
    assert problems[0].fix


def test_hash_tag_length_is_counted_in_bytes_like_nutcracker() -> None:
    with pytest.raises(ConfigError):
        Ring(named("a", "b"), hash_tag="é}")  # 3 bytes
    ring = Ring(named("a", "b"), hash_tag="é")  # 2 bytes: 0xC3 opens, 0xA9 closes
    assert ring.locate(b"x\xc3k\xa9y").key_hash == hash_key("fnv1a_64", b"k")


def test_no_servers() -> None:
    with pytest.raises(ConfigError) as info:
        Ring([])
    assert info.value.problems[0].field == "servers"


@pytest.mark.parametrize(
    "servers",
    [
        [PoolServer("h", 1, 0, "a"), PoolServer("h", 2, 1, "b")],  # zero weight
        [PoolServer("h", 1, 1, "a"), PoolServer("h", 2, 1, "a")],  # duplicate name
        [PoolServer("h", 6379), PoolServer("h", 6379, 2)],  # same host:port, weight ignored
        [PoolServer("h", 70000)],  # bad port
        [PoolServer("h", 1, 1, "two words")],
        [PoolServer("h", 1, 1, "")],
    ],
)
def test_bad_servers(servers: list[PoolServer]) -> None:
    with pytest.raises(ConfigError) as info:
        Ring(servers)
    assert {p.field for p in info.value.problems} == {"servers"}


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        Ring([], hash="nope", distribution="nope", hash_tag="x")
    assert [p.field for p in info.value.problems] == [
        "hash",
        "distribution",
        "hash_tag",
        "servers",
    ]
