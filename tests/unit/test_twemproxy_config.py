"""nutcracker.yml: parsing like twemproxy 0.5.0, byte-preserving repoint, validated writes."""

from __future__ import annotations

import difflib
import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redkeeper.errors import ApplyError, NutcrackerConfigError, Problem, ProcessError
from redkeeper.model import Address
from redkeeper.proxy.twemproxy import (
    POOL_KEYS,
    PoolView,
    ServerEntry,
    load_pools,
    plan_repoint,
    repoint_file,
    validate_with_nutcracker,
)
from redkeeper.proxy.twemproxy import config as twemproxy_config

SAMPLE = """\
# nutcracker.yml written by hand
alpha:   # main pool
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: false
  redis: true
  timeout: 400
  servers:
      - 127.0.0.1:6666:1 shard1   # first shard
      - '127.0.0.1:7666:3 shard2'

      - "127.0.0.1:8666:2 shard3"

beta:
    servers:
    -   127.0.0.1:6666:5 shard1
    - 127.0.0.1:9666:1 other
    listen: 127.0.0.1:22122
    redis: true
"""

S = "nutcracker.yml"


def changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    """(old line, new line) for every replaced line; fails on inserted/deleted lines."""
    pairs: list[tuple[str, str]] = []
    a, b = old.splitlines(True), new.splitlines(True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if tag == "equal":
            continue
        assert tag == "replace" and i2 - i1 == j2 - j1, (tag, a[i1:i2], b[j1:j2])
        pairs += zip(a[i1:i2], b[j1:j2], strict=True)
    return pairs


def problems_of(excinfo: pytest.ExceptionInfo[NutcrackerConfigError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


# ---- ServerEntry --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("127.0.0.1:6379:1 shard1", ServerEntry("127.0.0.1", 6379, 1, "shard1")),
        ("127.0.0.1:6379:10", ServerEntry("127.0.0.1", 6379, 10, None)),
        ("redis-a.example:06379:01 s", ServerEntry("redis-a.example", 6379, 1, "s")),
        ("::1:6379:2 v6", ServerEntry("::1", 6379, 2, "v6")),  # split at the last two ':'
        ("fe80::1%eth0:7000:1 z", ServerEntry("fe80::1%eth0", 7000, 1, "z")),
        ("a b:6379:1 s1", ServerEntry("a b", 6379, 1, "s1")),  # name is after the LAST space
    ],
)
def test_server_entry_parses_from_the_end(text: str, entry: ServerEntry) -> None:
    assert ServerEntry.parse(text) == entry


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1:6379", "not 'host:port:weight name'"),
        ("127.0.0.1 shard1", "not 'host:port:weight name'"),
        ("127.0.0.1:6379:0 s", "weight '0'"),
        ("127.0.0.1:6379:x s", "weight 'x'"),
        ("127.0.0.1:6379:1  s", "exactly one space"),
        ("127.0.0.1:6379:1 ", "no name after it"),
        ("127.0.0.1:70000:1 s", "port '70000'"),
        ("127.0.0.1:+1:1 s", "port '+1'"),
        ("127.0.0.1:\uff16\uff13\uff17\uff19:1 s", "port"),  # nc_atoi: ASCII digits only
        (":6379:1 s", "empty host"),
        ("/tmp/redis.sock:1 s", "unix socket"),
    ],
)
def test_server_entry_rejects_with_clear_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="server") as excinfo:
        ServerEntry.parse(text)
    assert message in str(excinfo.value)


def test_server_entry_render_and_hash_name() -> None:
    named = ServerEntry("10.0.0.1", 6379, 2, "shard1")
    assert named.render() == "10.0.0.1:6379:2 shard1"
    assert named.hash_name == "shard1"
    assert named.address == Address("10.0.0.1", 6379)
    assert ServerEntry("10.0.0.1", 6379, 2).render() == "10.0.0.1:6379:2"
    assert ServerEntry("10.0.0.1", 6379, 2).hash_name == "10.0.0.1:6379"
    assert ServerEntry("10.0.0.1", 11211, 2).hash_name == "10.0.0.1"  # libmemcached rule


hosts = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}|[0-9a-f:]{2,15}", fullmatch=True)
names = st.none() | st.from_regex(r"[A-Za-z0-9_.:-]{1,12}", fullmatch=True)


@given(hosts, st.integers(1, 65535), st.integers(1, 100000), names)
def test_server_entry_render_parse_round_trip(
    host: str, port: int, weight: int, name: str | None
) -> None:
    entry = ServerEntry(host, port, weight, name)
    assert ServerEntry.parse(entry.render()) == entry


