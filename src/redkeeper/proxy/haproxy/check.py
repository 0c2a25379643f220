"""`haproxy -c`: the validator of a rendered haproxy.cfg (house rule 6: validate before use).

`checked_by_haproxy` is the `fsutil.atomic_write` validator the rendered-config writer
(`render.disk`) uses; its problems name the real file, never the temp file that was checked.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from redkeeper.errors import ConfigError, Problem, ProcessError
from redkeeper.process import find_binary

__all__ = ["checked_by_haproxy", "validate_with_haproxy"]

# "[ALERT]    (10059) : config : parsing [/tmp/x.cfg:2] : unknown keyword ..." -> the message
_ALERT = re.compile(r"^\[ALERT\]\s+\(\d+\)\s+:\s+(?:config\s+:\s+)?(.*)$")


def validate_with_haproxy(path: Path, *, binary: str | None = None, timeout: float = 10.0) -> None:
    """Run `haproxy -c -f PATH`; ConfigError with haproxy's ALERT lines when it exits non-zero.
    ProcessError when haproxy cannot run or hangs past `timeout`."""
    exe = binary if binary is not None else find_binary("haproxy")
    argv = [exe, "-c", "-f", str(path)]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProcessError(f"`{' '.join(argv)}` did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise ProcessError(f"cannot run {exe}: {exc.strerror}") from None
    if done.returncode == 0:
        return
    output = (done.stdout + done.stderr).splitlines()
    alerts = [m.group(1) for line in output if (m := _ALERT.match(line.strip()))]
    said = "; ".join(alerts) or f"exit status {done.returncode}"
    fix = "render it again from the topology"
    raise ConfigError([Problem(str(path), "", f"haproxy -c rejected it: {said}", fix)])


def checked_by_haproxy(
    real: Path, validate: Callable[[Path], None] = validate_with_haproxy
) -> Callable[[Path], None]:
    """A validator for `atomic_write`: `haproxy -c` on the temp file, errors naming `real`."""

    def check(tmp: Path) -> None:
        try:
            validate(tmp)
        except ConfigError as exc:

            def fix(text: str) -> str:
                return text.replace(str(tmp), str(real)).replace(tmp.name, real.name)

            raise ConfigError(
                [Problem(fix(p.file), p.field, fix(p.message), fix(p.fix)) for p in exc.problems]
            ) from None

    return check
