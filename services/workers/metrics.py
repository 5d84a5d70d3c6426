"""Prometheus metrics, read from the relay's and projector's status at scrape time.

A collector rather than module-level counters: each runtime (and each test) has its own
registry, and the numbers come from the one place that keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from services.workers.heartbeats import ObservedWorkers
from services.workers.projector import Projector
from services.workers.relay import Relay


class Runtime(Protocol):
    """What the metrics read of a runtime (``services.bootstrap.Runtime``): its own workers,
    or those of other processes seen through their heartbeats."""

    @property
    def relay(self) -> Relay | None: ...

    @property
    def projector(self) -> Projector | None: ...

    @property
    def observed(self) -> ObservedWorkers | None: ...


class RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        relay = self.runtime.relay
        if relay is not None:
            relay.refresh_stored_position()
            s = relay.status
            yield GaugeMetricFamily("wbl_relay_lag_events",
                                    "Events stored but not yet acknowledged by Kafka", s.lag)
            yield GaugeMetricFamily("wbl_relay_stored_position",
                                    "Last position in the event store", s.stored_position)
            yield GaugeMetricFamily("wbl_relay_acknowledged_position",
                                    "Last position acknowledged by Kafka", s.acknowledged_position)
            yield CounterMetricFamily("wbl_relay_published_events",
                                      "Events published (copies included)", s.published_total)
            yield CounterMetricFamily("wbl_relay_refills", "Topic refills from the store",
                                      s.refills)
            yield CounterMetricFamily("wbl_relay_errors", "Broker errors seen by the relay",
                                      s.errors_total)
            yield GaugeMetricFamily("wbl_relay_throughput_events_per_second",
                                    "Publishing rate over the last minute", s.throughput())
            yield GaugeMetricFamily("wbl_relay_connected", "1 when connected to the broker",
                                    int(s.connected))
            yield GaugeMetricFamily("wbl_relay_last_error_timestamp_seconds",
                                    "When the relay last saw an error (0: never)",
                                    s.last_error_at or 0)
            yield InfoMetricFamily("wbl_relay_last_error", "Type of the relay's last error",
                                   value={"type": (s.last_error or "").split(":")[0]})
        projector = self.runtime.projector
        if projector is not None:
            p = projector.status
            lag = GaugeMetricFamily("wbl_projection_lag_records",
                                    "Records behind the topic end", labels=["consumer"])
            lag.add_metric([projector.consumer_name], p.lag if p.lag is not None else float("nan"))
            yield lag
            applied = CounterMetricFamily("wbl_projection_applied_events",
                                          "Events applied to read models", labels=["consumer"])
            applied.add_metric([projector.consumer_name], p.applied_total)
            yield applied
            dupes = CounterMetricFamily("wbl_projection_duplicates_skipped",
                                        "Copies of events already applied", labels=["consumer"])
            dupes.add_metric([projector.consumer_name], p.duplicates_skipped)
            yield dupes
            resets = CounterMetricFamily("wbl_projection_topic_resets",
                                         "Partitions re-read after a topic was re-created",
                                         labels=["consumer"])
            resets.add_metric([projector.consumer_name], p.topic_resets)
            yield resets
            per_projection = GaugeMetricFamily(
                "wbl_projection_lag_offsets", "Offsets behind the topic end, per projection",
                labels=["consumer", "projection"])
            for name, value in projector.projection_lags().items():
                per_projection.add_metric([projector.consumer_name, name],
                                          value if value is not None else float("nan"))
            yield per_projection


class ObservedCollector(Collector):
    """The lags of a relay and a projector running in other processes (``wbl run``'s
    children, or separate deployments), as the API reads them from their heartbeats; each
    worker's full metrics are on its own ``WBL_METRICS_PORT``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        observed = self.runtime.observed
        if observed is None or (self.runtime.relay is not None
                                and self.runtime.projector is not None):
            return
        relay, projector = observed.views()
        up = GaugeMetricFamily("wbl_worker_up", "1 when the worker beat in the last 10 s",
                               labels=["role"])
        if relay is not None and self.runtime.relay is None:
            up.add_metric(["relay"], int(relay["running"]))
            yield GaugeMetricFamily("wbl_relay_lag_events",
                                    "Events stored but not yet acknowledged by Kafka",
                                    relay["lag"])
        if projector is not None and self.runtime.projector is None:
            up.add_metric(["projector"], int(projector["running"]))
            lag = GaugeMetricFamily("wbl_projection_lag_records",
                                    "Records behind the topic end", labels=["consumer"])
            value = projector.get("lag")
            lag.add_metric(["live"], value if value is not None else float("nan"))
            yield lag
        yield up


def registry_for(runtime: Runtime) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(RuntimeCollector(runtime))
    registry.register(ObservedCollector(runtime))
    return registry
