"""`zoo serve`: the Open Inference Protocol checked with a client no one here wrote (tritonclient: HTTP and
gRPC, sync and asyncio, binary and JSON), raw HTTP for the errors, images in with labels out, dynamic
batching, hostile requests. One server per module (a tiny model and ResNet-18 at 64 px), on free ports.
"""
from __future__ import annotations

import asyncio
import base64
import http.client
import io
import json
import socket
import threading
import time
from pathlib import Path

import click
import numpy as np
import pytest

tritonclient_http = pytest.importorskip("tritonclient.http")
import tritonclient.grpc as tgrpc  # noqa: E402

from conftest import make_tiny_onnx  # noqa: E402
from zoo.labels import Labels  # noqa: E402
from zoo.records import VersionMeta  # noqa: E402
from zoo.transforms import Transform  # noqa: E402

thttp = tritonclient_http
LABELS = Labels(name="tiny", classes=tuple(f"class {i}" for i in range(10)))
TRANSFORM = Transform(resize=8, crop=8)
MAX_BODY = 1 << 20
CNN_SIZE = 64


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    import zoo

    root = tmp_path_factory.mktemp("serve")
    registry = zoo.open_registry(root / "store")
    registry.register(make_tiny_onnx(root / "m/model.onnx", 0), name="tiny", meta=VersionMeta(labels=LABELS, transform=TRANSFORM))
    registry.set_alias("tiny@1", "prod")
    registry.close()
    return root / "store"


@pytest.fixture(scope="module")
def cnn(store) -> str:
    """ResNet-18 at 64 px, 10 classes, from the torch plugin: the reference CNN, small-input build."""
    pytest.importorskip("torch")
    import zoo
    from zoo._exporting import export_and_register
    from zoo.plugins import get_plugin

    with zoo.open_registry(store) as registry:
        version = export_and_register(registry, get_plugin("torch"), "resnet18", num_classes=10, input_size=CNN_SIZE,
                                      seed=0).version
    return version.ref


@pytest.fixture(scope="module")
def server(store, cnn):
    from zoo.serve import Server

    server = Server(["tiny@prod", cnn], store=store, http_port=0, grpc_port=0, max_body_bytes=MAX_BODY,
                    request_timeout=2.0, max_queue_delay_us=0).start_in_thread()
    yield server
    server.close()


@pytest.fixture(scope="module")
def reference(store):
    import zoo

    return zoo.load("tiny@prod", store=store, provider="cpu", cache=False)


