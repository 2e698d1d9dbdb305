"""``zoo parity``: same weights, same batch, every framework and every export: do they agree?"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInput
from ._app import Styled, emit_json, info, json_option, main, pass_ctx, printable, progress, table


@main.command("parity")
@click.argument("arch", required=False)
@click.option("--all", "all_archs", is_flag=True, help="Every architecture that two or more installed plugins build.")
@click.option("--frameworks", "-f", default="all", show_default=True, help="Plugins to compare, comma-separated, or 'all'.")
@click.option("--input-size", type=int, default=224, show_default=True, help="Square input size.")
@click.option("--batch", type=int, default=8, show_default=True, help="Samples in the seeded N(0,1) batch.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the batch and (without --weights) of the canonical weights.")
@click.option("--num-classes", type=int, default=None,
              help="Classifier outputs, the head's width (default: 1000; with --weights, read from the file).")
@click.option("--weights", "weights_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Check these weights instead of seeded ones: a canonical .safetensors or a file a plugin reads "
                   "(e.g. torchvision's .pth); single ARCH only.")
@click.option("--opset", type=int, default=None, help="ONNX opset of the exports (default: 18).")
@click.option("--rtol", type=float, default=None, help="Max |a-b| / max|b| per pair (default: 1e-4, fp32).")
@click.option("--top1", type=float, default=None, help="Min top-1 agreement per pair, 0..1 (default: 1.0; ties excused).")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), help="Force the ONNX Runtime provider.")
@click.option("--native-only", is_flag=True, help="Compare the native frameworks only: no export, no ONNX, no registration (fast).")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Register the exports (name: the arch) with the report attached, if every pair passed.")
@click.option("--name", help="Model name to register under (default: the architecture; single ARCH only).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag for registered versions; repeatable.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML (one testcase per pair).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report (pair matrix, divergence), on failure too.")
@json_option
@pass_ctx
def parity_cmd(ctx, arch, all_archs, frameworks, input_size, batch, seed, num_classes, weights_file, opset, rtol, top1,
               provider, native_only, register, name, tags, junit, html_file, as_json) -> None:
    """Check that every framework and every ONNX export of ARCH compute the same logits.

    One seeded set of canonical weights (or the checkpoint given with --weights) is loaded into
    each framework's build; each native model and each ONNX export (run under ONNX Runtime) sees
    the same seeded batch, and every pair is compared: native vs native (architectures and weight
    conversion), native vs its own ONNX (the exporter), ONNX vs ONNX, and native vs the other
    framework's ONNX. Exits 10 if any pair is out of tolerance, naming it, what the failing pair
    kind implicates and, when the native models disagree, the first layer group where they part.

    TF32 is turned off everywhere for the run (it matters on GPUs only).

    \b
    Examples:
      zoo parity resnet50                                 # full size, registers resnet50 versions
      zoo parity --all --input-size 64 --num-classes 10 --no-register --junit parity.xml
      zoo parity vgg16 --rtol 1e-3 --json
      zoo parity resnet50 --weights resnet50-11ad3fa6.pth  # your checkpoint, in every framework
    """
    from ..parity import DEFAULT_RTOL, DEFAULT_TOP1, DIAGNOSE_STEP, Tolerances, parity_jobs, raise_for_failures, run_parity, to_junit
    from ..plugins import DEFAULT_OPSET, resolve_frameworks
    from ._render import parse_tags

    if bool(arch) == bool(all_archs):
        raise InvalidInput("Give exactly one of ARCH and --all", hint="e.g. zoo parity resnet18, or zoo parity --all")
    if name and all_archs:
        raise InvalidInput("--name applies to a single ARCH, not --all", hint="drop --name; each arch registers under its own name")
    if weights_file is not None and all_archs:
        raise InvalidInput("--weights applies to a single ARCH, not --all", hint="e.g. zoo parity resnet50 --weights FILE")
    tolerances = Tolerances(rtol=DEFAULT_RTOL if rtol is None else rtol, top1=DEFAULT_TOP1 if top1 is None else top1)
    tag_map = parse_tags(tags)
    if all_archs:
        chosen = resolve_frameworks(frameworks)
        jobs = parity_jobs(chosen)
        if not jobs:
            raise InvalidInput(f"No architecture is built by two or more of: {', '.join(p.name for p in chosen)}",
                               hint="`zoo plugins` shows what is installed")
    else:
        jobs = parity_jobs(resolve_frameworks(frameworks, arch=arch), arch)
    for a, plugins in jobs:
        if len(plugins) < 2:
            info(f"note: only {plugins[0].name} builds {a}: checking its export only (no cross-framework pairs)")
    weights: dict[str, Any] = {}
    if weights_file is not None:
        num_classes, weights = _checkpoint(jobs[0][1][0], jobs[0][0], weights_file, num_classes)
    num_classes = num_classes or 1000
    registry = ctx.registry() if register and not native_only else None

    reports = []
    steps = 3 if native_only else 5  # build, load weights, native[, export, onnx]
    total = sum(len(ps) * steps for _, ps in jobs)
    with progress() as bar:
        task = bar.add_task("parity", total=total)
        for a, plugins in jobs:
            def step(label: str, _a=a) -> None:
                if label not in ("register", DIAGNOSE_STEP):
                    bar.advance(task)
                bar.update(task, description=f"{_a}: {label}")

            reports.append(run_parity(
                a, plugins, num_classes=num_classes, input_size=input_size, batch=batch, seed=seed,
                opset=opset or DEFAULT_OPSET, tolerances=tolerances, provider=provider, export=not native_only, registry=registry,
                name=name, tags=tag_map, progress=step, **weights,
            ))
        bar.update(task, completed=total, description="parity done")

    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        from .._atomic import write_file

        write_file(junit, to_junit(reports).encode("utf-8"))  # atomic; never through a planted link
    if html_file is not None:
        from ..ui.report import write_report

        write_report(html_file, parity=[r.payload() for r in reports])
    if as_json:
        emit_json([r.payload() for r in reports])
    else:
        for r in reports:
            _render(r)
        if junit is not None:
            info(f"wrote JUnit XML to {junit}")
        if html_file is not None:
            info(f"wrote the HTML report to {html_file}")
    raise_for_failures(reports)


def _checkpoint(plugin, arch: str, path: Path, num_classes: int | None) -> tuple[int, dict[str, Any]]:
    """A weight file read and fitted to ``arch`` (InvalidWeights lists every misfit): its class count and
    run_parity's keywords."""
    from ..weights import load_weights, plan_import

    state, sha = load_weights(path)
    plan = plan_import(plugin, arch, state, num_classes=num_classes, source=path.name)
    for note in plan.notes:
        info(f"note: {note}")
    return plan.num_classes, {"weights": plan.state, "weights_sha256": sha, "weights_source": path.name,
                              "build_options": plan.build_options}


