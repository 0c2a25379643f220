"""What rendering would change on disk (pure): one `FileChange` per rendered file.

`compare` takes a rendered file, where it goes and what is there now (bytes and permission
bits, as `render.disk` read them) and says whether the file would be added, changed, only
re-moded (a secret that is readable by others), or left unchanged. `FileChange.diff` is the
unified diff `render --diff` prints; a new file is diffed against /dev/null.

Secrets never reach a diff: `secret_prefixes` finds the lines of a file that carry the
password by comparing it with the same file rendered with a placeholder password, and the diff
shows such lines, old and new, only up to the last space before the secret.
"""

from __future__ import annotations

import difflib
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from redkeeper.render.files import SECRET_MODE, RenderedFile

__all__ = [
    "MASKED",
    "ChangeKind",
    "FileChange",
    "compare",
    "placeholder_password",
    "secret_masks",
    "secret_prefixes",
]

MASKED = "<secret, not shown>"


class ChangeKind(Enum):
    ADDED = "added"
    CHANGED = "changed"
    MODE = "mode"  # same content, but a secret file is readable by group or others
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class FileChange:
    """One rendered file against the disk. `old` is None when the file does not exist."""

    rendered: RenderedFile
    target: Path
    old: bytes | None
    old_mode: int | None = None
    masks: tuple[str, ...] = ()  # line prefixes after which a secret follows ("" = every line)

    @property
    def kind(self) -> ChangeKind:
        if self.old is None:
            return ChangeKind.ADDED
        if self.old != self.rendered.text.encode("utf-8"):
            return ChangeKind.CHANGED
        if self.rendered.secret and self.old_mode is not None and self.old_mode & 0o077:
            return ChangeKind.MODE
        return ChangeKind.UNCHANGED

    def diff(self, context: int = 3) -> str:
        """A unified diff from the disk to the rendered text ("" when the text is the same);
        for a MODE change, one line naming the permission change."""
        kind = self.kind
        if kind is ChangeKind.MODE:
            assert self.old_mode is not None
            return f"mode {self.target}: {self.old_mode:04o} -> {SECRET_MODE:04o}\n"
        if kind is ChangeKind.UNCHANGED:
            return ""
        old_lines = [] if self.old is None else self.old.decode("utf-8", "replace").splitlines()
        lines = difflib.unified_diff(
            old_lines,
            self.rendered.text.splitlines(),
            fromfile="/dev/null" if self.old is None else str(self.target),
            tofile=str(self.target),
            n=context,
            lineterm="",
        )
        out = []
        for number, line in enumerate(lines):
            body = number >= 2 and line[:1] in ("+", "-", " ")  # past the ---/+++ header
            out.append(line[:1] + _masked(line[1:], self.masks) if body else line)
        return "\n".join(out) + "\n"


def _masked(line: str, masks: Sequence[str]) -> str:
    for prefix in masks:
        if line.startswith(prefix):
            return prefix + MASKED
    return line


def compare(
    rendered: RenderedFile,
    target: Path,
    old: bytes | None,
    old_mode: int | None = None,
    masks: Sequence[str] = (),
) -> FileChange:
    """`rendered`, to be written at `target`, against what is there (`old`, None: absent)."""
    bits = None if old_mode is None else stat.S_IMODE(old_mode)
    return FileChange(rendered, target, old, bits, tuple(masks))


def placeholder_password(password: str) -> str:
    """A password to render again with: it differs from `password` in its first character, so
    the two renders part at the very start of every secret."""
    return "1" * 16 if password.startswith("0") else "0" * 16


def secret_prefixes(real: str, placeholder: str) -> tuple[str, ...]:
    """The beginnings of the lines that carry a secret: where `real` and the same file rendered
    with `placeholder_password` differ, cut back to the last space before the difference (so
    the prefix also matches an older line of the same directive, with another password or
    quoting). When the two renders differ in their number of lines, every line is masked."""
    real_lines, other_lines = real.splitlines(), placeholder.splitlines()
    if len(real_lines) != len(other_lines):
        return ("",)
    prefixes: list[str] = []
    for line, other in zip(real_lines, other_lines, strict=True):
        if line != other:
            same = next(
                (i for i, (a, b) in enumerate(zip(line, other, strict=False)) if a != b),
                min(len(line), len(other)),
            )
            prefix = line[: line.rfind(" ", 0, same) + 1]
            if prefix not in prefixes:
                prefixes.append(prefix)
    return tuple(prefixes)


def secret_masks(
    real: Sequence[RenderedFile], placeholder: Sequence[RenderedFile]
) -> dict[Path, tuple[str, ...]]:
    """Per secret file of `real` (rendered with the password), its `secret_prefixes` against
    the same file of `placeholder` (rendered with `placeholder_password`); a secret file
    missing from `placeholder` is masked whole."""
    others = {f.path: f.text for f in placeholder}
    return {
        f.path: secret_prefixes(f.text, others[f.path]) if f.path in others else ("",)
        for f in real
        if f.secret
    }
