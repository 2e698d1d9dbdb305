"""Checkpoints into the registry: load into every framework, export, verify, register with provenance.

Two ways in: a file (``zoo weights import ARCH FILE``) and a catalog entry (``zoo weights import
ARCH --from torchvision:IMAGENET1K_V2``: downloaded, hash-checked and cached first). Both fit the
state against the *inference* graph (GoogLeNet without auxiliary heads: a checkpoint's ``aux1.*`` /
``aux2.*`` tensors are dropped, as torchvision's own builder drops them), so the parameter counts
recorded are those of the artifact. Nothing is registered unless the state fits.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput
from ..plugins import DEFAULT_OPSET, FrameworkPlugin
from . import catalog as _catalog
from ._download import Progress as DownloadProgress
from ._download import fetch, source_url
from ._files import load_weights
from ._fit import AUX_PREFIXES, check_state, expected_shapes, infer_num_classes, weight_mismatches

if TYPE_CHECKING:
    from .._exporting import ExportResult
    from .._registry import Registry

StepProgress = Callable[[str, str], None]  # (plugin name, stage: build/export/verify/register)


@dataclass(frozen=True)
class ImportPlan:
    """A state checked against ``arch``: what each plugin builds and loads."""

    arch: str
    state: dict[str, np.ndarray]
    num_classes: int
    build_options: dict[str, Any]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PretrainedImport:
    """What ``import_pretrained`` did: the catalog entry, the cached file, and one result per framework."""

    entry: _catalog.CatalogEntry
    path: Path
    sha256: str
    results: list[ExportResult]
    notes: tuple[str, ...] = field(default=())


def plan_import(plugin: FrameworkPlugin, arch: str, state: Mapping[str, np.ndarray], *, num_classes: int | None = None,
                build_options: Mapping[str, Any] | None = None, source: str = "The weights") -> ImportPlan:
    """Fit ``state`` to the inference graph of ``arch`` as ``plugin`` builds it; InvalidWeights lists every misfit.

    ``num_classes=None`` reads the class count from the classifier's shape. ``build_options`` (e.g.
    GoogLeNet's ``transform_input`` for torchvision's weights) are added to the inference options.
    """
    from ..plugins import inference_options

    options = {**inference_options(plugin, arch), **dict(build_options or {})}
    assumed = num_classes or 1000
    expected = expected_shapes(plugin, arch, num_classes=assumed, **options)
    notes: list[str] = []
    kept = dict(state)
    if not any(k.startswith(AUX_PREFIXES) for k in expected):
        dropped = [k for k in kept if k.startswith(AUX_PREFIXES)]
        for k in dropped:
            del kept[k]
        if dropped:
            notes.append(f"ignored {len(dropped)} auxiliary-head tensors (aux1.*, aux2.*): the inference graph has none")
    if num_classes is None:
        found = infer_num_classes(kept, expected, assumed=assumed)
        if found is not None and found != assumed:
            assumed = found
            expected = expected_shapes(plugin, arch, num_classes=found, **options)
            notes.append(f"{found} classes (from the classifier's shape)")
    misshaped = {m.split(":", 1)[0] for m in weight_mismatches(kept, expected)[2]}
    classifier = {k for k, shape in expected.items() if shape and shape[0] == assumed}
    # name the class count only when the classifier is what does not fit (a wrong conv1 is not "1000 classes")
    check_state(kept, expected, source=source, what=f"{arch} with {assumed} classes" if misshaped & classifier else arch)
    return ImportPlan(arch=arch, state=kept, num_classes=assumed, build_options=options, notes=tuple(notes))


# Build options a checkpoint file does not state but its numbers depend on: a file import must choose.
EXPLICIT_OPTIONS = {
    "googlenet": ("transform_input", "--transform-input", "--no-transform-input",
                  "torchvision's pretrained GoogLeNet (IMAGENET1K_V1, googlenet-1378be20.pth) runs with "
                  "transform_input=True (it re-normalises ImageNet-normalised input to the [-1, 1] range it was "
                  "trained on); a GoogLeNet trained from torchvision's default constructor has it off"),
}


def check_explicit_options(arch: str, build_options: Mapping[str, Any] | None) -> None:
    """A checkpoint of an architecture in :data:`EXPLICIT_OPTIONS` must say the option (InvalidInput otherwise)."""
    if arch not in EXPLICIT_OPTIONS:
        return
    key, on, off, why = EXPLICIT_OPTIONS[arch]
    value = (build_options or {}).get(key)
    if not isinstance(value, bool):
        raise InvalidInput(f"Expected {on} or {off} for a {arch} checkpoint file (build option {key}). Received: "
                           + ("neither" if value is None else repr(value)),
                           hint=f"{why}: the file does not say which, and the wrong choice changes every output. "
                                f"torchvision's file: {on}; or import it with --from torchvision:IMAGENET1K_V1")


def import_weights(
    registry: Registry,
    plugins: Sequence[FrameworkPlugin],
    arch: str,
    state: Mapping[str, np.ndarray],
    *,
    weights_sha256: str,
    source: str = "The weights",
    name: str | None = None,
    num_classes: int | None = None,
    opset: int = DEFAULT_OPSET,
    input_size: int = 224,
    tags: Mapping[str, str] | None = None,
    build_options: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    progress: StepProgress | None = None,
    notes: Callable[[str], None] | None = None,
    rtol: float | None = None,
    transform: Any = None,
) -> list[ExportResult]:
    """Load ``state`` into each plugin's build of ``arch``, export, verify and register; one result per plugin.

    The state is checked once, before anything is built for export; each version records
    ``weights_sha256`` (and ``provenance``, e.g. the catalog entry it came from).
    """
    from .._exporting import export_and_register

    check_explicit_options(arch, build_options)
    plan = plan_import(plugins[0], arch, state, num_classes=num_classes, build_options=build_options, source=source)
    for note in plan.notes:
        (notes or (lambda _n: None))(note)
    results = []
    for plugin in plugins:
        step = partial(progress, plugin.name) if progress is not None else None
        results.append(export_and_register(
            registry, plugin, arch, name=name, num_classes=plan.num_classes, opset=opset, input_size=input_size,
            state=plan.state, weights_sha256=weights_sha256, build_options=plan.build_options, tags=tags,
            provenance=provenance, progress=step, rtol=rtol, transform=transform,
        ))
    return results


def import_pretrained(
    registry: Registry,
    arch: str,
    source: str,
    *,
    frameworks: str | Sequence[str] | None = "all",
    catalogs: Sequence[str | Path] = (),
    name: str | None = None,
    opset: int = DEFAULT_OPSET,
    input_size: int | None = None,
    tags: Mapping[str, str] | None = None,
    cache: Path | None = None,
    download_progress: DownloadProgress | None = None,
    progress: StepProgress | None = None,
    notes: Callable[[str], None] | None = None,
    rtol: float | None = None,
) -> PretrainedImport:
    """Import the catalog entry ``source`` (``torchvision:IMAGENET1K_V1``) of ``arch`` into every framework.

    The checkpoint is fetched into the cache (verified against the published sha256), read with
    the safe readers, and registered as :func:`import_weights` does, with the entry's source, URL,
    hash, published accuracy, transform and labels id under ``provenance["pretrained"]``.
    ``input_size`` defaults to the entry's crop size.
    """
    from ..plugins import resolve_frameworks

    entry = _catalog.lookup(source, arch=arch, catalogs=catalogs)
    plugins = resolve_frameworks(frameworks, arch=arch)  # fail before a download, not after
    path = fetch(entry.url, sha256=entry.sha256, cache=cache, progress=download_progress)
    state, sha = load_weights(path)
    collected: list[str] = []

    def note(text: str) -> None:
        collected.append(text)
        if notes is not None:
            notes(text)

    chosen = _catalog.catalog_transform(entry.transform)  # the version's transform is the published one
    crop = chosen.crop[0] if chosen.crop is not None else None
    if input_size is not None and crop is not None and input_size != crop:
        from dataclasses import replace

        resize = None if chosen.resize is None else max(1, round(chosen.resize * input_size / crop))
        chosen = replace(chosen, resize=resize, crop=(input_size, input_size))  # verified at the size asked for
    results = import_weights(
        registry, plugins, arch, state, weights_sha256=sha, source=f"{entry.name} ({path.name})", name=name,
        num_classes=entry.num_classes, opset=opset, input_size=input_size or (int(crop) if crop else 224), tags=tags,
        build_options=entry.build_options, provenance={"pretrained": entry.provenance(downloaded_from=source_url(entry.url))},
        progress=progress, notes=note, rtol=rtol, transform=chosen,
    )
    return PretrainedImport(entry=entry, path=path, sha256=sha, results=results, notes=tuple(collected))
