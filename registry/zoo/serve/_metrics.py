"""Prometheus metrics of one server (prometheus-client, a registry of its own, so two servers in one
process do not share counters): requests, failures, request / queue / compute latency and batch size,
per model and version.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1.0, 2.0, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """The server's metric families; ``render()`` is the ``/metrics`` body."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("zoo_serve_requests", "Inference requests received", ["model", "version", "protocol"],
                                registry=r)
        self.failures = Counter("zoo_serve_request_failures", "Inference requests that failed, by status",
                                ["model", "version", "protocol", "status"], registry=r)
        self.request_seconds = Histogram("zoo_serve_request_duration_seconds", "Inference request latency, decode to encode",
                                         ["model", "version", "protocol"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_seconds = Histogram("zoo_serve_queue_duration_seconds", "Time a request waited for its batch",
                                       ["model", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.compute_seconds = Histogram("zoo_serve_compute_duration_seconds", "ONNX Runtime time per batch",
                                         ["model", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("zoo_serve_batch_size", "Rows per ONNX Runtime run (dynamic batching)",
                                    ["model", "version"], buckets=BATCH_BUCKETS, registry=r)
        self.swaps = Counter("zoo_serve_alias_swaps", "Alias moves served (new version loaded, verified, warmed)",
                             ["model"], registry=r)
        self.refused_swaps = Counter("zoo_serve_alias_swaps_refused", "Alias moves refused (signature differs, load failed)",
                                     ["model"], registry=r)
        self.serving = Gauge("zoo_serve_model_version", "The version each served model answers with", ["model", "sha256"],
                             registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["Metrics"]
