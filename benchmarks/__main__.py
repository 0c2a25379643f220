"""`python -m benchmarks` (`make bench`): every benchmark, one after the other.

Each prints its figures with ratios to a baseline measured in the same run. The slow ones
(`SLOW`: many failovers, minutes each) run only with `--all`; otherwise their command line
is printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SLOW = {"bench_double_failover.py": "30 failovers, about 12 min"}


def main() -> int:
    run_all = "--all" in sys.argv[1:]
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n##### {script.name}", flush=True)
        if script.name in SLOW and not run_all:
            print(f"skipped ({SLOW[script.name]}): python benchmarks/{script.name}, or --all")
            continue
        failed += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
