"""`zoo deploy kserve`: InferenceService manifests validated against KServe's own CRD schema (vendored from
kserve/kserve; the `kserve` package pins psutil<6 and would downgrade this environment), strictly (no field the
schema lacks), pinned to the version's sha256."""
from __future__ import annotations

import json

import click
import pytest

from conftest import cli_on
from onnx_models import tiny_cnn


@pytest.fixture(scope="module")
def kserve_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("kserve")
    zoo_cli = cli_on(root / "store")
    for seed in (1, 2):
        zoo_cli("register", str(tiny_cnn(root / f"{seed}.onnx", size=16, seed=seed)), "--name", "resnet50")
    zoo_cli("alias", "resnet50@1", "prod")
    return root / "store"


def _validate(manifest: dict) -> None:
    """Independently of zoo.deploy: the vendored CRD schema with jsonschema."""
    import jsonschema

    from zoo.deploy.kserve import schema

    assert "kserve/kserve" in schema()["$comment"] and "aaac4e294dae2c7b1aa1886447793f3aa1c30912" in schema()["$comment"]
    jsonschema.Draft7Validator(schema()).validate(manifest)


@pytest.mark.parametrize("runtime", ["triton", "zoo"])
def test_manifest_serves_the_exact_version(kserve_store, runtime):
    import yaml

    import zoo

    zoo_cli = cli_on(kserve_store)
    version = zoo.open_registry(kserve_store).resolve("resnet50@prod")
    args = ["deploy", "kserve", "resnet50@prod", "--storage-uri", "s3://models/triton", "--runtime", runtime]
    manifest = yaml.safe_load(zoo_cli(*args).stdout)
    assert manifest == json.loads(zoo_cli(*args, "--json").stdout)  # YAML and JSON say the same
    _validate(manifest)
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    notes = manifest["metadata"]["annotations"]
    assert notes["zoo.registry/sha256"] == version.sha256 and notes["zoo.registry/version"] == "resnet50@1"
    predictor = manifest["spec"]["predictor"]
    assert predictor["minReplicas"] == 1 and predictor["maxReplicas"] == 3
    if runtime == "triton":
        model = predictor["model"]
        assert model["protocolVersion"] == "v2" and model["storageUri"] == "s3://models/triton"
        assert "--load-model=resnet50" in model["args"] and model["modelFormat"]["name"] == "triton"
    else:
        container = predictor["containers"][0]
        assert container["args"][:2] == ["serve", f"resnet50@sha256:{version.sha256}"]  # content-pinned
        assert container["args"][container["args"].index("--host") + 1] == "0.0.0.0"
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert {"name": "STORAGE_URI", "value": "s3://models/triton"} in container["env"]


def test_the_zoo_runtime_command_line_parses_with_zoos_cli(kserve_store):
    from zoo.cli import main

    manifest = json.loads(cli_on(kserve_store)("deploy", "kserve", "resnet50", "--storage-uri", "s3://m/s", "--runtime", "zoo",
                                               "--json").stdout)
    argv = manifest["spec"]["predictor"]["containers"][0]["args"]
    parent = click.Context(main, info_name="zoo")
    main.get_command(parent, argv[0]).make_context(argv[0], argv[1:], parent=parent)


def test_resources_and_scaling_options(kserve_store):
    manifest = json.loads(cli_on(kserve_store)(
        "deploy", "kserve", "resnet50@2", "--storage-uri", "gs://b/r", "--gpus", "1", "--cpu", "500m", "--memory", "4Gi",
        "--min-replicas", "0", "--max-replicas", "5", "--scale-metric", "rps", "--scale-target", "50", "--name", "r50-canary",
        "--namespace", "vision", "--json").stdout)
    _validate(manifest)
    limits = manifest["spec"]["predictor"]["model"]["resources"]["limits"]
    assert limits == {"cpu": "500m", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert manifest["metadata"]["name"] == "r50-canary" and manifest["metadata"]["namespace"] == "vision"
    assert manifest["spec"]["predictor"]["scaleMetric"] == "rps" and manifest["spec"]["predictor"]["minReplicas"] == 0


def test_the_schema_check_refuses_what_kubernetes_would(kserve_store):
    """The validator is not vacuous: a wrong type and an unknown (silently pruned) field are both caught."""
    from zoo.deploy import check_manifest

    good = json.loads(cli_on(kserve_store)("deploy", "kserve", "resnet50", "--storage-uri", "s3://m/t", "--json").stdout)
    check_manifest(good)
    wrong_type = json.loads(json.dumps(good))
    wrong_type["spec"]["predictor"]["minReplicas"] = "one"
    with pytest.raises(RuntimeError, match="minReplicas"):
        check_manifest(wrong_type)
    unknown = json.loads(json.dumps(good))
    unknown["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"
    with pytest.raises(RuntimeError, match="storageURI"):
        check_manifest(unknown)


@pytest.mark.parametrize("args,needle", [
    (["--storage-uri", "models/triton"], "storage URI"),
    (["--storage-uri", "s3://m/t", "--name", "Bad_Name"], "DNS-1035"),
    (["--storage-uri", "s3://m/t", "--min-replicas", "4", "--max-replicas", "2"], "--min-replicas"),
    (["--storage-uri", "s3://m/t", "--memory", "lots"], "--memory"),
])
def test_bad_options_are_refused(kserve_store, args, needle):
    result = cli_on(kserve_store)("deploy", "kserve", "resnet50", *args, code=2)
    assert needle in result.stderr


def test_service_names_are_dns_labels():
    from zoo.deploy.kserve import service_name

    assert service_name("resnet_50.v2") == "resnet-50-v2" and service_name("3d-unet") == "m-3d-unet"
