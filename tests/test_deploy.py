"""`zoo deploy triton`: model repositories checked with Triton's own ModelConfig, against the ONNX files' own
shapes, run under ONNX Runtime against `zoo run`, re-run idempotently, interrupted safely, and written to S3.

One session registry holds, for every reference architecture, a small-input graph under that architecture's
name with its contract (images [batch, 3, 64, 64] -> logits [batch, 1000], imagenet-1k labels), plus an fp16
and an int8 conversion of one of them: the config depends only on the recorded signature and labels, and a real
export costs 25-75 s per architecture on the CI machine. The PyTorch plugin's real exports of all nine
architectures (64 px), deployed and run from the repository, run under `-m slow`.
"""
from __future__ import annotations

import hashlib
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import PYTHON, cli_on, make_tiny_onnx, subprocess_env
from onnx_models import tiny_cnn
from zoo.architectures import ARCHITECTURES

SIZE = 64


def _meta(arch: str | None = None, *, classes: int = 1000):
    from zoo.labels import Labels, builtin_labels
    from zoo.records import Transform, VersionMeta

    labels = builtin_labels("imagenet-1k") if classes == 1000 else Labels(name="tiny", classes=tuple(f"c{i}" for i in range(classes)))
    return VersionMeta(arch=arch, num_classes=classes, transform=Transform(resize=SIZE, crop=SIZE), labels=labels)


@pytest.fixture(scope="session")
def deploy_store(tmp_path_factory) -> Path:
    """Every architecture name at 64 px (seeded tiny graphs), plus resnet50's fp16 and int8 conversions."""
    import zoo
    from zoo.convert import convert_version

    root = tmp_path_factory.mktemp("deploy")
    registry = zoo.open_registry(root / "store")
    for seed, arch in enumerate(ARCHITECTURES):
        registry.register(tiny_cnn(root / f"{arch}.onnx", size=SIZE, classes=1000, seed=seed), name=arch, meta=_meta(arch))
    for precision in ("fp16", "int8"):
        convert_version(registry, "resnet50@1", precision=precision)
    registry.set_alias("resnet50@1", "prod")
    registry.close()
    return root / "store"


REFS = [f"{arch}@1" for arch in ARCHITECTURES] + ["resnet50@2", "resnet50@3"]  # @2 fp16, @3 int8


@pytest.fixture(scope="session")
def repository(deploy_store, tmp_path_factory) -> Path:
    """One `zoo deploy triton` of every ref above into a folder (the CLI, in process)."""
    out = tmp_path_factory.mktemp("repo") / "models"
    cli_on(deploy_store)("deploy", "triton", *REFS, "--to", str(out), "--json")
    return out


