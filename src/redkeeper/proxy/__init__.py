"""Proxy targets: the contract the agent drives (`base`), restart strategies and their
registry, twemproxy (nutcracker.yml editing, the one apply sequence, restarts) and HAProxy
(steady mode's runtime API target)."""
