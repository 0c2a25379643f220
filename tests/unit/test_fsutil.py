"""atomic_write: compare first, temp + fsync, validate, backup, rename, fsync dir."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from redkeeper import fsutil
from redkeeper.fsutil import atomic_write, backup_path


class BoomError(Exception):
    pass


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def only_files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_creates_new_file_with_exact_mode_and_no_backup(tmp_path: Path) -> None:
    target = tmp_path / "secret.conf"
    old_umask = os.umask(0o077)  # the mode must not depend on the caller's umask
    try:
        assert atomic_write(target, "requirepass x\n", mode=0o640) is True
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"requirepass x\n"
    assert mode_of(target) == 0o640
    assert only_files(tmp_path) == {"secret.conf"}


def test_default_mode_for_new_file_is_0644(tmp_path: Path) -> None:
    target = tmp_path / "a.yml"
    atomic_write(target, b"x")
    assert mode_of(target) == 0o644


def test_same_content_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a.yml"
    target.write_bytes(b"same\n")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    before = target.stat()
    assert atomic_write(target, "same\n", validate=lambda _: pytest.fail("validated")) is False
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert only_files(tmp_path) == {"a.yml"}  # no temp file, no backup


def test_replaces_and_keeps_backup_and_existing_mode(tmp_path: Path) -> None:
    target = tmp_path / "nutcracker.yml"
    target.write_bytes(b"old\n")
    target.chmod(0o600)
    assert atomic_write(target, b"new\n", mode=0o644) is True
    assert target.read_bytes() == b"new\n"
    assert mode_of(target) == 0o600  # the existing file's bits win over `mode`
    bak = backup_path(target)
    assert bak == tmp_path / "nutcracker.yml.bak"
    assert bak.read_bytes() == b"old\n"
    assert mode_of(bak) == 0o600  # a backup of a secret is as private as the secret
    assert only_files(tmp_path) == {"nutcracker.yml", "nutcracker.yml.bak"}


def test_backup_is_replaced_by_each_write(tmp_path: Path) -> None:
    target = tmp_path / "a.yml"
    atomic_write(target, "one")
    atomic_write(target, "two")
    atomic_write(target, "three")
    assert target.read_text() == "three"
    assert backup_path(target).read_text() == "two"


def test_no_backup_when_disabled(tmp_path: Path) -> None:
    target = tmp_path / "a.yml"
    target.write_text("old")
    atomic_write(target, "new", backup=False)
    assert only_files(tmp_path) == {"a.yml"}


def test_validator_sees_complete_temp_file_in_same_directory(tmp_path: Path) -> None:
    target = tmp_path / "a.yml"
    target.write_text("old")
    target.chmod(0o640)
    seen: list[tuple[Path, bytes, int]] = []

    def validate(tmp: Path) -> None:
        seen.append((tmp, tmp.read_bytes(), mode_of(tmp)))

    atomic_write(target, "new", validate=validate)
    [(tmp, content, mode)] = seen
    assert tmp.parent == tmp_path
    assert tmp != target
    assert content == b"new"
    assert mode == 0o640
    assert not tmp.exists()


def test_validator_failure_leaves_everything_untouched(tmp_path: Path) -> None:
    target = tmp_path / "a.yml"
    target.write_bytes(b"good\n")
    backup_path(target).write_bytes(b"older\n")
    before = target.stat()

    def validate(_: Path) -> None:
        raise BoomError("nutcracker -t said no")

    with pytest.raises(BoomError):
        atomic_write(target, b"bad\n", validate=validate)
    assert target.read_bytes() == b"good\n"
    assert target.stat().st_ino == before.st_ino
    assert backup_path(target).read_bytes() == b"older\n"
    assert only_files(tmp_path) == {"a.yml", "a.yml.bak"}


def test_validator_failure_on_new_file_creates_nothing(tmp_path: Path) -> None:
    def validate(_: Path) -> None:
        raise BoomError

    with pytest.raises(BoomError):
        atomic_write(tmp_path / "a.yml", "x", validate=validate)
    assert only_files(tmp_path) == set()


def test_rename_failure_removes_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.yml"
    target.write_text("old")
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == target:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert only_files(tmp_path) == {"a.yml", "a.yml.bak"}  # the backup equals the file


def test_fsyncs_the_directory_after_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.yml"
    synced: list[tuple[Path, bytes]] = []
    monkeypatch.setattr(fsutil, "fsync_dir", lambda d: synced.append((d, target.read_bytes())))
    atomic_write(target, "new")
    assert synced == [(tmp_path, b"new")]


def test_fsync_dir_runs_on_a_real_directory(tmp_path: Path) -> None:
    fsutil.fsync_dir(tmp_path)


def test_symlink_is_followed_not_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.yml"
    real.write_text("old")
    link = tmp_path / "link.yml"
    link.symlink_to(real)
    assert atomic_write(link, "new") is True
    assert link.is_symlink()
    assert real.read_text() == "new"
    assert (tmp_path / "real.yml.bak").read_text() == "old"


def test_str_is_written_as_utf8(tmp_path: Path) -> None:
    target = tmp_path / "a.yml"
    atomic_write(target, "é\n")
    assert target.read_bytes() == "é\n".encode()