def _parse(config: Path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    message = text_format.Parse(config.read_text(), model_config_pb2.ModelConfig())
    again = text_format.Parse(text_format.MessageToString(message), model_config_pb2.ModelConfig())
    assert again == message  # round-trips
    return message


def _onnx_dims(path: Path, which: str) -> list[int | str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    value = (graph.input if which == "input" else graph.output)[0]
    return [d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("ref", REFS)
def test_repository_version_matches_the_registry(repository, deploy_store, ref, tmp_path):
    """config.pbtxt parses with Triton's ModelConfig; dims and batch come from the ONNX file itself; labels fit
    the output; the bytes are the version's; ONNX Runtime on the repository file gives `zoo run`'s logits."""
    import onnxruntime as ort

    import zoo

    version = zoo.open_registry(deploy_store).resolve(ref)
    model = repository / version.name / str(version.version) / "model.onnx"
    assert hashlib.sha256(model.read_bytes()).hexdigest() == version.sha256
    config = _parse(repository / version.name / "config.pbtxt")
    assert config.name == version.name and config.platform == "onnxruntime_onnx"
    assert version.version in config.version_policy.specific.versions
    in_dims, out_dims = _onnx_dims(model, "input"), _onnx_dims(model, "output")
    assert isinstance(in_dims[0], str) and isinstance(out_dims[0], str)  # a symbolic batch axis in the file ...
    assert config.max_batch_size > 0 and list(config.input[0].dims) == in_dims[1:]  # ... is left out of dims
    assert list(config.output[0].dims) == out_dims[1:]
    assert config.input[0].name == "images" and config.output[0].name == "logits"
    assert config.HasField("dynamic_batching") and config.instance_group[0].count == 1
    labels = (repository / version.name / config.output[0].label_filename).read_text().splitlines()
    assert len(labels) == out_dims[-1] == 1000 and labels == list(version.labels.classes)

    batch = np.random.default_rng(0).standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)
    np.save(tmp_path / "batch.npy", batch)
    cli_on(deploy_store)("run", ref, "--input", str(tmp_path / "batch.npy"), "--output", str(tmp_path / "out.npy"))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    served = session.run(["logits"], {"images": batch.astype(np.float16) if "float16" in session.get_inputs()[0].type else batch})[0]
    np.testing.assert_array_equal(served, np.load(tmp_path / "out.npy"))


def test_several_versions_are_one_model_with_a_specific_policy(repository):
    config = _parse(repository / "resnet50" / "config.pbtxt")
    assert sorted(config.version_policy.specific.versions) == [1, 2, 3]  # fp32, fp16, int8: one I/O contract
    assert sorted(p.name for p in (repository / "resnet50").iterdir()) == ["1", "2", "3", "config.pbtxt", "labels.txt"]


def test_a_repeated_deploy_writes_nothing(repository, deploy_store):
    before = _tree(repository)
    result = cli_on(deploy_store)("deploy", "triton", *REFS, "--to", str(repository), "--json")
    assert '"status": "written"' not in result.stdout and '"config": "written"' not in result.stdout
    assert _tree(repository) == before


def test_an_alias_is_pinned_and_follows_a_rollback(deploy_store, tmp_path):
    """`resnet50@prod` serves the version prod points at now, by number (specific), even after it moves down."""
    zoo_cli = cli_on(deploy_store)
    out = tmp_path / "models"
    try:
        zoo_cli("alias", "resnet50@3", "prod")
        zoo_cli("deploy", "triton", "resnet50@prod", "--to", str(out))
        assert list(_parse(out / "resnet50" / "config.pbtxt").version_policy.specific.versions) == [3]
        zoo_cli("alias", "resnet50@1", "prod")  # a rollback: Triton's `latest` would keep serving 3
        zoo_cli("deploy", "triton", "resnet50@prod", "--to", str(out))
        assert list(_parse(out / "resnet50" / "config.pbtxt").version_policy.specific.versions) == [1]
        assert "asked as resnet50@prod" in (out / "resnet50" / "config.pbtxt").read_text()
    finally:
        zoo_cli("alias", "resnet50@1", "prod")


def test_gpu_tensorrt_fp16_and_int8_settings(deploy_store, tmp_path):
    zoo_cli = cli_on(deploy_store)
    out = tmp_path / "models"
    zoo_cli("deploy", "triton", "alexnet@1", "resnet50@3", "--to", str(out), "--kind", "gpu", "--instances", "2",
            "--trt-fp16", "--preferred-batch-size", "4", "--preferred-batch-size", "8", "--max-batch-size", "16")
    config = _parse(out / "alexnet" / "config.pbtxt")
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU and config.instance_group[0].count == 2
    assert config.max_batch_size == 16 and list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    trt = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == "FP16"
    int8 = _parse(out / "resnet50" / "config.pbtxt").optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert int8.parameters["precision_mode"] == "INT8"  # a QDQ graph runs on TensorRT's int8 kernels
    result = zoo_cli("deploy", "triton", "alexnet@1", "--to", str(tmp_path / "cpu"), "--trt-fp16", code=2)
    assert "--kind gpu" in result.stderr and not (tmp_path / "cpu").exists()


def test_batch_axis_rules(tmp_path):
    """A fixed first axis cannot be batched (max_batch_size 0 keeps it in dims); other symbolic axes are -1."""
    import onnx

    store = tmp_path / "store"
    zoo_cli = cli_on(store)
    fixed = make_tiny_onnx(tmp_path / "fixed.onnx")
    proto = onnx.load(str(fixed))
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(proto, str(fixed))
    zoo_cli("register", str(fixed), "--name", "fixed")
    zoo_cli("register", str(tiny_cnn(tmp_path / "any.onnx", size=None)), "--name", "anysize")
    result = zoo_cli("deploy", "triton", "fixed", "--to", str(tmp_path / "m"), code=2)
    assert "--max-batch-size 0" in result.stderr and not (tmp_path / "m").exists()
    zoo_cli("deploy", "triton", "fixed", "anysize", "--to", str(tmp_path / "m"), "--max-batch-size", "0")
    config = _parse(tmp_path / "m" / "fixed" / "config.pbtxt")
    assert config.max_batch_size == 0 and list(config.input[0].dims) == _onnx_dims(tmp_path / "m/fixed/1/model.onnx", "input")
    assert not config.HasField("dynamic_batching") and not (tmp_path / "m" / "fixed" / "labels.txt").exists()
    zoo_cli("deploy", "triton", "anysize", "--to", str(tmp_path / "b"))
    assert list(_parse(tmp_path / "b" / "anysize" / "config.pbtxt").input[0].dims) == [3, -1, -1]


def test_versions_that_cannot_share_a_config_are_refused(tmp_path):
    zoo_cli = cli_on(tmp_path / "store")
    zoo_cli("register", str(tiny_cnn(tmp_path / "a.onnx", size=16)), "--name", "m")
    zoo_cli("register", str(tiny_cnn(tmp_path / "b.onnx", size=32)), "--name", "m")
    result = zoo_cli("deploy", "triton", "m@1", "m@2", "--to", str(tmp_path / "out"), code=2)
    assert "share a signature" in result.stderr and not (tmp_path / "out").exists()


def test_external_data_goes_beside_the_model(tmp_path):
    import onnxruntime as ort

    zoo_cli = cli_on(tmp_path / "store")
    zoo_cli("register", str(make_tiny_onnx(tmp_path / "x" / "model.onnx", external_data=True)), "--name", "ext")
    zoo_cli("deploy", "triton", "ext", "--to", str(tmp_path / "out"))
    folder = tmp_path / "out" / "ext" / "1"
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model.onnx.data"]
    ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])  # loads by path, as Triton's backend