def _batch(n: int = 2, seed: int = 0, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def _post(server, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    conn.request("POST", path, body=body, headers=headers or {"Content-Type": "application/json"})
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def _get(server, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    out = resp.status, resp.read()
    conn.close()
    return out


def _png(seed: int, size=(12, 16)) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- the protocol


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_http_client_infers_bit_identical_logits(server, reference, binary):
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
    x = _batch(3)
    inp = thttp.InferInput("images", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    result = client.infer("tiny", [inp], outputs=[thttp.InferRequestedOutput("logits", binary_data=binary)], request_id="r1")
    np.testing.assert_array_equal(result.as_numpy("logits"), reference.predict(x))
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("tiny", "1", "r1")
    assert response["parameters"]["zoo_sha256"] == reference.version.sha256


def test_metadata_names_the_exact_artifact(server, reference):
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    meta = client.get_model_metadata("tiny")
    assert meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 3, 8, 8]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert (meta["zoo"]["sha256"], meta["zoo"]["ref"]) == (reference.version.sha256, "tiny@prod")
    assert client.get_model_metadata("tiny", model_version="1") == meta
    server_meta = client.get_server_metadata()
    assert server_meta["name"] == "zoo" and {"binary_tensor_data", "classification"} <= set(server_meta["extensions"])
    status, headers, _ = _post(server, "/v2/models/tiny/infer", json.dumps(
        {"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": _batch(1).ravel().tolist()}]}).encode())
    assert status == 200 and headers["zoo-model-version"] == "1" and headers["zoo-model-sha256"] == reference.version.sha256


def test_grpc_client_protocol(server, reference):
    client = tgrpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
    assert client.get_server_metadata().name == "zoo"
    meta = client.get_model_metadata("tiny", as_json=True)
    assert meta["inputs"][0] == {"name": "images", "datatype": "FP32", "shape": ["-1", "3", "8", "8"]}
    x = _batch(2, seed=3)
    inp = tgrpc.InferInput("images", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer("tiny", [inp], request_id="g1")
    np.testing.assert_array_equal(result.as_numpy("logits"), reference.predict(x))
    response = result.get_response()
    assert (response.model_version, response.id) == ("1", "g1")
    assert response.parameters["zoo_sha256"].string_param == reference.version.sha256


def test_fp16_inputs_are_cast_to_the_model_float(server, reference):
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    x = _batch(2, seed=4).astype(np.float16)
    inp = thttp.InferInput("images", list(x.shape), "FP16")
    inp.set_data_from_numpy(x)
    result = client.infer("tiny", [inp])
    np.testing.assert_array_equal(result.as_numpy("logits"), reference.predict(x.astype(np.float32)))


def test_asyncio_clients(server, reference):
    import tritonclient.grpc.aio as agrpc
    import tritonclient.http.aio as ahttp

    x = _batch(1, seed=5)
    want = reference.predict(x)

    async def main():
        http_client = ahttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
        grpc_client = agrpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        hin = ahttp.InferInput("images", list(x.shape), "FP32")
        hin.set_data_from_numpy(x, binary_data=True)
        gin = agrpc.InferInput("images", list(x.shape), "FP32")
        gin.set_data_from_numpy(x)
        results = await asyncio.gather(*[http_client.infer("tiny", [hin]) for _ in range(4)],
                                       *[grpc_client.infer("tiny", [gin]) for _ in range(4)])
        assert await http_client.is_model_ready("tiny") and await grpc_client.is_model_ready("tiny")
        await http_client.close()
        await grpc_client.close()
        return results

    for result in asyncio.run(main()):
        np.testing.assert_array_equal(result.as_numpy("logits"), want)


def test_reference_cnn_over_both_protocols(server, store, cnn):
    import zoo

    model = zoo.load(cnn, store=store, provider="cpu", cache=False)
    name, _, version = cnn.partition("@")
    x = _batch(1, seed=6, size=CNN_SIZE)
    inp = thttp.InferInput("images", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    got = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}").infer(name, [inp], model_version=version)
    gin = tgrpc.InferInput("images", list(x.shape), "FP32")
    gin.set_data_from_numpy(x)
    got_grpc = tgrpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}").infer(name, [gin])
    np.testing.assert_array_equal(got.as_numpy("logits"), model.predict(x))
    np.testing.assert_array_equal(got_grpc.as_numpy("logits"), model.predict(x))


# ---------------------------------------------------------------------------------------------- images in, labels out


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_images_in_labels_out(server, reference, protocol):
    images = [_png(1), _png(2, (20, 9))]
    want = reference.classify(images, top_k=3)
    data = np.array(images, dtype=object)
    mod = thttp if protocol == "http" else tgrpc
    client = mod.InferenceServerClient(f"127.0.0.1:{server.http_port if protocol == 'http' else server.grpc_port}")
    inp = mod.InferInput("images", [2], "BYTES")
    inp.set_data_from_numpy(data)
    result = client.infer("tiny", [inp], outputs=[mod.InferRequestedOutput("logits", class_count=3)])
    got = result.as_numpy("logits")
    assert got.shape == (2, 3)
    for row, preds in zip(got, want, strict=True):
        parsed = [cell.decode().split(":", 2) for cell in row]
        assert [(int(i), label) for _, i, label in parsed] == [(p.class_id, p.label) for p in preds]
        assert [float(p) for p, _, _ in parsed] == pytest.approx([p.probability for p in preds], abs=1e-6)


def test_images_as_base64_json(server, reference):
    images = [_png(7)]
    body = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(images[0]).decode()]}]}
    status, _, out = _post(server, "/v2/models/tiny/infer", json.dumps(body).encode())
    assert status == 200
    np.testing.assert_array_equal(np.array(json.loads(out)["outputs"][0]["data"], np.float32),
                                  reference.predict(reference.preprocess(images)).ravel())


