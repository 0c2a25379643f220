"""Suite-wide guard: any log a test leaves under its tmp_path that says
"please report it as a BUG" (an unexpected exception in redkeeper) fails that test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BUG_MARKER


@pytest.fixture(autouse=True)
def _no_bug_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if not isinstance(tmp, Path) or not tmp.exists():
        return
    for log in tmp.rglob("*.log"):
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        assert BUG_MARKER not in text, f"{log} logs an unexpected exception:\n{text[-3000:]}"
