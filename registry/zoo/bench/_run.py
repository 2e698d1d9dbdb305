"""A benchmark run: engines warmed up and timed interleaved at each batch size, and the payloads.

Invariant: the payloads of :func:`bench_artifacts` are JSON-able as they are, name every engine's
device and precision, and their figures come from one process, one seeded input per batch size
and input size, with *every* engine of *every* artifact timed interleaved (see :mod:`zoo.bench`):
the ratios between artifacts (``zoo bench --compare``) are as robust to a noisy neighbour as the
ORT/native ratio of one artifact.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..records import ModelVersion
from ._engines import Engine, check_native_device, native_engine, ort_engine
from ._machine import describe_machine
from ._memory import memory_window
from ._timing import DEFAULT_MIN_ITERS, DEFAULT_MIN_TIME, DEFAULT_ROUNDS, DEFAULT_WARMUP, check_settings, measure

Progress = Callable[[str], None]
Artifact = tuple[str | os.PathLike[str], ModelVersion | None]  # (path, its version if registered)


def _warm_and_time(subjects: Mapping[str, tuple[Engine, np.ndarray, int | None]], *, warmup: int, min_time: float,
                   min_iters: int, rounds: int) -> dict[str, dict[str, Any]]:
    """``key -> (engine, images, macs)``: warm each up on its images (measuring its memory), then time all interleaved."""
    from ._stats import summarize

    runners = {}
    memory: dict[str, dict[str, Any]] = {}
    for key, (engine, images, _macs) in subjects.items():
        with memory_window() as mem:
            run = engine.prepare(images)
            for _ in range(max(1, warmup)):  # at least one: the first run allocates, and may fail
                run()
        runners[key] = run
        memory[key] = {
            "load_s": engine.load_s,
            "load_rss_mb": engine.load_rss_mb,
            "peak_rss_mb": engine.load_rss_mb + mem.peak_delta_mb,
            "device_memory_mb": engine.device_memory(),
        }
    samples = measure(runners, min_time=min_time, min_iters=min_iters, rounds=rounds)
    return {key: {**summarize(samples[key], batch=int(images.shape[0]), macs=macs).to_dict(), **memory[key]}
            for key, (_engine, images, macs) in subjects.items()}


def bench_batch(engines: Sequence[Engine], images: np.ndarray, *, macs: int | None = None, warmup: int = DEFAULT_WARMUP,
                min_time: float = DEFAULT_MIN_TIME, min_iters: int = DEFAULT_MIN_ITERS,
                rounds: int = DEFAULT_ROUNDS) -> dict[str, dict[str, Any]]:
    """Warm up each engine on ``images`` (measuring its memory), then time them all interleaved; keyed by name."""
    check_settings(warmup, min_time, min_iters, rounds)
    names = [e.name for e in engines]
    if len(set(names)) != len(names):
        raise InvalidInput(f"Expected one engine per name. Received: {names}", hint="give each engine its own name")
    return _warm_and_time({e.name: (e, images, macs) for e in engines}, warmup=warmup, min_time=min_time,
                          min_iters=min_iters, rounds=rounds)


def input_size_of(version: ModelVersion | None, signature: Any, default: int = 224) -> int:
    """The square input size to bench at: the version's transform's input size, else fixed dims of the graph."""
    if version is not None and version.input_size is not None:
        return int(version.input_size[0])
    shape: tuple[Any, ...] = tuple(signature.inputs[0].shape) if signature is not None and signature.inputs else ()
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return int(shape[2])
    return default


@dataclass
class _Subject:
    """One artifact of a run: its ORT engine (first) and, with ``native``, the framework's."""

    label: str
    version: ModelVersion | None
    engines: list[Engine] = field(default_factory=list)
    size: int = 224
    macs: int | None = None

    def key(self, engine: Engine) -> str:
        return f"{self.label}/{engine.name}"


def _engine_facts(engine: Engine) -> dict[str, Any]:
    return {"name": engine.name, "device": engine.device, "precision": engine.precision, "io": engine.info.get("io"),
            **({"note": engine.info["note"]} if engine.info.get("note") else {})}


def _check_artifacts(artifacts: Sequence[Artifact], *, native: bool, provider: str | None) -> list[str]:
    """Each artifact's label (its ref, else its path), once each; with ``native``, each version's framework
    can run on the device ORT runs on (refused before anything is loaded)."""
    from ..runtime import choose_provider

    versions = [version for _path, version in artifacts]
    if native:
        if any(v is None for v in versions):
            raise InvalidInput("native=True needs the registry version (to know the framework and architecture)")
        device = choose_provider(provider).device
        for v in versions:
            assert v is not None
            check_native_device(v, device)
    labels = [v.ref if v is not None else os.fspath(p) for p, v in artifacts]
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"Expected each artifact once. Received: {labels}", hint="drop the repeated reference")
    return labels