# ---- load_pools ---------------------------------------------------------------------------


def test_load_pools_reads_every_pool_in_file_order() -> None:
    pools = load_pools(SAMPLE, source=S)
    assert list(pools) == ["alpha", "beta"]
    alpha = pools["alpha"]
    assert alpha == PoolView(
        name="alpha",
        servers=(
            ServerEntry("127.0.0.1", 6666, 1, "shard1"),
            ServerEntry("127.0.0.1", 7666, 3, "shard2"),
            ServerEntry("127.0.0.1", 8666, 2, "shard3"),
        ),
        listen="127.0.0.1:22121",
        hash="fnv1a_64",
        distribution="ketama",
        hash_tag="{}",
        redis=True,
        auto_eject_hosts=False,
        timeout=400,
    )
    beta = pools["beta"]
    assert (beta.hash, beta.distribution, beta.hash_tag, beta.timeout) == (
        "fnv1a_64",
        "ketama",
        None,
        None,
    )
    assert beta.server("shard1") == ServerEntry("127.0.0.1", 6666, 5, "shard1")
    assert beta.server("nope") is None


def test_redis_auth_is_kept_but_not_shown() -> None:
    text = (
        "a:\n  listen: 127.0.0.1:1\n  redis: true\n  redis_auth: s3cret\n  servers:\n   - h:1:1 x\n"
    )
    pool = load_pools(text, source=S)["a"]
    assert pool.redis_auth == "s3cret"
    assert "s3cret" not in repr(pool)


def test_all_keys_of_0_5_0_are_accepted() -> None:
    values = {"listen": "127.0.0.1:22121", "hash": "murmur", "hash_tag": "'{}'"}
    values |= {"distribution": "modula", "redis_auth": "pw", "servers": ""}
    values |= dict.fromkeys(("redis", "tcpkeepalive", "preconnect", "auto_eject_hosts"), "true")
    lines = ["p:"] + [f"  {k}: {values.get(k, '7')}" for k in POOL_KEYS]
    text = "\n".join(lines) + "\n   - 127.0.0.1:6379:1 s\n"
    pool = load_pools(text, source=S)["p"]
    assert (pool.redis, pool.server_failure_limit, pool.client_connections) == (True, 7, 7)


BASE = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1 s1\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "has no pools"),
        ("alpha:\n  listen: 'x\n", "line 3: invalid YAML"),
        ("alpha:\n  listen: a: b\n", "line 2: invalid YAML"),
        ("- a\n- b\n", "must be a mapping of pool names"),
        ("alpha: x\n", "alpha: line 1: must be a mapping"),
        ("---\n" + BASE, "line 1: a '---' document start is not allowed"),
        (BASE + "...\n", "'...' document end is not allowed"),
        ("alpha:\n  listen: 127.0.0.1:22121\n  servers: [127.0.0.1:6379:1 s1]\n", "flow style"),
        (BASE + "  hash: &h fnv1a_64\n", "line 5: an anchor"),
        (BASE + "  hash: !!str fnv1a_64\n", "a tag"),
        (BASE + "  reuseport: true\n", "alpha.reuseport: line 5: unknown key"),
        (BASE + "  distributon: ketama\n", "did you mean 'distribution'?"),
        (BASE + "  hash: md5\n  hash: md5\n", "alpha.hash: line 6: duplicate key"),
        (BASE + "  servers:\n   - 127.0.0.1:6380:1 s2\n", "alpha.servers: line 5: duplicate key"),
        (BASE + BASE, "alpha: line 5: duplicate pool name"),
        (BASE + "  sub:\n    x: 1\n", "unknown key"),
        (BASE + "  hash: FNV1A_64\n", "alpha.hash: line 5: 'FNV1A_64' is not a hash"),
        (BASE + "  distribution: rings\n", "is not a distribution"),
        (BASE + "  hash_tag: '{'\n", "alpha.hash_tag: line 5: '{' is not exactly two bytes"),
        (BASE + "  redis: yes\n", "alpha.redis: line 5: 'yes' is not true or false"),
        (BASE + "  redis: True\n", "'True' is not true or false"),
        (BASE + "  timeout: 0x10\n", "alpha.timeout: line 5: '0x10' is not a whole number"),
        (BASE + "  timeout: -5\n", "'-5' is not a whole number"),
        (BASE + "  timeout:\n", "alpha.timeout: line 5: has no value"),
        (BASE + "  server_connections: 0\n", "cannot be 0"),
        (BASE + "  redis_auth: pw\n", "alpha.redis_auth: line 5: only valid in a redis pool"),
        ("alpha:\n  servers:\n   - 127.0.0.1:6379:1 s1\n", "alpha.listen: line 1: is missing"),
        ("alpha:\n  listen: 127.0.0.1:22121\n", "alpha.servers: line 1: is missing"),
        ("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n", "must be a non-empty list"),
        ("alpha:\n  listen: :22121\n  servers:\n   - h:1:1 s\n", "':22121' is not host:port"),
        (BASE + "   - - nested\n", "alpha.servers[1]: line 5: must be one line of text"),
        (BASE + "   - 127.0.0.1:6380:0 s2\n", "alpha.servers[1]: line 5: server"),
        (BASE + "   - 127.0.0.2:6379:1 s1\n", "duplicate server name 's1' (also servers[0])"),
        (BASE + "   - 127.0.0.1:6379:2\n   - 127.0.0.1:6379:3\n", "name '127.0.0.1:6379'"),
        (BASE + "   - 10.0.0.1:1:1 127.0.0.1:6380\n   - 127.0.0.1:6380:2\n", "'127.0.0.1:6380'"),
        (BASE + "beta:\n  listen: 127.0.0.1:22121\n  servers:\n   - h:1:1 x\n", "beta.listen"),
    ],
)
def test_load_pools_rejects_what_nutcracker_rejects(text: str, expected: str) -> None:
    with pytest.raises(NutcrackerConfigError) as excinfo:
        load_pools(text, source=S)
    message = str(excinfo.value)
    assert expected in message
    assert all(str(p).startswith(f"{S}: ") for p in excinfo.value.problems)
    assert all(p.fix for p in excinfo.value.problems)


