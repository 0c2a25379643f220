"""Unit: the RESP2/RESP3 reply scanner, element splitting, encoders, inline parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redkeeper.server import resp

FRAMES = [
    b"+OK\r\n",
    b"-ERR wrong\r\n",
    b":42\r\n",
    b":-1\r\n",
    b"$3\r\nabc\r\n",
    b"$0\r\n\r\n",
    b"$-1\r\n",
    b"$4\r\na\r\nb\r\n",  # CRLF inside a bulk
    b"*-1\r\n",
    b"*0\r\n",
    b"*2\r\n$1\r\na\r\n$-1\r\n",
    b"*2\r\n*1\r\n:1\r\n*0\r\n",
    b"_\r\n",  # RESP3 null
    b"#t\r\n",
    b",3.14\r\n",
    b",inf\r\n",
    b"(3492890328409238509324850943850943825024385\r\n",
    b"!21\r\nSYNTAX invalid syntax\r\n",
    b"=15\r\ntxt:Some string\r\n",
    b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
    b"~3\r\n:1\r\n:2\r\n_\r\n",
    b">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n",
    b"|1\r\n+ttl\r\n:3600\r\n$3\r\nabc\r\n",  # attribute + the reply it annotates
    b"%1\r\n$1\r\nk\r\n*2\r\n_\r\n%0\r\n",
]


@pytest.mark.parametrize("frame", FRAMES)
def test_frame_end_finds_exactly_one_frame_and_every_prefix_is_incomplete(frame: bytes) -> None:
    assert resp.frame_end(frame) == len(frame)
    assert resp.frame_end(b"xx" + frame + b"+NEXT\r\n", 2) == 2 + len(frame)
    for cut in range(len(frame)):
        assert resp.frame_end(frame[:cut]) == -1, frame[:cut]


@given(st.lists(st.sampled_from(FRAMES), min_size=1, max_size=20))
def test_concatenated_frames_split_back(frames: list[bytes]) -> None:
    buf = b"".join(frames)
    pos, found = 0, []
    while pos < len(buf):
        end = resp.frame_end(buf, pos)
        found.append(buf[pos:end])
        pos = end
    assert found == frames


@pytest.mark.parametrize("bad", [b"?x\r\n", b"$x\r\n", b"$-2\r\n", b"*-2\r\n", b"$1\r\nab\r\n"])
def test_malformed_frames_raise(bad: bytes) -> None:
    with pytest.raises(resp.RespError):
        resp.frame_end(bad)


def test_elements_and_integers() -> None:
    assert resp.elements(b"*3\r\n$1\r\na\r\n_\r\n$-1\r\n") == [b"$1\r\na\r\n", b"_\r\n", b"$-1\r\n"]
    assert resp.elements(b"*-1\r\n") is None
    assert resp.elements(b"$1\r\na\r\n") is None
    assert resp.elements(b"~1\r\n:1\r\n") == [b":1\r\n"]
    assert resp.integer_value(b":17\r\n") == 17
    assert resp.integer_value(b"+OK\r\n") is None
    assert resp.is_error(b"-ERR x\r\n") and resp.is_error(b"!3\r\nERR\r\n")
    assert not resp.is_error(b"+OK\r\n")


def test_encoders() -> None:
    assert resp.error("ERR a\r\nb") == b"-ERR a  b\r\n"
    assert resp.integer(-3) == b":-3\r\n"
    assert resp.bulk(b"ab") == b"$2\r\nab\r\n"
    assert resp.bulk(None, 2) == b"$-1\r\n"
    assert resp.bulk(None, 3) == b"_\r\n"
    assert resp.array([b":1\r\n", b"+a\r\n"]) == b"*2\r\n:1\r\n+a\r\n"
    pairs = [(b"+k\r\n", b":1\r\n")]
    assert resp.mapping(pairs, 3) == b"%1\r\n+k\r\n:1\r\n"
    assert resp.mapping(pairs, 2) == b"*2\r\n+k\r\n:1\r\n"
    assert resp.command("GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"PING", [b"PING"]),
        (b"  SET  a   b ", [b"SET", b"a", b"b"]),
        (b'SET a "b c"', [b"SET", b"a", b"b c"]),
        (b"SET a 'b c'", [b"SET", b"a", b"b c"]),
        (b'ECHO "x\\ty\\n\\x41"', [b"ECHO", b"x\ty\nA"]),
        (b"ECHO 'it\\'s'", [b"ECHO", b"it's"]),
        (b'ECHO ""', [b"ECHO", b""]),
        (b"", []),
    ],
)
def test_split_inline(line: bytes, args: list[bytes]) -> None:
    assert resp.split_inline(line) == args


@pytest.mark.parametrize("line", [b'SET a "b', b"SET a 'b", b'SET a "b"c'])
def test_split_inline_unbalanced(line: bytes) -> None:
    with pytest.raises(resp.RespError, match="unbalanced quotes"):
        resp.split_inline(line)


def test_first_bad_header() -> None:
    ok = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert resp.first_bad_header(ok * 3, 10, 100) is None
    assert resp.first_bad_header(ok + b"*11\r\n", 10, 100) == (len(ok), "invalid multibulk length")
    assert resp.first_bad_header(ok + b"*1\r\n$101\r\n", 10, 100) == (
        len(ok) + 4,
        "invalid bulk length",
    )
    assert resp.first_bad_header(b"*1\r\n*1\r\n", 10, 100) == (4, "expected '$', got '*'")
    # a big number inside a bulk payload is data, not a header
    assert resp.first_bad_header(b"*1\r\n$8\r\n*9999999\r\n", 10, 100) is None
    assert resp.first_bad_header(b"*1\r\n$50\r\nabc", 10, 100) is None  # incomplete: fine
