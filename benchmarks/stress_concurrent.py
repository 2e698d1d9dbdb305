"""Stress the registry's write path: many processes registering into one model at once.

    python benchmarks/stress_concurrent.py                      # 32 processes x 50 registrations
    python benchmarks/stress_concurrent.py --processes 8 --per-process 20

Half of each process's registrations are bytes only it has; the other half come from a small pool
that every process registers too (so most of those must dedupe). Prints the throughput and the
counts that must be zero: lost versions (a registration that returned but is not in the store),
duplicated versions (the same bytes twice in one model), gaps or repeats in the version numbers,
failed processes, and corrupt files found by a full verify afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "stress"


def worker(store: str, go: str, paths: list[str]) -> None:
    import onnx  # noqa: F401  (imported before the start signal: measure registering, not importing)

    from zoo._registry import Registry

    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    registry = Registry.open(Path(store))
    out = []
    for p in paths:
        t0 = time.perf_counter()
        r = registry.register(p, name=MODEL)
        out.append({"path": p, "version": r.version.version, "sha256": r.version.sha256, "created": r.created,
                    "seconds": time.perf_counter() - t0})
    print(json.dumps(out), flush=True)


def _test_helper(module: str, name: str):
    """``name`` from ``tests/<module>.py``, loaded by path (the tests folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_zoo_tests_{module}", ROOT / "tests" / f"{module}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=32)
    parser.add_argument("--per-process", type=int, default=50)
    parser.add_argument("--shared-pool", type=int, default=25, help="distinct artifacts every process also registers")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.worker[2:])
        return 0

    from zoo._registry import Registry

    make_tiny_onnx = _test_helper("conftest", "make_tiny_onnx")  # the test suite's tiny-model factory

    with tempfile.TemporaryDirectory(prefix="zoo-stress-") as tmp:
        tmp_path = Path(tmp)
        shared = [make_tiny_onnx(tmp_path / "shared" / f"s{i}" / "model.onnx", seed=1_000_000 + i) for i in range(args.shared_pool)]
        jobs: list[list[str]] = []
        for p in range(args.processes):
            paths = []
            for j in range(args.per_process):
                if j % 2 == 0:
                    paths.append(make_tiny_onnx(tmp_path / f"p{p}" / f"d{j}" / "model.onnx", seed=p * 1000 + j))
                else:
                    paths.append(shared[(p + j // 2) % args.shared_pool])
            jobs.append([str(x) for x in paths])
        expected_digests = len({Path(x).resolve() for job in jobs for x in job})
        store, go = tmp_path / "store", tmp_path / "go"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(store), str(go), *job], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for job in jobs]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        go.touch()
        results, failures = [], []
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode != 0:
                failures.append(" | ".join(err.strip().splitlines()[-3:]) if err.strip() else f"exit {proc.returncode}")
            else:
                results.extend(json.loads(out))
        wall = time.perf_counter() - t0

        registry = Registry.open(store)
        versions = registry.list(MODEL)
        stored = Counter(v.sha256 for v in versions)
        returned = {(r["version"], r["sha256"]) for r in results}
        present = {(v.version, v.sha256) for v in versions}
        lost = len(returned - present)
        duplicated = sum(n - 1 for n in stored.values() if n > 1)
        numbers = sorted(v.version for v in versions)
        gaps = len(set(range(1, len(numbers) + 1)) ^ set(numbers))
        created = sum(r["created"] for r in results)
        verify_bad = sum(not r.ok for r in registry.verify())
        latency = sorted(r["seconds"] for r in results)

    total = args.processes * args.per_process
    print(f"processes            {args.processes}")
    print(f"registrations        {len(results)} of {total} ({created} created, {len(results) - created} deduplicated)")
    print(f"distinct artifacts   {len(versions)} stored, {expected_digests} expected")
    print(f"wall time            {wall:.2f} s")
    print(f"throughput           {len(results) / wall:.1f} registrations/s")
    if latency:
        print(f"latency per call     p50 {statistics.median(latency) * 1000:.0f} ms, "
              f"p95 {latency[int(0.95 * (len(latency) - 1))] * 1000:.0f} ms, max {latency[-1] * 1000:.0f} ms")
    print(f"lost versions        {lost}")
    print(f"duplicated versions  {duplicated}")
    print(f"number gaps/repeats  {gaps}")
    print(f"failed processes     {len(failures)}" + (f": {failures[:3]}" if failures else ""))
    print(f"corrupt after verify {verify_bad}")
    ok = not (lost or duplicated or gaps or failures or verify_bad) and len(versions) == expected_digests and len(results) == total
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
