"""redis-py (asyncio) as a new user meets it: `redis.asyncio.Redis(host=…, port=…)`, nothing
else.

    python tests/clients/redis_py_async.py HOST:PORT [--timeout S] [--settings nutcracker]

`--settings nutcracker` adds only what docs/clients.md says nutcracker needs. Prints one JSON
line (see script_support.py); exit 0 only when every step passed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `tests.clients` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.clients.script_support import EVAL_SCRIPT, Run, expect

CLIENT = "redis-py-asyncio"


def settings_for(run: Run) -> dict[str, Any]:
    """The keyword arguments beyond host and port: none by default."""
    if run.settings == "nutcracker":
        return {"protocol": 2, "driver_info": None}
    return {}


def main() -> int:
    run = Run(CLIENT)
    run.start_deadline()
    with run.capture():
        asyncio.run(steps(run))
    return run.finish()


async def steps(run: Run) -> None:
    import redis  # noqa: PLC0415  (imported under the warning capture)
    import redis.asyncio  # noqa: PLC0415

    run.version = redis.__version__
    client = redis.asyncio.Redis(host=run.host, port=run.port, **settings_for(run))
    keys, missing = run.keys, run.missing
    a, b, c = run.pipe_keys

    async def connect() -> None:
        expect("PING", await client.ping(), True)

    async def set_keys() -> None:
        for i, key in enumerate(keys):
            expect(f"SET {key}", await client.set(key, f"v{i}"), True)

    async def get_keys() -> None:
        for i, key in enumerate(keys):
            expect(f"GET {key}", await client.get(key), f"v{i}")

    async def mget() -> None:
        expected = [f"v{i}" for i in range(len(keys))] + [None]
        expect("MGET", await client.mget([*keys, missing]), expected)

    async def delete() -> None:
        expect("DEL", await client.delete(*keys, missing), len(keys))

    async def pipeline() -> None:
        pipe = client.pipeline(transaction=False)
        pipe.set(a, "1")
        pipe.set(b, "2")
        pipe.incrby(a, 5)
        pipe.get(a)
        pipe.mget([a, b, c])
        pipe.exists(a, b)
        pipe.delete(a, b)
        pipe.get(a)
        replies = await pipe.execute()
        expect("pipeline", replies, [True, True, 6, "6", ["6", "2", None], 2, 2, None])

    async def evaluate() -> None:
        expect("EVAL", await client.eval(EVAL_SCRIPT, 1, run.eval_key, "e1"), "OK")
        expect("GET after EVAL", await client.get(run.eval_key), "e1")
        expect("DEL after EVAL", await client.delete(run.eval_key), 1)

    async def close() -> None:
        await client.aclose()

    await run.run_steps_async(
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


if __name__ == "__main__":
    sys.exit(main())
