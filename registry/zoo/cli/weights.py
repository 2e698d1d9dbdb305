"""``zoo weights``: canonical weights out of zoo, and checkpoints into every framework.

The registry stores ONNX artifacts, not source weights; what a version records is the sha256 of
the weights it was built from and, when zoo made them, the recipe. So ``weights export`` takes
an ARCH (build it and write its weights) or a REF whose weights zoo can *regenerate* from the
recorded recipe, checked against the recorded sha256 where one exists.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import IntegrityError, InvalidInput, NotFound
from . import emit_json, info, json_option, main, pass_ctx

CANONICAL_INIT = "zoo-random-canonical"  # the recipe `zoo parity` records (zoo.parity)


@main.group("weights")
def weights_group() -> None:
    """Canonical weights: torchvision names and layouts, in safetensors.

    Every framework plugin loads and writes this one format, so a checkpoint
    converts once and loads everywhere.
    """


# --------------------------------------------------------------------------- export


@weights_group.command("export")
@click.argument("target", metavar="ARCH|REF")
@click.option("--framework", "-f", help="Plugin that builds ARCH (default: torch if installed, else the first that builds it).")
@click.option("--init", type=click.Choice(["native", "canonical"]), default="native", show_default=True,
              help="native: the plugin's own seeded init (what `zoo export ARCH --seed N` registers); "
                   "canonical: zoo's framework-neutral random weights (what `zoo parity` uses).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--num-classes", type=int, default=1000, show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Output .safetensors file (default: ./TARGET.safetensors).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@json_option
@pass_ctx
def export_cmd(ctx, target, framework, init, seed, num_classes, output, force, as_json) -> None:
    """Write canonical weights for ARCH, or regenerate those of a registered REF.

    ARCH (a name some plugin builds, without @ or :) is built with --seed and its weights written.
    REF (e.g. resnet50@2; write NAME@latest for a model named like an architecture) works when zoo
    made the weights: `zoo parity` versions are regenerated and checked against their recorded
    sha256; `zoo export --seed` versions are rebuilt from the seed by their plugin. Versions built
    from an imported file record only its sha256: keep the original file.

    \b
    Examples:
      zoo weights export resnet18 --num-classes 10 -o tiny.safetensors
      zoo weights export resnet50 --init canonical --seed 0     # the weights `zoo parity resnet50` uses
      zoo weights export resnet50@3 -o resnet50-v3.safetensors
    """
    from ..plugins import available_plugins
    from ..weights import save_weights

    is_arch = "@" not in target and ":" not in target and any(target in p.architectures() for p in available_plugins())
    if is_arch:
        state, metadata, checked = _from_arch(target, framework=framework, init=init, seed=seed, num_classes=num_classes)
    else:
        state, metadata, checked = _from_ref(ctx.registry(), target)
    output = output or Path(f"{target.replace('@', '-').replace(':', '-')}.safetensors")
    if output.exists() and not force:
        raise InvalidInput(f"Refusing to overwrite {str(output)!r}", hint="pass --force, or choose another -o FILE")
    sha = save_weights(state, output, metadata=metadata)
    if checked is not None and sha != checked:
        output.unlink(missing_ok=True)
        raise IntegrityError(
            f"Regenerated weights of {target!r} have sha256 {sha[:12]}, but the version records {checked[:12]}",
            hint="the generator or the plugin's layout changed since it was registered; nothing was written",
        )
    result = {"path": str(output), "sha256": sha, "tensors": len(state),
              "parameters": int(sum(v.size for v in state.values())), "metadata": metadata,
              "verified_against_provenance": checked is not None}
    if as_json:
        emit_json(result)
        return
    check = " (matches the version's recorded sha256)" if checked else ""
    info(f"wrote {output}: {len(state)} tensors, {result['parameters']:,} values, sha256 {sha[:12]}{check}")


def _from_arch(arch: str, *, framework: str | None, init: str, seed: int, num_classes: int):
    from ..weights import random_canonical_weights

    plugin = _builder(arch, framework)
    if num_classes < 1:
        raise InvalidInput(f"Expected --num-classes >= 1. Received: {num_classes}")
    if init == "canonical":
        metadata = {"kind": CANONICAL_INIT, "arch": arch, "num_classes": num_classes, "seed": seed}
        return random_canonical_weights(plugin, arch=arch, seed=seed, num_classes=num_classes), metadata, None
    model = plugin.build(arch, num_classes=num_classes, seed=seed)
    metadata = {"kind": "native", "arch": arch, "num_classes": num_classes, "seed": seed, "framework": plugin.name,
                "framework_version": plugin.framework_version(), "plugin_version": plugin.version}
    return plugin.state_dict(model), metadata, None


def _builder(arch: str, framework: str | None):
    from ..plugins import resolve_frameworks

    plugins = resolve_frameworks(framework or "all", arch=arch)
    if framework is None:
        plugins.sort(key=lambda p: p.name != "torch")  # torch's layout *is* the canonical one: no conversion
    return plugins[0]


def _from_ref(registry, ref: str):
    from ..plugins import get_plugin
    from ..weights import random_canonical_weights

    v = registry.resolve(ref)
    prov = v.provenance or {}
    recipe = prov.get("weights_init") or {}
    if recipe.get("kind") == CANONICAL_INIT:
        plugin = _builder(recipe["arch"], None)
        state = random_canonical_weights(plugin, arch=recipe["arch"], seed=int(recipe["seed"]),
                                         num_classes=int(recipe["num_classes"]))
        return state, dict(recipe), prov.get("weights_sha256")
    if "init_seed" in prov and v.framework and v.arch:
        plugin = get_plugin(v.framework)
        if v.plugin_version and plugin.version != v.plugin_version:
            info(f"warning: {v.ref} was built by {v.framework} plugin {v.plugin_version}; this is {plugin.version}: "
                 "its seeded init may differ")
        model = plugin.build(v.arch, num_classes=v.num_classes or 1000, seed=int(prov["init_seed"]),
                             **prov.get("build_options", {}))
        metadata = {"kind": "native", "arch": v.arch, "num_classes": v.num_classes or 1000, "seed": int(prov["init_seed"]),
                    "framework": plugin.name, "framework_version": plugin.framework_version(),
                    "plugin_version": plugin.version, "from": v.ref}
        return plugin.state_dict(model), metadata, None
    if prov.get("weights_sha256"):
        raise NotFound(
            f"{v.ref} was built from weights with sha256 {prov['weights_sha256']}, which zoo does not store "
            "(the registry holds ONNX artifacts, not source weights)",
            hint="use the original file (sha256sum identifies it); `zoo weights import` it again to rebuild",
        )
    raise NotFound(f"{v.ref} records no weights zoo can regenerate (no weights_init or init_seed in its provenance)",
                   hint="it was registered from an external ONNX file; zoo cannot extract framework weights from it")


# --------------------------------------------------------------------------- import


@weights_group.command("import")
@click.argument("arch")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--framework", "-f", default="all", show_default=True, help="Plugin name(s), comma-separated, or 'all'.")
@click.option("--num-classes", type=int, help="Class count (default: read from the classifier's shape).")
@click.option("--name", help="Model name in the registry (default: the architecture).")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: 18).")
@click.option("--input-size", type=int, default=224, show_default=True, help="Square input size used to export and verify.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Free-form tag; repeatable.")
@json_option
@pass_ctx
def import_cmd(ctx, arch, file, framework, num_classes, name, opset, input_size, tags, as_json) -> None:
    """Load a torchvision-format checkpoint FILE into each framework and register it as ONNX.

    FILE: .safetensors, or .pth/.pt read with torch.load(weights_only=True); pickles and other
    formats are refused. Each framework loads it, exports, verifies ONNX Runtime against the
    native model, and registers a version with the file's sha256 recorded as provenance.
    Missing, unexpected or mis-shaped tensors are listed and nothing is registered.

    \b
    Examples:
      zoo weights import resnet50 resnet50.pth                      # every installed framework
      zoo weights import resnet18 tiny.safetensors -f tensorflow --input-size 64
    """
    from .._exporting import inference_build_options
    from ..plugins import DEFAULT_OPSET, resolve_frameworks
    from ..weights import check_state, expected_shapes, infer_num_classes, load_weights
    from ._render import parse_tags
    from .export import export_each, report_exports

    plugins = resolve_frameworks(framework, arch=arch)
    tag_map = parse_tags(tags)
    state, sha = load_weights(file)
    options = inference_build_options(arch, state)
    assumed = num_classes or 1000
    expected = expected_shapes(plugins[0], arch, num_classes=assumed, **options)
    if num_classes is None:
        found = infer_num_classes(state, expected, assumed=assumed)
        if found is not None and found != assumed:
            num_classes = found
            expected = expected_shapes(plugins[0], arch, num_classes=found, **options)
            info(f"{file.name}: {found} classes (from the classifier's shape)")
    num_classes = num_classes or assumed
    check_state(state, expected, source=f"The weights in {str(file)!r}", what=f"{arch} with {num_classes} classes")
    registry = ctx.registry()
    results = export_each(
        registry, plugins, arch, name=name, num_classes=num_classes, opset=opset or DEFAULT_OPSET,
        input_size=input_size, state=state, weights_sha256=sha, build_options=options, tags=tag_map,
    )
    report_exports(results, as_json=as_json, weights_sha256=sha)
