"""render.disk.write_rendered: the one write path of `render` and `up` (temp dirs only)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from redkeeper.errors import BinaryNotFoundError, ConfigError, Problem
from redkeeper.fsutil import backup_path
from redkeeper.render import disk
from redkeeper.render.diff import ChangeKind
from redkeeper.render.disk import write_rendered
from redkeeper.render.files import SECRET_MODE, RenderedFile

A = RenderedFile(Path("/etc/redkeeper/a.conf"), "a 1\n")
B = RenderedFile(Path("/var/lib/redkeeper/b/b.conf"), "b 1\n", SECRET_MODE)
CHECKED = RenderedFile(Path("/etc/redkeeper/checked.cfg"), "ok\n")


def kinds(report: disk.WriteReport) -> dict[str, ChangeKind]:
    return {c.target.name: c.kind for c in report.changes}


def test_dry_run_writes_nothing_then_a_real_run_writes_only_what_differs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dry = write_rendered([A, B], root=out, dry_run=True)
    assert kinds(dry) == {"a.conf": ChangeKind.ADDED, "b.conf": ChangeKind.ADDED}
    assert not out.exists()

    first = write_rendered([A, B], root=out)
    assert [c.kind for c in first.changed] == [ChangeKind.ADDED] * 2
    a, b = out / "etc/redkeeper/a.conf", out / "var/lib/redkeeper/b/b.conf"
    assert a.read_text() == "a 1\n" and stat.S_IMODE(b.stat().st_mode) == SECRET_MODE
    os.utime(a, (1, 1))

    second = write_rendered([RenderedFile(A.path, "a 2\n"), B], root=out)
    assert kinds(second) == {"a.conf": ChangeKind.CHANGED, "b.conf": ChangeKind.UNCHANGED}
    assert a.read_text() == "a 2\n" and backup_path(a).read_text() == "a 1\n"
    assert not backup_path(b).exists()  # unchanged: not touched at all


def test_a_secret_readable_by_others_is_made_0600_without_rewriting(tmp_path: Path) -> None:
    write_rendered([B], root=tmp_path)
    b = tmp_path / "var/lib/redkeeper/b/b.conf"
    os.chmod(b, 0o644)
    dry = write_rendered([B], root=tmp_path, dry_run=True)
    assert kinds(dry) == {"b.conf": ChangeKind.MODE}
    assert stat.S_IMODE(b.stat().st_mode) == 0o644
    write_rendered([B], root=tmp_path)
    assert stat.S_IMODE(b.stat().st_mode) == SECRET_MODE and not backup_path(b).exists()


def test_without_root_the_rendered_paths_are_the_targets(tmp_path: Path) -> None:
    local = RenderedFile(tmp_path / "state/nutcracker/x.conf", "x\n")
    report = write_rendered([local], backup=False)
    assert report.changes[0].target == local.path and local.path.read_text() == "x\n"


def rejecting(calls: list[Path]) -> Callable[[Path], Callable[[Path], None]]:
    def factory(real: Path) -> Callable[[Path], None]:
        def check(tmp: Path) -> None:
            calls.append(tmp)
            if tmp.read_text() != "ok\n":
                raise ConfigError([Problem(str(real), "", "rejected")])

        return check

    return factory


def test_validators_run_on_the_temp_file_also_in_a_dry_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(disk, "VALIDATORS", {"checked.cfg": ("sh", rejecting(calls))})
    bad = RenderedFile(CHECKED.path, "bad\n")
    with pytest.raises(ConfigError, match=r"checked\.cfg: rejected"):
        write_rendered([bad], root=tmp_path, dry_run=True)
    assert calls and not (tmp_path / "etc").exists()
    with pytest.raises(ConfigError):
        write_rendered([bad], root=tmp_path)
    assert not (tmp_path / "etc/redkeeper/checked.cfg").exists()
    assert write_rendered([CHECKED], root=tmp_path).changed
    target = tmp_path / "etc/redkeeper/checked.cfg"
    assert len(calls) == 3 and target not in calls  # always a temp file, never the target


def test_a_missing_validator_binary_fails_up_but_is_reported_by_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    missing = ("no-such-validator-binary", rejecting(calls))
    monkeypatch.setattr(disk, "VALIDATORS", {"checked.cfg": missing})
    with pytest.raises(BinaryNotFoundError):
        write_rendered([CHECKED], root=tmp_path)
    report = write_rendered([CHECKED], root=tmp_path, require_validators=False)
    assert report.unvalidated == (
        f"{tmp_path}/etc/redkeeper/checked.cfg (no-such-validator-binary is not installed here)",
    )
    assert not calls
