"""`zoo export`, `zoo register` and `zoo convert`: everything that adds a version."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ._app import emit_json, info, json_option, main, pass_ctx, progress
from ._render import fields_option, fmt_size, parse_fields, parse_tags, version_json


def eval_options(command):
    """``--labels`` and the transform options, shared by `export` and `register`."""
    options = [
        click.option("--labels", "labels", metavar="FILE|imagenet-1k",
                     help="Class names: a UTF-8 file with one name per line in output order, or a built-in list."),
        click.option("--resize", type=int, metavar="N", help="Eval transform: resize the shorter side to N pixels."),
        click.option("--crop", type=int, metavar="N", help="Eval transform: centre crop N x N (export: the input size)."),
        click.option("--interpolation", type=click.Choice(["bilinear", "bicubic", "nearest"]),
                     help="Eval transform: resampling filter of the resize."),
        click.option("--mean", metavar="R,G,B", help="Eval transform: per-channel mean after /255 (default ImageNet's)."),
        click.option("--std", metavar="R,G,B", help="Eval transform: per-channel std after /255 (default ImageNet's)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _transform_options(resize, crop, interpolation, mean, std):
    from .._eval_options import TransformOptions

    return TransformOptions.parse(resize=resize, crop=crop, interpolation=interpolation, mean=mean, std=std)


@main.command("export")
@click.argument("arch")
@click.option("--framework", "-f", default=None,
              help="Plugin name(s), comma-separated, or 'all' (default: the first plugin by priority, torch when installed).")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: 18).")
@click.option("--num-classes", type=int, default=1000, show_default=True, help="Classifier outputs (the head's width).")
@click.option("--input-size", type=int, default=224, show_default=True, help="Square input size used to export and verify.")
@click.option("--name", help="Model name in the registry (default: the architecture).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random initialisation (no --weights).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Canonical weights (.safetensors, or .pth read with weights_only).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Free-form tag; repeatable.")
@click.option("--rtol", type=float, default=None,
              help="Max |onnx-native| / max|native| of the export check (default: 4x the model's own float32 "
                   "rounding noise vs float64, at least 1e-4).")
@eval_options
@json_option
@fields_option
@pass_ctx
def export_cmd(ctx, arch, framework, opset, num_classes, input_size, name, seed, weights, tags, rtol, labels, resize,
               crop, interpolation, mean, std, as_json, fields) -> None:
    """Build, export to ONNX, verify and register ARCH.

    Each chosen framework builds ARCH, exports it, checks ONNX Runtime against the
    native model, and registers the artifact as a new version, with its eval transform
    (default: torchvision's, crop = --input-size, resize 256 at 224) and its class names
    (default: imagenet-1k with 1000 classes, none otherwise).

    \b
    Examples:
      zoo export resnet50                         # PyTorch, 1000 classes, 224 px
      zoo export resnet50 --framework all         # one version per installed framework
      zoo export resnet18 --num-classes 10 --input-size 64 --name tiny-resnet --labels classes.txt
    """
    from .._eval_options import export_eval_meta
    from .._exporting import check_options
    from .._names import validate_name, validate_tags
    from ..metrics import check_rtol
    from ..plugins import DEFAULT_OPSET, resolve_frameworks

    check_options(num_classes, input_size, opset or DEFAULT_OPSET)
    chosen = parse_fields(fields)
    rtol = check_rtol(rtol)
    transform, label_names = export_eval_meta(  # every option checked before a plugin is imported
        num_classes=num_classes, input_size=input_size, labels=labels,
        transform=_transform_options(resize, crop, interpolation, mean, std))
    if name is not None:
        validate_name(name)  # before any plugin is imported or anything built
    tag_map = validate_tags(parse_tags(tags))
    if framework is None:  # the first plugin by priority that builds ARCH (else the first: its error lists what it builds)
        candidates = resolve_frameworks("all")
        framework = next((p.name for p in candidates if arch in p.architectures()), candidates[0].name)
    plugins = resolve_frameworks(framework, arch=arch)
    registry = ctx.registry()
    registry.ensure_writable()
    state, weights_sha = None, None
    if weights is not None:
        from ..weights import load_weights

        state, weights_sha = load_weights(weights)
    results = export_each(
        registry, plugins, arch, name=name, num_classes=num_classes, opset=opset or DEFAULT_OPSET,
        input_size=input_size, state=state, weights_sha256=weights_sha,
        seed=None if state is not None else seed, tags=tag_map, transform=transform, labels=label_names, rtol=rtol,
    )
    report_exports(results, as_json=as_json, fields=chosen)


def export_each(registry, plugins, arch: str, **options: Any) -> list:
    """``export_and_register`` for each plugin, under one progress bar (build/export/verify/register)."""
    from .._exporting import export_and_register

    results: list = []
    steps = ("build", "export", "verify", "register")
    with progress() as bar:
        task = bar.add_task(f"export {arch}", total=len(plugins) * len(steps))
        for plugin in plugins:
            def step(stage: str, _p=plugin) -> None:
                done = len(results) * len(steps) + (steps.index(stage) if stage in steps else 0)
                bar.update(task, description=f"{_p.name}: {stage} {arch}", completed=done)

            results.append(export_and_register(registry, plugin, arch, progress=step, **options))
        bar.update(task, completed=len(plugins) * len(steps), description=f"exported {arch}")
    return results


def report_exports(results: Sequence[Any], *, as_json: bool, fields: Any = frozenset(), **extra: Any) -> None:
    """One line per registered version, or JSON rows (with ``extra`` fields) for scripts: ``created``, the
    verification error and the version in its one JSON shape (:func:`._render.version_json`)."""
    if as_json:
        emit_json([{"created": r.created, "verify_error": r.verify_error, **extra, "version": version_json(r.version, fields)}
                   for r in results])
        return
    for r in results:
        v = r.version
        verb = "registered" if r.created else "already registered as"
        info(f"{verb} {v.ref} ({v.framework}, {fmt_size(v.size_bytes)}, sha256 {v.sha256[:12]}, "
             f"ONNX vs native max rel. error {r.verify_error:.1e})")


@main.command("register")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Model name (pattern: [a-z0-9][a-z0-9._-]{0,63}).")
@click.option("--arch", help="Architecture, if known.")
@click.option("--input-size", type=int, help="Square input size, to compute MACs when H and W are symbolic.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Free-form tag; repeatable.")
@eval_options
@json_option
@fields_option
@pass_ctx
def register_cmd(ctx, file, name, arch, input_size, tags, labels, resize, crop, interpolation, mean, std, as_json,
                 fields) -> None:
    """Register an external ONNX FILE.

    The file is checked (onnx.checker, external-data paths) and its signature,
    parameter count and MACs are read from the graph. A file copied out of a zoo
    store keeps its recorded transform and labels (zoo.* metadata); the options
    here replace them. The stored artifact embeds zoo's metadata, so its sha256
    differs from FILE's; both resolve: NAME@sha256:<FILE's sha256 prefix>.

    \b
    Examples:
      zoo register model.onnx --name detector
      zoo register model.onnx --name defects --labels classes.txt --resize 36 --crop 32
    """
    from dataclasses import replace

    from .._digest import file_sha256
    from .._eval_options import external_meta
    from .._names import validate_name, validate_tags

    validate_name(name)
    chosen = parse_fields(fields)
    tag_map = validate_tags(parse_tags(tags))
    options = _transform_options(resize, crop, interpolation, mean, std)
    meta, size = external_meta(file, arch=arch, transform=options, labels=labels, input_size=input_size)
    # The stored bytes carry zoo's metadata, so they differ from FILE: record FILE's digest too, so that
    # NAME@sha256:<sha256sum FILE> resolves as well as the stored artifact's digest.
    # (Only of a regular file: anything else, e.g. a FIFO or a missing path, is refused by register below.)
    if file.is_file():
        meta = replace(meta, provenance={**meta.provenance, "source_sha256": file_sha256(file)})
    result = ctx.registry().register(file, name=name, meta=meta, tags=tag_map, input_size=size)
    if as_json:
        emit_json({"created": result.created, "version": version_json(result.version, chosen)})
        return
    info(("registered " if result.created else "already registered as ") + result.version.ref)


@main.command("convert")
@click.argument("ref")
@click.option("--fp16", is_flag=True, help="Register a float16 variant (I/O stays float32).")
@click.option("--int8", is_flag=True,
              help="Register a statically quantized INT8 variant (QDQ, per-channel weights; I/O stays float32).")
@click.option("--calibration", type=click.Path(path_type=Path), metavar="FILE.npy|FOLDER",
              help="INT8 calibration images: NCHW float32, normalised ([N,3,H,W] arrays; a folder of .npy files). "
                   "Default: 16 seeded random images (fine for random weights; give real images for trained ones).")
@click.option("--name", help="Name of the new model (default: the same model, as a new version).")
@json_option
@fields_option
@pass_ctx
def convert_cmd(ctx, ref, fp16, int8, calibration, name, as_json, fields) -> None:
    """Register an fp16 or INT8 variant of the fp32 version REF.

    The converted artifact becomes its own version, tagged precision=fp16|int8;
    its error against REF (max relative error, top-1 and top-5 agreement on a
    seeded batch) is attached to it (`zoo show` lists it).

    \b
    Examples:
      zoo convert resnet50 --fp16
      zoo convert resnet50 --int8                       # seeded calibration set
      zoo convert resnet50 --int8 --calibration calib/  # a folder of .npy batches
      zoo bench --compare resnet50@1 resnet50@2 resnet50@3 --batch 1,8
    """
    from ..convert import convert_version
    from ..errors import InvalidInput

    if fp16 == int8:
        raise InvalidInput(f"Expected exactly one of --fp16 and --int8. Received: {'both' if fp16 else 'neither'}",
                           hint=f"zoo convert {ref} --fp16, or zoo convert {ref} --int8")
    precision = "fp16" if fp16 else "int8"
    chosen = parse_fields(fields)
    registry = ctx.registry()
    result = convert_version(registry, ref, precision=precision, name=name, calibration=calibration,
                             progress=lambda message: info(f"  {message}"))
    if as_json:
        emit_json({**result.to_dict(), "version": version_json(result.version, chosen)})
        return
    r = result.report
    verb = "registered" if result.created else "already registered as"
    info(f"{verb} {result.version.ref} ({precision} of {result.source.ref}, {fmt_size(result.version.size_bytes)}); "
         f"vs fp32: max rel. error {r['max_rel_error']:.2e}, top-1 agreement {r['top1_agreement']:.1%}, "
         f"top-5 {r['top5_agreement']:.1%} ({r['batch']} seeded images, {r['provider']})")
