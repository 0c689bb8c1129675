"""Prometheus metrics for ``GET /metrics``, on a registry of the app's own (one per app)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("brighthouse_request_seconds", "POST /v1/enhance latency, upload to response",
                                 ["status"], buckets=LATENCY_BUCKETS, registry=r)
        self.megapixels = Counter("brighthouse_megapixels_total",
                                  "megapixels enhanced (rate() of it is megapixels per second)", registry=r)
        self.queue_depth = Gauge("brighthouse_queue_depth", "enhance requests admitted and not yet answered",
                                 registry=r)
        self.rejected = Counter("brighthouse_rejected_total", "requests refused with 503 (queue full)", registry=r)
        self.model = Gauge("brighthouse_model_info", "the model version being served (value 1)",
                           ["name", "version", "runtime"], registry=r)

    def serving(self, name: str, version: str, runtime: str) -> None:
        self.model.clear()
        self.model.labels(name, version, runtime).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
