"""``zoo parity``: same weights, same batch, every framework and every export: do they agree?"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInput
from ._app import Styled, emit_json, info, json_option, main, pass_ctx, printable, progress, table


@main.command("parity")
@click.argument("targets", nargs=-1, metavar="[REF|MODEL|ARCH]...")
@click.option("--arch", "arch_option", metavar="ARCH", help="Build ARCH fresh in every framework instead of checking registered versions.")
@click.option("--all", "all_archs", is_flag=True, help="Every architecture that two or more installed plugins build (fresh builds).")
@click.option("--frameworks", "-f", default="all", show_default=True, help="Fresh builds: plugins to compare, comma-separated, or 'all'.")
@click.option("--input-size", type=int, default=224, show_default=True, help="Fresh builds: square input size.")
@click.option("--batch", type=int, default=8, show_default=True, help="Samples in the seeded N(0,1) batch.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the batch and (fresh builds without --weights) of the canonical weights.")
@click.option("--num-classes", type=int, default=None,
              help="Fresh builds: classifier outputs (default: 1000; with --weights, read from the file).")
@click.option("--weights", "weights_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Check these weights instead of seeded ones: a canonical .safetensors or a file a plugin reads "
                   "(e.g. torchvision's .pth); for versions, the file they were built from (sha256 checked).")
@click.option("--opset", type=int, default=None, help="Fresh builds: ONNX opset of the exports (default: 18).")
@click.option("--rtol", type=float, default=None, help="Max |a-b| / max|b| per pair (default: 1e-4, fp32).")
@click.option("--top1", type=float, default=None, help="Min top-1 agreement per pair, 0..1 (default: 1.0; ties excused).")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), help="Force the ONNX Runtime provider.")
@click.option("--native-only", is_flag=True, help="Compare fresh native builds only: no export, no ONNX, no registration (fast).")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Versions: attach the report to them and tag them parity=pass|fail. "
                   "Fresh builds: register the exports (name: the arch), if every pair passed, with the report attached.")
@click.option("--name", help="Fresh builds: model name to register under (default: the architecture; single ARCH only).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Fresh builds: tag for registered versions; repeatable.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML (one testcase per pair).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report (pair matrix, divergence), on failure too.")
@json_option
@pass_ctx
def parity_cmd(ctx, targets, arch_option, all_archs, frameworks, input_size, batch, seed, num_classes, weights_file, opset,
               rtol, top1, provider, native_only, register, name, tags, junit, html_file, as_json) -> None:
    """Check that every framework and every ONNX artifact compute the same logits.

    \b
    Registered versions (the CI gate): REF... or MODEL (every fp32 version a plugin
    exported). The weights each version records (zoo export's seeded weights, or the
    --weights file it was built from) go into every framework that built one of them; the
    native models and the registered artifacts see one seeded batch; the report is
    attached to the versions, which are tagged parity=pass|fail (`zoo copy --gated`
    publishes only passed ones).

    \b
    Fresh builds: --arch ARCH, --all, --native-only, or ARCH when no model of that name is
    registered. One seeded set of canonical weights (or --weights) is loaded into each
    framework's build, exported through zoo's export pipeline, and registered (the same
    bytes `zoo export` registers for those weights) only if every pair passed.

    Every pair is compared: native vs native (architectures and weight conversion), native
    vs its own ONNX (the exporter), ONNX vs ONNX, and native vs the other framework's ONNX.
    Exits 10 if any pair is out of tolerance, naming it, what the failing pair kind
    implicates and, for fresh builds whose native models disagree, the first layer group
    where they part. TF32 is turned off everywhere for the run (it matters on GPUs only).

    \b
    Examples:
      zoo export resnet50 --framework all && zoo parity resnet50   # gate the versions just exported
      zoo parity resnet50@1 resnet50@2 --json
      zoo parity --arch resnet50 --no-register                     # fresh builds, registers nothing
      zoo parity --all --input-size 64 --num-classes 10 --no-register --junit parity.xml
      zoo parity --arch resnet50 --weights resnet50-11ad3fa6.pth --native-only
    """
    from ..parity import select_parity_versions
    from ._render import parse_tags

    if arch_option is not None:
        if targets:
            raise InvalidInput(f"Expected either --arch ARCH or versions. Received both: --arch {arch_option} and "
                               f"{' '.join(targets)}", hint="zoo parity --arch resnet50, or zoo parity resnet50@1 resnet50@2")
        targets = (arch_option,)
    fresh = all_archs or native_only or arch_option is not None
    if not fresh:
        if not targets:
            raise InvalidInput("Expected versions, a model, --arch ARCH or --all. Received: none",
                               hint="e.g. zoo parity resnet50 (every version), or zoo parity --all")
        skipped: list[str] = []
        versions = select_parity_versions(ctx.registry(), targets, skipped)
        if versions is not None:
            for line in skipped:
                info(f"note: not checked: {line}")
            _check_sizes(versions, input_size=input_size, num_classes=num_classes)
            _versions_mode(ctx, versions, batch=batch, seed=seed, weights_file=weights_file, rtol=rtol, top1=top1,
                           provider=provider, register=register, junit=junit, html_file=html_file, as_json=as_json,
                           fresh_only={"--frameworks": frameworks != "all", "--opset": opset is not None,
                                       "--name": name is not None, "--tag": bool(tags)})
            return
    if len(targets) > 1:
        raise InvalidInput(f"Expected one architecture. Received: {' '.join(targets)}",
                           hint="registered versions are checked by reference (zoo parity NAME@N ...)")
    _fresh_mode(ctx, targets[0] if targets else None, all_archs=all_archs, frameworks=frameworks, input_size=input_size,
                batch=batch, seed=seed, num_classes=num_classes, weights_file=weights_file, opset=opset, rtol=rtol,
                top1=top1, provider=provider, native_only=native_only, register=register, name=name,
                tag_map=parse_tags(tags), junit=junit, html_file=html_file, as_json=as_json)


def _check_sizes(versions, *, input_size: int, num_classes: int | None) -> None:
    """--input-size (when not the default) and --num-classes, given with versions, must be theirs."""
    for v in versions:
        size = v.input_size[0] if v.input_size else None
        if input_size != 224 and size != input_size:
            raise InvalidInput(f"Expected versions at --input-size {input_size}. Received: {v.ref} at {size}",
                               hint="registered versions are checked at the size they were exported at; drop --input-size")
        if num_classes is not None and v.num_classes != num_classes:
            raise InvalidInput(f"Expected versions with --num-classes {num_classes}. Received: {v.ref} with {v.num_classes}",
                               hint="drop --num-classes: registered versions are checked as they were exported")


def _tolerances(rtol, top1):
    from ..parity import DEFAULT_RTOL, DEFAULT_TOP1, Tolerances

    return Tolerances(rtol=DEFAULT_RTOL if rtol is None else rtol, top1=DEFAULT_TOP1 if top1 is None else top1)


def _versions_mode(ctx, versions, *, batch, seed, weights_file, rtol, top1, provider, register, junit, html_file, as_json,
                   fresh_only) -> None:
    from ..parity import parity_versions

    given = [option for option, used in fresh_only.items() if used]
    if given:
        raise InvalidInput(f"Expected only the options that apply to registered versions. Received: {', '.join(given)}",
                           hint="these options choose how fresh builds are made; registered versions were already "
                                "built (use --arch ARCH for a fresh build)")
    registry = ctx.registry()
    weights: dict[str, Any] = {}
    if weights_file is not None:
        from ..weights import load_weights

        state, sha = load_weights(weights_file)
        weights = {"weights": state, "weights_sha256": sha}
    with progress() as bar:
        task = bar.add_task("parity", total=len(versions) * 2)

        def step(label: str) -> None:
            if label.endswith((": native", ": onnx")):
                bar.advance(task)
            bar.update(task, description=label)

        reports = parity_versions(registry, versions, batch=batch, seed=seed, tolerances=_tolerances(rtol, top1),
                                  provider=provider, attach=register, progress=step, **weights)
        bar.update(task, completed=len(versions) * 2, description="parity done")
    _finish(reports, junit=junit, html_file=html_file, as_json=as_json, attached=register, verb="checked")


def _fresh_mode(ctx, arch, *, all_archs, frameworks, input_size, batch, seed, num_classes, weights_file, opset, rtol, top1,
                provider, native_only, register, name, tag_map, junit, html_file, as_json) -> None:
    from ..parity import DIAGNOSE_STEP, parity_jobs, run_parity
    from ..plugins import DEFAULT_OPSET, resolve_frameworks

    if bool(arch) == bool(all_archs):
        raise InvalidInput("Give exactly one of ARCH and --all", hint="e.g. zoo parity --arch resnet18, or zoo parity --all")
    if name and all_archs:
        raise InvalidInput("--name applies to a single ARCH, not --all", hint="drop --name; each arch registers under its own name")
    if weights_file is not None and all_archs:
        raise InvalidInput("--weights applies to a single ARCH, not --all", hint="e.g. zoo parity --arch resnet50 --weights FILE")
    tolerances = _tolerances(rtol, top1)
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
    _finish(reports, junit=junit, html_file=html_file, as_json=as_json, attached=registry is not None, verb="registered")


def _finish(reports, *, junit, html_file, as_json, attached: bool, verb: str) -> None:
    from ..parity import raise_for_failures, to_junit

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
            _render(r, attached=attached, verb=verb)
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


def _render(r, *, attached: bool, verb: str) -> None:
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
    if r.versions and attached:
        info(f"  {verb} " + ", ".join(f"{ref} ({fw})" for fw, ref in r.versions.items())
             + f": report attached, tagged parity={'pass' if r.passed else 'fail'}")
    elif r.versions:
        info("  checked " + ", ".join(f"{ref} ({fw})" for fw, ref in r.versions.items()) + " (nothing attached: --no-register)")
    elif not r.passed and attached:
        info("  nothing registered: an artifact that fails parity never enters the registry")
