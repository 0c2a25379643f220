"""repoint_file and load_pools against the real `nutcracker -t` (twemproxy 0.5.0)."""

from __future__ import annotations

import difflib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from redkeeper.errors import NutcrackerConfigError
from redkeeper.model import Address
from redkeeper.process import find_binary
from redkeeper.proxy.twemproxy import load_pools, repoint_file, validate_with_nutcracker

pytestmark = pytest.mark.integration

HAND_WRITTEN = """\
# nutcracker.yml, edited by hand over the years
alpha:                       # the main pool
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: false
  redis: true
  server_retry_timeout: 2000
  servers:
      # shard1 is the big one
      - 127.0.0.1:6666:3 shard1
      - '127.0.0.1:7666:1 shard2'     # quoted
      -   "127.0.0.1:8666:2 shard3"

beta:
    servers:
    - 127.0.0.1:6666:10 shard1
    - 127.0.0.1:9666:1 other    # one space before the name, or nutcracker refuses
    redis: true
    listen: 127.0.0.1:22122
    timeout: 400
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "nutcracker.yml"
    path.write_text(HAND_WRITTEN)
    path.chmod(0o640)
    return path


def nutcracker_accepts(path: Path) -> bool:
    done = subprocess.run(
        [find_binary("nutcracker"), "-t", "-c", str(path)],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0


def only_changed_line(old: str, new: str) -> list[tuple[str, str]]:
    a, b = old.splitlines(True), new.splitlines(True)
    pairs: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if tag != "equal":
            assert tag == "replace" and i2 - i1 == j2 - j1, (tag, a[i1:i2], b[j1:j2])
            pairs += zip(a[i1:i2], b[j1:j2], strict=True)
    return pairs


def assert_only_host_port_changed(old_line: str, new_line: str, old_hp: str, new_hp: str) -> None:
    start = old_line.index(old_hp)
    assert old_line.count(old_hp) == 1
    assert new_line == old_line[:start] + new_hp + old_line[start + len(old_hp) :]


def test_hand_written_file_is_valid_for_nutcracker_and_redkeeper(conf: Path) -> None:
    validate_with_nutcracker(conf)
    pools = load_pools(HAND_WRITTEN, source=str(conf))
    assert [s.weight for s in pools["alpha"].servers] == [3, 1, 2]
    assert pools["alpha"].hash_tag == "{}"


def test_repoint_one_shard_changes_exactly_its_host_port(conf: Path) -> None:
    new = repoint_file(conf, {"shard2": Address("127.0.0.1", 17666)})
    assert new is not None
    assert conf.read_text() == new
    [(old_line, new_line)] = only_changed_line(HAND_WRITTEN, new)
    assert old_line == "      - '127.0.0.1:7666:1 shard2'     # quoted\n"
    assert_only_host_port_changed(old_line, new_line, "127.0.0.1:7666", "127.0.0.1:17666")
    assert (conf.parent / "nutcracker.yml.bak").read_text() == HAND_WRITTEN
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert nutcracker_accepts(conf)
    assert sorted(p.name for p in conf.parent.iterdir()) == ["nutcracker.yml", "nutcracker.yml.bak"]


def test_repoint_two_names_at_once_in_every_pool(conf: Path) -> None:
    changes = {"shard1": Address("10.0.0.11", 6379), "shard3": Address("10.0.0.13", 6380)}
    new = repoint_file(conf, changes)
    assert new is not None
    changed = only_changed_line(HAND_WRITTEN, new)
    assert len(changed) == 3  # shard1 is in both pools
    expected = [
        ("127.0.0.1:6666", "10.0.0.11:6379"),
        ("127.0.0.1:8666", "10.0.0.13:6380"),
        ("127.0.0.1:6666", "10.0.0.11:6379"),
    ]
    for (old_line, new_line), (old_hp, new_hp) in zip(changed, expected, strict=True):
        assert_only_host_port_changed(old_line, new_line, old_hp, new_hp)
    pools = load_pools(conf.read_text(), source=str(conf))
    assert pools["beta"].server("shard1") is not None
    assert pools["beta"].server("other") == load_pools(HAND_WRITTEN, source="x")["beta"].server(
        "other"
    )
    assert nutcracker_accepts(conf)

    # a second, different repoint keeps the previous version as the backup
    assert repoint_file(conf, {"shard3": Address("10.0.0.13", 6381)}) is not None
    assert (conf.parent / "nutcracker.yml.bak").read_text() == new


def test_no_change_writes_nothing(conf: Path) -> None:
    os.utime(conf, ns=(1_000_000_000, 1_000_000_000))
    before = conf.stat()
    same = {"shard1": Address("127.0.0.1", 6666), "other": Address("127.0.0.1", 9666)}
    assert repoint_file(conf, same) is None
    after = conf.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in conf.parent.iterdir()] == ["nutcracker.yml"]


TOO_LONG_SOCKET = "/tmp/" + "x" * 120 + ".sock"  # sun_path holds 108 bytes


@pytest.mark.parametrize(
    ("content", "changes", "expected"),
    [
        (HAND_WRITTEN.replace("  hash: fnv1a_64", "  hash: [fnv1a_64"), None, "invalid YAML"),
        (
            HAND_WRITTEN.replace("127.0.0.1:9666:1 other", "127.0.0.1:9666:1"),
            None,
            "beta.servers[1]: line 19: server '127.0.0.1:9666:1' has no name",
        ),
        (HAND_WRITTEN, {"shard7": Address("10.0.0.1", 1)}, "no pool has a server named 'shard7'"),
        (
            HAND_WRITTEN + "    reuseport: true\n",
            None,
            "beta.reuseport: line 23: unknown key (fatal in nutcracker 0.5.0)",
        ),
        # redkeeper's checks pass, nutcracker -t refuses (it resolves listen addresses)
        (
            HAND_WRITTEN.replace("listen: 127.0.0.1:22122", f"listen: {TOO_LONG_SOCKET}"),
            None,
            "nutcracker -t rejected it: nutcracker: configuration file '{path}' syntax is invalid",
        ),
    ],
)
def test_errors_leave_file_and_backup_untouched(
    tmp_path: Path, content: str, changes: dict[str, Address] | None, expected: str
) -> None:
    path = tmp_path / "nutcracker.yml"
    path.write_text(content)
    bak = tmp_path / "nutcracker.yml.bak"
    bak.write_text("previous\n")
    before = path.stat()
    with pytest.raises(NutcrackerConfigError) as excinfo:
        repoint_file(path, changes or {"shard1": Address("10.0.0.1", 6379)})
    message = str(excinfo.value)
    assert expected.format(path=path) in message
    assert all(p.file == str(path) for p in excinfo.value.problems)
    assert ".tmp" not in message  # the temp file nutcracker checked is never named
    assert path.read_text() == content
    assert path.stat().st_ino == before.st_ino
    assert bak.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nutcracker.yml", "nutcracker.yml.bak"]


def test_nutcracker_message_comes_with_redkeeper_diagnosis(conf: Path) -> None:
    conf.write_text(HAND_WRITTEN.replace("  hash: fnv1a_64", "  hash: FNV1A_64"))
    with pytest.raises(NutcrackerConfigError) as excinfo:
        validate_with_nutcracker(conf)
    first, second = excinfo.value.problems
    # nutcracker 0.5.0 -t prints its verdict twice and no reason; we print it once
    assert first.message == (
        f"nutcracker -t rejected it: nutcracker: configuration file '{conf}' syntax is invalid"
    )
    assert str(second) == (
        f"{conf}: alpha.hash: line 4: 'FNV1A_64' is not a hash (fix: one of: one_at_a_time, "
        "md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins)"
    )


BASE = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1 s1\n"


@pytest.mark.parametrize(
    "text",
    [
        BASE,
        "\ufeff" + BASE,
        BASE.replace("\n", "\r\n"),
        BASE + "  hash_tag: 'é'\n",
        BASE + "  timeout: '00400'\n  client_connections: 3\n",
        BASE + "   - 127.0.0.1:6379:1 s2\n",  # same address, other name
        BASE + "   - ::1:6380:1 v6\n",
        BASE + "beta:\n  listen: 127.0.0.1:22122\n  servers:\n   - 127.0.0.1:6379:1 s1\n",
        "alpha:\n  ? listen\n  : 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1 s1\n",
        "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - >-\n     127.0.0.1:6379:1 s1\n",
        # rejected by both
        "",
        "---\n" + BASE,
        BASE + "...\n",
        "alpha:\n  listen: 127.0.0.1:22121\n  servers: [127.0.0.1:6379:1 s1]\n",
        BASE + "  hash: &h md5\n",
        BASE + "  hash: !!str md5\n",
        BASE + "  reuseport: true\n",
        BASE + "  hash: md5\n  hash: md5\n",
        BASE + BASE,
        BASE + "  redis: yes\n",
        BASE + "  timeout: 0x10\n",
        BASE + "  timeout:\n",
        BASE + "  hash_tag: '{'\n",
        BASE + "  redis_auth: pw\n",
        BASE + "  server_connections: 0\n",
        BASE + "   - 127.0.0.1:6380:1 s1\n",
        BASE + "   - 127.0.0.1:6380:1  s2\n",
        BASE + "   - 127.0.0.1:6380:0 s2\n",
        BASE + "   - 127.0.0.1:6380:1\n   - 127.0.0.1:6380:2\n",
        BASE + "beta:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1 s1\n",
        "alpha:\n  listen: :22121\n  servers:\n   - 127.0.0.1:6379:1 s1\n",
        "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n",
        "alpha:\n  servers:\n   - 127.0.0.1:6379:1 s1\n",
    ],
)
def test_load_pools_agrees_with_nutcracker(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nutcracker.yml"
    path.write_text(text, newline="")
    try:
        load_pools(text, source=str(path))
    except NutcrackerConfigError:
        ours = False
    else:
        ours = True
    assert ours == nutcracker_accepts(path)


@pytest.mark.parametrize(
    "text",
    [
        BASE + "   - :6380:1 empty-host\n",
        BASE + "   - /tmp/redis.sock:1 unix\n",
        BASE.replace(" s1\n", " s1\t# tab before a comment\n"),
    ],
)
def test_redkeeper_is_stricter_than_nutcracker_here(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nutcracker.yml"
    path.write_text(text)
    assert nutcracker_accepts(path)
    with pytest.raises(NutcrackerConfigError):
        load_pools(text, source=str(path))
