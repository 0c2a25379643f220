"""Processes: finding binaries, ports, and starting/stopping real daemons by PID."""

from redkeeper.process.binaries import find_binary
from redkeeper.process.managed import (
    ManagedProcess,
    ProcessRecord,
    pid_alive,
    read_record,
    stop_pid,
    write_record,
)
from redkeeper.process.ports import free_port, port_open, wait_for_port

__all__ = [
    "ManagedProcess",
    "ProcessRecord",
    "find_binary",
    "free_port",
    "pid_alive",
    "port_open",
    "read_record",
    "stop_pid",
    "wait_for_port",
    "write_record",
]