def test_load_pools_reports_every_problem_at_once() -> None:
    text = BASE + "  hash: nope\n  reuseport: true\nbeta:\n  servers:\n   - x:1:0 s\n"
    with pytest.raises(NutcrackerConfigError) as excinfo:
        load_pools(text, source=S)
    fields = [p.field for p in excinfo.value.problems]
    assert fields == ["alpha.reuseport", "beta.listen", "alpha.hash", "beta.servers[0]"]


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + BASE,  # BOM
        BASE.replace("\n", "\r\n"),  # CRLF
        BASE + "# trailing comment\n\n\n",
        "'alpha':\n  \"listen\": 127.0.0.1:22121\n  servers:\n  - 127.0.0.1:6379:1 s1\n",
        "alpha:\n  ? listen\n  : 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1 s1\n",
        BASE + "  timeout: '00400'\n  hash_tag: 'é'\n",  # two bytes, like nutcracker counts
    ],
)
def test_load_pools_accepts_what_nutcracker_accepts(text: str) -> None:
    assert load_pools(text, source=S)["alpha"].servers[0].name == "s1"


# ---- plan_repoint -------------------------------------------------------------------------


def test_repoint_one_shard_changes_only_its_host_port() -> None:
    new = plan_repoint(SAMPLE, {"shard2": Address("10.9.8.7", 17666)}, source=S)
    assert new is not None
    assert changed_lines(SAMPLE, new) == [
        ("      - '127.0.0.1:7666:3 shard2'\n", "      - '10.9.8.7:17666:3 shard2'\n")
    ]
    assert load_pools(new, source=S)["alpha"].server("shard2") == ServerEntry(
        "10.9.8.7", 17666, 3, "shard2"
    )


def test_repoint_keeps_quoting_comments_and_repoints_every_pool_with_the_name() -> None:
    new = plan_repoint(
        SAMPLE,
        {"shard1": Address("10.0.0.1", 6379), "shard3": Address("redis-3.example", 8666)},
        source=S,
    )
    assert new is not None
    assert changed_lines(SAMPLE, new) == [
        (
            "      - 127.0.0.1:6666:1 shard1   # first shard\n",
            "      - 10.0.0.1:6379:1 shard1   # first shard\n",
        ),
        ('      - "127.0.0.1:8666:2 shard3"\n', '      - "redis-3.example:8666:2 shard3"\n'),
        ("    -   127.0.0.1:6666:5 shard1\n", "    -   10.0.0.1:6379:5 shard1\n"),
    ]


def test_repoint_to_the_current_address_is_none() -> None:
    same = {"shard1": Address("127.0.0.1", 6666), "shard2": Address("127.0.0.1", 7666)}
    assert plan_repoint(SAMPLE, same, source=S) is None
    assert plan_repoint(SAMPLE, {}, source=S) is None


