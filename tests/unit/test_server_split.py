"""Unit: splitting multi-key requests per shard and merging the fragment replies back."""

from __future__ import annotations

from redkeeper.server import resp, split
from redkeeper.server.commands import lookup

SHARD_OF = {b"a": 0, b"b": 1, b"c": 0, b"d": 1, b"{t}x": 0, b"{t}y": 0}


def index_of(key: bytes) -> int:
    return SHARD_OF[key]


def _split(*args: bytes) -> int | split.Split:
    spec = lookup(args[0])
    assert spec is not None
    return split.split(spec, list(args), index_of)


def test_one_shard_goes_whole() -> None:
    assert _split(b"MGET", b"a", b"c") == 0
    assert _split(b"DEL", b"b") == 1
    assert _split(b"MSET", b"b", b"1", b"d", b"2") == 1


def test_mget_fragments_keep_request_order_and_merge_back() -> None:
    plan = _split(b"MGET", b"a", b"b", b"c", b"d")
    assert isinstance(plan, split.Split)
    assert [f.shard for f in plan.fragments] == [0, 1]
    assert plan.fragments[0].payload == resp.command("MGET", "a", "c")
    assert plan.fragments[1].payload == resp.command("MGET", "b", "d")
    replies = [b"*2\r\n$1\r\nA\r\n$-1\r\n", b"*2\r\n$1\r\nB\r\n$1\r\nD\r\n"]
    assert plan.merger.merge(replies) == b"*4\r\n$1\r\nA\r\n$1\r\nB\r\n$-1\r\n$1\r\nD\r\n"
    # RESP3 nulls pass through untranslated
    resp3 = [b"*2\r\n_\r\n$1\r\nC\r\n", b"*2\r\n_\r\n_\r\n"]
    assert plan.merger.merge(resp3) == b"*4\r\n_\r\n_\r\n$1\r\nC\r\n_\r\n"


def test_mget_fragment_error_becomes_the_reply() -> None:
    plan = _split(b"MGET", b"a", b"b")
    assert isinstance(plan, split.Split)
    error = b"-ERR redkeeper: shard2 backend x unreachable: refused\r\n"
    assert plan.merger.merge([b"*1\r\n$1\r\nA\r\n", error]) == error
    assert plan.merger.merge([b"*1\r\n$1\r\nA\r\n", b"!3\r\nERR\r\n"]) == b"!3\r\nERR\r\n"
    assert plan.merger.merge([b"*1\r\n$1\r\nA\r\n", b":1\r\n"]).startswith(
        b"-ERR redkeeper: unexpected MGET"
    )


def test_sum_commands() -> None:
    for name in (b"DEL", b"UNLINK", b"EXISTS", b"TOUCH"):
        plan = _split(name, b"a", b"b", b"c", b"d", b"a")
        assert isinstance(plan, split.Split)
        assert plan.fragments[0].payload == resp.command(name, "a", "c", "a")
        assert plan.merger.merge([b":3\r\n", b":2\r\n"]) == b":5\r\n"
        assert plan.merger.merge([b":3\r\n", b"-ERR x\r\n"]) == b"-ERR x\r\n"


def test_mset_ok_only_if_all_ok() -> None:
    plan = _split(b"MSET", b"a", b"1", b"b", b"2", b"c", b"3")
    assert isinstance(plan, split.Split)
    assert plan.fragments[0].payload == resp.command("MSET", "a", "1", "c", "3")
    assert plan.fragments[1].payload == resp.command("MSET", "b", "2")
    assert plan.merger.merge([b"+OK\r\n", b"+OK\r\n"]) == b"+OK\r\n"
    assert plan.merger.merge([b"+OK\r\n", b"-OOM no\r\n"]) == b"-OOM no\r\n"


def test_one_shard_rule() -> None:
    spec = lookup(b"RENAME")
    assert spec is not None
    names = ["shard1", "shard2"]
    assert split.one_shard(spec, [b"{t}x", b"{t}y"], index_of, names, "{}") == 0
    error = split.one_shard(spec, [b"a", b"b"], index_of, names, "{}")
    assert isinstance(error, str)
    assert error.startswith("ERR redkeeper: RENAME keys span shards (shard1, shard2)")
    assert "hash tag" in error and "{user1}" in error
    untagged = split.one_shard(spec, [b"a", b"b"], index_of, names, None)
    assert isinstance(untagged, str) and "no hash_tag" in untagged