KILL_MID_COPY = """
import os, signal, sys
import zoo.deploy._targets as targets
from zoo.cli import main

def half_then_die(src, dst, expected):
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        fout.write(fin.read(expected.size // 2))
    os.kill(os.getpid(), signal.SIGKILL)

targets._copy_checked = half_then_die
main(sys.argv[1:])
"""


def test_a_deploy_killed_mid_copy_leaves_the_previous_repository_loadable(tmp_path):
    import onnxruntime as ort

    store, out = tmp_path / "store", tmp_path / "models"
    zoo_cli = cli_on(store)
    zoo_cli("register", str(tiny_cnn(tmp_path / "a.onnx", size=16, seed=1)), "--name", "m")
    zoo_cli("register", str(tiny_cnn(tmp_path / "b.onnx", size=16, seed=2)), "--name", "m")
    zoo_cli("deploy", "triton", "m@1", "--to", str(out))
    config_before = (out / "m" / "config.pbtxt").read_bytes()
    proc = subprocess.run([PYTHON, "-c", KILL_MID_COPY, "--store", str(store), "deploy", "triton", "m@1", "m@2", "--to", str(out)],
                          env=subprocess_env(), capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (out / "m" / "config.pbtxt").read_bytes() == config_before  # still serves exactly version 1
    assert not (out / "m" / "2").exists()  # the half-copied version is not where Triton looks
    leftovers = [p.name for p in (out / "m").iterdir() if p.name.startswith(".zoo-staging-")]
    assert len(leftovers) == 1
    ort.InferenceSession(str(out / "m" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert list(_parse(out / "m" / "config.pbtxt").version_policy.specific.versions) == [1]

    zoo_cli("deploy", "triton", "m@1", "m@2", "--to", str(out))  # the next run completes and removes the leftover
    assert sorted(p.name for p in (out / "m").iterdir()) == ["1", "2", "config.pbtxt"]
    assert list(_parse(out / "m" / "config.pbtxt").version_policy.specific.versions) == [1, 2]


def test_different_bytes_under_a_version_number_are_replaced_whole(tmp_path):
    store, out = tmp_path / "store", tmp_path / "models"
    zoo_cli = cli_on(store)
    zoo_cli("register", str(tiny_cnn(tmp_path / "a.onnx", size=16)), "--name", "m")
    zoo_cli("deploy", "triton", "m", "--to", str(out))
    model = out / "m" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10])  # someone truncated it
    result = zoo_cli("deploy", "triton", "m", "--to", str(out), "--json")
    assert '"status": "replaced"' in result.stdout
    import zoo

    assert hashlib.sha256(model.read_bytes()).hexdigest() == zoo.open_registry(store).resolve("m@1").sha256


def test_deploy_reads_the_verified_bytes_from_either_store(store, backend, tmp_path):
    """The embedded store and the shared one (PostgreSQL + S3, through its local cache) deploy the same bytes."""
    from zoo.deploy import deploy_triton

    version = store.register(tiny_cnn(tmp_path / "a.onnx", size=16), name="m", meta=_meta(classes=10)).version
    result = deploy_triton(store, ["m"], str(tmp_path / "out"))
    assert [v.status for v in result.versions] == ["written"] and result.versions[0].sha256 == version.sha256
    assert hashlib.sha256((tmp_path / "out/m/1/model.onnx").read_bytes()).hexdigest() == version.sha256
    assert (tmp_path / "out/m/labels.txt").read_text().splitlines() == list(version.labels.classes)
    assert not deploy_triton(store, ["m"], str(tmp_path / "out")).changed


@pytest.fixture
def s3_target(shared_services):
    import uuid

    return f"{shared_services.s3_url.rstrip('/')}/deploy-{uuid.uuid4().hex[:8]}"


def _objects(url: str) -> dict[str, tuple[str, object]]:
    from zoo.store._s3io import make_client
    from zoo.store.location import parse_artifacts

    where, client = parse_artifacts(url), make_client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=where.prefix + "/"):
        for o in page.get("Contents", []):
            found[o["Key"][len(where.prefix) + 1:]] = (o["ETag"], o["LastModified"])
    return found


