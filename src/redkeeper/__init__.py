"""redkeeper: highly available, horizontally sharded Redis (Sentinel + twemproxy + HAProxy)."""

__version__ = "0.1.0"
