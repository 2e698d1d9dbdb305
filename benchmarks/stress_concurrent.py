"""Stress the registry's write path: many processes registering into one model at once.

    python -m benchmarks.stress_concurrent                      # 32 processes x 50, embedded and shared store
    python -m benchmarks.stress_concurrent --processes 8 --per-process 20 --backend embedded

The shared store (PostgreSQL + S3) is the one of $ZOO_SERVICES_PG_URL / $ZOO_SERVICES_S3_URL (see
``.ci/services``), started here if they are unset; its writers alternate between two cache folders,
as two machines would. Both backends get the same jobs in the same run.

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

    from zoo import open_registry

    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    registry = open_registry(store)
    out = []
    for p in paths:
        t0 = time.perf_counter()
        r = registry.register(p, name=MODEL)
        out.append({"path": p, "version": r.version.version, "sha256": r.version.sha256, "created": r.created,
                    "seconds": time.perf_counter() - t0})
    print(json.dumps(out), flush=True)


def _test_helper(module: str, name: str):
    """``name`` from ``tests/<module>.py``, loaded by path (the tests folder is not a package; the module
    must import only installed packages, as ``tests/onnx_models.py`` does)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_zoo_tests_{module}", ROOT / "tests" / f"{module}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)


def shared_store(tmp_path: Path) -> tuple[str, list[str]]:
    """A fresh schema + prefix on the services of $ZOO_SERVICES_* (started if unset); returns (URL, stop command)."""
    stop: list[str] = []
    if not (os.environ.get("ZOO_SERVICES_PG_URL") and os.environ.get("ZOO_SERVICES_S3_URL")):
        out = subprocess.run([str(ROOT / ".ci" / "services"), "start"], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            os.environ[key] = value.strip("'")
        stop = [str(ROOT / ".ci" / "services"), "stop", os.environ["ZOO_SERVICES_DIR"]]
    from zoo.store.shared import init_shared

    suffix = f"stress_{os.getpid()}_{int(time.time())}"
    url = os.environ["ZOO_SERVICES_PG_URL"] + f"?schema={suffix}"
    init_shared(url, artifacts=os.environ["ZOO_SERVICES_S3_URL"].rstrip("/") + "/" + suffix)
    return url, stop


def run(kind: str, store: str, jobs: list[list[str]], tmp_path: Path, expected_digests: int) -> dict:
    go = tmp_path / f"go-{kind}"
    env = dict(os.environ)
    machines = [dict(env, ZOO_CACHE=str(tmp_path / f"{kind}-machine-{m}")) for m in "ab"]
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.stress_concurrent", "--worker", store, str(go), *job],
                              cwd=ROOT, env=machines[i % 2],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, job in enumerate(jobs)]
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

    from zoo import open_registry

    registry = open_registry(store)
    versions = registry.list(MODEL)
    stored = Counter(v.sha256 for v in versions)
    returned = {(r["version"], r["sha256"]) for r in results}
    present = {(v.version, v.sha256) for v in versions}
    numbers = sorted(v.version for v in versions)
    latency = sorted(r["seconds"] for r in results)
    row = {
        "backend": kind, "registrations": len(results), "created": sum(r["created"] for r in results),
        "stored": len(versions), "expected": expected_digests, "wall_s": wall, "per_s": len(results) / wall,
        "p50_ms": statistics.median(latency) * 1000 if latency else None,
        "p95_ms": latency[int(0.95 * (len(latency) - 1))] * 1000 if latency else None,
        "lost": len(returned - present), "duplicated": sum(n - 1 for n in stored.values() if n > 1),
        "gaps": len(set(range(1, len(numbers) + 1)) ^ set(numbers)), "failures": failures,
        "corrupt": sum(not r.ok for r in registry.verify()),
    }
    row["ok"] = not (row["lost"] or row["duplicated"] or row["gaps"] or failures or row["corrupt"]) \
        and row["stored"] == expected_digests and row["registrations"] == sum(len(j) for j in jobs)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=32)
    parser.add_argument("--per-process", type=int, default=50)
    parser.add_argument("--shared-pool", type=int, default=25, help="distinct artifacts every process also registers")
    parser.add_argument("--backend", choices=["embedded", "shared", "both"], default="both")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.worker[2:])
        return 0

    make_tiny_onnx = _test_helper("onnx_models", "tiny_cnn")  # the test suite's tiny-model factory
    kinds = ["embedded", "shared"] if args.backend == "both" else [args.backend]
    rows, stop = [], []
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
        try:
            for kind in kinds:
                if kind == "embedded":
                    store = str(tmp_path / "store")
                else:
                    store, stop = shared_store(tmp_path)
                rows.append(run(kind, store, jobs, tmp_path, expected_digests))
        finally:
            if stop:
                subprocess.run(stop, check=False)

    print(f"{args.processes} processes x {args.per_process} registrations into one model "
          f"({expected_digests} distinct artifacts); shared-store writers alternate between two cache folders")
    print(f"{'backend':10} {'regs':>5} {'created':>7} {'wall s':>7} {'regs/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'lost':>5} {'dup':>4} {'gaps':>5} {'failed':>6} {'corrupt':>7}")
    for r in rows:
        print(f"{r['backend']:10} {r['registrations']:>5} {r['created']:>7} {r['wall_s']:>7.1f} {r['per_s']:>7.1f} "
              f"{r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} {r['lost']:>5} {r['duplicated']:>4} {r['gaps']:>5} "
              f"{len(r['failures']):>6} {r['corrupt']:>7}" + (f"  {r['failures'][:2]}" if r["failures"] else ""))
    ok = all(r["ok"] for r in rows)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
