"""Pure renderers for systemd unit files, one per process of a host."""

from __future__ import annotations

import shlex
from pathlib import Path

from redkeeper.render.files import RenderedFile

UNIT_DIR = Path("/etc/systemd/system")


def unit_name(process: str) -> str:
    return f"redkeeper-{process}.service"


def render_unit(
    process: str,
    description: str,
    argv: list[str],
    host: str,
    *,
    user: str = "redis",
    after: tuple[str, ...] = (),
    writable: tuple[Path, ...] = (),
    reload_signal: str | None = None,
    pre: tuple[tuple[str, ...], ...] = (),
    post: tuple[tuple[str, ...], ...] = (),
) -> RenderedFile:
    """One unit. `pre` / `post`: ExecStartPre / ExecStopPost commands whose failure is
    ignored (the `-` prefix): clean-ups that may find nothing to clean."""
    after_units = " ".join(["network-online.target", *after])
    lines = [
        "# rendered by redkeeper",
        "[Unit]",
        f"Description=redkeeper {description}",
        f"After={after_units}",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={user}",
        f"Group={user}",
        *(f"ExecStartPre=-{shlex.join(cmd)}" for cmd in pre),
        f"ExecStart={shlex.join(argv)}",
        *(f"ExecStopPost=-{shlex.join(cmd)}" for cmd in post),
        *([f"ExecReload=/bin/kill -{reload_signal} $MAINPID"] if reload_signal else []),
        "Restart=always",
        "RestartSec=1",
        "LimitNOFILE=65536",
        "NoNewPrivileges=true",
        "ProtectSystem=full",
    ]
    if writable:
        lines.append("ReadWritePaths=" + " ".join(str(p) for p in writable))
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return RenderedFile(UNIT_DIR / unit_name(process), "\n".join(lines), host=host)
