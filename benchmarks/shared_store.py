"""Read paths of the shared store (PostgreSQL + S3 + local cache) next to the embedded one, in one run.

    python -m benchmarks.shared_store                  # 10,000 versions; ResNet-50 exported with the torch plugin
    python -m benchmarks.shared_store --versions 2000 --model path/to/model.onnx

1. ``zoo list NAME``, ``zoo show NAME@prod`` and ``zoo list --json`` (all versions) as fresh processes, median
   of N, on a store holding ``--versions`` versions (100 models); ``python -c pass`` for scale.
2. ``zoo.load`` of a ResNet-50 artifact (new process each time, median of N): embedded store; shared store with
   a warm cache; shared store with a cold cache (download + sha256, reported as MB/s).

The shared store is the one of $ZOO_SERVICES_PG_URL / $ZOO_SERVICES_S3_URL (see ``.ci/services``), started here
if they are unset. The many versions are rows copied from one real registration (list and show read metadata only).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.stress_concurrent import _test_helper, shared_store


def fill(registry, model: Path, versions: int) -> None:
    """One real registration, then ``versions - 1`` more rows with made-up digests (no bytes behind them)."""
    import hashlib

    first = registry.register(model, name="m000").version
    per_model = max(1, versions // 100)
    with registry._meta.write() as txn:
        for i in range(1, versions):
            name = f"m{i // per_model:03d}"
            txn.add_version(replace(first, name=name, sha256=hashlib.sha256(str(i).encode()).hexdigest(), tags={"i": str(i)}))
        for n in range(100):
            txn.set_alias(f"m{n:03d}", "prod", 1)


def wall(argv: list[str], env: dict[str, str], runs: int) -> float:
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


# Prints (zoo.load call, whole process from `import zoo`): the call is what a running app pays per load; the
# whole includes importing zoo, onnxruntime and, for a shared store, psycopg (boto3 too on a cold cache).
LOAD = ("import sys, time; t0 = time.perf_counter(); import zoo, onnxruntime; "
        "shared = sys.argv[2].startswith('postgresql'); "
        "__import__('psycopg') if shared else None; __import__('zoo.store.s3') if shared else None; "
        "t1 = time.perf_counter(); zoo.load(sys.argv[1], store=sys.argv[2]); t2 = time.perf_counter(); "
        "print(t2 - t1, t2 - t0)")


def load_s(store: str, env: dict[str, str], ref: str, *, cold_cache: Path | None = None) -> tuple[float, float]:
    if cold_cache is not None:
        shutil.rmtree(cold_cache, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", LOAD, ref, store], env=env, check=True, capture_output=True, text=True)
    call, whole = out.stdout.strip().splitlines()[-1].split()
    return float(call), float(whole)


def med(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def resnet50(tmp: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    from zoo import open_registry
    from zoo._exporting import export_and_register
    from zoo.plugins import get_plugin

    registry = open_registry(tmp / "export")
    v = export_and_register(registry, get_plugin("torch"), "resnet50", num_classes=1000, input_size=224, seed=0).version
    return registry.path(v)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", type=Path, help="an ONNX file to load (default: export ResNet-50 with the torch plugin)")
    parser.add_argument("--skip-list", action="store_true", help="only the load figures")
    args = parser.parse_args()
    stop: list[str] = []
    with tempfile.TemporaryDirectory(prefix="zoo-shared-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            url, stop = shared_store(tmp)
            stores = {"embedded": str(tmp / "store"), "shared": url}
            env = dict(os.environ, ZOO_CACHE=str(tmp / "cache"))
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled modules cached (the first run writes them)
            from zoo import open_registry

            tiny = _test_helper("onnx_models", "tiny_cnn")(tmp / "tiny" / "model.onnx")
            print(f"{'':28} {'embedded':>10} {'shared':>10}   ({args.versions:,} versions in 100 models; median of {args.runs})")
            print(f"{'python -c pass':28} {wall([sys.executable, '-c', 'pass'], env, args.runs):>8.0f}ms")
            for store in stores.values() if not args.skip_list else ():
                fill(open_registry(store), tiny, args.versions)
            zoo = [sys.executable, "-m", "zoo"]
            for label, extra in (("zoo list m042", ["list", "m042"]), ("zoo show m042@prod", ["show", "m042@prod"]),
                                 ("zoo list --json (all)", ["list", "--json"])) if not args.skip_list else ():
                cells = [wall([*zoo, "--store", store, *extra], env, args.runs) for store in stores.values()]
                print(f"{label:28} {cells[0]:>8.0f}ms {cells[1]:>8.0f}ms")

            model = resnet50(tmp, args.model)
            size = sum(f.stat().st_size for f in model.parent.iterdir() if f.is_file())
            for store in stores.values():
                open_registry(store).register(model, name="resnet50")
            ref = "resnet50@1"
            load_s(url, env, ref)  # fill the cache
            embedded, warm, cold = [], [], []
            for _ in range(args.runs):  # interleaved, so that a busy moment hits all three alike
                embedded.append(load_s(stores["embedded"], env, ref))
                warm.append(load_s(url, env, ref))
                cold.append(load_s(url, env, ref, cold_cache=tmp / "cache"))
            (e_call, e_all), (w_call, w_all), (c_call, c_all) = med(embedded), med(warm), med(cold)
            print(f"zoo.load {model.name} ({size / 1e6:.0f} MB), new process each: the load call | the whole process")
            print(f"{'  embedded store':28} {e_call * 1000:>8.0f}ms | {e_all * 1000:.0f}ms")
            print(f"{'  shared, warm cache':28} {w_call * 1000:>8.0f}ms | {w_all * 1000:.0f}ms   "
                  f"({w_call / e_call:.3f}x | {w_all / e_all:.3f}x embedded)")
            print(f"{'  shared, cold cache':28} {c_call * 1000:>8.0f}ms | {c_all * 1000:.0f}ms   "
                  f"({size / 1e6 / (c_call - w_call):.0f} MB/s download + sha256 beyond the warm load)")
        finally:
            if stop:
                subprocess.run(stop, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
