"""Data tools: where a key lives (`locate`), test data through the proxy (`load`), and the
placement audit of every shard (`check`).

`ring` builds the placement ring of a topology, `masters` asks Sentinel for each shard's current
master, `load` owns the wire, the values and the manifest, `check` the two verification passes.
"""

from redkeeper.data.check import CheckReport, Classifier, ScanFindings, check_data
from redkeeper.data.load import (
    DataError,
    LoadResult,
    Manifest,
    expected_value,
    load_keys,
    manifest_path,
    read_manifest,
    write_keys,
    write_manifest,
)
from redkeeper.data.masters import Masters, current_masters
from redkeeper.data.ring import ring_for, shard_names

__all__ = [
    "CheckReport",
    "Classifier",
    "DataError",
    "LoadResult",
    "Manifest",
    "Masters",
    "ScanFindings",
    "check_data",
    "current_masters",
    "expected_value",
    "load_keys",
    "manifest_path",
    "read_manifest",
    "ring_for",
    "shard_names",
    "write_keys",
    "write_manifest",
]
