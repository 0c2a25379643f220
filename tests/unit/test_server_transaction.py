"""Unit: the queue-time rules of a transaction (MULTI ... EXEC on one shard)."""

from __future__ import annotations

import pytest

from redkeeper.server import commands, resp, transaction
from redkeeper.server.transaction import QUEUED, Transaction

SHARD_OF = {b"a": 0, b"b": 1, b"c": 0, b"{t}x": 1, b"{t}y": 1}
NAMES = ("shard1", "shard2")


def index_of(key: bytes) -> int:
    return SHARD_OF[key]


def _queue(txn: Transaction, *args: bytes | int) -> bytes:
    spec = commands.lookup(args[0]) if isinstance(args[0], bytes) else None
    return txn.queue(spec, list(args), index_of, NAMES, "{}")  # type: ignore[arg-type]


def _txn(max_commands: int = 100, max_bytes: int = 10_000) -> Transaction:
    return Transaction(max_commands, max_bytes)


def test_commands_on_one_shard_are_queued_in_order() -> None:
    txn = _txn()
    assert _queue(txn, b"SET", b"a", b"1") == QUEUED
    assert _queue(txn, b"incr", b"c") == QUEUED
    assert _queue(txn, b"MGET", b"a", b"c") == QUEUED  # multi-key on one shard: whole
    assert _queue(txn, b"DEL", b"a", b"c") == QUEUED
    assert _queue(txn, b"PING") == QUEUED  # keyless, answered by the backend at EXEC
    assert not txn.aborted and txn.shard == 0 and txn.shard_at_exec(index_of) == 0
    assert txn.block() == [
        resp.command("MULTI"),
        resp.command("SET", "a", "1"),
        resp.command("incr", "c"),
        resp.command("MGET", "a", "c"),
        resp.command("DEL", "a", "c"),
        resp.command("PING"),
        resp.command("EXEC"),
    ]


def test_the_first_key_decides_the_shard_and_reads_too() -> None:
    txn = _txn()
    assert _queue(txn, b"GET", b"b") == QUEUED
    assert _queue(txn, b"GET", b"{t}x") == QUEUED
    assert txn.shard == 1 and txn.shard_at_exec(index_of) == 1
    keyless = _txn()
    assert _queue(keyless, b"ECHO", b"x") == QUEUED
    assert keyless.shard is None and keyless.shard_at_exec(index_of) == 0


def test_a_key_on_another_shard_aborts() -> None:
    txn = _txn()
    assert _queue(txn, b"SET", b"a", b"1") == QUEUED
    reply = _queue(txn, b"SET", b"b", b"2")
    assert reply.startswith(b"-ERR redkeeper: a transaction runs on one shard: the keys of")
    assert b"SET are on shard2, the transaction's first key is on shard1" in reply
    assert b"{user1}:a" in reply and reply.endswith(b"\r\n")
    assert txn.aborted and txn.requests == []
    assert _queue(txn, b"GET", b"c") == QUEUED  # as Redis: still QUEUED, EXEC aborts


def test_multi_key_command_spanning_shards_aborts() -> None:
    txn = _txn()
    reply = _queue(txn, b"MGET", b"a", b"b")
    assert reply.startswith(b"-ERR redkeeper: MGET keys span shards (shard1, shard2)")
    assert txn.aborted


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((b"NOPE", b"a"), b"-ERR redkeeper: unknown or unsupported command 'NOPE'"),
        ((b"GET",), b"-ERR wrong number of arguments for 'get' command"),
        ((b"MSET", b"a", b"1", b"c"), b"-ERR wrong number of arguments for 'mset' command"),
        ((b"KEYS", b"*"), b"-ERR redkeeper: KEYS is not supported through the proxy"),
        ((b"EVAL", b"s", b"0"), b"-ERR redkeeper: EVAL with 0 keys cannot be routed"),
        ((b"CLIENT", b"SETNAME", b"x"), b"-ERR redkeeper: CLIENT inside MULTI is not supported"),
        ((b"HELLO", b"3"), b"-ERR redkeeper: HELLO inside MULTI is not supported"),
    ],
)
def test_queue_time_errors_abort(args: tuple[bytes, ...], expected: bytes) -> None:
    txn = _txn()
    assert _queue(txn, b"SET", b"a", b"1") == QUEUED
    assert _queue(txn, *args).startswith(expected)
    assert txn.aborted


def test_nested_multi_and_watch_are_errors_that_do_not_abort() -> None:
    txn = _txn()
    assert _queue(txn, b"MULTI") == transaction.NESTED == b"-ERR MULTI calls can not be nested\r\n"
    assert _queue(txn, b"WATCH", b"a") == b"-ERR WATCH inside MULTI is not allowed\r\n"
    assert not txn.aborted
    assert _queue(txn, b"UNWATCH") == QUEUED


def test_limits_abort_and_free_the_buffer() -> None:
    txn = _txn(max_commands=2)
    assert _queue(txn, b"SET", b"a", b"1") == QUEUED
    assert _queue(txn, b"SET", b"a", b"2") == QUEUED
    assert _queue(txn, b"SET", b"a", b"3").startswith(b"-ERR redkeeper: transaction too large")
    assert txn.aborted and txn.requests == [] and txn.size == 0
    small = _txn(max_bytes=40)
    assert _queue(small, b"SET", b"a", b"1") == QUEUED
    assert _queue(small, b"SET", b"a", b"x" * 40).startswith(b"-ERR redkeeper: transaction too")


def test_a_non_bulk_argument_is_a_protocol_error() -> None:
    with pytest.raises(resp.RespError):
        _queue(_txn(), b"SET", b"a", 5)


def test_replies_are_redis_texts() -> None:
    assert transaction.EXECABORT == (
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    )
    assert transaction.EXEC_WITHOUT_MULTI == b"-ERR EXEC without MULTI\r\n"
    assert transaction.DISCARD_WITHOUT_MULTI == b"-ERR DISCARD without MULTI\r\n"
    assert transaction.EMPTY == b"*0\r\n"
