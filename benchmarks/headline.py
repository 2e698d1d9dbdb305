"""The headline table: ONNX Runtime vs PyTorch eager vs TensorFlow, on this machine's CPU, in one run.

For each architecture, every installed framework plugin builds and exports it into a temporary
registry (the same path as `zoo export`: verified against the native model before it is stored).
Then four engines are timed *interleaved* in one process at each batch size, so that a noisy
neighbour slows them all alike and the ratios stay meaningful:

- ONNX Runtime on the PyTorch-built artifact, and on the TensorFlow-built artifact (CPU provider);
- PyTorch eager (``torch.inference_mode``) and TensorFlow/Keras, through the plugins' ``predict``.

With ``--int8`` the first framework's artifact is also converted (``zoo convert --int8``, seeded
calibration) and its INT8 version timed as one more engine, interleaved with the rest.

Prints a markdown table with the speed-up over PyTorch eager, the machine description, and the
targets: ORT >= 1.5x PyTorch eager at batch 1, the TF-built artifact no slower than the
torch-built one under ORT, and (``--int8``) INT8 >= 2x fp32 under ORT at batch 1.

    python -m benchmarks.headline                       # resnet50, batch 1 and 8
    python -m benchmarks.headline --archs resnet18,resnet50 --batches 1,8,32 --min-time 5
    python -m benchmarks.headline --frameworks torch --int8 --no-native   # ORT INT8 vs fp32
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from zoo import bench, open_registry
from zoo._exporting import export_and_register
from zoo.plugins import get_plugin

FRAMEWORKS = ("torch", "tensorflow")
LABELS = {
    "ort[torch]": "ONNX Runtime (PyTorch-built artifact)",
    "ort[tensorflow]": "ONNX Runtime (TensorFlow-built artifact)",
    "torch": "PyTorch eager",
    "tensorflow": "TensorFlow / Keras",
    "ort-int8[torch]": "ONNX Runtime INT8 (PyTorch-built artifact, zoo convert --int8)",
    "ort-int8[tensorflow]": "ONNX Runtime INT8 (TensorFlow-built artifact, zoo convert --int8)",
}
BASELINE = "torch"
TARGET_SPEEDUP_B1 = 1.5
TARGET_INT8_B1 = 2.0
SAME_SPEED_TOLERANCE = 0.05  # "no slower": within 5 %, the noise of a shared machine


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _threads() -> dict[str, Any]:
    out: dict[str, Any] = {"onnxruntime_intra_op": bench.describe_machine()["cores_usable"]}
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    if "tensorflow" in sys.modules:
        cfg = sys.modules["tensorflow"].config.threading
        out["tensorflow_intra_op"] = cfg.get_intra_op_parallelism_threads() or "default (all cores)"
    return out


def run_arch(arch: str, registry, *, batches: list[int], warmup: int, min_time: float, min_iters: int,
             input_size: int, frameworks: tuple[str, ...] = FRAMEWORKS, int8: bool = False,
             native: bool = True) -> dict[str, Any]:
    from zoo.convert import convert_version

    versions = {}
    for name in frameworks:
        try:
            plugin = get_plugin(name)
        except Exception as exc:  # framework not installed: that column is left out, and said so
            log(f"{arch}: skipping {name}: {exc}")
            continue
        t0 = time.perf_counter()
        result = export_and_register(registry, plugin, arch, num_classes=1000, input_size=input_size, seed=0)
        versions[name] = result.version
        log(f"{arch}: exported with {name} in {time.perf_counter() - t0:.0f} s "
            f"({result.version.ref}, ONNX vs native max rel. error {result.verify_error:.1e})")
    if not versions:
        raise SystemExit("no framework plugin is installed: nothing to compare")
    engines = []
    for name, version in versions.items():
        engines.append(bench.ort_engine(registry.path(version), version=version, provider="cpu", name=f"ort[{name}]"))
    reports = {}
    if int8:
        name, version = next(iter(versions.items()))
        t0 = time.perf_counter()
        converted = convert_version(registry, version, precision="int8")
        reports[f"ort-int8[{name}]"] = {"ref": converted.version.ref, **converted.report}
        log(f"{arch}: INT8 of {version.ref} in {time.perf_counter() - t0:.0f} s ({converted.version.ref}, max rel. error "
            f"{converted.report['max_rel_error']:.1e}, top-1 agreement {converted.report['top1_agreement']:.0%})")
        engines.append(bench.ort_engine(registry.path(converted.version), version=converted.version, provider="cpu",
                                        name=f"ort-int8[{name}]"))
    if native:
        for version in versions.values():
            engines.append(bench.native_engine(version))
    macs = next(iter(versions.values())).macs
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        log(f"{arch}: batch {batch}: timing {', '.join(e.name for e in engines)} (interleaved)")
        images = rng.standard_normal((batch, 3, input_size, input_size), dtype=np.float32)
        figures = bench.bench_batch(engines, images, macs=macs, warmup=warmup, min_time=min_time, min_iters=min_iters)
        base = figures.get(BASELINE, {}).get("p50_ms")
        for engine in engines:
            f = figures[engine.name]
            rows.append({"arch": arch, "batch": batch, "engine": engine.name, **f,
                         "vs_pytorch_eager": base / f["p50_ms"] if base else None})
    return {"arch": arch, "macs_per_sample": macs, "versions": {k: v.ref for k, v in versions.items()},
            "frameworks": {e.name: e.info.get("framework_version") for e in engines if not e.name.startswith("ort")},
            "int8_reports": reports, "rows": rows}


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The speed targets, judged on the p50 ratio and, as a cross-check, on the min ratio.

    On a shared machine, load only ever adds time: the min is the steadier estimate of what
    each engine can do, the p50 what it did in this run.
    """
    checks = []

    def check(text: str, fast: dict, slow: dict, threshold: float) -> None:
        p50, best = slow["p50_ms"] / fast["p50_ms"], slow["min_ms"] / fast["min_ms"]
        checks.append({"check": text, "threshold": threshold, "p50_ratio": p50, "min_ratio": best,
                       "pass_p50": p50 >= threshold, "pass_min": best >= threshold})

    for res in results:
        by = {(r["batch"], r["engine"]): r for r in res["rows"]}
        ort_t, eager = by.get((1, "ort[torch]")), by.get((1, "torch"))
        if ort_t and eager:
            check(f"{res['arch']} batch 1: ORT (torch-built) speed-up over PyTorch eager", ort_t, eager, TARGET_SPEEDUP_B1)
        for name in FRAMEWORKS:
            fp32, q8 = by.get((1, f"ort[{name}]")), by.get((1, f"ort-int8[{name}]"))
            if fp32 and q8:
                check(f"{res['arch']} batch 1: ORT INT8 speed-up over ORT fp32 ({name}-built)", q8, fp32, TARGET_INT8_B1)
        for batch in sorted({r["batch"] for r in res["rows"]}):
            tf_built, torch_built = by.get((batch, "ort[tensorflow]")), by.get((batch, "ort[torch]"))
            if tf_built and torch_built:  # ratio > 1: the TF-built artifact is faster
                check(f"{res['arch']} batch {batch}: TF-built vs torch-built artifact under ORT (no slower)",
                      tf_built, torch_built, 1 - SAME_SPEED_TOLERANCE)
    return checks