def test_repoint_only_the_servers_that_moved() -> None:
    changes = {"shard1": Address("127.0.0.1", 6666), "other": Address("127.0.0.1", 9667)}
    new = plan_repoint(SAMPLE, changes, source=S)
    assert new is not None
    assert changed_lines(SAMPLE, new) == [
        ("    - 127.0.0.1:9666:1 other\n", "    - 127.0.0.1:9667:1 other\n")
    ]


def test_repoint_preserves_crlf_bom_and_odd_quoting() -> None:
    text = "\ufeffalpha:\r\n  listen: 127.0.0.1:22121\r\n  servers:\r\n"
    text += "   - 'h1:1:1 it''s'\r\n   -    127.0.0.1:6666:1 s1   # comment\r\n"
    new = plan_repoint(text, {"s1": Address("10.0.0.2", 6667)}, source=S)
    assert new == text.replace("127.0.0.1:6666:1", "10.0.0.2:6667:1")


def test_tab_before_comment_is_refused_with_a_hint() -> None:
    # libyaml (nutcracker) accepts this line; ruamel.yaml's PyYAML-style scanner does not.
    text = BASE.replace(" s1\n", " s1\t# comment\n")
    with pytest.raises(NutcrackerConfigError, match="replace the tab with spaces"):
        plan_repoint(text, {"s1": Address("10.0.0.1", 1)}, source=S)


def test_repoint_writes_ipv6_bare_like_twemproxy_reads_it() -> None:
    new = plan_repoint(BASE, {"s1": Address("::1", 6380)}, source=S)
    assert new == BASE.replace("127.0.0.1:6379:1 s1", "::1:6380:1 s1")
    assert load_pools(new, source=S)["alpha"].servers[0].address == Address("::1", 6380)


def test_repoint_unnamed_server_is_an_error_naming_file_field_and_fix() -> None:
    text = BASE + "   - 127.0.0.1:6380:1\n"
    with pytest.raises(NutcrackerConfigError) as excinfo:
        plan_repoint(text, {"s1": Address("10.0.0.1", 1)}, source=S)
    assert problems_of(excinfo) == [
        "nutcracker.yml: alpha.servers[1]: line 5: server '127.0.0.1:6380:1' has no name "
        "(fix: add the Sentinel master name: '127.0.0.1:6380:1 <master-name>')"
    ]


def test_repoint_unknown_name_is_an_error() -> None:
    with pytest.raises(NutcrackerConfigError) as excinfo:
        plan_repoint(SAMPLE, {"shard9": Address("10.0.0.1", 1)}, source=S)
    [problem] = excinfo.value.problems
    assert problem.file == S
    assert problem.message == "no pool has a server named 'shard9'"
    assert "named here: other, shard1, shard2, shard3" in problem.fix


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpha:\n  listen: [\n", "invalid YAML"),
        ("alpha:\n  listen: 'x\n", "invalid YAML"),
        (BASE + "   - 127.0.0.2:1:1 s1\n", "duplicate server name 's1'"),
        (BASE + "  reuseport: true\n", "unknown key"),
    ],
)
def test_repoint_refuses_broken_files(text: str, expected: str) -> None:
    with pytest.raises(NutcrackerConfigError, match=expected):
        plan_repoint(text, {"s1": Address("10.0.0.1", 1)}, source=S)


def test_repoint_refuses_block_scalars_it_cannot_splice() -> None:
    text = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - >-\n     127.0.0.1:1:1 s1\n"
    assert load_pools(text, source=S)["alpha"].servers[0].name == "s1"  # nutcracker reads it
    with pytest.raises(
        NutcrackerConfigError, match=re.escape("write it on one line: - 127.0.0.1:1:1 s1")
    ):
        plan_repoint(text, {"s1": Address("10.0.0.1", 1)}, source=S)
    # ... but leaves such an entry alone when it does not need to change
    assert plan_repoint(text, {"s1": Address("127.0.0.1", 1)}, source=S) is None


@pytest.mark.parametrize(
    "address", [Address("a b", 1), Address("x'y", 1), Address("", 1), Address("h", 0)]
)
def test_repoint_refuses_addresses_it_cannot_write_safely(address: Address) -> None:
    with pytest.raises(NutcrackerConfigError, match="refusing to write address"):
        plan_repoint(BASE, {"s1": address}, source=S)


# ---- repoint_file with an injected validator ------------------------------------------------


def write_sample(tmp_path: Path, text: str = SAMPLE) -> Path:
    path = tmp_path / "nutcracker.yml"
    path.write_bytes(text.encode())
    path.chmod(0o640)
    return path


