"""``zoo eval``: accuracy of a version on a labelled image set, stored as a report on the version."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._app import emit_json, info, json_option, main, pass_ctx, progress, table


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f}%"


def _render(payload: dict[str, Any]) -> None:
    data = payload["data"]
    rows = [[payload["ref"], payload["sha256"][:12], data["images"], _pct(payload["top1"]), _pct(payload["top5"]),
             f"{payload['images_per_s']:.1f}"]]
    against = payload.get("against")
    if against:
        rows.append([against["ref"], against["sha256"][:12], data["images"], _pct(against["top1"]), _pct(against["top5"]), None])
    caption = f"data {data['path']} ({data['layout']}), digest {data['digest'][:12]}"
    if data["sample"]:
        caption += f", sample of {data['sample']['limit']} of {data['total']} (seed {data['sample']['seed']})"
    table("eval", ["version", "sha256", "images", "top-1", f"top-{payload['k']}", "images/s"], rows, caption=caption)
    if against:
        info(f"top-1 delta {payload['ref']} - {against['ref']}: {100 * against['top1_delta']:+.2f} points; "
             f"top-1 agreement {_pct(against['top1_agreement'])}")
    table("per class", ["class", "images", "top-1"],
          [[c["class"], c["images"], _pct(c["top1"])] for c in payload["per_class"]])
    for reason, n in data["skipped"].items():
        examples = ", ".join(data["skipped_examples"].get(reason, []))
        info(f"skipped {n}: {reason} (e.g. {examples})")
    if data["empty_classes"]:
        info(f"classes with no images: {', '.join(data['empty_classes'])}")


@main.command("eval")
@click.argument("ref")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="A folder with one subfolder per class (named after the version's labels), or a CSV of path,label "
                   "lines (paths relative to the CSV).")
@click.option("--against", metavar="REF2", help="Also evaluate REF2 on the same images in the same pass: accuracy delta "
                                                "and top-1 agreement.")
@click.option("--limit", type=int, metavar="N", help="Evaluate a seeded sample of N images (a quick check).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --limit sample.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per ONNX Runtime run.")
@click.option("--skip-unknown", is_flag=True, help="Leave out (and count) images whose class is not among the model's labels "
                                                  "instead of refusing the set.")
@click.option("--no-attach", is_flag=True, help="Print the figures only; store no report on the versions.")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), help="Force an execution provider.")
@json_option
@pass_ctx
def eval_cmd(ctx, ref, data, against, limit, seed, batch_size, skip_unknown, no_attach, provider, as_json) -> None:
    """Accuracy of REF on your labelled images: top-1, top-5, per class, confusion matrix.

    Each image is decoded once and fed to each version through its own recorded transform. The
    result is stored as an append-only `eval` report on REF (and REF2), with the data set's digest,
    so `zoo show` and alias policies can use it. Unreadable files are skipped and counted.

    \b
    Examples:
      zoo eval resnet50@3 --data val/
      zoo eval resnet50@4 --data val/ --against resnet50@prod --limit 500
      zoo eval resnet50@int8 --data labels.csv --json
    """
    from ..evaluation import evaluate

    with progress() as bar:
        task = bar.add_task("eval", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = evaluate(ref, data, against=against, registry=ctx.registry(), limit=limit, seed=seed,
                          batch_size=batch_size, skip_unknown=skip_unknown, provider=provider, attach=not no_attach,
                          progress=step)
    if as_json:
        emit_json(result.payloads[0])
    else:
        _render(result.payload)
        if not no_attach:
            info("attached an eval report to " + " and ".join(p["ref"] for p in result.payloads if p["ref"]))