def markdown(results: list[dict[str, Any]], machine: dict[str, Any], settings: dict[str, Any]) -> str:
    lines = [
        "| arch | batch | engine | p50 ms | p90 ms | min ms | samples/s | GFLOP/s | vs PyTorch eager (p50) "
        "| vs ORT fp32 (p50) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        by = {(r["batch"], r["engine"]): r for r in res["rows"]}
        for r in res["rows"]:
            ratio = f"{r['vs_pytorch_eager']:.2f}x" if r["vs_pytorch_eager"] else "-"
            gflops = f"{r['gflops']:.1f}" if r["gflops"] else "-"
            fp32 = by.get((r["batch"], r["engine"].replace("ort-int8[", "ort[")))
            vs_fp32 = f"{fp32['p50_ms'] / r['p50_ms']:.2f}x" if fp32 and r["engine"].startswith("ort") else "-"
            lines.append(f"| {r['arch']} | {r['batch']} | {LABELS.get(r['engine'], r['engine'])} | {r['p50_ms']:.1f} | "
                         f"{r['p90_ms']:.1f} | {r['min_ms']:.1f} | {r['throughput']:.1f} | {gflops} | {ratio} | {vs_fp32} |")
        for engine, rep in res.get("int8_reports", {}).items():
            lines.append(f"\n{res['arch']} {LABELS.get(engine, engine)}: {rep['ref']}, vs fp32 max rel. error "
                         f"{rep['max_rel_error']:.1e}, top-1 agreement {rep['top1_agreement']:.0%}, top-5 "
                         f"{rep['top5_agreement']:.0%} ({rep['batch']} seeded images).")
    lines += [
        "",
        f"Machine: {bench.machine_line(machine)}.",
        f"Threads: {', '.join(f'{k} {v}' for k, v in settings['threads'].items())}. "
        f"Timing: {settings['warmup']} warm-up runs, then >= {settings['min_time_s']:g} s and >= {settings['min_iters']} "
        f"runs per engine and batch, interleaved; {settings['input_size']}x{settings['input_size']} inputs, "
        f"1000 classes, random weights.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="resnet50", help="comma-separated architectures (default: resnet50)")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default: 1,8)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=3.0, help="timed seconds per engine and batch, at least")
    parser.add_argument("--min-iters", type=int, default=10)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--store", type=Path, help="keep the exported artifacts in this registry (default: a temp one)")
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated plugins (default: all)")
    parser.add_argument("--int8", action="store_true", help="also time the INT8 version of the first framework's artifact")
    parser.add_argument("--no-native", action="store_true", help="time ONNX Runtime engines only")
    args = parser.parse_args(argv)
    frameworks = tuple(f.strip() for f in args.frameworks.split(",") if f.strip())
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    batches = sorted({int(b) for b in args.batches.split(",") if b.strip()})

    with tempfile.TemporaryDirectory(prefix="zoo-headline-") as tmp:
        registry = open_registry(args.store or Path(tmp) / "store")
        results = [run_arch(arch, registry, batches=batches, warmup=args.warmup, min_time=args.min_time,
                            min_iters=args.min_iters, input_size=args.input_size, frameworks=frameworks,
                            int8=args.int8, native=not args.no_native) for arch in archs]
    frameworks = {k: v for res in results for k, v in res["frameworks"].items()}
    machine = bench.describe_machine(provider="cpu", frameworks=frameworks)
    settings = {"warmup": args.warmup, "min_time_s": args.min_time, "min_iters": args.min_iters,
                "input_size": args.input_size, "threads": _threads()}
    print(markdown(results, machine, settings))
    checks = targets(results)
    if checks:
        print()
        def verdict(ok: bool) -> str:
            return "PASS" if ok else "FAIL"

        for c in checks:
            print(f"- {c['check']} >= {c['threshold']:.2f}x: p50 {c['p50_ratio']:.3f}x {verdict(c['pass_p50'])}; "
                  f"min {c['min_ratio']:.3f}x {verdict(c['pass_min'])}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "settings": settings, "results": results,
                                         "targets": checks},
                                        indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
