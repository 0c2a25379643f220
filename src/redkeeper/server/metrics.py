"""Metrics of the proxy: plain counters on the hot path, a Prometheus collector to read them.

Owns what the proxy counts and how it is exposed. The data plane only does list/dict
increments (no locks, no label lookups per request); `ProxyMetrics.collect` turns them into
Prometheus families when scraped (prometheus-client's custom-collector interface):

* `redkeeper_proxy_requests_total{class}`: requests by command class;
* `redkeeper_proxy_backend_requests_total{shard}`: requests written to each shard;
* `redkeeper_proxy_errors_total{reason}`: error replies the proxy made itself;
* `redkeeper_proxy_backend_latency_seconds{shard}`: write-to-reply time of each batch;
* `redkeeper_proxy_clients` / `..._clients_total`: connected / accepted clients;
* `redkeeper_proxy_backend_up{shard,address,protocol}`: backend link state;
* `redkeeper_proxy_route_version`: how many route tables have been installed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from redkeeper.server.commands import KIND_NAMES

BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class ProxyMetrics(Collector):
    """The proxy's counters; register it with a CollectorRegistry to expose them."""

    def __init__(self) -> None:
        self.requests = [0] * len(KIND_NAMES)  # by command class (commands.KIND_NAMES)
        self.errors: dict[str, int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.links: dict[tuple[str, str, int], bool] = {}
        self.clients_total = 0
        self.version = 0
        self.clients: Callable[[], int] = lambda: 0
        self.backend_requests: Callable[[], dict[str, int]] = dict

    def error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def observe_backend(self, shard: str, seconds: float) -> None:
        histogram = self.latency.get(shard)
        if histogram is None:
            histogram = self.latency[shard] = _Histogram()
        histogram.observe(seconds)

    def link_state(self, shard: str, address: str, proto: int, up: bool) -> None:
        self.links[shard, address, proto] = up

    def route_version(self, version: int) -> None:
        self.version = version

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "redkeeper_proxy_requests", "Client requests by command class", labels=["class"]
        )
        for kind, count in enumerate(self.requests):
            requests.add_metric([KIND_NAMES[kind]], count)
        yield requests
        per_shard = CounterMetricFamily(
            "redkeeper_proxy_backend_requests", "Requests written to each shard", labels=["shard"]
        )
        for shard, count in sorted(self.backend_requests().items()):
            per_shard.add_metric([shard], count)
        yield per_shard
        errors = CounterMetricFamily(
            "redkeeper_proxy_errors", "Error replies made by the proxy", labels=["reason"]
        )
        for reason, count in sorted(self.errors.items()):
            errors.add_metric([reason], count)
        yield errors
        latency = HistogramMetricFamily(
            "redkeeper_proxy_backend_latency_seconds",
            "Time from writing a batch to a shard to its last reply",
            labels=["shard"],
        )
        for shard, histogram in sorted(self.latency.items()):
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*BUCKETS, float("inf")), histogram.counts, strict=True):
                running += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), running))
            latency.add_metric([shard], buckets, histogram.total)
        yield latency
        yield GaugeMetricFamily(
            "redkeeper_proxy_clients", "Connected clients", value=self.clients()
        )
        yield CounterMetricFamily(
            "redkeeper_proxy_clients_accepted", "Accepted clients", value=self.clients_total
        )
        up = GaugeMetricFamily(
            "redkeeper_proxy_backend_up",
            "1 when the backend link is connected",
            labels=["shard", "address", "protocol"],
        )
        for (shard, address, proto), state in sorted(self.links.items()):
            up.add_metric([shard, address, str(proto)], 1.0 if state else 0.0)
        yield up
        yield GaugeMetricFamily(
            "redkeeper_proxy_route_version", "Route tables installed", value=self.version
        )
