"""redis-py (sync) as a new user meets it: `redis.Redis(host=…, port=…)`, nothing else.

    python tests/clients/redis_py_sync.py HOST:PORT [--timeout S] [--settings nutcracker]

`--settings nutcracker` adds only what docs/clients.md says nutcracker needs. Prints one JSON
line (see script_support.py); exit 0 only when every step passed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `tests.clients` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.clients.script_support import EVAL_SCRIPT, Run, expect

CLIENT = "redis-py"


def settings_for(run: Run) -> dict[str, Any]:
    """The keyword arguments beyond host and port: none by default."""
    if run.settings == "nutcracker":
        return {"protocol": 2, "driver_info": None}
    return {}


def main() -> int:
    run = Run(CLIENT)
    run.start_deadline()
    with run.capture():
        import redis  # noqa: PLC0415  (imported under the warning capture)

        run.version = redis.__version__
        client = redis.Redis(host=run.host, port=run.port, **settings_for(run))
        keys, missing = run.keys, run.missing
        a, b, c = run.pipe_keys

        def connect() -> None:
            expect("PING", client.ping(), True)

        def set_keys() -> None:
            for i, key in enumerate(keys):
                expect(f"SET {key}", client.set(key, f"v{i}"), True)

        def get_keys() -> None:
            for i, key in enumerate(keys):
                expect(f"GET {key}", client.get(key), f"v{i}")

        def mget() -> None:
            expected = [f"v{i}" for i in range(len(keys))] + [None]
            expect("MGET", client.mget([*keys, missing]), expected)

        def delete() -> None:
            expect("DEL", client.delete(*keys, missing), len(keys))

        def pipeline() -> None:
            pipe = client.pipeline(transaction=False)
            pipe.set(a, "1")
            pipe.set(b, "2")
            pipe.incrby(a, 5)
            pipe.get(a)
            pipe.mget([a, b, c])
            pipe.exists(a, b)
            pipe.delete(a, b)
            pipe.get(a)
            replies = pipe.execute()
            expect("pipeline", replies, [True, True, 6, "6", ["6", "2", None], 2, 2, None])

        def evaluate() -> None:
            expect("EVAL", client.eval(EVAL_SCRIPT, 1, run.eval_key, "e1"), "OK")
            expect("GET after EVAL", client.get(run.eval_key), "e1")
            expect("DEL after EVAL", client.delete(run.eval_key), 1)

        def close() -> None:
            client.close()

        run.run_steps(
            [
                ("connect", connect),
                ("set", set_keys),
                ("get", get_keys),
                ("mget", mget),
                ("del", delete),
                ("pipeline", pipeline),
                ("eval", evaluate),
                ("close", close),
            ]
        )
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