def test_a_repository_on_s3(deploy_store, s3_target, monkeypatch):
    """Objects are the versions' bytes, config.pbtxt goes last, and a repeated deploy writes nothing."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    import zoo
    from zoo.deploy import _targets
    from zoo.store._s3io import make_client
    from zoo.store.location import parse_artifacts

    order: list[str] = []
    upload, put = _targets.S3Target.write_version, _targets.S3Target.write
    monkeypatch.setattr(_targets.S3Target, "write_version",
                        lambda self, folder, files, step: order.append(folder) or upload(self, folder, files, step))
    monkeypatch.setattr(_targets.S3Target, "write", lambda self, rel, data: order.append(rel) or put(self, rel, data))
    zoo_cli = cli_on(deploy_store)
    zoo_cli("deploy", "triton", "resnet50@1", "resnet50@2", "--to", s3_target)
    assert order == ["resnet50/1", "resnet50/2", "resnet50/labels.txt", "resnet50/config.pbtxt"]
    objects = _objects(s3_target)
    assert sorted(objects) == ["resnet50/1/model.onnx", "resnet50/2/model.onnx", "resnet50/config.pbtxt", "resnet50/labels.txt"]
    where, client = parse_artifacts(s3_target), make_client()
    registry = zoo.open_registry(deploy_store)
    for n in (1, 2):
        body = client.get_object(Bucket=where.bucket, Key=f"{where.prefix}/resnet50/{n}/model.onnx")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == registry.resolve(f"resnet50@{n}").sha256
    text = client.get_object(Bucket=where.bucket, Key=f"{where.prefix}/resnet50/config.pbtxt")["Body"].read().decode()
    assert list(text_format.Parse(text, model_config_pb2.ModelConfig()).version_policy.specific.versions) == [1, 2]

    order.clear()
    zoo_cli("deploy", "triton", "resnet50@1", "resnet50@2", "--to", s3_target)
    assert order == [] and _objects(s3_target) == objects


def test_an_s3_deploy_cut_off_keeps_serving_the_previous_config(deploy_store, s3_target, monkeypatch):
    from zoo.deploy import _targets

    zoo_cli = cli_on(deploy_store)
    zoo_cli("deploy", "triton", "resnet50@1", "--to", s3_target)
    before = _objects(s3_target)

    def cut(self, folder, files, step):
        raise KeyboardInterrupt  # the process stops mid-upload

    monkeypatch.setattr(_targets.S3Target, "write_version", cut)
    import zoo
    from zoo.deploy import deploy_triton

    with pytest.raises(KeyboardInterrupt):
        deploy_triton(zoo.open_registry(deploy_store), ["resnet50@1", "resnet50@2"], s3_target)
    assert _objects(s3_target) == before  # the config still names version 1 only


def test_deploy_writes_nothing_before_every_config_checks(tmp_path, deploy_store):
    result = cli_on(deploy_store)("deploy", "triton", "resnet50@1", "nosuchmodel", "--to", str(tmp_path / "out"), code=3)
    assert "nosuchmodel" in result.stderr and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------- full size

@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_real_exports_of_every_architecture(arch, tmp_path):
    """The PyTorch plugin's export of each architecture (64 px, 10 classes), deployed and run from the repository."""
    import onnxruntime as ort

    store, out = tmp_path / "store", tmp_path / "models"
    zoo_cli = cli_on(store)
    zoo_cli("export", arch, "--framework", "torch", "--input-size", str(SIZE), "--num-classes", "10")
    zoo_cli("deploy", "triton", arch, "--to", str(out))
    model = out / arch / "1" / "model.onnx"
    config = _parse(out / arch / "config.pbtxt")
    assert list(config.input[0].dims) == _onnx_dims(model, "input")[1:] == [3, SIZE, SIZE]
    batch = np.random.default_rng(0).standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)
    np.save(tmp_path / "b.npy", batch)
    zoo_cli("run", arch, "--input", str(tmp_path / "b.npy"), "--output", str(tmp_path / "o.npy"))
    served = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"images": batch})[0]
    np.testing.assert_array_equal(served, np.load(tmp_path / "o.npy"))

