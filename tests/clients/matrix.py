"""The stock-client matrix, pytest side: run one client script against an endpoint, read its
report, and judge it.

It owns which clients there are (`CLIENTS`), how each script is started (the venv's Python, or
node with NODE_PATH at the `make clients` install in .cache/clients), the outside bound on a
run, and the verdict: `assert_client_works` fails with the client's JSON report and stderr
when a step failed, a warning was recorded or anything reached stderr, and skips only when a
node client's npm packages are not installed (with the reason `make clients` wrote down).

Other integration tests use it as::

    @pytest.mark.parametrize("client", CLIENTS)
    def test_my_endpoint(client: Client, my_endpoint: Address) -> None:
        assert_client_works(client, my_endpoint)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from redkeeper.model import Address

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
#: Where `make clients` runs `npm ci` (REDKEEPER_CLIENTS_CACHE overrides it).
CACHE = Path(os.environ.get("REDKEEPER_CLIENTS_CACHE", REPO / ".cache" / "clients"))
NODE_MODULES = CACHE / "node_modules"
#: Written by `make clients` when npm or the registry is not there: the skip reason.
UNAVAILABLE = CACHE / "unavailable"
STEPS = ("connect", "set", "get", "mget", "del", "pipeline", "eval", "close")
Settings = Literal["default", "nutcracker"]


@dataclass(frozen=True)
class Client:
    """One client library and the script that drives it."""

    name: str
    script: str
    runtime: Literal["python", "node"]
    #: The package whose version the report gives (an npm alias for a second major version
    #: side by side); its major version must be `major`.
    package: str
    major: int
    #: Extra arguments for the script.
    args: tuple[str, ...] = ()

    def __str__(self) -> str:  # the pytest id
        return self.name

    @property
    def path(self) -> Path:
        return HERE / self.script


REDIS_PY = Client("redis-py", "redis_py_sync.py", "python", "redis", 8)
REDIS_PY_ASYNCIO = Client("redis-py-asyncio", "redis_py_async.py", "python", "redis", 8)
NODE_REDIS = Client("node-redis", "node_redis.mjs", "node", "redis", 5)
#: npm's `redis` latest is 6.x: what `npm install redis` gives a new user today.
NODE_REDIS_6 = Client(
    "node-redis-6", "node_redis.mjs", "node", "redis-6", 6, ("--package", "redis-6")
)
IOREDIS = Client("ioredis", "ioredis.mjs", "node", "ioredis", 6)
CLIENTS = [REDIS_PY, REDIS_PY_ASYNCIO, NODE_REDIS, NODE_REDIS_6, IOREDIS]


class ClientFailedError(AssertionError):
    """A client did not work against the endpoint, or printed a warning."""


@dataclass
class ClientResult:
    """One run of a client script: its report (None if it printed none), exit status, output."""

    client: Client
    endpoint: Address
    settings: Settings
    returncode: int | None  # None: the harness killed it at its own bound
    stdout: str
    stderr: str
    report: dict[str, Any] | None = field(default=None)

    @property
    def version(self) -> str:
        return str(self.report.get("version", "unknown")) if self.report else "unknown"

    @property
    def steps(self) -> dict[str, str]:
        return dict(self.report.get("steps", {})) if self.report else {}

    @property
    def warnings(self) -> list[str]:
        return [str(w) for w in self.report.get("warnings", [])] if self.report else []

    def first_failure(self) -> tuple[str, str] | None:
        """(step, error) of the first step that did not pass."""
        for name in STEPS:
            outcome = self.steps.get(name, "missing from the report")
            if outcome != "ok":
                return name, outcome
        return None

    def problems(self) -> list[str]:
        """Everything that keeps this run from being a clean pass; empty when it is one."""
        found: list[str] = []
        if self.returncode is None:
            found.append("the script outlived the harness's bound and was killed")
        if self.report is None:
            found.append("the script printed no JSON report")
            return found
        found += [f"step {n}: {o}" for n in STEPS if (o := self.steps.get(n, "missing")) != "ok"]
        if self.report.get("ok") is not True:
            found.append('the report says "ok": false')
        if self.returncode not in (0, None):
            found.append(f"exit status {self.returncode}")
        found += [f"warning: {w}" for w in self.warnings]
        if self.stderr.strip():
            found.append("the script wrote to stderr")
        major = self.version.split(".")[0]
        if major != str(self.client.major):
            found.append(
                f"{self.client.package} {self.version} is installed, the matrix measures "
                f"{self.client.major}.x (run `make setup`)"
            )
        return found

    def describe(self) -> str:
        """The report and stderr, for a failure message."""
        head = f"{self.client} ({self.settings} settings) against {self.endpoint}"
        body = json.dumps(self.report, indent=2) if self.report else f"stdout: {self.stdout!r}"
        return f"{head}, exit {self.returncode}:\n{body}\nstderr:\n{self.stderr or '(empty)'}"


def skip_reason(client: Client) -> str | None:
    """Why `client` cannot run here (its npm packages are not installed), else None."""
    if client.runtime != "node":
        return None
    if UNAVAILABLE.exists():
        return UNAVAILABLE.read_text().strip() or f"{UNAVAILABLE} says the install failed"
    if not (NODE_MODULES / client.package / "package.json").exists():
        return f"{client.package} is not installed in {NODE_MODULES} (run `make clients`)"
    return None


def stale_install() -> str | None:
    """A difference between the committed lock file and the one installed, described."""
    installed = CACHE / "package-lock.json"
    if installed.exists() and installed.read_bytes() != (HERE / "package-lock.json").read_bytes():
        return f"{NODE_MODULES} was installed from an older package-lock.json: run `make clients`"
    return None


def command_for(
    client: Client, endpoint: Address, settings: Settings, script_timeout: float
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run `client`'s script."""
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    args = [f"{host}:{endpoint.port}", "--timeout", f"{script_timeout:g}", "--settings", settings]
    args += client.args
    env = dict(os.environ)
    if client.runtime == "python":
        return [sys.executable, str(client.path), *args], env
    node = shutil.which("node")
    if node is None:
        raise ClientFailedError("node is not on PATH")
    env["NODE_PATH"] = str(NODE_MODULES)
    env.pop("NODE_OPTIONS", None)
    return [node, str(client.path), *args], env


