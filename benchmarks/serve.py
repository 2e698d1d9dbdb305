"""`zoo serve` against KServe's Python model server and MLServer, one load generator, one run, interleaved.

Every server runs the *same* ONNX Runtime session (each builds it with ``zoo.load``: same provider, same
session options) in its own process; the load generator is tritonclient (HTTP and gRPC) in this process:
``c`` threads, each with its own client, sending batch-1 requests back to back for ``--duration`` seconds.
Cells are interleaved per concurrency level (every server at c=1, then every server at c=8, ...), so a
noisy neighbour slows them all alike; the table gives ratios to the in-process limit
(``InferenceModel.predict`` from ``c`` threads) measured in the same round.

- zoo serve: REST (binary tensor extension) and gRPC; dynamic batching on (max batch 8, no added delay).
- KServe (``kserve`` package): a custom ``kserve.Model`` whose ``predict`` runs the session; REST (v2, binary
  extension) and gRPC. Its Python server has no batcher (KServe batches in its agent sidecar, not here).
- MLServer (``mlserver`` package): a custom ``MLModel`` runtime running the session, adaptive batching on
  (max batch 8, 2 ms); REST with JSON tensors (1.7.1 answers 422 to the binary extension) and gRPC.

kserve and mlserver pin packages of their own, so each lives in its own virtual environment
(``--system-site-packages``, so they see this machine's onnxruntime and zoo), made on first use::

    python -m venv --system-site-packages /work/venvs/kserve   && /work/venvs/kserve/bin/pip install kserve
    python -m venv --system-site-packages /work/venvs/mlserver && /work/venvs/mlserver/bin/pip install mlserver

    python -m benchmarks.serve                                  # ResNet-50 at c=1,8,32 + ResNet-18/64 px at c=1
    python -m benchmarks.serve --duration 10 --servers zoo,kserve --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

VENVS = Path(os.environ.get("ZOO_BENCH_VENVS", "/work/venvs"))

KSERVE_MODEL = '''
import json, os, sys
sys.argv = sys.argv[:1]  # kserve parses sys.argv itself (its own options); ours come in ZOO_BENCH_KSERVE
import kserve
from kserve.protocol.infer_type import InferOutput, InferResponse
import zoo

class ZooModel(kserve.Model):
    def __init__(self, name, ref, store):
        super().__init__(name)
        self.model = zoo.load(ref, store=store, cache=False)
        self.session, self.out, self.inp = self.model.session, [self.model.output_name], self.model.input_spec.name
        self.ready = True

    def predict(self, payload, headers=None, response_headers=None):
        x = payload.inputs[0].as_numpy()
        y = self.session.run(self.out, {self.inp: x})[0]
        output = InferOutput(name="logits", shape=list(y.shape), datatype="FP32")
        output.set_data_from_numpy(y, binary_data=True)  # the load generator asks for binary outputs
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[output])

if __name__ == "__main__":
    a = json.loads(os.environ["ZOO_BENCH_KSERVE"])
    models = [ZooModel(ref.split("@")[0], ref, a["store"]) for ref in a["refs"]]
    kserve.ModelServer(http_port=a["http"], grpc_port=a["grpc"], workers=1, enable_latency_logging=False).start(models)
'''

MLSERVER_RUNTIME = '''
import os
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
import zoo

class ZooRuntime(MLModel):
    async def load(self) -> bool:
        params = self.settings.parameters
        self.model = zoo.load(params.uri, store=os.environ["ZOO_BENCH_STORE"], cache=False)
        self.session, self.out, self.inp = self.model.session, [self.model.output_name], self.model.input_spec.name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        y = self.session.run(self.out, {self.inp: x})[0]
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("logits", y)])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return f"{fields.get('Model name', '?').strip()}, {os.cpu_count()} logical CPUs"
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown CPU"


def prepare_store(store: Path, log: Callable[[str], None]) -> dict[str, str]:
    """ResNet-50 (224 px, 1000 classes) and ResNet-18 (64 px, 10 classes), seeded weights, as `prod` aliases."""
    import zoo
    from zoo._exporting import export_and_register
    from zoo.plugins import get_plugin

    refs = {}
    with zoo.open_registry(store) as registry:
        for arch, size, classes in (("resnet50", 224, 1000), ("resnet18", 64, 10)):
            if arch not in (registry.models() if (store / "registry.db").exists() else []):
                log(f"exporting {arch} at {size} px ...")
                export_and_register(registry, get_plugin("torch"), arch, num_classes=classes, input_size=size, seed=0)
            registry.set_alias(registry.resolve(arch).ref, "prod")
            refs[arch] = f"{arch}@prod"
    return refs


def wait_ready(port: int, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout:g} s")


class Servers:
    """The server processes; ``targets`` lists (label, protocol, address, binary) for the load generator."""

    def __init__(self, store: Path, refs: dict[str, str], which: list[str], work: Path, log: Callable[[str], None]):
        self.procs: list[subprocess.Popen] = []
        self.targets: list[tuple[str, str, str, bool]] = []
        self.skipped: dict[str, str] = {}
        env = dict(os.environ, ZOO_BENCH_STORE=str(store))  # zoo is installed (the peers' venvs see the system site)
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        for name in which:
            http, grpc = free_port(), free_port()
            try:
                if name == "zoo":
                    cmd = [sys.executable, "-m", "zoo", "--store", str(store), "serve", *refs.values(), "--http-port", str(http),
                           "--grpc-port", str(grpc), "--max-batch-size", "8",
                           "--request-timeout", "600"]  # as patient as the peers; access log on (the default)
                elif name == "kserve":
                    py = VENVS / "kserve" / "bin" / "python"
                    if not py.exists():
                        raise RuntimeError(f"no venv at {py.parent.parent} (see this script's docstring)")
                    (work / "kserve_model.py").write_text(KSERVE_MODEL)
                    cmd = [str(py), str(work / "kserve_model.py")]
                    env["ZOO_BENCH_KSERVE"] = json.dumps({"store": str(store), "http": http, "grpc": grpc,
                                                          "refs": list(refs.values())})
                elif name == "mlserver":
                    exe = VENVS / "mlserver" / "bin" / "mlserver"
                    if not exe.exists():
                        raise RuntimeError(f"no venv at {exe.parent.parent} (see this script's docstring)")
                    root = work / "mlserver"
                    root.mkdir(exist_ok=True)
                    (root / "runtime.py").write_text(MLSERVER_RUNTIME)
                    (root / "settings.json").write_text(json.dumps({
                        "http_port": http, "grpc_port": grpc, "metrics_port": free_port(), "parallel_workers": 0,
                        "debug": False, "metrics_endpoint": None}))
                    for arch, ref in refs.items():
                        (root / arch).mkdir(exist_ok=True)
                        (root / arch / "runtime.py").write_text(MLSERVER_RUNTIME)  # MLServer imports it from the model's folder
                        (root / arch / "model-settings.json").write_text(json.dumps({
                            "name": arch, "implementation": "runtime.ZooRuntime", "max_batch_size": 8,
                            "max_batch_time": 0.002, "parameters": {"uri": ref}}))
                    cmd = [str(exe), "start", str(root)]
                else:
                    raise RuntimeError(f"unknown server {name!r}")
                out = open(logs / f"{name}.log", "w")
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
                self.procs.append(proc)
                log(f"starting {name} (REST {http}, gRPC {grpc}) ...")
                wait_ready(http, proc, name)
            except Exception as exc:
                self.skipped[name] = f"{exc} (log: {logs / (name + '.log')})"
                log(f"{name}: not benchmarked: {exc}")
                continue
            binary = name != "mlserver"
            self.targets += [(f"{name} REST", "http", f"127.0.0.1:{http}", binary), (f"{name} gRPC", "grpc", f"127.0.0.1:{grpc}", True)]

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_load(call_factory: Callable[[], Callable[[], Any]], concurrency: int, duration: float) -> dict[str, Any]:
    """``concurrency`` threads calling back to back for ``duration`` s: throughput, p50, p99, errors."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        try:
            call = call_factory()
            call()  # warm the connection
        except Exception as exc:
            errors.append(str(exc)[:300])
            start.wait()
            return
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            try:
                call()
            except Exception as exc:
                errors.append(str(exc)[:300])
                continue
            latencies[i].append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + duration + 60  # until everyone is warm
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + duration
    for t in threads:
        t.join(duration + 120)
    elapsed = time.perf_counter() - began
    flat = np.array([x for per in latencies for x in per]) * 1e3
    return {"rps": len(flat) / elapsed if elapsed else 0.0, "p50_ms": float(np.percentile(flat, 50)) if len(flat) else None,
            "p99_ms": float(np.percentile(flat, 99)) if len(flat) else None, "requests": int(len(flat)),
            "errors": len(errors), "first_error": errors[0] if errors else None}


