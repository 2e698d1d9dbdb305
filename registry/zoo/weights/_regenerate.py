"""Canonical weights back out of zoo: built for an ARCH, or regenerated for a registered version.

The registry stores ONNX artifacts, not source weights; what a version records is the sha256 of
the weights it was built from and, when zoo made them, the recipe. So weights come back out for
an ARCH (build it with a seed) or for a REF whose weights zoo can *regenerate* from its recorded
recipe, checked against the recorded sha256 where one exists. Versions built from an imported
file record only its sha256 (and, from a catalog, its URL): the file itself is the source.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IntegrityError, InvalidInput, NotFound
from ._files import save_weights
from ._random import random_canonical_weights

if TYPE_CHECKING:
    from .._registry import Registry
    from ..plugins import FrameworkPlugin

CANONICAL_INIT = "zoo-random-canonical"  # the recipe `zoo parity` records (zoo.parity)
INITS = ("native", "canonical")


@dataclass(frozen=True)
class Regenerated:
    """Canonical weights, their header metadata, and the sha256 a version recorded for them (None: nothing to check)."""

    state: dict[str, np.ndarray]
    metadata: dict[str, Any]
    recorded_sha256: str | None = None


def builder(arch: str, framework: str | None = None) -> FrameworkPlugin:
    """The plugin that builds ``arch``: ``framework`` if given, else the first available by priority (the reference)."""
    from ..plugins import by_priority, resolve_frameworks

    return by_priority(resolve_frameworks(framework or "all", arch=arch))[0]


def is_arch(target: str) -> bool:
    """True when ``target`` names an architecture some available plugin builds (not a reference)."""
    from ..plugins import available_plugins

    return "@" not in target and ":" not in target and any(target in p.architectures() for p in available_plugins())


def for_arch(arch: str, *, framework: str | None = None, init: str = "native", seed: int = 0,
             num_classes: int = 1000) -> Regenerated:
    """``init="native"``: the plugin's own seeded init (what ``zoo export ARCH --seed`` registers);
    ``"canonical"``: zoo's framework-neutral random weights (what ``zoo parity`` loads)."""
    if init not in INITS:
        raise InvalidInput(f"Expected init to be one of {', '.join(INITS)}. Received: {init!r}")
    if num_classes < 1:
        raise InvalidInput(f"Expected --num-classes >= 1. Received: {num_classes}")
    plugin = builder(arch, framework)
    if init == "canonical":
        metadata: dict[str, Any] = {"kind": CANONICAL_INIT, "arch": arch, "num_classes": num_classes, "seed": seed}
        return Regenerated(random_canonical_weights(plugin, arch=arch, seed=seed, num_classes=num_classes), metadata)
    model = plugin.build(arch, num_classes=num_classes, seed=seed)
    metadata = {"kind": "native", "arch": arch, "num_classes": num_classes, "seed": seed, "framework": plugin.name,
                "framework_version": plugin.framework_version(), "plugin_version": plugin.version}
    return Regenerated(plugin.state_dict(model), metadata)


