"""Commands on plugins, architectures and model versions: the everyday part of ``zoo``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import click

from ..errors import InvalidInput, NotFound
from . import Styled, emit_json, info, json_option, main, pass_ctx, progress, table


def _parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"Expected a tag as KEY=VALUE. Received: {pair!r}", hint="e.g. --tag team=vision")
        tags[key] = value
    return tags


def _fmt_int(n: int | None) -> str | None:
    return None if n is None else f"{n:,}"


def _fmt_size(n: int | None) -> str | None:
    if n is None:
        return None
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1000
    return None


def _shape(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# --------------------------------------------------------------------------- plugins & archs


@main.command("plugins")
@json_option
def plugins_cmd(as_json: bool) -> None:
    """List framework plugins and whether each can run here.

    A missing framework is shown with the command that installs it.
    """
    from ..plugins import plugin_statuses

    statuses = plugin_statuses()
    if as_json:
        emit_json(statuses)
        return
    table(
        "zoo plugins",
        ["plugin", "framework", "version", "status", "architectures"],
        [
            (
                s.name,
                f"{s.display_name or '?'} {s.framework_version or ''}".strip(),
                s.version,
                "available" if s.available else f"unavailable: {s.reason}\n{s.hint or ''}".strip(),
                len(s.architectures),
            )
            for s in statuses
        ],
    )


@main.command("archs")
@click.option("--framework", "-f", default="all", show_default=True, help="Plugin name(s), comma-separated, or 'all'.")
@json_option
def archs_cmd(framework: str, as_json: bool) -> None:
    """Architectures per plugin, with parameter counts.

    Full-size (1000-class) counts, side by side per framework.

    Counts are computed by building each model, and compared with the published reference.
    """
    from ..plugins import resolve_frameworks
    from ..reference import INFERENCE_BUILD_OPTIONS, REFERENCE_PARAMS

    plugins = resolve_frameworks(framework)
    archs = sorted({a for p in plugins for a in p.architectures()}, key=_arch_order)
    results: list[dict[str, Any]] = []
    with progress() as bar:
        task = bar.add_task("counting parameters", total=sum(len(p.architectures()) for p in plugins))
        for arch in archs:
            row: dict[str, Any] = {"arch": arch, "reference": REFERENCE_PARAMS.get(arch), "frameworks": {}}
            for plugin in plugins:
                if arch not in plugin.architectures():
                    continue
                bar.update(task, description=f"{plugin.name}: {arch}")
                counts = plugin.count_params(plugin.build(arch, num_classes=1000, **INFERENCE_BUILD_OPTIONS.get(arch, {})))
                row["frameworks"][plugin.name] = {
                    "trainable": counts.trainable,
                    "non_trainable": counts.non_trainable,
                    "matches_reference": row["reference"] is None or counts.trainable == row["reference"],
                }
                bar.advance(task)
            results.append(row)
    if as_json:
        emit_json(results)
        return
    columns = ["arch", "reference params"]
    for p in plugins:
        columns += [f"{p.name} params", f"{p.name} non-trainable"]
    columns.append("match")
    rows = []
    mismatches = 0
    for r in results:
        cells: list[Any] = [r["arch"], _fmt_int(r["reference"])]
        ok = True
        for p in plugins:
            c = r["frameworks"].get(p.name)
            if c is None:
                cells += [None, None]
                continue
            ok &= c["matches_reference"]
            mark = "" if c["matches_reference"] else " ✗"
            cells += [f"{c['trainable']:,}{mark}", _fmt_int(c["non_trainable"])]
        mismatches += not ok
        cells.append(Styled("[green]yes[/]" if ok else "[bold red]MISMATCH[/]"))
        rows.append(cells)
    caption = "googlenet: inference graph (the auxiliary heads add 6,379,984 in the training graph)"
    table("architectures (1000 classes)", columns, rows, caption=caption)
    if mismatches:
        raise click.ClickException(f"{mismatches} architecture(s) do not match the reference parameter counts")


def _arch_order(arch: str) -> int:
    from ..reference import ARCHITECTURES

    return ARCHITECTURES.index(arch) if arch in ARCHITECTURES else len(ARCHITECTURES)


# --------------------------------------------------------------------------- export / register


def _version_row(v) -> list[Any]:
    return [
        v.ref, v.framework or "external", v.arch, _fmt_int(v.params.trainable if v.params else v.onnx_params),
        _fmt_size(v.size_bytes), v.sha256[:12], ",".join(v.aliases) or None, v.created_at[:19].replace("T", " "),
    ]


_VERSION_COLUMNS = ["ref", "framework", "arch", "params", "size", "sha256", "aliases", "created (UTC)"]


@main.command("export")
@click.argument("arch")
@click.option("--framework", "-f", default="torch", show_default=True, help="Plugin name(s), comma-separated, or 'all'.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: 18).")
@click.option("--num-classes", type=int, default=1000, show_default=True)
@click.option("--input-size", type=int, default=224, show_default=True, help="Square input size used to export and verify.")
@click.option("--name", help="Model name in the registry (default: the architecture).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random initialisation (no --weights).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), help="Canonical weights (.safetensors, or .pth read with weights_only).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Free-form tag; repeatable.")
@json_option
@pass_ctx
def export_cmd(ctx, arch, framework, opset, num_classes, input_size, name, seed, weights, tags, as_json) -> None:
    """Build, export to ONNX, verify and register ARCH.

    Each chosen framework builds ARCH, exports it, checks ONNX Runtime against the
    native model, and registers the artifact as a new version.

    \b
    Examples:
      zoo export resnet50                         # PyTorch, 1000 classes, 224 px
      zoo export resnet50 --framework all         # one version per installed framework
      zoo export resnet18 --num-classes 10 --input-size 64 --name tiny-resnet
    """
    from ..exporting import check_options
    from ..plugins import DEFAULT_OPSET, resolve_frameworks

    check_options(num_classes, input_size, opset or DEFAULT_OPSET)
    plugins = resolve_frameworks(framework, arch=arch)
    registry = ctx.registry()
    tag_map = _parse_tags(tags)
    state, weights_sha = None, None
    if weights is not None:
        from ..weights import load_weights

        state, weights_sha = load_weights(weights)
    results = export_each(
        registry, plugins, arch, name=name, num_classes=num_classes, opset=opset or DEFAULT_OPSET,
        input_size=input_size, state=state, weights_sha256=weights_sha,
        seed=None if state is not None else seed, tags=tag_map,
    )
    report_exports(results, as_json=as_json)


def export_each(registry, plugins, arch: str, **options: Any) -> list:
    """``export_and_register`` for each plugin, under one progress bar (build/export/verify/register)."""
    from ..exporting import export_and_register

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


def report_exports(results: Sequence[Any], *, as_json: bool, **extra: Any) -> None:
    """One line per registered version, or JSON rows (with ``extra`` fields) for scripts."""
    if as_json:
        emit_json([{"created": r.created, "verify_error": r.verify_error, **extra, "version": r.version} for r in results])
        return
    for r in results:
        v = r.version
        verb = "registered" if r.created else "already registered as"
        info(f"{verb} {v.ref} ({v.framework}, {_fmt_size(v.size_bytes)}, sha256 {v.sha256[:12]}, "
             f"ONNX vs native max rel. error {r.verify_error:.1e})")


@main.command("register")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Model name (pattern: [a-z0-9][a-z0-9._-]{0,63}).")
@click.option("--arch", help="Architecture, if known.")
@click.option("--input-size", type=int, help="Square input size, to compute MACs when H and W are symbolic.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Free-form tag; repeatable.")
@json_option
@pass_ctx
def register_cmd(ctx, file, name, arch, input_size, tags, as_json) -> None:
    """Register an external ONNX FILE.

    The file is checked (onnx.checker, external-data paths) and its signature,
    parameter count and MACs are read from the graph.
    """
    from ..records import VersionMeta

    result = ctx.registry().register(
        file, name=name, meta=VersionMeta(arch=arch, provenance={"source_file": file.name}),
        tags=_parse_tags(tags), input_size=input_size,
    )
    if as_json:
        emit_json({"created": result.created, "version": result.version})
        return
    info(("registered " if result.created else "already registered as ") + result.version.ref)


@main.command("convert")
@click.argument("ref")
@click.option("--fp16", is_flag=True, required=True, help="Register a float16 variant (I/O stays float32).")
@click.option("--name", help="Name of the new model (default: the same model, as a new version).")
@json_option
@pass_ctx
def convert_cmd(ctx, ref, fp16, name, as_json) -> None:
    """Register a float16 variant of REF.

    The fp16 artifact becomes its own version; its error against the fp32
    version is attached to it.
    """
    import tempfile

    from ..fp16 import convert_to_fp16, fp16_parity
    from ..records import VersionMeta

    registry = ctx.registry()
    src = registry.resolve(ref)
    src_path = registry.path(src)
    with tempfile.TemporaryDirectory(prefix="zoo-fp16-") as tmp:
        dst = Path(tmp) / "model.onnx"
        convert_to_fp16(src_path, dst)
        size = (src.preprocessing.input_size[0] if src.preprocessing else 224)
        parity = fp16_parity(src_path, dst, batch=2, seed=0, input_size=size)
        meta = VersionMeta(
            arch=src.arch, framework=src.framework, framework_version=src.framework_version,
            plugin_version=src.plugin_version, exporter=f"{src.exporter} + fp16", exporter_version=src.exporter_version,
            params=src.params, num_classes=src.num_classes, preprocessing=src.preprocessing,
            provenance={**src.provenance, "converted_from": {"ref": src.ref, "sha256": src.sha256}, "precision": "fp16"},
        )
        result = registry.register(dst, name=name or src.name, meta=meta, tags={"precision": "fp16"}, input_size=size)
    registry.attach(result.version, "fp16-parity", {"reference": src.ref, **parity})
    if as_json:
        emit_json({"created": result.created, "version": result.version, "parity": parity})
        return
    info(f"registered {result.version.ref} (fp16 of {src.ref}); vs fp32: max rel. error "
         f"{parity['max_rel_error']:.2e}, top-1 agreement {parity['top1_agreement']:.1%}")


# --------------------------------------------------------------------------- browse


@main.command("list")
@click.argument("name", required=False)
@click.option("--framework", "-f", help="Only versions built by this plugin.")
@click.option("--arch", help="Only versions of this architecture.")
@json_option
@pass_ctx
def list_cmd(ctx, name, framework, arch, as_json) -> None:
    """List registered versions (all models, or only NAME)."""
    from ..plugins import canonical_name

    versions = ctx.registry().list(name, framework=canonical_name(framework) if framework else None, arch=arch)
    if as_json:
        emit_json(versions)
        return
    if not versions:
        info("no versions registered yet; try `zoo export resnet18`")
        return
    table(None, _VERSION_COLUMNS, [_version_row(v) for v in versions])


@main.command("show")
@click.argument("ref")
@json_option
@pass_ctx
def show_cmd(ctx, ref, as_json) -> None:
    """Show everything recorded on one version."""
    registry = ctx.registry()
    v = registry.resolve(ref)
    reports = registry.reports(v)
    if as_json:
        emit_json({**v.to_dict(), "reports": reports})
        return
    pre = v.preprocessing
    rows = [
        ("ref", v.ref), ("aliases", ", ".join(v.aliases) or None), ("architecture", v.arch),
        ("framework", f"{v.framework} {v.framework_version or ''}" if v.framework else "external"),
        ("exporter", f"{v.exporter} {v.exporter_version or ''}" if v.exporter else None), ("opset", v.opset),
        ("inputs", "; ".join(f"{t.name} {t.dtype} {_shape(t.shape)}" for t in v.signature.inputs)),
        ("outputs", "; ".join(f"{t.name} {t.dtype} {_shape(t.shape)}" for t in v.signature.outputs)),
        ("params (native trainable)", _fmt_int(v.params.trainable) if v.params else None),
        ("params (native non-trainable)", _fmt_int(v.params.non_trainable) if v.params else None),
        ("params (ONNX initializers)", _fmt_int(v.onnx_params)),
        ("MACs per sample", None if v.macs is None else f"{v.macs / 1e9:.3f} G"),
        ("num classes", v.num_classes),
        ("preprocessing", None if pre is None else
         f"{pre.layout} {pre.color} {pre.input_size[0]}x{pre.input_size[1]}, x*{pre.scale:.5g}, mean {pre.mean}, std {pre.std}"),
        ("size", _fmt_size(v.size_bytes)), ("sha256", v.sha256), ("created (UTC)", v.created_at),
        ("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items()) or None),
        ("provenance", ", ".join(f"{k}={val}" for k, val in v.provenance.items()) or None),
        ("reports", ", ".join(f"{r.kind} ({r.created_at[:19]})" for r in reports) or None),
    ]
    table(v.ref, ["field", "value"], rows)


@main.command("alias")
@click.argument("ref")
@click.argument("alias")
@click.option("--delete", is_flag=True, help="Remove ALIAS from the model of REF instead of setting it.")
@pass_ctx
def alias_cmd(ctx, ref, alias, delete) -> None:
    """Point ALIAS (like prod) at version REF.

    Aliases move; versions never change. `latest` is implicit.
    """
    registry = ctx.registry()
    if delete:
        from ..refs import parse_ref

        registry.remove_alias(parse_ref(ref).name, alias)
        info(f"removed alias {alias!r} from {parse_ref(ref).name}")
        return
    v = registry.set_alias(ref, alias)
    info(f"{v.name}@{alias} -> {v.ref}")


@main.command("tag")
@click.argument("ref")
@click.argument("tags", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", "remove", multiple=True, metavar="KEY", help="Remove a tag; repeatable.")
@pass_ctx
def tag_cmd(ctx, ref, tags, remove) -> None:
    """Set or remove free-form tags on a version."""
    if not tags and not remove:
        raise InvalidInput("Nothing to do: give KEY=VALUE pairs or --remove KEY", hint="e.g. zoo tag resnet50@1 team=vision")
    registry = ctx.registry()
    v = registry.set_tags(ref, _parse_tags(tags)) if tags else registry.resolve(ref)
    for key in remove:
        v = registry.remove_tag(v.ref, key)
    info(f"{v.ref}: " + (", ".join(f"{k}={val}" for k, val in v.tags.items()) or "no tags"))


@main.command("rm")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Confirm the deletion (required).")
@pass_ctx
def rm_cmd(ctx, ref, yes) -> None:
    """Delete one version (needs --yes).

    Bytes still used by another version are kept.
    """
    if not yes:
        raise InvalidInput(f"Refusing to delete {ref!r} without --yes", hint=f"zoo rm {ref} --yes")
    v = ctx.registry().remove(ref)
    info(f"deleted {v.ref}")


@main.command("verify")
@click.argument("ref", required=False)
@json_option
@pass_ctx
def verify_cmd(ctx, ref, as_json) -> None:
    """Recompute the sha256 of stored artifacts.

    Checks every version, or only REF; exits 5 if any is corrupt.
    """
    from ..errors import IntegrityError

    results = ctx.registry().verify(ref)
    bad = [r for r in results if not r.ok]
    if as_json:
        emit_json(results)
    else:
        table(None, ["ref", "status", "problem"], [
            (f"{r.name}@{r.version}", Styled("[green]ok[/]" if r.ok else "[bold red]CORRUPT[/]"), r.problem) for r in results
        ])
        info(f"{len(results) - len(bad)}/{len(results)} versions intact")
    if bad:
        raise IntegrityError(f"{len(bad)} corrupt version(s): " + ", ".join(f"{r.name}@{r.version}" for r in bad),
                             hint="re-export or re-register them; `zoo rm REF --yes` removes a corrupt version")


# --------------------------------------------------------------------------- run


@main.command("run")
@click.argument("ref")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A .npy array, NCHW float32, already normalised (see `zoo show REF`).")
@click.option("--random", "random_batch", type=int, metavar="N",
              help="Instead of --input: a seeded random batch of N normalised images (a smoke test).")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the logits to this .npy file.")
@click.option("--top-k", type=int, default=5, show_default=True)
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), help="Force an execution provider.")
@json_option
@pass_ctx
def run_cmd(ctx, ref, input_path, random_batch, output_path, top_k, provider, as_json) -> None:
    """Run REF on an input array under ONNX Runtime.

    Prints the top-k classes, or writes the logits with --output.
    """
    import numpy as np

    if (input_path is None) == (random_batch is None):
        raise InvalidInput("Give exactly one of --input FILE.npy and --random N", hint=f"e.g. zoo run {ref} --random 1")
    model = ctx.registry().load(ref, provider=provider)
    if random_batch is not None:
        from ..exporting import verification_batch

        pre = model.version.preprocessing if model.version else None
        images = verification_batch(pre.input_size[0] if pre else 224, batch=random_batch)
    elif not input_path.is_file():
        raise NotFound(f"Input file not found: {str(input_path)!r}", hint="give a .npy file written with numpy.save")
    else:
        try:
            images = np.load(input_path, allow_pickle=False)
        except Exception as exc:
            raise InvalidInput(f"Cannot read {str(input_path)!r} as a .npy array: {exc}",
                               hint="write it with numpy.save(path, array); pickled objects are refused") from exc
    info(f"{model.version.ref if model.version else ref}: {model.provider.reason}")
    logits = model.predict(images)
    if output_path is not None:
        np.save(output_path, logits)
        info(f"wrote logits {tuple(logits.shape)} to {output_path}")
    k = max(1, min(top_k, logits.shape[-1]))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    top = np.argsort(-logits, axis=-1)[:, :k]
    rows = [{"sample": i, "top": [{"class": int(c), "logit": float(logits[i, c]), "prob": float(probs[i, c])} for c in top[i]]}
            for i in range(logits.shape[0])]
    if as_json:
        emit_json(rows)
    elif output_path is None:
        table(f"top-{k}", ["sample", "rank", "class", "logit", "prob"],
              [(r["sample"], j + 1, t["class"], f"{t['logit']:.4f}", f"{t['prob']:.4f}") for r in rows for j, t in enumerate(r["top"])])
