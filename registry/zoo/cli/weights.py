"""``zoo weights``: canonical weights out of zoo, and checkpoints (files or published ones) into every framework.

Parse, call :mod:`zoo.weights`, render: regeneration, catalogs, downloads and imports live there.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidInput
from ._app import emit_json, info, json_option, main, pass_ctx, progress, table


@main.group("weights")
def weights_group() -> None:
    """Canonical weights: torchvision names and layouts, in safetensors.

    Every framework plugin loads and writes this one format, so a checkpoint
    converts once and loads everywhere. Published checkpoints (torchvision's
    ImageNet weights) are listed by `zoo weights catalog` and imported with
    `zoo weights import ARCH --from torchvision:IMAGENET1K_V1`.
    """


# --------------------------------------------------------------------------- export


@weights_group.command("export")
@click.argument("target", metavar="ARCH|REF")
@click.option("--framework", "-f", help="Plugin that builds ARCH (default: the reference plugin, first by priority: torch when installed).")
@click.option("--init", type=click.Choice(["native", "canonical"]), default="canonical", show_default=True,
              help="canonical: zoo's framework-neutral seeded weights (what `zoo export ARCH --seed N` registers in "
                   "every framework, and `zoo parity` uses); native: the plugin's own seeded init.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random canonical weights (with an ARCH).")
@click.option("--num-classes", type=int, default=1000, show_default=True, help="Classifier outputs (with an ARCH).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Output .safetensors file (default: ./TARGET.safetensors).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@json_option
@pass_ctx
def export_cmd(ctx, target, framework, init, seed, num_classes, output, force, as_json) -> None:
    """Write canonical weights for ARCH, or regenerate those of a registered REF.

    ARCH (a name some plugin builds, without @ or :) is built with --seed and its weights written.
    REF (e.g. resnet50@2; write NAME@latest for a model named like an architecture) works when zoo
    made the weights: `zoo export --seed` and `zoo parity` versions are regenerated and checked
    against their recorded sha256 (versions exported before 0.2.0 are rebuilt from the seed by their
    plugin). Versions built from an imported file record only its sha256: keep the original file.

    \b
    Examples:
      zoo weights export resnet18 --num-classes 10 -o tiny.safetensors
      zoo weights export resnet50 --seed 0     # the weights `zoo export resnet50` registers in every framework
      zoo weights export resnet50@3 -o resnet50-v3.safetensors
    """
    from ..weights import export_weights

    result = export_weights(target, registry=ctx.registry, output=output, force=force, framework=framework, init=init,
                            seed=seed, num_classes=num_classes, warn=info)
    if as_json:
        emit_json(result)
        return
    check = " (matches the version's recorded sha256)" if result["verified_against_provenance"] else ""
    info(f"wrote {result['path']}: {result['tensors']} tensors, {result['parameters']:,} values, "
         f"sha256 {result['sha256'][:12]}{check}")


# --------------------------------------------------------------------------- import


@weights_group.command("import")
@click.argument("arch")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "source", metavar="SOURCE:NAME",
              help="A published checkpoint from the weight catalogs, e.g. torchvision:IMAGENET1K_V1 (or SOURCE:DEFAULT).")
@click.option("--catalog", "catalogs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An extra catalog file (JSON) for --from; repeatable. Also: $ZOO_WEIGHTS_CATALOG.")
@click.option("--framework", "-f", default="all", show_default=True, help="Plugin name(s), comma-separated, or 'all'.")
@click.option("--num-classes", type=int, help="Class count (default: read from the classifier's shape).")
@click.option("--name", help="Model name in the registry (default: the architecture).")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: 18).")
@click.option("--input-size", type=int, default=None,
              help="Square input size used to export and verify (default: 224, or the catalog entry's crop size).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Free-form tag; repeatable.")
@click.option("--rtol", type=float, default=None,
              help="Max |onnx-native| / max|native| of the export check (default: 4x the model's own float32 "
                   "rounding noise vs float64, at least 1e-4).")
@click.option("--transform-input/--no-transform-input", "transform_input", default=None,
              help="GoogLeNet FILE only, required there: whether the checkpoint expects torchvision's input "
                   "re-normalisation (torchvision's pretrained file: --transform-input). Recorded on the version.")
@json_option
@pass_ctx
def import_cmd(ctx, arch, file, source, catalogs, framework, num_classes, name, opset, input_size, tags, rtol,
               transform_input, as_json) -> None:
    """Load a torchvision-format checkpoint into each framework and register it as ONNX.

    Give FILE, or --from SOURCE:NAME for a published checkpoint. FILE: .safetensors, or a
    framework-native file a plugin reads safely (.pth/.pt with torch.load(weights_only=True),
    .keras with safe_mode); pickles and other formats are refused. --from downloads the
    checkpoint named in the catalogs into the cache ($ZOO_CACHE, else the platform's cache
    folder), checks it against the published sha256, and records the source, URL, hash,
    published accuracy, transform and labels id on each version; $ZOO_WEIGHTS_MIRROR=URL/
    fetches URL/<file name> instead. Each framework loads the weights into the inference graph
    (GoogLeNet's auxiliary heads are dropped), exports, verifies ONNX Runtime against the native
    model, and registers a version with the file's sha256 as provenance. Missing, unexpected or
    mis-shaped tensors are listed and nothing is registered.

    \b
    Examples:
      zoo weights import resnet50 --from torchvision:IMAGENET1K_V2     # download, verify, import
      zoo weights import resnet50 resnet50.pth                        # every installed framework
      zoo weights import resnet18 tiny.safetensors -f tensorflow --input-size 64
    """
    from ..plugins import DEFAULT_OPSET
    from ._render import parse_tags
    from .export import report_exports

    if bool(file) == bool(source):
        raise InvalidInput("Give exactly one of FILE and --from SOURCE:NAME",
                           hint=f"e.g. zoo weights import {arch} {arch}.pth, or zoo weights import {arch} --from torchvision:IMAGENET1K_V1")
    if catalogs and not source:
        raise InvalidInput("--catalog applies to --from only", hint="drop --catalog, or use --from SOURCE:NAME")
    from ..weights._importing import EXPLICIT_OPTIONS

    if transform_input is not None and (source or arch not in EXPLICIT_OPTIONS):
        raise InvalidInput("Expected --[no-]transform-input only with a GoogLeNet checkpoint FILE. Received: it with "
                           + (f"--from {source}" if source else f"architecture {arch!r}"),
                           hint="a catalog entry states its build options; other architectures have no such option")
    tag_map = parse_tags(tags)
    from ..metrics import check_rtol

    options = {"name": name, "opset": opset or DEFAULT_OPSET, "tags": tag_map, "rtol": check_rtol(rtol)}
    with progress() as bar:
        steps = _StepBar(bar, arch)
        if source:
            if num_classes is not None:
                raise InvalidInput("--num-classes applies to FILE only: a catalog entry states its class count",
                                   hint="drop --num-classes")
            from ..weights import import_pretrained

            done = import_pretrained(ctx.registry(), arch, source, frameworks=framework, catalogs=catalogs,
                                     input_size=input_size, download_progress=steps.download, progress=steps.step,
                                     notes=info, **options)
            results, sha, extra = done.results, done.sha256, {"source": done.entry.name, "url": done.entry.url}
        else:
            from ..plugins import resolve_frameworks
            from ..weights import import_weights, load_weights

            plugins = resolve_frameworks(framework, arch=arch)
            state, sha = load_weights(file)
            results = import_weights(ctx.registry(), plugins, arch, state, weights_sha256=sha,
                                     source=f"The weights in {str(file)!r}", num_classes=num_classes,
                                     build_options=None if transform_input is None else {"transform_input": transform_input},
                                     input_size=input_size or 224, progress=steps.step,
                                     notes=lambda n: info(f"{file.name}: {n}"), **options)
            extra = {}
        steps.finish()
    report_exports(results, as_json=as_json, weights_sha256=sha, **extra)


class _StepBar:
    """One rich bar for the download (bytes) and one for build/export/verify/register per framework."""

    STAGES = ("build", "export", "verify", "register")

    def __init__(self, bar, arch: str) -> None:
        self.bar, self.arch = bar, arch
        self.download_task = None
        self.task = None
        self.done: list[str] = []

    def download(self, have: int, total: int | None) -> None:
        if self.download_task is None:
            self.download_task = self.bar.add_task(f"download {self.arch}", total=total)
        self.bar.update(self.download_task, completed=have, total=total)

    def step(self, plugin: str, stage: str) -> None:
        if self.task is None:
            self.task = self.bar.add_task(f"import {self.arch}", total=None)
        if plugin not in self.done:
            self.done.append(plugin)
        index = len(self.done) - 1
        done = index * len(self.STAGES) + (self.STAGES.index(stage) if stage in self.STAGES else 0)
        self.bar.update(self.task, description=f"{plugin}: {stage} {self.arch}", completed=done)

    def finish(self) -> None:
        if self.task is not None:
            total = len(self.done) * len(self.STAGES)
            self.bar.update(self.task, total=total, completed=total, description=f"imported {self.arch}")


# --------------------------------------------------------------------------- catalog


@weights_group.command("catalog")
@click.argument("arch", required=False)
@click.option("--catalog", "catalogs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An extra catalog file (JSON); repeatable. Also: $ZOO_WEIGHTS_CATALOG.")
@json_option
def catalog_cmd(arch, catalogs, as_json) -> None:
    """List the published checkpoints `zoo weights import ARCH --from` knows (optionally for ARCH only).

    \b
    Examples:
      zoo weights catalog resnet50
      zoo weights catalog --catalog company.json --json
    """
    from dataclasses import asdict

    from ..weights import catalog

    found = catalog.entries(catalogs, arch=arch)
    if as_json:
        emit_json([asdict(e) for e in found])
        return
    rows = []
    for e in found:
        top: dict = next(iter(e.metrics.values()), {}) if e.metrics else {}
        t = e.transform
        rows.append((e.arch, e.name + (" (default)" if e.default else ""), top.get("acc@1"), top.get("acc@5"),
                     f"{t.get('resize')}/{t.get('crop')} {t.get('interpolation', '')}" if t else None,
                     e.file_size_mb and f"{e.file_size_mb:.0f} MB", e.sha256, e.url))
    table("weight catalog", ["arch", "source", "acc@1", "acc@5", "resize/crop", "size", "sha256", "url"], rows,
          caption="zoo weights import ARCH --from SOURCE:NAME downloads, verifies and imports one")
