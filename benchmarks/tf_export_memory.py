"""Peak memory of a full-size TensorFlow/Keras export, per architecture, each in a fresh process.

tf2onnx's default path (freeze variables into constants) was killed above 23 GB on VGG16; the
plugin's path (weights as graph inputs, then initializers, dense kernels streamed into the file)
should stay near the size of the model itself. For each architecture a child process builds the
model at 224 px / 1000 classes, exports it, and reports its peak RSS (``ru_maxrss``) after the
build and after the export. Only one child runs at a time.

    python -m benchmarks.tf_export_memory [--archs vgg16,resnet50] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, time
import psutil
from zoo_tensorflow import TensorFlowPlugin

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

arch, path = sys.argv[1], sys.argv[2]
plugin = TensorFlowPlugin()
t0 = time.perf_counter()
model = plugin.build(arch, num_classes=1000, seed=0)
t1 = time.perf_counter()
built_peak, built_rss = peak_mb(), psutil.Process().memory_info().rss / 2**20
info = plugin.export_onnx(model, path, opset=18, input_size=224)
t2 = time.perf_counter()
print(json.dumps({
    "arch": arch, "params": plugin.count_params(model).trainable,
    "build_s": t1 - t0, "export_s": t2 - t1,
    "rss_after_build_mb": built_rss, "peak_after_build_mb": built_peak, "peak_mb": peak_mb(),
    "file_mb": os.path.getsize(path) / 1e6,
}))
"""


def measure(arch: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="zoo-mem-") as tmp:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        out = subprocess.run([sys.executable, "-c", CHILD, arch, str(Path(tmp) / "m.onnx")], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            return {"arch": arch, "error": f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"}
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from zoo.architectures import ARCHITECTURES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(ARCHITECTURES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for arch in args.archs.split(","):
        rows.append(measure(arch))
        print(f"measured {arch}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| arch | params | build s | export s | peak RSS after build MB | peak RSS after export MB "
          "| export adds MB | file MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['arch']} | {r['error']} |||||||")
            continue
        print(f"| {r['arch']} | {r['params']:,} | {r['build_s']:.1f} | {r['export_s']:.1f} "
              f"| {r['peak_after_build_mb']:,.0f} | {r['peak_mb']:,.0f} "
              f"| {r['peak_mb'] - r['peak_after_build_mb']:,.0f} | {r['file_mb']:.1f} |")


if __name__ == "__main__":
    main()
