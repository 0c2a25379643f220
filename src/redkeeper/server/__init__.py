"""The redkeeper proxy's data plane: a twemproxy-compatible Redis endpoint in Python.

Exact nutcracker key placement (`Router`, over `redkeeper.placement.Ring`), RESP2 and RESP3
clients at their default settings, multi-key commands split per shard, and routes swapped in
memory without a restart (`Router.set_routes`). `ProxyServer` is the listener; the caller
(the agent, the CLI, or the development entry `python -m redkeeper.server`) drives the routes.
"""

from redkeeper.server.metrics import ProxyMetrics
from redkeeper.server.router import READ_FROM, RouteError, Router, RouteTable
from redkeeper.server.server import ProxyServer, ProxySettings, ProxyStartError

__all__ = [
    "READ_FROM",
    "ProxyMetrics",
    "ProxyServer",
    "ProxySettings",
    "ProxyStartError",
    "RouteError",
    "RouteTable",
    "Router",
]
