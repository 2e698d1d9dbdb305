"""``zoo deploy triton``: registry versions -> a Triton model repository (a folder or ``s3://bucket/prefix``).

Layout (Triton's model repository, ONNX Runtime backend)::

    <repository>/<name>/config.pbtxt         written last; its version_policy names exactly the deployed versions
    <repository>/<name>/labels.txt           the version's class names, the output's label_filename
    <repository>/<name>/<N>/model.onnx       the verified artifact of <name>@<N> (registry numbers are Triton's)
    <repository>/<name>/<N>/<external data>  beside it, when the artifact has any

Invariants: every config is built and checked against Triton's ``ModelConfig`` before a byte is
written; every copied file is checked against its recorded sha256; a version folder is never seen
half-written (:mod:`._targets`); a re-run writes only what differs (a repeated run writes nothing).
An alias or a bare name is resolved once, at deploy time, and pinned as a ``specific`` version
policy: Triton's ``latest`` would serve the highest folder in the repository, which is wrong after
a rollback moves an alias to a lower version. Version folders of earlier runs stay on disk, unserved.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ..records import ModelVersion, Record, StoredFile
from ._config import LABELS_FILE, TritonOptions, build_config, check_config, labels_text
from ._targets import open_target

if TYPE_CHECKING:
    from .._registry import Registry

__all__ = ["DeployedModel", "DeployedVersion", "TritonDeployment", "deploy_triton", "plan_configs"]

CONFIG_FILE = "config.pbtxt"
MODEL_FILE = "model.onnx"


@dataclass(frozen=True)
class DeployedVersion(Record):
    model: str
    version: int
    refs: tuple[str, ...]  # the references that asked for it (resnet50@prod, resnet50@3)
    sha256: str
    files: tuple[str, ...]  # repository-relative paths
    status: str  # "written", "unchanged", "replaced" (other bytes were under this number)


@dataclass(frozen=True)
class DeployedModel(Record):
    name: str
    versions: tuple[int, ...]  # the config's specific version policy
    config: str  # "written" or "unchanged"
    labels: str  # "written", "unchanged" or "none"
    max_batch_size: int


@dataclass(frozen=True)
class TritonDeployment(Record):
    repository: str
    models: tuple[DeployedModel, ...]
    versions: tuple[DeployedVersion, ...]
    checked_with: str  # the schema each config.pbtxt was parsed with

    @property
    def changed(self) -> bool:
        return any(v.status != "unchanged" for v in self.versions) or \
            any(m.config != "unchanged" or m.labels == "written" for m in self.models)


@dataclass(frozen=True)
class _Plan:
    name: str
    versions: tuple[ModelVersion, ...]
    refs: dict[int, tuple[str, ...]]
    config: str
    labels: bytes | None
    max_batch_size: int


def _files(version: ModelVersion) -> tuple[StoredFile, ...]:
    return version.files or (StoredFile(MODEL_FILE, version.sha256, version.size_bytes),)


def plan_configs(registry: "Registry", refs: Sequence[str], options: TritonOptions) -> list[_Plan]:
    """Resolve ``refs``, group them by model, and build and check each model's config (writes nothing)."""
    if not refs:
        raise InvalidInput("Expected at least one reference. Received: none", hint="e.g. zoo deploy triton resnet50@prod --to ./models")
    options.check()
    groups: dict[str, dict[int, tuple[ModelVersion, list[str]]]] = {}
    for ref in refs:
        version = registry.resolve(ref)
        entry = groups.setdefault(version.name, {}).setdefault(version.version, (version, []))
        if ref not in entry[1]:
            entry[1].append(ref)
    plans = []
    for name, by_number in groups.items():
        versions = tuple(v for v, _ in sorted(by_number.values(), key=lambda e: e[0].version))
        asked = {n: tuple(r) for n, (_, r) in by_number.items()}
        header = ["written by `zoo deploy triton`; re-run it to change this file (edits are overwritten)"]
        header += [f"version {v.version}: {v.ref} (asked as {', '.join(asked[v.version])}) sha256 {v.sha256}" for v in versions]
        text = build_config(name, versions, options, header=header)
        config = check_config(text, versions)
        plans.append(_Plan(name, versions, asked, text, labels_text(versions[0]), int(config.max_batch_size)))  # type: ignore[attr-defined]
    return plans


def deploy_triton(registry: "Registry", refs: Sequence[str], to: str, options: TritonOptions | None = None, *,
                  step: Callable[[str], None] | None = None) -> TritonDeployment:
    """Write (or bring up to date) the Triton model repository at ``to`` for ``refs``; see the module docstring."""
    options = options or TritonOptions()
    say = step or (lambda _msg: None)
    plans = plan_configs(registry, refs, options)
    target = open_target(to)
    models, deployed = [], []
    for plan in plans:
        target.cleanup(plan.name)
        for version in plan.versions:
            folder = f"{plan.name}/{version.version}"
            files = _files(version)
            status = "unchanged"
            if not target.same_files(folder, files):
                model_path = registry.path(version)  # verifies the stored bytes' sha256
                sources = [(model_path.parent / f.relpath if f.relpath != MODEL_FILE else model_path, f) for f in files]
                status = "replaced" if target.write_version(folder, sources, say) else "written"
            say(f"{plan.name}/{version.version}: {version.ref} {status}")
            deployed.append(DeployedVersion(plan.name, version.version, plan.refs[version.version], version.sha256,
                                            tuple(f"{folder}/{f.relpath}" for f in files), status))
        labels = "none"
        if plan.labels is not None:
            labels = "unchanged"
            if target.read(f"{plan.name}/{LABELS_FILE}") != plan.labels:
                target.write(f"{plan.name}/{LABELS_FILE}", plan.labels)
                labels = "written"
        config = "unchanged"
        if target.read(f"{plan.name}/{CONFIG_FILE}") != plan.config.encode():
            target.write(f"{plan.name}/{CONFIG_FILE}", plan.config.encode())  # last: it names the versions to serve
            config = "written"
        models.append(DeployedModel(plan.name, tuple(v.version for v in plan.versions), config, labels, plan.max_batch_size))
    return TritonDeployment(target.location, tuple(models), tuple(deployed), _checked_with())


def _checked_with() -> str:
    try:
        from importlib.metadata import version

        return f"tritonclient {version('tritonclient')} model_config_pb2.ModelConfig"
    except Exception:
        return "tritonclient model_config_pb2.ModelConfig"


def version_folder(repository: str | Path, name: str, number: int) -> Path:
    """The local folder of ``name`` version ``number`` in a repository written to a folder."""
    return Path(repository) / name / str(number)
