"""Unit tests of redkeeper.placement.hashes: twemproxy 0.5.0's 12 hashkit functions."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redkeeper.errors import ConfigError
from redkeeper.placement import HASHES, hash_key
from redkeeper.placement.hashes import HASH_FUNCTIONS, ketama_points

# src/test_all.c (test_hash_algorithms): the libmemcached vectors for the key "apple".
APPLE = {
    "one_at_a_time": 2297466611,
    "md5": 3195025439,
    "crc16": 3662830516,
    "crc32": 10542,
    "crc32a": 2838417488,
    "fnv1_32": 67176023,
    "fnv1a_32": 280767167,
    "fnv1_64": 473199127,
    "fnv1a_64": 1488911807,
    "hsieh": 3738850110,
    "jenkins": 1442444624,
    "murmur": 4142305122,
}

# Values of twemproxy 0.5.0's own src/hashkit/*.c, compiled with gcc on x86-64 (signed char):
# keys with bytes >= 0x80 (sign extension), the empty key and every tail length class.
C_VECTORS: dict[bytes, dict[str, int]] = {
    b"": {
        "one_at_a_time": 0,
        "md5": 3649838548,
        "crc16": 0,
        "crc32": 0,
        "crc32a": 0,
        "fnv1_64": 2216829733,
        "fnv1a_64": 2216829733,
        "fnv1_32": 2166136261,
        "fnv1a_32": 2166136261,
        "hsieh": 0,
        "murmur": 0,
        "jenkins": 3735928572,
    },
    b"\xe9": {
        "one_at_a_time": 1083721983,
        "md5": 1988560436,
        "crc16": 27655,
        "crc32": 3028,
        "crc32a": 198489425,
        "fnv1_64": 2046707766,
        "fnv1a_64": 2046701220,
        "fnv1_32": 4210270966,
        "fnv1a_32": 3958606660,
        "hsieh": 1008785338,
        "murmur": 3710375128,
        "jenkins": 120703460,
    },
    "é".encode(): {
        "one_at_a_time": 26298542,
        "md5": 2546851174,
        "crc16": 15296452,
        "crc32": 3588,
        "crc32a": 235179326,
        "fnv1_64": 3035330621,
        "fnv1a_64": 3033280513,
        "fnv1_32": 376872957,
        "fnv1a_32": 1023043777,
        "hsieh": 3203012475,
        "murmur": 2111574343,
        "jenkins": 934048990,
    },
    b"\xff\xfe\xfd": {
        "one_at_a_time": 1196771768,
        "md5": 3259918217,
        "crc16": 504217887,
        "crc32": 2282,
        "crc32a": 149598061,
        "fnv1_64": 2481844359,
        "fnv1a_64": 2400096983,
        "fnv1_32": 2437714183,
        "fnv1a_32": 3211609367,
        "hsieh": 3649655134,
        "murmur": 3269769215,
        "jenkins": 573299006,
    },
    b"key:{\x80}\xff": {
        "one_at_a_time": 4277763385,
        "md5": 3427351670,
        "crc16": 1351209297,
        "crc32": 7177,
        "crc32a": 470362307,
        "fnv1_64": 2930222097,
        "fnv1a_64": 551813809,
        "fnv1_32": 3988318577,
        "fnv1a_32": 587597905,
        "hsieh": 253830499,
        "murmur": 1897013482,
        "jenkins": 1923358291,
    },
    b"x" * 13: {
        "one_at_a_time": 1219329274,
        "md5": 1057651935,
        "crc16": 683138467,
        "crc32": 25713,
        "crc32a": 3832644310,
        "fnv1_64": 3674287159,
        "fnv1a_64": 1866686455,
        "fnv1_32": 3499681527,
        "fnv1a_32": 820477559,
        "hsieh": 27520843,
        "murmur": 706967395,
        "jenkins": 3961658998,
    },
    bytes(range(256)): {
        "one_at_a_time": 3571313950,
        "md5": 3680880866,
        "crc16": 3439689301,
        "crc32": 10501,
        "crc32a": 688229491,
        "fnv1_64": 1421105445,
        "fnv1a_64": 3252658213,
        "fnv1_32": 1148338629,
        "fnv1a_32": 3725316805,
        "hsieh": 2804200527,
        "murmur": 3391133120,
        "jenkins": 2562932646,
    },
}


def test_the_twelve_hash_names() -> None:
    assert set(HASHES) == set(APPLE)
    assert len(HASHES) == 12
    assert set(HASH_FUNCTIONS) == set(HASHES)


@pytest.mark.parametrize("name", sorted(APPLE))
def test_apple_vectors_of_test_all_c(name: str) -> None:
    assert hash_key(name, b"apple") == APPLE[name]


@pytest.mark.parametrize("key", list(C_VECTORS), ids=lambda k: repr(k[:12]))
@pytest.mark.parametrize("name", sorted(APPLE))
def test_vectors_of_the_c_hashkit(name: str, key: bytes) -> None:
    assert hash_key(name, key) == C_VECTORS[key][name]


def test_ketama_md5_points_of_test_all_c() -> None:
    points = ketama_points(b"server1-8")
    assert points[0] == 3853726576
    assert points[3] == 2667054752


def test_fnv1a_64_sign_extends_bytes_over_0x7f() -> None:
    key = "é".encode()
    assert hash_key("fnv1a_64", key) == 3033280513
    # What FNV-1a with unsigned bytes (and twemproxy's 32-bit constants) would give instead:
    h = 0x84222325
    for b in key:
        h = ((h ^ b) * 0x1B3) & 0xFFFFFFFF
    assert h == 3071811073
    assert hash_key("fnv1a_64", key) != h


def test_unknown_hash_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        hash_key("sha1", b"apple")
    problem = info.value.problems[0]
    assert problem.field == "hash"
    assert "sha1" in problem.message
    assert "fnv1a_64" in problem.fix


@given(st.binary(max_size=300))
def test_every_hash_is_an_unsigned_32_bit_value(key: bytes) -> None:
    for name in HASHES:
        value = hash_key(name, key)
        assert 0 <= value <= 0xFFFFFFFF


@given(st.binary(max_size=300))
def test_crc32a_is_zlib_and_crc32_its_15_bits(key: bytes) -> None:
    assert hash_key("crc32a", key) == zlib.crc32(key)
    assert hash_key("crc32", key) == (zlib.crc32(key) >> 16) & 0x7FFF


@given(st.binary(max_size=64).filter(lambda k: k.isascii()))
def test_fnv1a_64_fast_ascii_path_matches_signed_path(key: bytes) -> None:
    # ASCII keys skip the sign-extension table: bytes < 0x80 are the same signed or not.
    h = 0x84222325
    for b in key:
        h = ((h ^ b) * 0x1B3) & 0xFFFFFFFF
    assert hash_key("fnv1a_64", key) == h


@given(st.binary(min_size=1, max_size=64))
def test_fnv1_64_is_the_low_half_of_64_bit_fnv1_on_signed_chars(key: bytes) -> None:
    h = 0xCBF29CE484222325
    for b in key:
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h ^= b if b < 0x80 else b | 0xFFFFFFFFFFFFFF00
    assert hash_key("fnv1_64", key) == h & 0xFFFFFFFF