def test_an_undecodable_image_is_named(server):
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    inp = thttp.InferInput("images", [3], "BYTES")
    inp.set_data_from_numpy(np.array([_png(1), _png(2), b"not an image"], dtype=object))
    with pytest.raises(Exception, match=r"image #2 \(encoded image bytes\)") as err:
        client.infer("tiny", [inp])
    assert "400" in str(err.value)


# ---------------------------------------------------------------------------------------------- errors and hostile requests


def _json_infer(shape, data, datatype="FP32", name="images"):
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}).encode()


def _binary(declared: int, sent: int) -> tuple[bytes, dict]:
    head = json.dumps({"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3, 8, 8],
                                   "parameters": {"binary_data_size": declared}}]}).encode()
    return head + b"\0" * sent, {"Inference-Header-Content-Length": str(len(head))}


ONE = _batch(1).ravel().tolist()
HOSTILE = {
    "malformed JSON": ("/v2/models/tiny/infer", b"{\"inputs\": [", {}, 400, "not JSON"),
    "not an object": ("/v2/models/tiny/infer", b"[1, 2]", {}, 400, "Expected a JSON object"),
    "no inputs": ("/v2/models/tiny/infer", b"{\"inputs\": []}", {}, 400, "non-empty \"inputs\" list"),
    "unknown model": ("/v2/models/nothing/infer", _json_infer([1, 3, 8, 8], ONE), {}, 404, "Received: 'nothing'"),
    "unknown version": ("/v2/models/tiny/versions/7/infer", _json_infer([1, 3, 8, 8], ONE), {}, 404, "version '7'"),
    "shape lie": ("/v2/models/tiny/infer", _json_infer([2, 3, 8, 8], ONE), {}, 400, "Expected 384 values"),
    "huge declared shape": ("/v2/models/tiny/infer", _json_infer([100000, 100000, 3, 224], ONE), {}, 400,
                            "at most 1,048,576 elements"),
    "negative dim": ("/v2/models/tiny/infer", _json_infer([-1, 3, 8, 8], ONE), {}, 400, "non-negative integers"),
    "wrong input size": ("/v2/models/tiny/infer", _json_infer([1, 3, 4, 4], ONE[:48]), {}, 400,
                         "fixed input size H x W = 8 x 8"),
    "NHWC": ("/v2/models/tiny/infer", _json_infer([1, 8, 8, 3], ONE), {}, 400, "looks like NHWC"),
    "integer pixels": ("/v2/models/tiny/infer", _json_infer([1, 3, 8, 8], [1] * 192, "INT64"), {}, 400,
                       "Expected float32 images. Received dtype int64"),
    "unknown datatype": ("/v2/models/tiny/infer", _json_infer([1, 3, 8, 8], ONE, "FLOAT"), {}, 400, "OIP datatype"),
    "wrong input name": ("/v2/models/tiny/infer", _json_infer([1, 3, 8, 8], ONE, name="x"), {}, 400,
                         "input named 'images'"),
    "wrong byte count": ("/v2/models/tiny/infer", *_binary(10, 10), 400, "Expected 768 bytes"),
    "header length past the body": ("/v2/models/tiny/infer", b"{}", {"Inference-Header-Content-Length": "99"}, 400,
                                    "Inference-Header-Content-Length between 0"),
    "binary size past the body": ("/v2/models/tiny/infer", *_binary(768, 700), 400, "binary_data_size"),
    "bad classification": ("/v2/models/tiny/infer", json.dumps(
        {"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": ONE}],
         "outputs": [{"name": "logits", "parameters": {"classification": -2}}]}).encode(), {}, 400, "positive integer"),
    "too large": ("/v2/models/tiny/infer", b" " * (MAX_BODY + 1), {}, 413, "at most 1,048,576 bytes"),
    "unknown path": ("/v3/anything", b"{}", {}, 404, "Expected a path under /v2"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_requests_get_a_clear_error_and_the_server_stays_up(server, case):
    path, body, headers, status, message = HOSTILE[case]
    got, _, out = _post(server, path, body, {"Content-Type": "application/json", **headers})
    error = json.loads(out)["error"]
    assert (got, message in error) == (status, True), error
    assert _get(server, "/v2/health/live")[0] == 200


def test_grpc_errors_have_the_protocol_codes(server):
    import grpc

    client = tgrpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    inp = tgrpc.InferInput("images", [1, 3, 8, 8], "FP32")
    inp.set_data_from_numpy(_batch(1))
    with pytest.raises(Exception) as missing:
        client.infer("nothing", [inp])
    assert missing.value.status() == f"StatusCode.{grpc.StatusCode.NOT_FOUND.name}"
    bad = tgrpc.InferInput("images", [1, 8, 8, 3], "FP32")
    bad.set_data_from_numpy(_batch(1).transpose(0, 2, 3, 1).copy())
    with pytest.raises(Exception, match="looks like NHWC") as invalid:
        client.infer("tiny", [bad])
    assert invalid.value.status() == f"StatusCode.{grpc.StatusCode.INVALID_ARGUMENT.name}"


def test_slow_clients_do_not_block_others_and_time_out(server, reference):
    slow = socket.create_connection(("127.0.0.1", server.http_port))
    slow.sendall(b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"inp")
    x = _batch(1)
    inp = thttp.InferInput("images", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    started = time.perf_counter()
    got = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}").infer("tiny", [inp])
    assert time.perf_counter() - started < 2.0  # not held up until the stalled upload times out (2 s)
    np.testing.assert_array_equal(got.as_numpy("logits"), reference.predict(x))
    slow.settimeout(10)
    answer = b""
    while b"within 2 s" not in answer and (chunk := slow.recv(4096)):  # the body may come in its own segment
        answer += chunk
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"Expected the request body within 2 s" in answer


def test_a_full_queue_answers_503_not_a_longer_queue():
    from zoo.errors import Unavailable
    from zoo.serve._batcher import Batcher
    from zoo.serve._server import status_of

    async def main():
        batcher = Batcher([lambda x: x], max_batch_size=4, max_queue_delay_us=0, max_queue=2)
        batcher.start()
        batcher.submit(np.zeros((1, 2)))
        batcher.submit(np.zeros((1, 2)))
        with pytest.raises(Unavailable, match="all 2 places taken") as full:
            batcher.submit(np.zeros((1, 2)))
        await batcher.close()
        return full.value

    assert status_of(asyncio.run(main())) == (503, "UNAVAILABLE")


# ---------------------------------------------------------------------------------------------- dynamic batching


def _histogram(text: str, name: str, model: str) -> tuple[float, float]:
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_sum{{") and f'model="{model}"' in line:
            total += float(line.rsplit(" ", 1)[1])
        if line.startswith(f"{name}_count{{") and f'model="{model}"' in line:
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def test_dynamic_batching_batches_and_answers_bit_identically(store, reference):
    from zoo.serve import Server

    server = Server(["tiny@1"], store=store, http_port=0, grpc_port=None, max_batch_size=8,
                    max_queue_delay_us=50_000).start_in_thread()
    try:
        inputs = [_batch(1, seed=100 + i) for i in range(16)]
        results: dict[int, np.ndarray] = {}

        def send(i: int) -> None:
            client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
            inp = thttp.InferInput("images", [1, 3, 8, 8], "FP32")
            inp.set_data_from_numpy(inputs[i])
            results[i] = client.infer("tiny", [inp]).as_numpy("logits")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        rows, batches = _histogram(_get(server, "/metrics")[1].decode(), "zoo_serve_batch_size", "tiny")
        assert rows == 16 and batches < 16, (rows, batches)  # some requests shared a run
        for i, x in enumerate(inputs):
            np.testing.assert_array_equal(results[i], reference.predict(x))  # bit for bit, batched or not
    finally:
        server.close()


def test_metrics_count_requests_failures_and_latency(server):
    text = _get(server, "/metrics")[1].decode()
    assert 'zoo_serve_requests_total{model="tiny",protocol="http",version="1"}' in text
    assert 'zoo_serve_request_failures_total{model="tiny",protocol="http",status="400",version="1"}' in text
    for name in ("zoo_serve_request_duration_seconds", "zoo_serve_queue_duration_seconds",
                 "zoo_serve_compute_duration_seconds"):
        assert _histogram(text, name, "tiny")[1] > 0, name


def test_a_request_past_its_timeout_gets_504_and_the_server_stays_up(store):
    from zoo.serve import Server

    server = Server(["tiny@1"], store=store, http_port=0, grpc_port=None, request_timeout=0.2,
                    max_queue_delay_us=1_500_000).start_in_thread()
    try:
        status, _, out = _post(server, "/v2/models/tiny/infer", _json_infer([1, 3, 8, 8], ONE))
        assert status == 504 and "Expected an answer within 0.2 s" in json.loads(out)["error"]
        assert _get(server, "/v2/health/live")[0] == 200
    finally:
        server.close()


def test_zoo_serve_is_callable_from_python(monkeypatch):
    import zoo
    from zoo.serve._server import Server

    ran: list = []
    monkeypatch.setattr(Server, "run", lambda self, on_ready=None: ran.append((self.refs, self.http_port)))
    zoo.serve(["tiny@prod"], http_port=9000)  # the package is callable: zoo.serve([...]) runs a Server
    assert ran == [(["tiny@prod"], 9000)] and zoo.serve.Server is Server


def test_serve_and_ui_listen_on_localhost_unless_told():
    """SECURITY.md: neither server listens beyond 127.0.0.1 unless --host (host=) says so (they have no authentication)."""
    import inspect

    from zoo.cli import main
    from zoo.serve._server import Server
    from zoo.ui.server import make_server

    assert inspect.signature(Server).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(make_server).parameters["host"].default == "127.0.0.1"
    for command in ("serve", "ui"):
        (host,) = [p for p in main.get_command(click.Context(main), command).params if p.name == "host"]
        assert host.default == "127.0.0.1", command


def test_a_taken_port_is_exit_12_naming_it(server, store):
    from conftest import cli_on

    result = cli_on(store)("serve", "tiny@1", "--http-port", str(server.http_port), "--grpc-port", "-1", code=12)
    assert f"Expected to listen on 127.0.0.1:{server.http_port} (REST)" in result.stderr


@pytest.mark.parametrize("shape,raw,message", [
    ([1, 3, 8, 8], b"\0" * 10, "Expected 768 bytes"),
    ([1 << 40, 3, 8, 8], b"\0" * 768, "at most 1,048,576 elements"),
    ([1, 3, 8], b"\0" * 96, "Expected a 4-d array"),
], ids=["wrong byte count", "huge declared shape", "shape lie"])
def test_hostile_grpc_requests_are_invalid_argument(server, shape, raw, message):
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name="tiny", raw_input_contents=[raw])
        request.inputs.add(name="images", datatype="FP32", shape=shape)
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelInfer(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in err.value.details()
        assert stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=10).live
