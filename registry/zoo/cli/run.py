"""`zoo run`: a version under ONNX Runtime on images, an input array or a random batch: top-k or raw logits."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInput
from ._app import emit_json, info, json_option, main, pass_ctx, table

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
    """H x W for --random: the recorded transform's input size, else the graph's fixed size, else 224."""
    size = model.version.input_size if model.version else None
    if size is not None:
        return int(size[0]), int(size[1])
    shape = model.input_spec.shape
    if len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]):
        return int(shape[2]), int(shape[3])
    return DEFAULT_SIZE, DEFAULT_SIZE


def _check_image_files(paths: tuple[Path, ...]) -> None:
    """Every --image argument is an existing regular file (exit 2 like --input, before the model loads)."""
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            why = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
            raise InvalidInput(f"Expected an image file. Received: {str(path)!r} ({why})",
                               hint="give JPEG, PNG, WebP, GIF, BMP, TIFF or PPM files after --image") from None
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
            raise InvalidInput(f"Expected a regular image file. Received: {str(path)!r} ({kind})",
                               hint="give image files after --image, e.g. photos/*.jpg")


def _check_choice(ref: str, image_paths: tuple[Path, ...], image_mode: bool, input_path: Path | None,
                  random_batch: int | None, top_k: int) -> None:
    """Exactly one of --image FILE..., --input and --random, each with a sane value (exit 2 before any work)."""
    if image_paths and not image_mode:
        raise InvalidInput(f"Expected only REF as an argument. Received: {', '.join(repr(str(p)) for p in image_paths)} after it",
                           hint=f"to classify image files, put --image before them: zoo run {ref} --image FILE...")
    given = [flag for flag, used in (("--image", image_mode), ("--input", input_path is not None),
                                     ("--random", random_batch is not None)) if used]
    if len(given) != 1:
        raise InvalidInput("Expected exactly one of --image FILE..., --input FILE.npy and --random N. Received: "
                           + (" and ".join(given) if given else "none of them"),
                           hint=f"e.g. zoo run {ref} --image cat.jpg, or zoo run {ref} --random 1")
    if image_mode and not image_paths:
        raise InvalidInput("Expected at least one image file after --image. Received: none",
                           hint=f"e.g. zoo run {ref} --image cat.jpg dog.png")
    if random_batch is not None and not 1 <= random_batch <= MAX_RANDOM_BATCH:
        raise InvalidInput(f"Expected --random N between 1 and {MAX_RANDOM_BATCH}. Received: {random_batch}",
                           hint="e.g. --random 4; for big batches write them with numpy.save and pass --input")
    if top_k < 1:
        raise InvalidInput(f"Expected --top-k >= 1. Received: {top_k}", hint="e.g. --top-k 5")


def _load(ctx: Any, ref: str, *, provider: str | None, at: str | None, allow_stale: bool | None) -> Any:
    """zoo.load on the command's store; a stale answer from the cache (an outage) is said on stderr with its age."""
    import warnings

    from .. import load
    from ..errors import StaleResolution

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", StaleResolution)
        model = load(ref, store=ctx.store, artifacts=ctx.artifacts, provider=provider, at=at,
                     allow_stale=allow_stale or None)
    for seen_warning in seen:
        if issubclass(seen_warning.category, StaleResolution):
            info(f"warning: {seen_warning.message}")
        else:
            warnings.warn_explicit(seen_warning.message, seen_warning.category, seen_warning.filename, seen_warning.lineno)
    return model


@main.command("run")
@click.argument("ref")
@click.argument("image_paths", nargs=-1, metavar="[IMAGE]...", type=click.Path(path_type=Path))
@click.option("--image", "image_mode", is_flag=True,
              help="Classify the IMAGE files after REF (JPEG, PNG, ...): decoded and fed through the version's "
                   "recorded transform; prints top-k with label names.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A .npy array, NCHW float32, already normalised (see `zoo show REF`).")
