"""How long `zoo --help` and `zoo list` take, next to a bare `python -c pass`.

zoo's promise is that the everyday commands never import a deep-learning framework (nor onnx,
nor onnxruntime). This prints the median wall time of N fresh processes for each command and the
ratio to Python's own start-up, then checks ``sys.modules`` after ``import zoo.cli``.

    python -m benchmarks.startup_time [--runs 15] [--json]

Exits 1 if a heavy module is imported by the CLI at start-up.
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
from pathlib import Path

HEAVY = ("torch", "tensorflow", "keras", "onnx", "onnxruntime", "tf2onnx", "onnxscript")
ROOT = Path(__file__).resolve().parents[1]


def _wall(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return elapsed


def median_wall(argv: list[str], *, runs: int, env: dict[str, str]) -> float:
    _wall(argv, env)  # one untimed run: page cache, .pyc files
    return statistics.median(_wall(argv, env) for _ in range(runs))


def heavy_modules_after_import(env: dict[str, str]) -> list[str]:
    probe = ("import sys, zoo.cli\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (median reported)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="zoo-startup-") as store:
        env["ZOO_STORE"] = store
        zoo = [sys.executable, "-m", "zoo"]  # what the `zoo` console script runs
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "zoo --help": [*zoo, "--help"],
            "zoo list (empty store)": [*zoo, "list"],
        }
        times = {name: median_wall(cmd, runs=args.runs, env=env) for name, cmd in commands.items()}
    heavy = heavy_modules_after_import(env)
    base = times["python -c pass"]
    if args.json:
        print(json.dumps({"runs": args.runs, "median_s": times, "ratio_to_python": {k: v / base for k, v in times.items()},
                          "heavy_modules_after_import": heavy}, indent=2))
    else:
        print(f"Start-up time, median of {args.runs} fresh processes ({sys.executable}, Python {sys.version.split()[0]})\n")
        print("| command | median ms | x python -c pass |")
        print("|---|---:|---:|")
        for name, seconds in times.items():
            print(f"| `{name}` | {seconds * 1e3:.0f} | {seconds / base:.1f} |")
        print()
        print("heavy modules after `import zoo.cli`: " + (", ".join(heavy) if heavy else "none"))
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