def bench_artifacts(
    artifacts: Sequence[Artifact],
    *,
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
) -> list[dict[str, Any]]:
    """Benchmark ``(path, version)`` artifacts together, all engines interleaved; one payload per artifact.

    Every artifact is loaded before any timing (so load memory is each one's own), then at each
    batch size every engine is warmed up and all are timed interleaved. With ``native=True`` the
    framework that built each version is timed too, on ORT's device at the artifact's precision,
    and each batch gets ``speedup`` = native p50 / ORT p50. A framework that cannot run on ORT's
    device is refused before anything is loaded. ``input_size`` and ``macs`` override what the
    versions say (for artifacts registered without them).
    """
    from ..runtime import _ort_log

    check_settings(warmup, min_time, min_iters, rounds)
    if not artifacts:
        raise InvalidInput("Expected at least one artifact to benchmark. Received none")
    batches = sorted({int(b) for b in batches})
    if not batches or batches[0] < 1:
        raise InvalidInput(f"Expected batch sizes >= 1. Received: {list(batches)}", hint="e.g. --batch 1,8,32")
    step = progress or (lambda _msg: None)
    labels = _check_artifacts(artifacts, native=native, provider=provider)
    quieted_before = _ort_log.counts()
    subjects = []
    for (path, version), label in zip(artifacts, labels, strict=True):
        step(f"{label}: loading onnxruntime")
        ort = ort_engine(path, version=version, provider=provider, io_binding=io_binding, **dict(options or {}))
        subject = _Subject(label, version, [ort], size=input_size or input_size_of(version, ort.model.signature),
                           macs=macs if macs is not None else (version.macs if version is not None else None))
        if native:
            assert version is not None
            step(f"{label}: building {version.framework} {version.arch} on {ort.device} ({ort.precision})")
            subject.engines.append(native_engine(version, device=ort.device, precision=ort.precision,
                                                 io_binding=io_binding))
        subjects.append(subject)
    rows: dict[str, list[dict[str, Any]]] = {s.label: [] for s in subjects}
    for batch in batches:
        images: dict[int, np.ndarray] = {}
        for s in subjects:
            if s.size not in images:
                images[s.size] = np.random.default_rng(seed).standard_normal((batch, 3, s.size, s.size), dtype=np.float32)
        timed = {s.key(e): (e, images[s.size], s.macs) for s in subjects for e in s.engines}
        what = ", ".join(f"{e.name} on {e.device}" for e in subjects[0].engines)
        more = f"; {len(subjects)} artifacts" if len(subjects) > 1 else ""
        step(f"batch {batch}: warm-up and timing ({what}{more}{', interleaved' if len(timed) > 1 else ''})")
        figures = _warm_and_time(timed, warmup=warmup, min_time=min_time, min_iters=min_iters, rounds=rounds)
        for s in subjects:
            ort_figures = figures[s.key(s.engines[0])]
            row: dict[str, Any] = {"batch": batch, "onnxruntime": ort_figures, "native": None, "speedup": None}
            if native:
                nat = s.engines[1]
                row["native"] = {"framework": nat.name, "device": nat.device, "precision": nat.precision,
                                 **figures[s.key(nat)]}
                row["speedup"] = row["native"]["p50_ms"] / ort_figures["p50_ms"]
            rows[s.label].append(row)
    after = _ort_log.counts()
    quieted = {k: n - quieted_before.get(k, 0) for k, n in after.items() if n > quieted_before.get(k, 0)}
    return [_payload(s, rows[s.label], others=[o.label for o in subjects if o is not s], quieted=quieted, seed=seed,
                     settings={"warmup": warmup, "min_time_s": min_time, "min_iters": min_iters, "rounds": rounds,
                               "ort_io": "device" if io_binding else "host"})
            for s in subjects]


def _payload(subject: _Subject, results: list[dict[str, Any]], *, others: list[str], quieted: dict[str, int], seed: int,
             settings: dict[str, Any]) -> dict[str, Any]:
    version, ort = subject.version, subject.engines[0]
    choice = ort.model.provider
    frameworks = {e.name: e.info["framework_version"] for e in subject.engines[1:]}
    return {
        "ref": version.ref if version is not None else None,
        "sha256": version.sha256 if version is not None else None,
        "arch": version.arch if version is not None else None,
        "framework": version.framework if version is not None else None,
        "precision": ort.precision,
        "macs_per_sample": subject.macs,
        "input_size": subject.size,
        "provider": choice.to_dict(),
        "engines": [_engine_facts(e) for e in subject.engines],
        "settings": {**settings, "interleaved": len(subject.engines) > 1 or bool(others), "interleaved_with": others,
                     "seed": seed, "session_options": ort.info["options"]},
        "onnxruntime_log_quieted": quieted,
        "machine": describe_machine(provider=choice, frameworks=frameworks),
        "results": results,
    }


def bench_artifact(path: str | os.PathLike[str], *, version: ModelVersion | None = None, **kwargs: Any) -> dict[str, Any]:
    """Benchmark one artifact at each batch size: the payload ``zoo bench`` prints and attaches.

    The keywords are :func:`bench_artifacts`'; with ``native=True`` the framework that built
    ``version`` is timed in the same run, interleaved, and each batch gets its ``speedup``.
    """
    return bench_artifacts([(path, version)], **kwargs)[0]


__all__ = ["Artifact", "bench_artifact", "bench_artifacts", "bench_batch", "input_size_of"]