@click.option("--random", "random_batch", type=int, metavar="N",
              help=f"Instead of --input: a seeded random batch of N (1-{MAX_RANDOM_BATCH}) normalised images at the "
                   "model's input size (a smoke test).")
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="Write the logits to exactly this file (numpy .npy format; no suffix is added).")
@click.option("--top-k", type=int, default=5, show_default=True, help="Classes to show per sample (>= 1).")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), help="Force an execution provider.")
@click.option("--at", "at", metavar="TIME",
              help="Resolve REF as it was at this time (ISO 8601, e.g. 2026-12-01T12:00Z; no offset means UTC): "
                   "an alias through its history, NAME to the newest version registered by then.")
@click.option("--allow-stale", is_flag=True, default=None,
              help="With the shared store's database unreachable, run what REF last meant on this machine (from the "
                   "local cache, with a warning giving its age). Also: ZOO_OFFLINE=1.")
@json_option
@pass_ctx
def run_cmd(ctx, ref, image_paths, image_mode, input_path, random_batch, output_path, top_k, provider, at, allow_stale,
            as_json) -> None:
    """Run REF under ONNX Runtime on images, an input array, or a random batch.

    Prints the top-k classes (with the version's label names, if it records them),
    or writes the logits with --output. Give exactly one of --image, --input and --random.

    \b
    Examples:
      zoo run resnet50@prod --image cat.jpg dog.png --top-k 3
      zoo run resnet50@sha256:9f86d081884c --input batch.npy --json
      zoo run resnet50 --random 4 --output logits.npy
      zoo run resnet50@prod --at 2026-12-01T12:00Z --random 1
    """
    import numpy as np

    from .._atomic import check_destination, write_file
    from .._refs import parse_ref, parse_time
    from ..metrics import VERIFY_SEED

    parse_ref(ref)
    if at is not None:
        parse_time(at)  # a malformed time is exit 2 before anything is opened
    _check_choice(ref, image_paths, image_mode, input_path, random_batch, top_k)
    if output_path is not None:
        check_destination(output_path, what="--output")
    _check_image_files(image_paths)
    array = _read_input(input_path) if input_path is not None else None
    model = _load(ctx, ref, provider=provider, at=at, allow_stale=allow_stale)
    info(f"{model.version.ref if model.version else ref}: {model.provider.reason}")
    if image_mode:
        from .._classify import classify_images

        found = classify_images(model, list(image_paths), k=top_k)
        logits, names = found.logits, [str(p) for p in image_paths]
        info(f"transform: {found.transform.describe()}" + ("" if model.version and model.version.transform else
                                                           " (none recorded; implied by the input size)"))
    else:
        if array is None:
            h, w = _random_size(model)
            array = np.random.default_rng(VERIFY_SEED).standard_normal((random_batch, 3, h, w), dtype=np.float32)
        logits, names = model.predict(array), None
    if output_path is not None:
        written = write_file(output_path, lambda fh: np.save(fh, logits, allow_pickle=False))
        info(f"wrote logits {tuple(logits.shape)} to {written}")
    if output_path is not None and not as_json:
        return
    rows = _top_rows(logits, top_k, model.version.labels if model.version else None, names)
    if as_json:
        emit_json(rows)
    else:
        first = ["image"] if names is not None else ["sample"]
        with_labels = any(t["label"] is not None for r in rows for t in r["top"])
        table(f"top-{min(top_k, logits.shape[-1])}", [*first, "rank", "class", *(["label"] if with_labels else []), "logit", "prob"],
              [(r["image"] if names is not None else r["sample"], j + 1, t["class"], *([t["label"]] if with_labels else []),
                f"{t['logit']:.4f}", f"{t['prob']:.4f}") for r in rows for j, t in enumerate(r["top"])])


def _top_rows(logits: Any, k: int, labels: Any, names: list[str] | None) -> list[dict[str, Any]]:
    """One row per sample: its top-k classes (class id, label or None, logit, softmax probability)."""
    from ..labels import top_k

    fits = labels is not None and len(labels) == logits.shape[-1]
    rows = []
    for i, top in enumerate(top_k(logits, labels if fits else None, k=k)):
        row: dict[str, Any] = {"sample": i}
        if names is not None:
            row["image"] = names[i]
        row["top"] = [{"class": p.class_id, "label": p.label, "logit": float(logits[i, p.class_id]), "prob": p.probability}
                      for p in top]
        rows.append(row)
    return rows
