"""`zoo run`: a version under ONNX Runtime on an input array, top-k or raw logits."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInput
from . import emit_json, info, json_option, main, pass_ctx, table

MAX_RANDOM_BATCH = 1024  # --random is a smoke test; a larger batch is a mistake (or a memory bomb)
DEFAULT_SIZE = 224


def _read_input(path: Path) -> Any:
    """The .npy array at ``path``; InvalidInput (exit 2, like `zoo register`) for anything else."""
    import numpy as np

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidInput(f"Input file not found: {str(path)!r}", hint="give a .npy file written with numpy.save") from None
    except OSError as exc:
        raise InvalidInput(f"Cannot read input file {str(path)!r}: {exc.strerror}", hint="check the path and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        raise InvalidInput(f"Expected a regular .npy file as input. Received: {str(path)!r} ({kind})",
                           hint="give a .npy file written with numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InvalidInput(f"Cannot read {str(path)!r} as a .npy array: {exc}",
                           hint="write it with numpy.save(path, array); pickled objects are refused") from exc


def _random_size(model: Any) -> tuple[int, int]:
    """H x W for --random: the recorded preprocessing, else the graph's fixed size, else 224."""
    pre = model.version.preprocessing if model.version else None
    if pre is not None:
        return int(pre.input_size[0]), int(pre.input_size[1])
    shape = model.input_spec.shape
    if len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]):
        return int(shape[2]), int(shape[3])
    return DEFAULT_SIZE, DEFAULT_SIZE


@main.command("run")
@click.argument("ref")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A .npy array, NCHW float32, already normalised (see `zoo show REF`).")
@click.option("--random", "random_batch", type=int, metavar="N",
              help=f"Instead of --input: a seeded random batch of N (1-{MAX_RANDOM_BATCH}) normalised images at the "
                   "model's input size (a smoke test).")
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="Write the logits to exactly this file (numpy .npy format; no suffix is added).")
@click.option("--top-k", type=int, default=5, show_default=True, help="Classes to show per sample (>= 1).")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), help="Force an execution provider.")
@json_option
@pass_ctx
def run_cmd(ctx, ref, input_path, random_batch, output_path, top_k, provider, as_json) -> None:
    """Run REF on an input array under ONNX Runtime.

    Prints the top-k classes, or writes the logits with --output.
    """
    import numpy as np

    from .._atomic import check_destination, write_file
    from .._refs import parse_ref
    from ..metrics import VERIFY_SEED

    parse_ref(ref)
    if (input_path is None) == (random_batch is None):
        raise InvalidInput("Give exactly one of --input FILE.npy and --random N", hint=f"e.g. zoo run {ref} --random 1")
    if random_batch is not None and not 1 <= random_batch <= MAX_RANDOM_BATCH:
        raise InvalidInput(f"Expected --random N between 1 and {MAX_RANDOM_BATCH}. Received: {random_batch}",
                           hint="e.g. --random 4; for big batches write them with numpy.save and pass --input")
    if top_k < 1:
        raise InvalidInput(f"Expected --top-k >= 1. Received: {top_k}", hint="e.g. --top-k 5")
    if output_path is not None:
        check_destination(output_path, what="--output")
    images = _read_input(input_path) if input_path is not None else None
    model = ctx.registry().load(ref, provider=provider)
    if images is None:
        h, w = _random_size(model)
        images = np.random.default_rng(VERIFY_SEED).standard_normal((random_batch, 3, h, w), dtype=np.float32)
    info(f"{model.version.ref if model.version else ref}: {model.provider.reason}")
    logits = model.predict(images)
    if output_path is not None:
        written = write_file(output_path, lambda fh: np.save(fh, logits, allow_pickle=False))
        info(f"wrote logits {tuple(logits.shape)} to {written}")
    k = min(top_k, logits.shape[-1])
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
