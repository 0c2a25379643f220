"""The one way rendered configs reach disk: compare, then write only what differs.

House rule 6 (render → compare → atomic write → validate → apply), shared by
`redkeeper render` (under --out; --dry-run, --diff) and `up` (the local stack's state dir).
`write_rendered`:

1. reads what is on disk for every rendered file (`render.diff.compare`);
2. writes each file that differs with `fsutil.atomic_write` (temp file, fsync, the file
   type's validator on the temp file, a `.bak` when asked, rename), validated by
   `VALIDATORS`: `nutcracker -t` for nutcracker.yml, `haproxy -c` for haproxy.cfg; a secret
   file ends up 0600 even when it existed with wider bits;
3. returns a `WriteReport` with every `FileChange` (added, changed, mode, unchanged).

With `dry_run` nothing is created or changed; the files that would change are still
validated, as copies in a private temp dir. A validator whose binary is not installed fails
the write, unless `require_validators=False` (`render` on a machine without nutcracker or
haproxy): then the report names the file as not validated.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from redkeeper.errors import ApplyError, BinaryNotFoundError
from redkeeper.fsutil import atomic_write
from redkeeper.process import find_binary
from redkeeper.proxy.haproxy.check import checked_by_haproxy
from redkeeper.proxy.twemproxy.config import checked_by_nutcracker
from redkeeper.render.diff import ChangeKind, FileChange, compare
from redkeeper.render.files import SECRET_MODE, RenderedFile

__all__ = ["VALIDATORS", "WriteReport", "plan_writes", "target_of", "write_rendered"]

Validator = Callable[[Path], None]

#: file name -> (the binary its validator runs, validator for a temp file naming the real one)
VALIDATORS: Mapping[str, tuple[str, Callable[[Path], Validator]]] = {
    "nutcracker.yml": ("nutcracker", checked_by_nutcracker),
    "haproxy.cfg": ("haproxy", checked_by_haproxy),
}


@dataclass(frozen=True)
class WriteReport:
    changes: tuple[FileChange, ...]
    unvalidated: tuple[str, ...]  # "<path> (nutcracker is not installed here)"
    dry_run: bool

    def of(self, *kinds: ChangeKind) -> list[FileChange]:
        return [c for c in self.changes if c.kind in kinds]

    @property
    def changed(self) -> list[FileChange]:
        """Every file that is (or, in a dry run, would be) written or re-moded."""
        return [c for c in self.changes if c.kind is not ChangeKind.UNCHANGED]


def target_of(rendered: RenderedFile, root: Path | None) -> Path:
    """Where `rendered` goes: its own path, or the same path under `root` (render --out)."""
    return rendered.path if root is None else root / rendered.path.relative_to("/")


def _read(target: Path) -> tuple[bytes | None, int | None]:
    try:
        return target.read_bytes(), target.stat().st_mode
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise ApplyError(
            f"{target}: cannot read it to compare: {exc.strerror or exc} (fix: check the "
            "path and its permissions)"
        ) from exc


def plan_writes(
    files: Sequence[RenderedFile],
    *,
    root: Path | None = None,
    masks: Mapping[Path, Sequence[str]] | None = None,
) -> list[FileChange]:
    """Each rendered file against the disk (reads only). `masks`: per rendered path, the
    secret line prefixes its diff hides (`render.diff.secret_masks`)."""
    changes = []
    for rendered in files:
        target = target_of(rendered, root)
        old, mode = _read(target)
        changes.append(compare(rendered, target, old, mode, (masks or {}).get(rendered.path, ())))
    return changes


def _validator(target: Path, required: bool, unvalidated: list[str]) -> Validator | None:
    entry = VALIDATORS.get(target.name)
    if entry is None:
        return None
    binary, factory = entry
    try:
        find_binary(binary)
    except BinaryNotFoundError:
        if required:
            raise
        unvalidated.append(f"{target} ({binary} is not installed here)")
        return None
    return factory(target)


def _write(change: FileChange, validate: Validator | None, backup: bool) -> None:
    rendered, target = change.rendered, change.target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if change.kind is not ChangeKind.MODE:
            atomic_write(
                target, rendered.text, mode=rendered.mode, validate=validate, backup=backup
            )
        if rendered.secret:
            os.chmod(target, SECRET_MODE)  # atomic_write keeps an existing file's bits
    except OSError as exc:
        raise ApplyError(
            f"{target}: cannot write it: {exc.strerror or exc} (fix: check the permissions "
            f"and free space of {target.parent})"
        ) from exc


def _validate_copy(change: FileChange, validate: Validator) -> None:
    """Dry run: validate the would-be file as a copy in a private temp dir."""
    with tempfile.TemporaryDirectory(prefix="redkeeper-render-") as tmp:
        copy = Path(tmp) / change.target.name
        copy.write_text(change.rendered.text)
        validate(copy)


def write_rendered(
    files: Sequence[RenderedFile],
    *,
    root: Path | None = None,
    backup: bool = True,
    dry_run: bool = False,
    require_validators: bool = True,
    masks: Mapping[Path, Sequence[str]] | None = None,
) -> WriteReport:
    """Write (or with `dry_run` only compare and validate) `files`; see the module docstring.

    Raises the validator's ConfigError (nothing of that file written), BinaryNotFoundError
    (a validator's binary is missing and `require_validators`), ApplyError (a file cannot
    be read or written). Files before the failing one stay written: each is complete and
    valid on its own, and the next run compares again.
    """
    changes = plan_writes(files, root=root, masks=masks)
    unvalidated: list[str] = []
    for change in changes:
        if change.kind is ChangeKind.UNCHANGED:
            continue
        validate = None
        if change.kind is not ChangeKind.MODE:
            validate = _validator(change.target, require_validators, unvalidated)
        if not dry_run:
            _write(change, validate, backup)
        elif validate is not None:
            _validate_copy(change, validate)
    return WriteReport(tuple(changes), tuple(unvalidated), dry_run)
