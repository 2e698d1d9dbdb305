"""``zoo deploy kserve``: a KServe ``InferenceService`` (serving.kserve.io/v1beta1) for one exact version.

Two runtimes:

- ``triton`` (default): ``predictor.model`` with ``modelFormat: triton``, ``runtime: kserve-tritonserver``,
  ``protocolVersion: v2`` and ``storageUri`` = a repository ``zoo deploy triton REF --to URI`` wrote
  (its config pins the version); Triton is told to load only this model.
- ``zoo``: a custom predictor container running ``zoo serve NAME@sha256:<digest> --host 0.0.0.0
  --http-port 8080 --grpc-port 8081`` on a folder store that KServe's storage initializer downloads from ``storageUri``
  (``STORAGE_URI`` -> ``/mnt/models``); the content pin makes any other bytes fail to load.

Invariant: every manifest validates against KServe's own InferenceService CRD schema (vendored from
kserve/kserve, see the schema file's ``$comment``) with strict field validation (no field the schema
does not define, as ``kubectl apply --validate=strict`` checks), and carries the version's sha256,
reference and store in its annotations.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import InvalidInput, PluginUnavailable
from ..records import ModelVersion

__all__ = ["ANNOTATION_PREFIX", "KServeOptions", "check_manifest", "kserve_manifest", "to_yaml"]

ANNOTATION_PREFIX = "zoo.registry"
SCHEMA_FILE = "kserve-inferenceservice-v1beta1.schema.json"
HTTP_PORT, GRPC_PORT = 8080, 8081
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUANTITY = re.compile(r"(\d+(\.\d+)?|\.\d+)([KMGTPE]i|[numkMGTPE])?")


@dataclass(frozen=True)
class KServeOptions:
    storage_uri: str
    runtime: str = "triton"  # "triton" or "zoo"
    name: str | None = None  # the InferenceService's name (default: from the model name)
    namespace: str | None = None
    image: str = "zoo-serve:latest"  # the zoo runtime's container image (the repository's Containerfile)
    min_replicas: int = 1
    max_replicas: int = 3
    scale_metric: str = "concurrency"
    scale_target: int = 8
    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0

    def check(self) -> None:
        if self.runtime not in ("triton", "zoo"):
            raise InvalidInput(f"Expected --runtime triton or zoo. Received: {self.runtime!r}")
        if not re.fullmatch(r"(s3|gs|pvc|https?|hdfs|webhdfs|oci|hf)://\S+", self.storage_uri):
            raise InvalidInput(f"Expected a storage URI KServe's storage initializer reads (s3://, gs://, pvc://, https://). "
                               f"Received: {self.storage_uri!r}", hint="e.g. --storage-uri s3://models/triton")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise InvalidInput(f"Expected 0 <= --min-replicas <= --max-replicas, and --max-replicas >= 1. "
                               f"Received: {self.min_replicas} and {self.max_replicas}", hint="e.g. --min-replicas 1 --max-replicas 3")
        if self.scale_metric not in ("concurrency", "rps", "cpu", "memory"):
            raise InvalidInput(f"Expected --scale-metric concurrency, rps, cpu or memory. Received: {self.scale_metric!r}")
        if self.scale_target < 1:
            raise InvalidInput(f"Expected --scale-target >= 1. Received: {self.scale_target}")
        for flag, value in (("--cpu", self.cpu), ("--memory", self.memory)):
            if not _QUANTITY.fullmatch(value):
                raise InvalidInput(f"Expected {flag} as a Kubernetes quantity (e.g. 500m, 2, 4Gi). Received: {value!r}")
        if self.gpus < 0:
            raise InvalidInput(f"Expected --gpus >= 0. Received: {self.gpus}")
        if self.name is not None and not (_DNS1035.fullmatch(self.name) and len(self.name) <= 63):
            raise InvalidInput(f"Expected --name as a DNS-1035 label ([a-z]([-a-z0-9]*[a-z0-9])?, at most 63). "
                               f"Received: {self.name!r}", hint="e.g. --name resnet50-prod")


def service_name(model: str) -> str:
    """A DNS-1035 label from a registry model name (``resnet_50.v2`` -> ``resnet-50-v2``; a leading digit gets ``m-``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}".rstrip("-")
    return name[:63].rstrip("-")


def _resources(options: KServeOptions) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": options.cpu, "memory": options.memory}
    limits: dict[str, Any] = dict(requests)
    if options.gpus:
        limits["nvidia.com/gpu"] = str(options.gpus)
    return {"requests": requests, "limits": limits}


