"""render.diff (pure): what a render would change on disk, and diffs that never show a secret."""

from __future__ import annotations

from pathlib import Path

from redkeeper.render import Layout, render_all
from redkeeper.render.diff import (
    MASKED,
    ChangeKind,
    compare,
    placeholder_password,
    secret_masks,
    secret_prefixes,
)
from redkeeper.render.files import SECRET_MODE, RenderedFile
from redkeeper.topology import parse_topology
from tests.support import default_in_mode

TARGET = Path("/out/etc/redkeeper/x.conf")
NEW = RenderedFile(Path("/etc/redkeeper/x.conf"), "a 1\nb 2\nc 3\n")


def test_kinds() -> None:
    assert compare(NEW, TARGET, None).kind is ChangeKind.ADDED
    assert compare(NEW, TARGET, b"a 1\nb 1\nc 3\n", 0o100644).kind is ChangeKind.CHANGED
    assert compare(NEW, TARGET, NEW.text.encode(), 0o100644).kind is ChangeKind.UNCHANGED
    secret = RenderedFile(NEW.path, NEW.text, SECRET_MODE)
    assert compare(secret, TARGET, NEW.text.encode(), 0o100600).kind is ChangeKind.UNCHANGED
    readable = compare(secret, TARGET, NEW.text.encode(), 0o100640)
    assert readable.kind is ChangeKind.MODE
    assert readable.diff() == f"mode {TARGET}: 0640 -> 0600\n"
    # a public file keeps whatever bits the operator gave it
    assert compare(NEW, TARGET, NEW.text.encode(), 0o100600).kind is ChangeKind.UNCHANGED


def test_unified_diff_of_a_changed_file() -> None:
    change = compare(NEW, TARGET, b"a 1\nb 1\nc 3\n", 0o100644)
    assert change.diff().splitlines() == [
        f"--- {TARGET}",
        f"+++ {TARGET}",
        "@@ -1,3 +1,3 @@",
        " a 1",
        "-b 1",
        "+b 2",
        " c 3",
    ]
    assert compare(NEW, TARGET, NEW.text.encode()).diff() == ""


def test_a_new_file_is_diffed_against_dev_null() -> None:
    lines = compare(NEW, TARGET, None).diff().splitlines()
    assert lines[:3] == ["--- /dev/null", f"+++ {TARGET}", "@@ -0,0 +1,3 @@"]
    assert lines[3:] == ["+a 1", "+b 2", "+c 3"]


def test_secret_prefixes_cut_before_the_secret_at_a_word_boundary() -> None:
    real = 'port 1\nrequirepass "0pw with spaces"\nsentinel auth-pass s1 "0pw with spaces"\n'
    other = 'port 1\nrequirepass "1111"\nsentinel auth-pass s1 "1111"\n'
    assert secret_prefixes(real, other) == ("requirepass ", "sentinel auth-pass s1 ")
    assert secret_prefixes("a\nb\n", "a\n") == ("",)  # cannot align: mask every line
    assert secret_prefixes("pw\n", "00\n") == ("",)  # the secret starts the line
    assert placeholder_password("0abc") != placeholder_password("abc")
    assert placeholder_password("0abc")[0] != "0" and placeholder_password("abc")[0] != "a"


def test_masked_diff_hides_old_and_new_secrets() -> None:
    new = RenderedFile(NEW.path, 'port 2\nrequirepass "new-pw"\n', SECRET_MODE)
    old = b"port 1\nrequirepass old-pw\n"  # another password, other quoting
    change = compare(new, TARGET, old, 0o100600, ("requirepass ",))
    text = change.diff()
    assert "new-pw" not in text and "old-pw" not in text
    assert f"-requirepass {MASKED}" in text and f"+requirepass {MASKED}" in text
    assert "-port 1" in text and "+port 2" in text


def test_secret_masks_of_a_real_render_hide_the_password_in_every_encoding() -> None:
    text = default_in_mode("steady")
    text = text.replace("auth: {} ", "auth: {password_env: PW}")
    assert "mode: steady" in text and "password_env: PW" in text
    topology = parse_topology(text, source="t.yaml", base_dir=Path("/etc/redkeeper"))
    password = 'sw0rd "quoted" \\ back'
    layout = Layout.for_system()
    real = render_all(topology, layout, password=password)
    masks = secret_masks(
        real, render_all(topology, layout, password=placeholder_password(password))
    )
    assert {f.path for f in real if f.secret} == set(masks)
    assert all(mask for path, mask in masks.items() if path.suffix in (".conf", ".yml", ".cfg"))
    for rendered in real:
        if not rendered.secret:
            assert password not in rendered.text
            continue
        diff = compare(rendered, TARGET, None, None, masks[rendered.path]).diff()
        assert "sw0rd" not in diff and "73773072" not in diff  # raw, quoted, or RESP hex
        added = [line for line in diff.splitlines()[3:] if line.startswith("+")]
        assert len(added) == len(rendered.text.splitlines())  # every line is still listed
