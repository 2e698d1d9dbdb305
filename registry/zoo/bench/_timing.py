"""Timing: engines run interleaved in slices until each has enough time and iterations.

Invariant: :func:`measure` returns, per runner, one duration per call, and every runner has at
least ``min_time`` seconds and ``min_iters`` calls; the GC is off while timing.
"""
from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import InvalidInput

Runner = Callable[[], Any]

DEFAULT_WARMUP = 3
DEFAULT_MIN_TIME = 2.0
DEFAULT_MIN_ITERS = 10
DEFAULT_ROUNDS = 5


def check_settings(warmup: int, min_time: float, min_iters: int, rounds: int) -> None:
    if warmup < 0:
        raise InvalidInput(f"Expected --warmup >= 0. Received: {warmup}")
    if not min_time >= 0 or math.isinf(min_time):
        raise InvalidInput(f"Expected --min-time >= 0 seconds. Received: {min_time}")
    if min_iters < 1:
        raise InvalidInput(f"Expected --min-iters >= 1. Received: {min_iters}")
    if rounds < 1:
        raise InvalidInput(f"Expected rounds >= 1. Received: {rounds}")


@contextmanager
def _gc_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def measure(runners: Mapping[str, Runner], *, min_time: float = DEFAULT_MIN_TIME, min_iters: int = DEFAULT_MIN_ITERS,
            rounds: int = DEFAULT_ROUNDS) -> dict[str, list[float]]:
    """Per-call seconds of each runner, timed interleaved in slices until each has ``min_time`` s and ``min_iters`` runs.

    Warm-up is the caller's job (it is also where memory is measured).
    """
    check_settings(0, min_time, min_iters, rounds)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    spent = {name: 0.0 for name in runners}
    slice_time = min_time / rounds
    slice_iters = max(1, math.ceil(min_iters / rounds))
    clock = time.perf_counter
    with _gc_off():
        while True:
            pending = [n for n in runners if spent[n] < min_time or len(samples[n]) < min_iters]
            if not pending:
                return samples
            for name in pending:
                run, out = runners[name], samples[name]
                start, n = clock(), 0
                while n < slice_iters or clock() - start < slice_time:
                    t0 = clock()
                    run()
                    t1 = clock()
                    out.append(t1 - t0)
                    spent[name] += t1 - t0
                    n += 1


__all__ = ["DEFAULT_MIN_ITERS", "DEFAULT_MIN_TIME", "DEFAULT_ROUNDS", "DEFAULT_WARMUP", "Runner", "check_settings", "measure"]
