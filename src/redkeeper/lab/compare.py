"""The comparison endpoint of `heal-returns-old-master` (pure): HAProxy in front of one
shard with the published health check that picks the master by `role:master` (PING, INFO
replication, expect `role:master`, QUIT; `check inter 1s`), as widely copied from a 2014
article on Redis + Sentinel + HAProxy + keepalived.

A returning old master still says `role:master` until Sentinel demotes it (8-10 s), so this
check admits it again and new connections are balanced over two "masters": the errors it
causes are what the drill reports beside the redkeeper proxy's.
"""

from __future__ import annotations

from collections.abc import Sequence

from redkeeper.model import Address

UNIT = "compare-haproxy"
CONFIG = "compare-haproxy.cfg"


def haproxy_config(listen: Address, nodes: Sequence[Address], password: str | None) -> str:
    """haproxy.cfg: `listen` → the shard's `nodes`, checked for `role:master`."""
    auth = (
        [
            "    tcp-check send AUTH\\ " + password.replace(" ", "\\ ") + "\\r\\n",
            "    tcp-check expect string +OK",
        ]
        if password
        else []
    )
    lines = [
        "# the role:master health check (comparison endpoint of redkeeper drill --lab)",
        "global",
        "    maxconn 256",
        "defaults",
        "    mode tcp",
        "    timeout connect 1s",
        "    timeout client 30s",
        "    timeout server 30s",
        "frontend redis",
        f"    bind {listen}",
        "    default_backend redis_backend",
        "backend redis_backend",
        "    option tcp-check",
        *auth,
        "    tcp-check send PING\\r\\n",
        "    tcp-check expect string +PONG",
        "    tcp-check send info\\ replication\\r\\n",
        "    tcp-check expect string role:master",
        "    tcp-check send QUIT\\r\\n",
        "    tcp-check expect string +OK",
    ]
    lines += [f"    server redis{i} {node} check inter 1s" for i, node in enumerate(nodes, 1)]
    return "\n".join(lines) + "\n"