def client_call(protocol: str, address: str, binary: bool, model: str, x: np.ndarray) -> Callable[[], Callable[[], Any]]:
    def factory() -> Callable[[], Any]:
        if protocol == "http":
            import tritonclient.http as th

            client = th.InferenceServerClient(address, connection_timeout=120, network_timeout=120)
            inp = th.InferInput("images", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            outputs = [th.InferRequestedOutput("logits", binary_data=binary)]
        else:
            import tritonclient.grpc as tg

            client = tg.InferenceServerClient(address)
            inp = tg.InferInput("images", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            outputs = [tg.InferRequestedOutput("logits")]

        def call() -> Any:
            return client.infer(model, [inp], outputs=outputs).as_numpy("logits")

        return call

    return factory


def inprocess_call(model: Any, x: np.ndarray) -> Callable[[], Callable[[], Any]]:
    return lambda: (lambda: model.predict(x))


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, help="A store to export into / reuse (default: a temporary folder)")
    ap.add_argument("--servers", default="zoo,kserve,mlserver")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--duration", type=float, default=6.0, help="Seconds per cell")
    ap.add_argument("--json", type=Path, help="Write every figure here")
    args = ap.parse_args()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-serve-"))
    store = args.store or work / "store"
    refs = prepare_store(store, log)
    import zoo

    servers = Servers(store, refs, args.servers.split(","), work, log)
    rows: list[dict[str, Any]] = []
    try:
        plan = [("resnet50", 224, int(c)) for c in args.concurrency.split(",")] + [("resnet18", 64, 1)]
        local = {arch: zoo.load(ref, store=store, cache=False) for arch, ref in refs.items()}
        for arch, size, c in plan:
            x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
            cells = [("in-process predict", inprocess_call(local[arch], x))] + \
                    [(label, client_call(proto, addr, binary, arch, x)) for label, proto, addr, binary in servers.targets]
            limit = None
            for label, factory in cells:
                log(f"{arch} c={c} {label} ...")
                r = run_load(factory, c, args.duration)
                limit = r["rps"] if label == "in-process predict" else limit
                rows.append({"model": arch, "concurrency": c, "server": label, **r,
                             "vs_limit": r["rps"] / limit if limit else None})
    finally:
        servers.close()
    cpu = cpu_name()
    print(f"\nCPU: {cpu}; load average at the end: {os.getloadavg()[0]:.1f}; {args.duration:g} s per cell, batch 1, "
          "interleaved per concurrency level\n")
    print("| model | c | server | req/s | p50 ms | p99 ms | errors | vs in-process |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['concurrency']} | {r['server']} | {fmt(r['rps'])} | {fmt(r['p50_ms'], 2)} | "
              f"{fmt(r['p99_ms'], 2)} | {r['errors']} | {fmt(r['vs_limit'], 2)} |")
    for name, why in servers.skipped.items():
        print(f"\n{name}: not measured: {why}")
    for r in rows:
        if r["first_error"]:
            print(f"\n{r['server']} ({r['model']}, c={r['concurrency']}): first error: {textwrap.shorten(r['first_error'], 300)}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "rows": rows, "skipped": servers.skipped}, indent=2))


if __name__ == "__main__":
    main()
