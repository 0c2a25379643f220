"""Benchmark of redkeeper.placement: keys/s of `Ring.index_of` for every hash and distribution.

Run: `python benchmarks/bench_placement.py [--keys N] [--servers N] [--binary]`. Keys are
16 bytes (ASCII like `user:00000000042` by default, random bytes with --binary); the pool has
`--servers` equal-weight named servers. Prints a table and each ratio to fnv1a_64 + ketama,
the default of twemproxy, whose target is >= 200k keys/s in pure Python.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence

from redkeeper.placement import HASHES, PoolServer, Ring

TARGET_KEYS_PER_S = 200_000
KEY_LENGTH = 16


def make_keys(count: int, binary: bool, seed: int = 42) -> list[bytes]:
    """`count` distinct 16-byte keys."""
    if binary:
        rng = random.Random(seed)
        return [rng.randbytes(KEY_LENGTH) for _ in range(count)]
    return [f"user:{i:011d}".encode() for i in range(count)]


def keys_per_second(index_of: Callable[[bytes], int], keys: Sequence[bytes], rounds: int) -> float:
    """Best of `rounds` passes over `keys`."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for key in keys:
            index_of(key)
        best = min(best, time.perf_counter() - start)
    return len(keys) / best


def run(count: int, servers: int, binary: bool, rounds: int) -> dict[tuple[str, str], float]:
    keys = make_keys(count, binary)
    pool = [PoolServer("127.0.0.1", 7000 + i, 1, f"shard{i}") for i in range(servers)]
    results: dict[tuple[str, str], float] = {}
    for hash_name in HASHES:
        for distribution in ("ketama", "modula"):
            ring = Ring(pool, hash=hash_name, distribution=distribution)
            results[hash_name, distribution] = keys_per_second(ring.index_of, keys, rounds)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=100_000, help="keys per pass")
    parser.add_argument("--servers", type=int, default=8, help="servers in the pool")
    parser.add_argument("--rounds", type=int, default=3, help="passes; the best counts")
    parser.add_argument("--binary", action="store_true", help="random 16-byte binary keys")
    args = parser.parse_args(argv)

    results = run(args.keys, args.servers, args.binary, args.rounds)
    base = results["fnv1a_64", "ketama"]
    kind = "random binary" if args.binary else "ASCII"
    print(
        f"Ring.index_of, {args.servers} equal servers, {args.keys} {kind} {KEY_LENGTH}-byte keys, "
        f"best of {args.rounds}, Python {sys.version.split()[0]}"
    )
    header = f"{'hash':<14}{'ketama keys/s':>15}{'ratio':>8}{'modula keys/s':>16}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for hash_name in HASHES:
        ketama, modula = results[hash_name, "ketama"], results[hash_name, "modula"]
        print(
            f"{hash_name:<14}{ketama:>15,.0f}{ketama / base:>8.2f}"
            f"{modula:>16,.0f}{modula / base:>8.2f}"
        )
    verdict = "meets" if base >= TARGET_KEYS_PER_S else "MISSES"
    print(f"fnv1a_64 + ketama: {base:,.0f} keys/s, {verdict} the {TARGET_KEYS_PER_S:,} target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
