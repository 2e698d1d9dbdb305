"""Search in the embedded store: ``zoo list --tag team=vision`` on a store of 10,000 versions.

    python -m benchmarks.store_search                  # 10,000 versions, 100 models, 10 of them team=vision
    python -m benchmarks.store_search --versions 50000 --runs 7

Prints the median wall time of ``zoo list --tag team=vision`` (and ``--json``, and an alias filter) as fresh
processes, ``zoo --help`` for scale (the CLI's own start-up), and ``Registry.list(tags=...)`` in-process.
The versions are rows copied from one real registration of a tiny model (listing reads metadata only), each
with what ``zoo export resnet50`` records besides: the ``imagenet-1k`` labels (1,000 class names), torchvision's
eval transform, parameter counts, framework, exporter and provenance.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def tiny_model(path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((10, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["pooled"], axes=[2, 3], keepdims=0),
         helper.make_node("Gemm", ["pooled", "w"], ["logits"], transB=1)],
        "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def fill(store: Path, versions: int) -> None:
    """One real registration, then ``versions - 1`` rows with made-up digests; models m000-m009 are team=vision."""
    from zoo._registry import Registry
    from zoo.labels import builtin_labels
    from zoo.records import ParamCounts, Transform

    registry = Registry.open(store, create=True)
    first = registry.register(tiny_model(store.parent / "tiny.onnx"), name="m000").version
    first = replace(first, labels=builtin_labels("imagenet-1k"), transform=Transform.for_input_size(224), arch="resnet50",
                    params=ParamCounts(trainable=25_557_032, non_trainable=53_120), num_classes=1000, framework="torch",
                    framework_version="2.13.0", plugin_version="0.3.0", exporter="torch.onnx.export(dynamo=True)",
                    exporter_version="2.13.0", provenance={"weights_init": "canonical", "init_seed": 0, "weights_sha256": "0" * 64,
                                                           "verify": {"max_rel_error": 1.2e-6, "rtol": 1e-4, "noise": 3e-7}})
    per_model = max(1, versions // 100)
    with registry._meta.write() as txn:
        txn.set_tags("m000", 1, {"team": "vision"})
        for i in range(1, versions):
            n = i // per_model
            txn.add_version(replace(first, name=f"m{n:03d}", sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                                    tags={"team": "vision" if n < 10 else "nlp", "i": str(i)}))
        for n in range(100):
            txn.set_alias(f"m{n:03d}", "prod", 1)
    registry.close()


def wall_ms(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) milliseconds of a fresh process: CPU time is what a busy
    machine does not inflate."""
    import resource

    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        t0 = time.perf_counter()
        fill(store, args.versions)
        print(f"filled {args.versions:,} versions in {time.perf_counter() - t0:.1f} s")
        # As installed: Python caches zoo's compiled modules (a sandbox's PYTHONDONTWRITEBYTECODE would make every
        # run compile them again, ~60 ms); wall_ms's untimed first run writes the cache.
        env = {**os.environ, "ZOO_STORE": str(store), "COLUMNS": "200"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        zoo = [sys.executable, "-m", "zoo"]
        rows = [("zoo --help (start-up, for scale)", zoo + ["--help"]),
                ("zoo list --tag team=vision", zoo + ["list", "--tag", "team=vision"]),
                ("zoo list --tag team=vision --json", zoo + ["list", "--tag", "team=vision", "--json"]),
                ("zoo list --alias prod --tag team=vision", zoo + ["list", "--alias", "prod", "--tag", "team=vision"]),
                ("zoo list m042 --tag team=vision (no match)", zoo + ["list", "m042", "--tag", "team=vision"])]
        print(f"{'':48s} {'wall':>8s}    {'cpu':>8s}")
        for label, argv in rows:
            wall, cpu = wall_ms(argv, env, args.runs)
            print(f"{label:48s} {wall:8.0f} ms {cpu:8.0f} ms")
        from zoo._registry import Registry

        registry = Registry.open(store)
        times, found = [], 0
        for _ in range(args.runs):
            t0 = time.process_time()
            found = len(registry.list(tags={"team": "vision"}))
            times.append(time.process_time() - t0)
        print(f"{'Registry.list(tags={team: vision}) in-process':48s} {'':8s}    {statistics.median(times) * 1000:8.0f} ms "
              f"({found:,} versions)")


if __name__ == "__main__":
    main()
