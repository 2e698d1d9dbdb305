"""Latency statistics: percentiles and the rates derived from the mean.

Invariant: ``throughput`` = batch / mean latency and ``gflops`` = 2 x MACs x throughput, so the
figures of one :class:`LatencyStats` are consistent with each other by construction.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInput
from ..records import Record


@dataclass(frozen=True)
class LatencyStats(Record):
    """One engine at one batch size."""

    batch: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    throughput: float  # samples/s, from the mean latency
    gflops: float | None  # achieved 2*MACs*batch / mean latency; None when MACs are unknown


def summarize(seconds: Sequence[float], *, batch: int, macs: int | None = None) -> LatencyStats:
    """Percentiles and rates of per-batch latencies given in seconds."""
    if len(seconds) == 0:
        raise InvalidInput("Expected at least one timed run. Received none", hint="raise --min-iters or --min-time")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    throughput = batch / (mean / 1e3)
    return LatencyStats(
        batch=batch, iterations=int(ms.size), p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99),
        mean_ms=mean, min_ms=float(ms.min()), max_ms=float(ms.max()), std_ms=float(ms.std()),
        throughput=throughput, gflops=None if not macs else 2.0 * macs * throughput / 1e9,
    )


__all__ = ["LatencyStats", "summarize"]
