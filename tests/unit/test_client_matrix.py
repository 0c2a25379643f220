"""tests/clients/matrix.py's verdict on a client run, and when it skips: pure, no process."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from redkeeper.model import Address
from tests.clients import matrix
from tests.clients.matrix import (
    IOREDIS,
    REDIS_PY,
    STEPS,
    ClientFailedError,
    ClientResult,
    check,
    skip_reason,
)

CLEAN: dict[str, Any] = {
    "client": "redis-py",
    "version": "8.2.0",
    "settings": "default",
    "endpoint": "127.0.0.1:6379",
    "ok": True,
    "steps": dict.fromkeys(STEPS, "ok"),
    "warnings": [],
    "elapsed_ms": 120,
}


def result(report: dict[str, Any] | None = None, **changes: Any) -> ClientResult:
    fields: dict[str, Any] = {"returncode": 0, "stdout": "{}\n", "stderr": ""}
    fields.update(changes)
    data = copy.deepcopy(CLEAN) if report is None else report
    return ClientResult(REDIS_PY, Address("127.0.0.1", 6379), "default", report=data, **fields)


def test_a_clean_run_passes() -> None:
    clean = result()
    assert clean.problems() == []
    assert clean.first_failure() is None
    check(clean)


def _failed_step(r: dict[str, Any]) -> None:
    r["steps"]["eval"] = "ResponseError: unknown command 'EVAL'"
    r["ok"] = False


def _warning(r: dict[str, Any]) -> None:
    r["warnings"] = ["log WARNING redis.connection: Server/proxy does not support HELLO"]


def _old_version(r: dict[str, Any]) -> None:
    r["version"] = "7.4.1"


def _step_missing(r: dict[str, Any]) -> None:
    del r["steps"]["close"]


def _ok_but_not_ok(r: dict[str, Any]) -> None:
    r["ok"] = False


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_failed_step, "step eval: ResponseError: unknown command 'EVAL'"),
        (_warning, "warning: log WARNING redis.connection"),
        (_old_version, "redis 7.4.1 is installed, the matrix measures 8.x"),
        (_step_missing, "step close: missing"),
        (_ok_but_not_ok, '"ok": false'),
    ],
)
def test_every_defect_in_the_report_fails(
    change: Callable[[dict[str, Any]], None], says: str
) -> None:
    report = copy.deepcopy(CLEAN)
    change(report)
    with pytest.raises(ClientFailedError) as failed:
        check(result(report))
    assert says in str(failed.value)
    assert '"client": "redis-py"' in str(failed.value)  # the report is in the message


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"stderr": "DeprecationWarning: something\n"}, "the script wrote to stderr"),
        ({"returncode": 1}, "exit status 1"),
        ({"returncode": None}, "killed"),
    ],
)
def test_every_defect_outside_the_report_fails(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ClientFailedError, match=says) as failed:
        check(result(**changes))
    if "stderr" in changes:
        assert "DeprecationWarning: something" in str(failed.value)


def test_no_report_fails_with_the_output() -> None:
    broken = ClientResult(
        REDIS_PY, Address("127.0.0.1", 1), "default", 1, "Traceback …", "ImportError: x", None
    )
    with pytest.raises(ClientFailedError, match="printed no JSON report") as failed:
        check(broken)
    assert "ImportError: x" in str(failed.value)


def test_report_is_the_last_json_line() -> None:
    assert matrix._report('noise\n{"a": 1}\n{"b": 2}\ntrailing\n') == {"b": 2}
    assert matrix._report("no json here\n[1, 2]\n") is None


def test_node_clients_skip_with_the_reason_make_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "npm ci of tests/clients/package-lock.json failed (npm registry unreachable?): X"
    (tmp_path / "unavailable").write_text(reason + "\n")
    monkeypatch.setattr(matrix, "UNAVAILABLE", tmp_path / "unavailable")
    monkeypatch.setattr(matrix, "NODE_MODULES", tmp_path / "node_modules")
    assert skip_reason(IOREDIS) == reason
    assert skip_reason(REDIS_PY) is None  # the Python clients never skip
    with pytest.raises(pytest.skip.Exception, match=r"^npm ci of .*: X$"):
        matrix.assert_client_works(IOREDIS, Address("127.0.0.1", 1))


def test_node_clients_skip_when_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matrix, "UNAVAILABLE", tmp_path / "unavailable")
    monkeypatch.setattr(matrix, "NODE_MODULES", tmp_path / "node_modules")
    assert skip_reason(IOREDIS) == (
        f"ioredis is not installed in {tmp_path / 'node_modules'} (run `make clients`)"
    )
    (tmp_path / "node_modules" / "ioredis").mkdir(parents=True)
    (tmp_path / "node_modules" / "ioredis" / "package.json").write_text("{}")
    assert skip_reason(IOREDIS) is None


def test_a_stale_install_fails_instead_of_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "node_modules" / "ioredis").mkdir(parents=True)
    (tmp_path / "node_modules" / "ioredis" / "package.json").write_text("{}")
    (tmp_path / "package-lock.json").write_text('{"old": true}')
    monkeypatch.setattr(matrix, "CACHE", tmp_path)
    monkeypatch.setattr(matrix, "UNAVAILABLE", tmp_path / "unavailable")
    monkeypatch.setattr(matrix, "NODE_MODULES", tmp_path / "node_modules")
    with pytest.raises(pytest.fail.Exception, match=r"older package-lock\.json"):
        matrix.require_installed(IOREDIS)
