"""`zoo serve` alias hot-swap under load (on each registry backend), PostgreSQL LISTEN, a refused move to
another signature, and the graceful drain on SIGTERM (the real CLI in a child process)."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.http")
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from conftest import PYTHON, subprocess_env

X = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)


def _register_versions(registry, tiny_onnx, seeds=(0, 1, 2, 3)) -> dict[int, np.ndarray]:
    """Versions 1..n of "tiny" (one signature, different weights) -> the logits each computes for X."""
    expected = {}
    for seed in seeds:
        version = registry.register(tiny_onnx(seed), name="tiny").version
        expected[version.version] = registry.load(version, provider="cpu", cache=False).predict(X)
    return expected


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_alias_moves_under_load_fail_nothing(store, backend, tiny_onnx):
    from zoo.serve import Server

    expected = _register_versions(store, tiny_onnx)
    store.set_alias("tiny@1", "prod")
    server = Server(["tiny@prod"], store=backend.location, http_port=0, grpc_port=0, poll_interval=0.05,
                    max_queue_delay_us=500).start_in_thread()
    answers: list[tuple[str, int, np.ndarray]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def client(protocol: str) -> None:
        mod = thttp if protocol == "http" else tgrpc
        c = mod.InferenceServerClient(f"127.0.0.1:{server.http_port if protocol == 'http' else server.grpc_port}")
        inp = mod.InferInput("images", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        while not stop.is_set():
            try:
                result = c.infer("tiny", [inp])
                r = result.get_response()
                version = int(r["model_version"] if protocol == "http" else r.model_version)
                answers.append((protocol, version, result.as_numpy("logits")))
            except BaseException as exc:  # counted: the test demands none
                failures.append(exc)

    threads = [threading.Thread(target=client, args=(p,)) for p in ("http", "http", "grpc")]
    try:
        for t in threads:
            t.start()
        for version in (2, 3, 4):
            time.sleep(0.3)
            store.set_alias(f"tiny@{version}", "prod")
            _wait_for(lambda v=version: server.models["tiny"].current.version.version == v)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        server.close()
    assert failures == []
    assert {v for _, v, _ in answers} == {1, 2, 3, 4} and {p for p, _, _ in answers} == {"http", "grpc"}
    for _, version, logits in answers:  # each answer computed by the version it names, bit for bit
        np.testing.assert_array_equal(logits, expected[version])


def test_a_move_to_another_signature_is_refused_and_the_old_version_keeps_serving(embedded_store, tiny_onnx, caplog):
    from zoo.serve import Server

    expected = _register_versions(embedded_store, tiny_onnx, seeds=(0,))
    embedded_store.register(tiny_onnx(1, num_classes=5), name="tiny")  # version 2: 5 classes
    embedded_store.set_alias("tiny@1", "prod")
    server = Server(["tiny@prod"], store=embedded_store.root, http_port=0, grpc_port=None, poll_interval=0.05)
    server.start_in_thread()
    try:
        embedded_store.set_alias("tiny@2", "prod")
        _wait_for(lambda: "refused to serve tiny@2" in caplog.text)
        inp = thttp.InferInput("images", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        result = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}").infer("tiny", [inp])
        assert result.get_response()["model_version"] == "1"
        np.testing.assert_array_equal(result.as_numpy("logits"), expected[1])
        assert "logits float32 ['batch', 5]" in caplog.text  # the log names both signatures
    finally:
        server.close()


def test_postgres_listen_swaps_without_waiting_for_the_poll(shared_services, tmp_path, tiny_onnx, monkeypatch):
    import psycopg

    from backends import Backend
    from zoo.serve import Server
    from zoo.store.location import parse_database

    backend = Backend.create("shared", tmp_path, shared_services)
    for key, value in backend.env.items():
        monkeypatch.setenv(key, value)
    registry = backend.open(cache=tmp_path / "cache")
    try:
        _register_versions(registry, tiny_onnx, seeds=(0, 1))
        registry.set_alias("tiny@1", "prod")
        server = Server(["tiny@prod"], store=backend.location, http_port=None, grpc_port=0, poll_interval=3600)
        server.start_in_thread()
        try:
            time.sleep(0.3)  # LISTEN is issued
            registry.set_alias("tiny@2", "prod")
            with psycopg.connect(parse_database(backend.location).conninfo, autocommit=True) as conn:
                conn.execute("NOTIFY zoo_alias, 'tiny'")  # what the store sends on an alias move
            _wait_for(lambda: server.models["tiny"].current.version.version == 2, timeout=10)
        finally:
            server.close()
    finally:
        registry.close()
        backend.drop()


def test_sigterm_drains_in_flight_requests_and_exits_0(embedded_store, tiny_onnx):
    expected = _register_versions(embedded_store, tiny_onnx, seeds=(0,))
    proc = subprocess.Popen(
        [PYTHON, "-m", "zoo", "--store", str(embedded_store.root), "serve", "tiny@1", "--http-port", "0",
         "--grpc-port", "-1", "--max-queue-delay", "1500000", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        ready = json.loads(proc.stdout.readline())
        inp = thttp.InferInput("images", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        client = thttp.InferenceServerClient(f"127.0.0.1:{ready['http_port']}", network_timeout=30)
        result: list = []
        sender = threading.Thread(target=lambda: result.append(client.infer("tiny", [inp])))
        sender.start()
        time.sleep(0.5)  # the request waits in the batcher (1.5 s queue delay)
        proc.send_signal(signal.SIGTERM)
        sender.join(30)
        assert proc.wait(30) == 0
        np.testing.assert_array_equal(result[0].as_numpy("logits"), expected[1])
        log = proc.stderr.read()
        assert "draining" in log and '"status":200' in log  # the access log saw the drained request
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_move_to_a_corrupt_artifact_is_refused(embedded_store, tiny_onnx, caplog):
    from backends import flip_byte
    from zoo.serve import Server

    expected = _register_versions(embedded_store, tiny_onnx, seeds=(0, 1))
    embedded_store.set_alias("tiny@1", "prod")
    flip_byte(embedded_store.path("tiny@2", verify=False))
    server = Server(["tiny@prod"], store=embedded_store.root, http_port=0, grpc_port=None, poll_interval=0.05)
    server.start_in_thread()
    try:
        embedded_store.set_alias("tiny@2", "prod")
        _wait_for(lambda: "refused to serve tiny@2" in caplog.text)
        assert "corrupt" in caplog.text  # the sha256 check, before any session is made
        inp = thttp.InferInput("images", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        result = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}").infer("tiny", [inp])
        assert result.get_response()["model_version"] == "1"
        np.testing.assert_array_equal(result.as_numpy("logits"), expected[1])
    finally:
        server.close()
