"""Does the NCHW input contract cost the TensorFlow export speed under ONNX Runtime (CPU)?

Keras computes channels-last; the artifact contract is NCHW. The exporter asks tf2onnx for an NCHW
input (``inputs_as_nchw``) and relies on its transpose optimizer to cancel the layout transposes
against the ones it puts around every conv. This exports full-size ResNet-50 twice from the same
Keras model, with the contract's NCHW input and with TensorFlow's native NHWC input, counts the
Transpose nodes in each graph, and times both under ORT CPU at batch 1 and 8, interleaved in one
process (so machine load hits both alike). With ``zoo_torch`` importable, the torch-built
ResNet-50 artifact is timed alongside.

    python -m benchmarks.nchw_contract_cost [--arch resnet50] [--rounds 7] [--iters 5] [--json]

Reported: median ms per batch; ratio = NCHW contract / NHWC (1.00 = free; < 1 faster).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _time(session, feed: dict, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        session.run(None, feed)
    return (time.perf_counter() - t0) / iters * 1000


def main() -> None:
    import numpy as np
    import onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zoo_tensorflow import TensorFlowPlugin
    from zoo_tensorflow.export import convert

    plugin = TensorFlowPlugin()
    model = plugin.build(args.arch, num_classes=1000, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="zoo-nchw-"))
    paths, transposes, export_s = {}, {}, {}
    for label, nchw in (("tf NCHW (contract)", True), ("tf NHWC", False)):
        t0 = time.perf_counter()
        paths[label] = tmp / f"{'nchw' if nchw else 'nhwc'}.onnx"
        convert(model, input_size=224, opset=18, nchw=nchw).write(paths[label])
        export_s[label] = time.perf_counter() - t0
        graph = onnx.load(str(paths[label]), load_external_data=False).graph
        transposes[label] = sum(node.op_type == "Transpose" for node in graph.node)
    try:
        from zoo_torch import TorchPlugin

        torch_plugin = TorchPlugin()
        paths["torch NCHW (contract)"] = tmp / "torch.onnx"
        t0 = time.perf_counter()
        torch_model = torch_plugin.build(args.arch, num_classes=1000, seed=0)
        torch_plugin.export_onnx(torch_model, paths["torch NCHW (contract)"])
        export_s["torch NCHW (contract)"] = time.perf_counter() - t0
        graph = onnx.load(str(paths["torch NCHW (contract)"]), load_external_data=False).graph
        transposes["torch NCHW (contract)"] = sum(node.op_type == "Transpose" for node in graph.node)
    except Exception as exc:  # optional comparison
        print(f"(torch comparison skipped: {type(exc).__name__}: {exc})", file=sys.stderr)
    del model

    sessions = {label: _session(str(path), args.threads) for label, path in paths.items()}
    results = []
    for n in (int(b) for b in args.batches.split(",")):
        nchw = np.random.default_rng(0).standard_normal((n, 3, 224, 224), dtype=np.float32)
        feeds = {label: {"images": nchw if "NHWC" not in label else np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))}
                 for label in sessions}
        outs = {label: s.run(None, feeds[label])[0] for label, s in sessions.items()}  # warm-up
        tf_max = float(np.abs(outs["tf NHWC"]).max())
        agree = float(np.abs(outs["tf NCHW (contract)"] - outs["tf NHWC"]).max()) / tf_max
        times: dict[str, list[float]] = {label: [] for label in sessions}
        for _ in range(args.rounds):
            for label, session in sessions.items():
                times[label].append(_time(session, feeds[label], args.iters))
        med = {label: statistics.median(v) for label, v in times.items()}
        results.append({"batch": n, "median_ms": med, "nchw_over_nhwc": med["tf NCHW (contract)"] / med["tf NHWC"],
                        "nchw_vs_nhwc_max_rel_diff": agree})

    report = {"arch": args.arch, "threads": args.threads, "machine": platform.processor() or platform.machine(),
              "transposes": transposes, "export_s": export_s, "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.arch}, ORT CPU, {args.threads} threads, median of {args.rounds} rounds x {args.iters} runs")
    print("Transpose nodes: " + ", ".join(f"{k}: {v}" for k, v in transposes.items()))
    print("export s: " + ", ".join(f"{k}: {v:.1f}" for k, v in export_s.items()))
    labels = list(sessions)
    print("| batch | " + " | ".join(f"{label} ms" for label in labels) + " | NCHW / NHWC |")
    print("|---:|" + "---:|" * (len(labels) + 1))
    for r in results:
        cells = " | ".join(f"{r['median_ms'][label]:.1f}" for label in labels)
        print(f"| {r['batch']} | {cells} | {r['nchw_over_nhwc']:.3f} |")


if __name__ == "__main__":
    main()
