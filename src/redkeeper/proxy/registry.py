"""Which target repoints the data plane: the one mapping from a restart strategy
(`proxy.strategy`) to its `Target`, used by `redkeeper agent` (with a topology or
standalone) and, through the strategy, by `render` and `reconfig-hook`.
"""

from __future__ import annotations

from pathlib import Path

from redkeeper.model import Address
from redkeeper.proxy.base import Target
from redkeeper.proxy.strategy import Strategy
from redkeeper.proxy.twemproxy.restart import ManagedNutcracker
from redkeeper.proxy.twemproxy.targets import CommandTarget, ManagedTarget, StagingTarget


def nutcracker_target(
    strategy: Strategy,
    config: Path,
    *,
    listen: Address | None,
    managed: ManagedNutcracker | None = None,
) -> Target:
    """The target for a restart-mode nutcracker under `strategy` (`managed` needs the
    `ManagedNutcracker` to run)."""
    if strategy.kind == "managed":
        if managed is None:
            raise ValueError("the managed strategy needs a ManagedNutcracker")
        return ManagedTarget(config, managed)
    if strategy.kind == "command":
        return CommandTarget(config, strategy.argv, listen)
    assert strategy.staging is not None
    return StagingTarget(config, strategy.staging)