def test_repoint_file_writes_validated_text_with_backup(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    checked: list[str] = []

    def validate(tmp: Path) -> None:
        assert tmp.parent == tmp_path
        checked.append(tmp.read_text())

    new = repoint_file(path, {"shard1": Address("10.0.0.1", 6379)}, validate=validate)
    assert new is not None
    assert checked == [new]
    assert path.read_bytes() == new.encode()
    assert (tmp_path / "nutcracker.yml.bak").read_bytes() == SAMPLE.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nutcracker.yml", "nutcracker.yml.bak"]


def test_repoint_file_without_change_touches_nothing(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = path.stat()

    def validate(_: Path) -> None:
        pytest.fail("nothing to validate")

    assert repoint_file(path, {"shard1": Address("127.0.0.1", 6666)}, validate=validate) is None
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["nutcracker.yml"]


def test_repoint_file_rejected_by_validator_leaves_file_and_backup(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    (tmp_path / "nutcracker.yml.bak").write_bytes(b"older\n")

    def validate(tmp: Path) -> None:
        raise NutcrackerConfigError([Problem(str(tmp), "", f"nutcracker -t: {tmp.name} invalid")])

    with pytest.raises(NutcrackerConfigError) as excinfo:
        repoint_file(path, {"shard1": Address("10.0.0.1", 6379)}, validate=validate)
    # the error names the real file, not the temp file nutcracker looked at
    assert problems_of(excinfo) == [f"{path}: nutcracker -t: nutcracker.yml invalid"]
    assert path.read_bytes() == SAMPLE.encode()
    assert (tmp_path / "nutcracker.yml.bak").read_bytes() == b"older\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nutcracker.yml", "nutcracker.yml.bak"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"alpha:\n  listen: [\n", "invalid YAML"),
        (BASE.encode() + b"   - 127.0.0.1:6380:1\n", "has no name"),
        (b"\xff\xfe" + BASE.encode(), "is not UTF-8"),
    ],
)
def test_repoint_file_errors_leave_file_untouched(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "nutcracker.yml"
    path.write_bytes(content)
    with pytest.raises(NutcrackerConfigError, match=expected) as excinfo:
        repoint_file(path, {"s1": Address("10.0.0.1", 1)}, validate=None)
    assert excinfo.value.problems[0].file == str(path)
    assert path.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == ["nutcracker.yml"]


def test_repoint_file_write_failure_is_an_apply_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_sample(tmp_path)

    def no_space(*_: object, **__: object) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(twemproxy_config, "atomic_write", no_space)
    with pytest.raises(ApplyError, match="cannot write it: No space left on device"):
        repoint_file(path, {"shard1": Address("10.0.0.1", 6379)}, validate=None)
    assert path.read_bytes() == SAMPLE.encode()


def test_repoint_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NutcrackerConfigError, match="cannot read it"):
        repoint_file(tmp_path / "nope.yml", {"s1": Address("10.0.0.1", 1)}, validate=None)


# ---- validate_with_nutcracker with a fake binary ------------------------------------------


def fake_nutcracker(tmp_path: Path, script: str) -> str:
    exe = tmp_path / "fake-nutcracker"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return str(exe)


def test_validate_passes_argv_and_accepts_exit_0(tmp_path: Path) -> None:
    seen = tmp_path / "argv"
    exe = fake_nutcracker(tmp_path, f'echo "$@" > {seen}\nexit 0\n')
    validate_with_nutcracker(tmp_path / "x.yml", binary=exe)
    assert seen.read_text() == f"-t -c {tmp_path / 'x.yml'}\n"


def test_validate_failure_carries_nutcracker_message_once_and_own_diagnosis(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "x.yml"
    conf.write_text(BASE + "  reuseport: true\n")
    said = "nutcracker: configuration file 'x.yml' syntax is invalid"
    exe = fake_nutcracker(tmp_path, f'printf "{said}" >&2\necho "{said}" >&2\nexit 1\n')
    with pytest.raises(NutcrackerConfigError) as excinfo:
        validate_with_nutcracker(conf, binary=exe)
    first, second = excinfo.value.problems
    assert first.message == f"nutcracker -t rejected it: {said}"
    assert second.field == "alpha.reuseport"


def test_validate_hang_is_a_process_error(tmp_path: Path) -> None:
    exe = fake_nutcracker(tmp_path, "exec sleep 5\n")
    with pytest.raises(ProcessError, match=r"did not finish within 0\.2 s"):
        validate_with_nutcracker(tmp_path / "x.yml", binary=exe, timeout=0.2)


def test_validate_unrunnable_binary_is_a_process_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="cannot run"):
        validate_with_nutcracker(tmp_path / "x.yml", binary=str(tmp_path / "missing"))
