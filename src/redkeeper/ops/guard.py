"""The switchover's guard: a run killed mid-way (SIGKILL, a crash, its terminal gone) is
recovered at once, without waiting for the operator to run the command again.

`redkeeper switchover` holds the switchover journal's lock (`Journal.locked`) and starts
`start(...)`: a detached process (`redkeeper switchover-guard`, its own session, output in
STATE/ops/switchover-guard.log) that waits for that lock. The kernel hands it the lock when
the run exits, however it exits. A run that ended normally, or aborted cleanly, closed its
journal: the guard exits. A journal still there means the run died: the guard runs
`Switchover.recover(finish=False)` (priorities restored, pauses lifted, the outcome of a
failover that was sent awaited and a stale old master made a replica) and keeps the journal,
so that the next run of the command still says whether the interrupted switchover had
completed. The guard holds the lock while it works: a rerun waits for it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from redkeeper.errors import RedkeeperError
from redkeeper.ops.journal import JOURNAL_DIR, Journal
from redkeeper.ops.switchover import KIND, Switchover
from redkeeper.topology import Topology

__all__ = ["COMMAND", "KIND", "LOCK_WAIT_S", "log_path", "start", "watch"]

COMMAND = "switchover-guard"
WAIT_S = 6 * 3600.0  # bound of the wait for the run to end (a run is bounded far below)
LOCK_WAIT_S = 60.0  # a run waiting for another run or a guard (a guard's recovery is bounded)


def log_path(state_dir: Path) -> Path:
    return state_dir / JOURNAL_DIR / f"{COMMAND}.log"


def start(config: Path | None, state_dir: Path) -> subprocess.Popen[bytes]:
    """The guard of the calling run (which must hold the journal's lock already)."""
    path = log_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "redkeeper", COMMAND]
    if config is not None:
        argv += ["-c", str(config)]
    with path.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)


def watch(topology: Topology) -> int:
    """The guard's body (module docstring): 0 nothing to do or recovered, 1 it failed."""
    journal = Journal(topology.state_dir, KIND)
    with journal.locked(WAIT_S):
        try:
            if journal.read() is None:
                return 0
            _log("the switchover run died with its journal open: recovering")
            Switchover(topology, log=_log).recover(finish=False)
        except RedkeeperError as exc:
            _log(f"error: {exc} (run the same switchover command again)")
            return 1
        return 0
