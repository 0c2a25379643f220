"""The agent's Prometheus metrics (own registry, so several agents can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AgentMetrics:
    def __init__(self, configured_sentinels: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sentinels_configured = Gauge(
            "redkeeper_sentinels_configured", "Sentinels the agent is configured with", registry=r
        )
        self.sentinels_configured.set(configured_sentinels)
        self.sentinel_links_up = Gauge(
            "redkeeper_sentinel_links_up", "Sentinel pub/sub links currently up", registry=r
        )
        self.sentinels_answering = Gauge(
            "redkeeper_sentinels_answering", "Sentinels that answered the last cycle", registry=r
        )
        self.fail_static = Gauge(
            "redkeeper_fail_static",
            "1 while fewer than a majority of Sentinels answer (routes kept as they are)",
            registry=r,
        )
        self.last_cycle = Gauge(
            "redkeeper_last_cycle_timestamp_seconds", "Unix time of the last cycle", registry=r
        )
        self.cycles = Counter(
            "redkeeper_cycles", "Reconcile cycles by verdict", ["verdict"], registry=r
        )
        self.switches = Counter(
            "redkeeper_switches_applied", "Shards repointed", ["shard"], registry=r
        )
        self.refusals = Counter(
            "redkeeper_refusals", "Repoints refused, by reason", ["shard", "reason"], registry=r
        )
        self.restarts = Counter(
            "redkeeper_restarts", "nutcracker restarts by result", ["result"], registry=r
        )
        self.apply_errors = Counter(
            "redkeeper_apply_errors", "Applies that failed (config or restart)", registry=r
        )
        self.apply_latency = Histogram(
            "redkeeper_apply_latency_seconds",
            "First Sentinel notice of a new master to the proxy serving it",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5),
            registry=r,
        )
        self.refuses_writes = Gauge(
            "redkeeper_shard_refuses_writes",
            "1 while the shard's master has fewer good replicas than min-replicas-to-write "
            "(every write gets NOREPLICAS)",
            ["shard"],
            registry=r,
        )
        self.events = Counter(
            "redkeeper_sentinel_events", "Sentinel events received", ["event"], registry=r
        )