def kserve_manifest(version: ModelVersion, ref: str, options: KServeOptions, *, store: str | None = None) -> dict[str, Any]:
    """The InferenceService for ``version`` (asked for as ``ref``), checked against KServe's CRD schema."""
    options.check()
    name = options.name or service_name(version.name)
    annotations = {
        f"{ANNOTATION_PREFIX}/ref": ref,
        f"{ANNOTATION_PREFIX}/version": version.ref,
        f"{ANNOTATION_PREFIX}/sha256": version.sha256,
        f"{ANNOTATION_PREFIX}/files": json.dumps([[f.relpath, f.sha256] for f in version.files], separators=(",", ":")),
    }
    if store:
        annotations[f"{ANNOTATION_PREFIX}/store"] = store
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "zoo", f"{ANNOTATION_PREFIX}/model": service_name(version.name),
                   f"{ANNOTATION_PREFIX}/version": str(version.version)},
        "annotations": annotations,
    }
    if options.namespace:
        metadata["namespace"] = options.namespace
    predictor: dict[str, Any] = {
        "minReplicas": options.min_replicas, "maxReplicas": options.max_replicas,
        "scaleMetric": options.scale_metric, "scaleTarget": options.scale_target,
    }
    if options.runtime == "triton":
        predictor["model"] = {
            "modelFormat": {"name": "triton"},
            "runtime": "kserve-tritonserver",
            "protocolVersion": "v2",
            "storageUri": options.storage_uri,
            "args": ["--model-control-mode=explicit", f"--load-model={version.name}", "--strict-model-config=true"],
            "resources": _resources(options),
        }
    else:
        probe = {"httpGet": {"path": "/v2/health/ready", "port": HTTP_PORT}, "periodSeconds": 10}
        predictor["containers"] = [{
            "name": "kserve-container",
            "image": options.image,
            "args": ["serve", f"{version.name}@sha256:{version.sha256}", "--host", "0.0.0.0",
                     "--http-port", str(HTTP_PORT), "--grpc-port", str(GRPC_PORT)],
            "env": [{"name": "STORAGE_URI", "value": options.storage_uri}, {"name": "ZOO_STORE", "value": "/mnt/models"}],
            "ports": [{"containerPort": HTTP_PORT, "name": "http1", "protocol": "TCP"}],
            "readinessProbe": probe,
            "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": HTTP_PORT}, "periodSeconds": 10},
            "resources": _resources(options),
        }]
    manifest = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": metadata,
                "spec": {"predictor": predictor}}
    check_manifest(manifest)
    return manifest


@cache
def schema() -> dict[str, Any]:
    """KServe's InferenceService v1beta1 openAPIV3Schema (vendored; its ``$comment`` names the source commit)."""
    return json.loads(resources.files("zoo.deploy").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def _unknown_fields(value: Any, node: dict[str, Any], path: str) -> list[str]:
    """Fields the schema does not define (the API server prunes them silently; kubectl --validate=strict refuses them)."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict) and "properties" in node:
        for key, item in value.items():
            if key in node["properties"]:
                found += _unknown_fields(item, node["properties"][key], f"{path}.{key}")
            elif not isinstance(node.get("additionalProperties"), dict):
                found.append(f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        for key, item in value.items():
            found += _unknown_fields(item, node["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            found += _unknown_fields(item, node["items"], f"{path}[{i}]")
    return found


def check_manifest(manifest: dict[str, Any]) -> None:
    """Validate against KServe's CRD schema (jsonschema), strict fields, and the Kubernetes name rule.
    A failure is a bug in this module (RuntimeError, exit 70) unless the name came from the user."""
    try:
        import jsonschema
    except ImportError as exc:
        raise PluginUnavailable(f"Cannot check the manifest against KServe's schema: {exc}",
                                hint="pip install 'zoo-registry[deploy]' (jsonschema)") from None
    errors = sorted(jsonschema.Draft7Validator(schema()).iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path))
        raise RuntimeError(f"The InferenceService does not validate against KServe's schema at {where}: {errors[0].message}")
    unknown = _unknown_fields(manifest, schema(), "")
    if unknown:
        raise RuntimeError(f"The InferenceService has fields KServe's schema does not define: {', '.join(unknown)}")
    name = manifest["metadata"]["name"]
    if not (_DNS1035.fullmatch(name) and len(name) <= 63):
        raise InvalidInput(f"Expected an InferenceService name that is a DNS-1035 label. Received: {name!r}",
                           hint="give one with --name, e.g. --name resnet50-prod")


def to_yaml(manifest: dict[str, Any]) -> str:
    try:
        import yaml
    except ImportError as exc:
        raise PluginUnavailable(f"Cannot write YAML: {exc}", hint="pip install 'zoo-registry[deploy]' (PyYAML)") from None
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, width=1000)
