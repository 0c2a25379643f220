"""The one exception tree of redkeeper. Only the CLI turns these into exit codes.

Every error carries a one-line, operator-facing message that names what is wrong and,
where it can, the file, the field and the fix.

Each error class carries the exit status the CLI ends with; `EXIT_CODES` is the table of
every status (printed by `redkeeper --help`, copied in the README). `reconfig-hook` keeps
Sentinel's own contract instead (0 done, 1 retry later, 2 give up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The words every unexpected exception is reported with (logs, the CLI); tests fail on them.
BUG = "please report it as a BUG"

EXIT_USAGE = 2  # click's own code for a bad command line; redkeeper's UsageError too
EXIT_CONFIG = 78  # sysexits.h EX_CONFIG
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE: an unexpected exception
EXIT_INTERRUPTED = 130  # 128 + SIGINT

#: (code, meaning) for `--help` and the README; one row per code any command may return.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success (status: healthy; check: clean; a drill: every bar met)"),
    (
        1,
        "a verdict of no: status found problems, check found defects, a drill missed a bar; "
        "or a failure at run time (a write, a load)",
    ),
    (EXIT_USAGE, "usage: unknown command, option or node name, bad or missing argument"),
    (
        3,
        "environment: a binary is missing, a port the stack needs is taken, or the lab "
        "lacks root or network namespaces",
    ),
    (
        4,
        "local stack or lab: not running (status: nothing answers), already running, or a "
        "process that did not start or become ready",
    ),
    (5, "Sentinel: fewer than a majority answer, or no master is known"),
    (6, "proxy: nutcracker or HAProxy could not be repointed"),
    (7, "a drill could not run (unknown scenario, the stack did not recover)"),
    (EXIT_BUG, f"unexpected internal error ({BUG})"),
    (
        EXIT_CONFIG,
        "configuration: the topology file (or a nutcracker.yml) is unreadable or "
        "invalid, or the password it names is not set",
    ),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); everything the command started is stopped"),
)


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


class UsageError(RedkeeperError):
    """A bad command line that click's own checks cannot see (a missing companion option,
    an unknown node name). Exit status 2, like click's usage errors."""

    exit_code = EXIT_USAGE


class ConfigError(RedkeeperError):
    """One or more problems in a configuration file (topology, nutcracker.yml, ...)."""

    exit_code = EXIT_CONFIG

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


class LabEnvironmentError(RedkeeperError):
    """The lab cannot run here: not root, no network namespaces, a command that fails."""

    exit_code = 3


class LabError(RedkeeperError):
    """The lab is in a state that forbids the action (already up, not up, unknown host), or
    a host's process did not start or become ready."""

    exit_code = 4


class SentinelError(RedkeeperError):
    """Sentinels are unreachable or disagree in a way that forbids acting."""

    exit_code = 5


class ApplyError(RedkeeperError):
    """A proxy could not be repointed (validation, restart or runtime API failed)."""

    exit_code = 6


class OperationError(RedkeeperError):
    """A switchover or a reshard could not be done (a precondition failed, a step timed out,
    a node refused). What it had changed is undone, or kept in its journal for the next run
    of the same command to finish or roll back."""

    exit_code = 1


class OperationInterruptedError(RedkeeperError):
    """Ctrl-C or SIGTERM during a switchover or a reshard: it stopped at the next safe point
    (undone, or journaled for the next run)."""

    exit_code = EXIT_INTERRUPTED


class RetryLaterError(RedkeeperError):
    """A transient failure (a lock held too long, a restart command that failed): retrying
    may succeed. Exit status 1, which tells Sentinel to run a client-reconfig-script again."""

    exit_code = 1


class HookRefusedError(RedkeeperError):
    """A permanent refusal (bad arguments, unknown master, address outside the inventory,
    a corrupt config): retrying cannot help. Exit status 2, which tells Sentinel to give up."""

    exit_code = 2
