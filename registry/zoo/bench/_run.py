"""A benchmark run: engines warmed up and timed interleaved at each batch size, and the payload.

Invariant: the payload of :func:`bench_artifact` is JSON-able as is, names every engine's device
and precision, and its figures come from one process, one seeded input per batch size, timed
interleaved (see :mod:`zoo.bench`).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..records import ModelVersion
from ._engines import Engine, check_native_device, native_engine, ort_engine
from ._machine import describe_machine
from ._memory import memory_window
from ._timing import DEFAULT_MIN_ITERS, DEFAULT_MIN_TIME, DEFAULT_ROUNDS, DEFAULT_WARMUP, Runner, check_settings, measure

Progress = Callable[[str], None]


def bench_batch(engines: Sequence[Engine], images: np.ndarray, *, macs: int | None = None, warmup: int = DEFAULT_WARMUP,
                min_time: float = DEFAULT_MIN_TIME, min_iters: int = DEFAULT_MIN_ITERS,
                rounds: int = DEFAULT_ROUNDS) -> dict[str, dict[str, Any]]:
    """Warm up each engine on ``images`` (measuring its memory), then time them all interleaved."""
    from ._stats import summarize

    check_settings(warmup, min_time, min_iters, rounds)
    batch = int(images.shape[0])
    runners: dict[str, Runner] = {}
    memory: dict[str, dict[str, Any]] = {}
    for engine in engines:
        if engine.name in runners:
            raise InvalidInput(f"Two engines are named {engine.name!r}", hint="give each engine its own name")
        with memory_window() as mem:
            run = engine.prepare(images)
            for _ in range(max(1, warmup)):  # at least one: the first run allocates, and may fail
                run()
        runners[engine.name] = run
        memory[engine.name] = {
            "load_s": engine.load_s,
            "load_rss_mb": engine.load_rss_mb,
            "peak_rss_mb": engine.load_rss_mb + mem.peak_delta_mb,
            "device_memory_mb": engine.device_memory(),
        }
    samples = measure(runners, min_time=min_time, min_iters=min_iters, rounds=rounds)
    return {name: {**summarize(samples[name], batch=batch, macs=macs).to_dict(), **memory[name]} for name in runners}


def input_size_of(version: ModelVersion | None, signature: Any, default: int = 224) -> int:
    """The square input size to bench at: the version's preprocessing, else fixed dims of the graph."""
    if version is not None and version.preprocessing is not None:
        return int(version.preprocessing.input_size[0])
    shape: tuple[Any, ...] = tuple(signature.inputs[0].shape) if signature is not None and signature.inputs else ()
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return int(shape[2])
    return default


def _engine_facts(engine: Engine) -> dict[str, Any]:
    return {"name": engine.name, "device": engine.device, "precision": engine.precision, "io": engine.info.get("io"),
            **({"note": engine.info["note"]} if engine.info.get("note") else {})}


def bench_artifact(
    path: str | os.PathLike[str],
    *,
    version: ModelVersion | None = None,
    batches: Sequence[int] = (1,),
    provider: str | None = None,
    native: bool = False,
    warmup: int = DEFAULT_WARMUP,
    min_time: float = DEFAULT_MIN_TIME,
    min_iters: int = DEFAULT_MIN_ITERS,
    rounds: int = DEFAULT_ROUNDS,
    io_binding: bool = True,
    seed: int = 0,
    input_size: int | None = None,
    macs: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Benchmark one artifact at each batch size; the payload ``zoo bench`` prints and attaches.

    With ``native=True`` the framework that built ``version`` is timed in the same run,
    interleaved, on ORT's device at the artifact's precision, and each batch gets ``speedup`` =
    native p50 / ORT p50. A framework that cannot run on ORT's device is refused before any timing.
    """
    from ..runtime import _ort_log, choose_provider

    check_settings(warmup, min_time, min_iters, rounds)
    batches = sorted({int(b) for b in batches})
    if not batches or batches[0] < 1:
        raise InvalidInput(f"Expected batch sizes >= 1. Received: {list(batches)}", hint="e.g. --batch 1,8,32")
    step = progress or (lambda _msg: None)
    if native:
        if version is None:
            raise InvalidInput("native=True needs the registry version (to know the framework and architecture)")
        check_native_device(version, choose_provider(provider).device)  # refuse before anything is loaded
    quieted_before = _ort_log.counts()
    step("loading onnxruntime")
    engines = [ort_engine(path, version=version, provider=provider, io_binding=io_binding, **dict(options or {}))]
    ort_model = engines[0].model
    frameworks: dict[str, str | None] = {}
    if native:
        assert version is not None
        step(f"building {version.framework} {version.arch} on {engines[0].device} ({engines[0].precision})")
        engines.append(native_engine(version, device=engines[0].device, precision=engines[0].precision,
                                     io_binding=io_binding))
        frameworks[engines[1].name] = engines[1].info["framework_version"]
    size = input_size or input_size_of(version, ort_model.signature)
    macs = macs if macs is not None else (version.macs if version is not None else None)
    rng = np.random.default_rng(seed)
    results = []
    for batch in batches:
        step(f"batch {batch}: warm-up and timing ({', '.join(f'{e.name} on {e.device}' for e in engines)})")
        images = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
        figures = bench_batch(engines, images, macs=macs, warmup=warmup, min_time=min_time,
                              min_iters=min_iters, rounds=rounds)
        row: dict[str, Any] = {"batch": batch, "onnxruntime": figures["onnxruntime"], "native": None, "speedup": None}
        if native:
            nat = figures[engines[1].name]
            row["native"] = {"framework": engines[1].name, "device": engines[1].device,
                             "precision": engines[1].precision, **nat}
            row["speedup"] = nat["p50_ms"] / figures["onnxruntime"]["p50_ms"]
        results.append(row)
    choice = ort_model.provider
    after = _ort_log.counts()
    quieted = {k: n - quieted_before.get(k, 0) for k, n in after.items() if n > quieted_before.get(k, 0)}
    return {
        "ref": version.ref if version is not None else None,
        "sha256": version.sha256 if version is not None else None,
        "arch": version.arch if version is not None else None,
        "framework": version.framework if version is not None else None,
        "precision": engines[0].precision,
        "macs_per_sample": macs,
        "input_size": size,
        "provider": choice.to_dict(),
        "engines": [_engine_facts(e) for e in engines],
        "settings": {
            "warmup": warmup, "min_time_s": min_time, "min_iters": min_iters, "rounds": rounds,
            "interleaved": len(engines) > 1, "ort_io": "device" if io_binding else "host", "seed": seed,
            "session_options": engines[0].info["options"],
        },
        "onnxruntime_log_quieted": quieted,
        "machine": describe_machine(provider=choice, frameworks=frameworks),
        "results": results,
    }


__all__ = ["bench_artifact", "bench_batch", "input_size_of"]