def run_client(
    client: Client,
    endpoint: Address,
    timeout: float = 20.0,
    *,
    settings: Settings = "default",
    script_timeout: float | None = None,
) -> ClientResult:
    """Run `client`'s script against `endpoint` and collect its report.

    The script bounds itself (`script_timeout`, default `timeout` / 2: connect + steps, then
    it reports the step that hung); `timeout` bounds the whole process from outside.
    """
    own = script_timeout if script_timeout is not None else timeout / 2
    argv, env = command_for(client, endpoint, settings, own)
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    returncode: int | None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=10)
        returncode = None
    return ClientResult(client, endpoint, settings, returncode, stdout, stderr, _report(stdout))


def _report(stdout: str) -> dict[str, Any] | None:
    """The last line of `stdout` that is a JSON object."""
    for line in reversed(stdout.splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def require_installed(client: Client) -> None:
    """Skip (node clients without their npm packages) or fail (a stale install)."""
    reason = skip_reason(client)
    if reason is not None:
        pytest.skip(reason)
    if client.runtime == "node" and (stale := stale_install()) is not None:
        pytest.fail(stale)


def assert_client_works(
    client: Client,
    endpoint: Address,
    *,
    settings: Settings = "default",
    timeout: float = 20.0,
    script_timeout: float | None = None,
) -> ClientResult:
    """Every step passed and nothing was printed; else ClientFailedError with the report."""
    require_installed(client)
    result = run_client(client, endpoint, timeout, settings=settings, script_timeout=script_timeout)
    check(result)
    return result


def check(result: ClientResult) -> None:
    """Raise ClientFailedError, listing every problem and the report, unless the run was clean."""
    problems = result.problems()
    if problems:
        listed = "\n".join(f"- {p}" for p in problems)
        raise ClientFailedError(
            f"{result.client} does not work cleanly:\n{listed}\n{result.describe()}"
        )
