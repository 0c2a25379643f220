"""The value every renderer returns: a file's target path, text and permission bits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
EXEC_MODE = 0o755  # scripts keepalived runs (root's, writable by no one else)


@dataclass(frozen=True)
class RenderedFile:
    path: Path
    text: str
    mode: int = PUBLIC_MODE
    host: str | None = None

    @property
    def secret(self) -> bool:
        return self.mode == SECRET_MODE


def header(what: str, source: str) -> str:
    return f"# {what}: rendered by redkeeper from {source}. Edits are overwritten by render.\n"
