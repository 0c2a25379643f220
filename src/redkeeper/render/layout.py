"""Where each process's config, working dir and log live: the local stack or a real host."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths for one deployment style.

    local: everything of process NAME under STATE/NAME/ (config, data, NAME.log), logs
    captured from stdout by the supervisor. system: FHS paths for systemd units.
    """

    local: bool
    state_dir: Path
    config_dir: Path
    log_dir: Path

    @classmethod
    def for_local(cls, state_dir: Path) -> Layout:
        return cls(True, state_dir, state_dir, state_dir)

    @classmethod
    def for_system(cls) -> Layout:
        return cls(
            False, Path("/var/lib/redkeeper"), Path("/etc/redkeeper"), Path("/var/log/redkeeper")
        )

    def workdir(self, name: str) -> Path:
        return self.state_dir / name

    def self_rewriting_config(self, name: str) -> Path:
        """redis.conf / sentinel.conf: rewritten by Redis itself, so kept in its working dir."""
        return self.workdir(name) / f"{name}.conf"

    def config(self, filename: str) -> Path:
        if self.local:
            return self.state_dir / "nutcracker" / filename
        return self.config_dir / filename

    def log(self, name: str) -> Path:
        if self.local:
            return self.workdir(name) / f"{name}.log"
        return self.log_dir / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.workdir(name) / f"{name}.pid"
