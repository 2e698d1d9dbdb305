"""`zoo run`: a version under ONNX Runtime on an input array, top-k or raw logits."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInput, NotFound
from . import emit_json, info, json_option, main, pass_ctx, table


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
        from ..metrics import verification_batch

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
    rows: list[dict[str, Any]] = [
        {"sample": i, "top": [{"class": int(c), "logit": float(logits[i, c]), "prob": float(probs[i, c])} for c in top[i]]}
        for i in range(logits.shape[0])]
    if as_json:
        emit_json(rows)
    elif output_path is None:
        table(f"top-{k}", ["sample", "rank", "class", "logit", "prob"],
              [(r["sample"], j + 1, t["class"], f"{t['logit']:.4f}", f"{t['prob']:.4f}") for r in rows for j, t in enumerate(r["top"])])