def _render(r) -> None:
    rows: list[Sequence[Any]] = []
    for p in r.pairs:
        status = Styled("[green]ok[/]" if p.passed else "[bold red]FAIL[/]")
        rows.append((p.label, p.kind, f"{p.max_abs_error:.2e}", f"{p.max_rel_error:.2e}", f"{p.cosine_min:.7f}",
                     f"{p.top1_agreement:.0%}" + (f" ({p.top1_ties} tie)" if p.top1_ties else ""), f"{p.top5_agreement:.0%}", status))
    for label, message in r.errors.items():
        rows.append((label, "error", None, None, None, None, None, Styled(f"[bold red]{printable(message)}[/]")))
    caption = (f"{r.num_classes} classes, {r.input_size} px, batch {r.batch}, seed {r.seed}, opset {r.opset}, "
               f"ORT {r.provider}; rtol {r.tolerances.rtol:g}, top-1 >= {r.tolerances.top1:.0%}; "
               f"weights {r.weights_source} sha256 {r.weights_sha256[:12]}; logit std {r.logit_std:.2f}")
    table(f"parity: {r.arch}", ["pair", "kind", "max abs", "max rel", "cos min", "top-1", "top-5", "status"], rows,
          caption=caption)
    for note in r.notes:
        info(f"  {note}")
    for line in r.diagnosis:
        info(f"  diagnosis: {line}")
    if r.versions:
        info("  registered " + ", ".join(f"{ref} ({fw})" for fw, ref in r.versions.items()) + " with the report attached")
    elif not r.passed:
        info("  nothing registered: an artifact that fails parity never enters the registry")