def for_ref(registry: Registry, ref: str, *, warn: Callable[[str], None] | None = None) -> Regenerated:
    """The weights version ``ref`` was built from, when zoo made them; NotFound says why not otherwise."""
    from ..plugins import get_plugin

    v = registry.resolve(ref)
    prov: Mapping[str, Any] = v.provenance or {}
    recipe = prov.get("weights_init") or {}
    if recipe.get("kind") == CANONICAL_INIT:
        plugin = builder(recipe["arch"])
        state = random_canonical_weights(plugin, arch=recipe["arch"], seed=int(recipe["seed"]),
                                         num_classes=int(recipe["num_classes"]))
        return Regenerated(state, dict(recipe), prov.get("weights_sha256"))
    if "init_seed" in prov and v.framework and v.arch:
        plugin = get_plugin(v.framework)
        if v.plugin_version and plugin.version != v.plugin_version and warn is not None:
            warn(f"warning: {v.ref} was built by {v.framework} plugin {v.plugin_version}; this is {plugin.version}: "
                 "its seeded init may differ")
        model = plugin.build(v.arch, num_classes=v.num_classes or 1000, seed=int(prov["init_seed"]),
                             **prov.get("build_options", {}))
        metadata = {"kind": "native", "arch": v.arch, "num_classes": v.num_classes or 1000, "seed": int(prov["init_seed"]),
                    "framework": plugin.name, "framework_version": plugin.framework_version(),
                    "plugin_version": plugin.version, "from": v.ref}
        return Regenerated(plugin.state_dict(model), metadata)
    pretrained = prov.get("pretrained") or {}
    if pretrained.get("url"):
        raise NotFound(
            f"{v.ref} was built from {pretrained.get('source')} ({pretrained['url']}), which zoo does not keep in the registry",
            hint="the downloaded checkpoint is in the weights cache (`zoo weights import ARCH --from SOURCE` fetches it again)",
        )
    if prov.get("weights_sha256"):
        raise NotFound(
            f"{v.ref} was built from weights with sha256 {prov['weights_sha256']}, which zoo does not store "
            "(the registry holds ONNX artifacts, not source weights)",
            hint="use the original file (sha256sum identifies it); `zoo weights import` it again to rebuild",
        )
    raise NotFound(f"{v.ref} records no weights zoo can regenerate (no weights_init or init_seed in its provenance)",
                   hint="it was registered from an external ONNX file; zoo cannot extract framework weights from it")


def write_regenerated(weights: Regenerated, output: Path, *, force: bool = False, target: str = "the weights") -> str:
    """Write ``weights`` to ``output`` (refusing to overwrite unless ``force``); return the sha256.

    When the version recorded a sha256 and the regenerated bytes differ, the file is removed and
    IntegrityError raised: regenerated weights are exact or not written at all.
    """
    if os.path.lexists(output) and not force:
        raise InvalidInput(f"Refusing to overwrite {str(output)!r}", hint="pass --force, or choose another -o FILE")
    sha = save_weights(weights.state, output, metadata=weights.metadata)
    if weights.recorded_sha256 is not None and sha != weights.recorded_sha256:
        output.unlink(missing_ok=True)
        raise IntegrityError(
            f"Regenerated weights of {target!r} have sha256 {sha[:12]}, but the version records {weights.recorded_sha256[:12]}",
            hint="the generator or the plugin's layout changed since it was registered; nothing was written",
        )
    return sha


def export_weights(target: str, *, registry: Registry | Callable[[], Registry] | None = None, output: Path | None = None,
                   force: bool = False, framework: str | None = None, init: str = "native", seed: int = 0,
                   num_classes: int = 1000, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write the weights of ARCH or REF ``target`` to ``output`` (default ``./TARGET.safetensors``); return a summary.

    ``registry`` may be a callable that opens it: it is only opened when ``target`` is a reference.
    """
    output = Path(output) if output is not None else Path(f"{target.replace('@', '-').replace(':', '-')}.safetensors")
    from .._atomic import check_destination

    check_destination(output, what="-o")  # an existing folder, a file name: exit 2 before the (possibly long) build
    if os.path.lexists(output) and not force:  # a dangling symlink too: replacing it is overwriting
        raise InvalidInput(f"Refusing to overwrite {str(output)!r}", hint="pass --force, or choose another -o FILE")
    if is_arch(target):
        weights = for_arch(target, framework=framework, init=init, seed=seed, num_classes=num_classes)
    else:
        if registry is None:
            raise InvalidInput(f"{target!r} is not an architecture, and no registry was given to resolve it as a reference")
        weights = for_ref(registry() if callable(registry) else registry, target, warn=warn)
    sha = write_regenerated(weights, output, force=force, target=target)
    return {"path": str(output), "sha256": sha, "tensors": len(weights.state),
            "parameters": int(sum(v.size for v in weights.state.values())), "metadata": weights.metadata,
            "verified_against_provenance": weights.recorded_sha256 is not None}
