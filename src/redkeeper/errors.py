"""The one exception tree of redkeeper. Only the CLI turns these into exit codes.

Every error carries a one-line, operator-facing message that names what is wrong and,
where it can, the file, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The words every unexpected exception is reported with (logs, the CLI); tests fail on them.
BUG = "please report it as a BUG"


class RedkeeperError(Exception):
    """Base of every error redkeeper raises on purpose."""

    exit_code: int = 1


@dataclass(frozen=True)
class Problem:
    """One problem found in a file: where, what, and how to fix it."""

    file: str
    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        text = f"{where}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class ConfigError(RedkeeperError):
    """One or more problems in a configuration file (topology, nutcracker.yml, ...)."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class TopologyError(ConfigError):
    """The topology file is unreadable or invalid."""


class NutcrackerConfigError(ConfigError):
    """A nutcracker.yml cannot be read, edited or validated."""


class BinaryNotFoundError(RedkeeperError):
    """A required executable is not installed."""

    exit_code = 3


class MissingExtraError(RedkeeperError):
    """An optional part of redkeeper is used without its extra installed
    (`pip install 'redkeeper[report]'`)."""

    exit_code = 3


class PortInUseError(RedkeeperError):
    """A port the stack needs is already taken."""

    exit_code = 3


class ProcessError(RedkeeperError):
    """A process failed to start, to become ready, or to stop."""

    exit_code = 4


class StackError(RedkeeperError):
    """The local stack is in a state that forbids the action (already up, not up, ...)."""

    exit_code = 4


class SentinelError(RedkeeperError):
    """Sentinels are unreachable or disagree in a way that forbids acting."""

    exit_code = 5


class ApplyError(RedkeeperError):
    """A proxy could not be repointed (validation, restart or runtime API failed)."""

    exit_code = 6


class RetryLaterError(RedkeeperError):
    """A transient failure (a lock held too long, a restart command that failed): retrying
    may succeed. Exit status 1, which tells Sentinel to run a client-reconfig-script again."""

    exit_code = 1


class HookRefusedError(RedkeeperError):
    """A permanent refusal (bad arguments, unknown master, address outside the inventory,
    a corrupt config): retrying cannot help. Exit status 2, which tells Sentinel to give up."""

    exit_code = 2
