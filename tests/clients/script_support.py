"""What the Python client scripts share: the command line, the keys, the step bookkeeping, the
capture of every warning, the deadline watchdog, and the one JSON line they print.

The node scripts do the same in `harness.mjs`; both print the report that `matrix.py` reads:
`{"client", "version", "settings", "endpoint", "ok", "steps": {step: "ok" | error},
"warnings": [...], "elapsed_ms"}`. A script exits 0 only when every step passed, 3 when its
deadline expired (the step that hung says so), 1 otherwise.

Imports nothing from redkeeper: a script measures the client library alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TextIO

#: Every script runs these steps in this order; `close` runs even after a failure.
STEPS = ("connect", "set", "get", "mget", "del", "pipeline", "eval", "close")
KEY_COUNT = 20
EVAL_SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])"
SETTINGS = ("default", "nutcracker")
EXIT_FAILED = 1
EXIT_HUNG = 3


class MismatchError(Exception):
    """A reply that is not the one the step expects."""


def expect(what: str, actual: object, expected: object) -> None:
    """Raise MismatchError unless `actual == expected` (after decoding bytes to str)."""
    if plain(actual) != plain(expected):
        raise MismatchError(f"{what}: expected {expected!r}, got {actual!r}")


def plain(value: object) -> object:
    """`value` with bytes decoded and tuples as lists, for comparing replies."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Recorder(logging.Handler):
    """Root-logger handler: every record at WARNING or above becomes a warning line."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"log {record.levelname} {record.name}: {record.getMessage()}")


class Run:
    """One script run: arguments, keys, results, warnings, and the deadline."""

    def __init__(self, client: str, argv: Sequence[str] | None = None) -> None:
        parser = argparse.ArgumentParser(description=f"{client} against a Redis endpoint")
        parser.add_argument("endpoint", help="host:port")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds, all steps")
        parser.add_argument("--settings", choices=SETTINGS, default="default")
        args = parser.parse_args(argv)
        self.client = client
        self.endpoint: str = args.endpoint
        self.host, self.port = split_endpoint(args.endpoint)
        self.timeout: float = args.timeout
        self.settings: str = args.settings
        self.version = "unknown"
        # No braces: a hash_tag "{}" would put every key on one shard.
        self.prefix = f"rk-matrix:{client}:{os.getpid()}:{secrets.token_hex(4)}:"
        self.keys = [f"{self.prefix}k{i}" for i in range(KEY_COUNT)]
        self.missing = f"{self.prefix}missing"
        self.pipe_keys = [f"{self.prefix}p{name}" for name in ("a", "b", "c")]
        self.eval_key = f"{self.prefix}eval"
        self.steps: dict[str, str] = {}
        self.warnings: list[str] = []
        self._caught: list[warnings.WarningMessage] = []
        self._current: str | None = None
        self._lock = threading.Lock()
        self._reported = False
        self._started = time.monotonic()
        self._out: TextIO = sys.stdout

    # -- warnings ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Record every Python warning (filter "always") and every WARNING log record."""
        recorder = _Recorder(self.warnings)
        root = logging.getLogger()
        root.addHandler(recorder)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self._caught = caught
            try:
                yield
            finally:
                root.removeHandler(recorder)

    def all_warnings(self) -> list[str]:
        found = [
            f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in self._caught
        ]
        return found + list(self.warnings)

    # -- deadline ----------------------------------------------------------------------------

    def start_deadline(self) -> None:
        """After `timeout` s: report the step in progress as hung, exit 3 at once."""
        timer = threading.Timer(self.timeout, self._expired)
        timer.daemon = True
        timer.start()

    def _expired(self) -> None:
        with self._lock:
            if self._reported:
                return
            step = self._current or "connect"
            self.steps[step] = f"timeout: no reply within the script's {self.timeout:g} s (hung)"
            self._report()
        os._exit(EXIT_HUNG)

    # -- steps -------------------------------------------------------------------------------

    def _begin(self, name: str) -> bool:
        with self._lock:
            if self._reported:
                return False
            self._current = name
            return True

    def _end(self, name: str, outcome: str) -> None:
        with self._lock:
            if not self._reported:
                self.steps[name] = outcome
                self._current = None

    def failed(self) -> str | None:
        return next((n for n, v in self.steps.items() if v != "ok"), None)

    def run_steps(self, steps: Sequence[tuple[str, Callable[[], object]]]) -> None:
        """Run each step in order; after a failure only `close` still runs."""
        for name, step in steps:
            earlier = self.failed()
            if earlier is not None and name != "close":
                self._end(name, f"not run: {earlier} failed")
                continue
            if not self._begin(name):
                return
            try:
                step()
            except Exception as exc:  # any error is the step's outcome
                self._end(name, describe(exc))
            else:
                self._end(name, "ok")

    async def run_steps_async(
        self, steps: Sequence[tuple[str, Callable[[], Awaitable[object]]]]
    ) -> None:
        """`run_steps` for coroutines."""
        for name, step in steps:
            earlier = self.failed()
            if earlier is not None and name != "close":
                self._end(name, f"not run: {earlier} failed")
                continue
            if not self._begin(name):
                return
            try:
                await step()
            except Exception as exc:  # any error is the step's outcome
                self._end(name, describe(exc))
            else:
                self._end(name, "ok")

    # -- report ------------------------------------------------------------------------------

    def _report(self) -> None:
        self._reported = True
        for name in STEPS:
            self.steps.setdefault(name, "not run: the deadline expired")
        ok = all(self.steps[name] == "ok" for name in STEPS)
        report = {
            "client": self.client,
            "version": self.version,
            "settings": self.settings,
            "endpoint": self.endpoint,
            "ok": ok,
            "steps": {name: self.steps[name] for name in STEPS},
            "warnings": self.all_warnings(),
            "elapsed_ms": round((time.monotonic() - self._started) * 1000),
        }
        self._out.write(json.dumps(report) + "\n")
        self._out.flush()

    def finish(self) -> int:
        """Print the report (unless the deadline already did); the exit status."""
        with self._lock:
            if self._reported:
                return EXIT_HUNG
            self._report()
            return 0 if all(self.steps[n] == "ok" for n in STEPS) else EXIT_FAILED


def split_endpoint(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"endpoint {text!r} is not host:port")
    return host.strip("[]"), int(port)
