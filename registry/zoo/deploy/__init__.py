"""Deploy registry versions on the serving engines teams already run: Triton and KServe.

    from zoo.deploy import TritonOptions, deploy_triton, kserve_manifest, KServeOptions
    deploy_triton(registry, ["resnet50@prod"], "s3://models/triton", TritonOptions(kind="gpu", trt_fp16=True))
    kserve_manifest(registry.resolve("resnet50@prod"), "resnet50@prod", KServeOptions(storage_uri="s3://models/triton"))

:mod:`.triton` writes model repositories (each ``config.pbtxt`` checked with Triton's own
``ModelConfig`` protobuf); :mod:`.kserve` writes InferenceService manifests (checked against KServe's
CRD schema). Importing this package imports neither onnx, tritonclient nor boto3.
"""
from __future__ import annotations

from ._config import TritonOptions, build_config, check_config
from .kserve import KServeOptions, check_manifest, kserve_manifest, to_yaml
from .triton import DeployedModel, DeployedVersion, TritonDeployment, deploy_triton

__all__ = [
    "DeployedModel", "DeployedVersion", "KServeOptions", "TritonDeployment", "TritonOptions", "build_config",
    "check_config", "check_manifest", "deploy_triton", "kserve_manifest", "to_yaml",
]
