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
        self.inflight_megapixels = Gauge("brighthouse_inflight_megapixels",
                                         "megapixels of the admitted requests (serve.max_inflight_megapixels)",
                                         registry=r)
        self.waiting = Gauge("brighthouse_waiting_requests",
                             "requests waiting for megapixels to free up (serve.max_waiting)", registry=r)
        self.rejected = Counter("brighthouse_rejected_total",
                                "requests refused with 503 (waited too long, waiting queue full, or upload "
                                "byte budget full)", registry=r)
        self.receiving_bytes = Gauge("brighthouse_receiving_bytes", "bytes of upload bodies being received",
                                     registry=r)
        self.upload_timeouts = Counter("brighthouse_upload_timeouts_total",
                                       "uploads that did not arrive within serve.upload_timeout_s (408)", registry=r)
        self.disconnects = Counter("brighthouse_client_disconnects_total",
                                   "clients that closed the connection before their upload arrived", registry=r)
        self.registry_up = Gauge("brighthouse_registry_up",
                                 "1 when the last alias poll reached the model registry, else 0", registry=r)
        self.model = Gauge("brighthouse_model_info", "the model version being served (value 1)",
                           ["name", "version", "runtime"], registry=r)

    def serving(self, name: str, version: str, runtime: str) -> None:
        self.model.clear()
        self.model.labels(name, version, runtime).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
