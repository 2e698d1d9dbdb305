"""Accuracy of registered versions on your own labelled images: ``zoo eval`` and :func:`evaluate`.

Each image is read once, decoded once and fed to every version through that version's own recorded
transform (so a version and its fp16 or int8 variant, or two versions with different crops, are
judged on exactly the same pictures). The result is stored as an append-only ``eval`` report on each
version; its payload (:data:`REPORT_KIND`) is:

``data``: where the set is (``path``, ``layout`` folder|csv), its ``digest`` (sha256 over the evaluated
paths, classes and contents), ``images`` evaluated, ``total`` usable before ``--limit``, ``sample``
(limit, seed) or None, ``classes``, ``skipped`` (reason -> count), ``skipped_examples``,
``empty_classes``; ``top1``, ``top5`` (fractions; top-5 is top-min(5, classes)), ``k``; ``per_class``
(class, index, images, top1); ``confusion`` (``labels``: the set's classes then ``"other"`` for a
prediction outside them; ``matrix``: rows true, columns predicted); ``images_per_s`` and ``seconds``
(decode, transform and run, the whole pass); ``sha256``, ``ref`` and ``transform`` of the version; and,
with ``against``, ``against`` = {``ref``, ``sha256``, ``top1``, ``top5``, ``top1_delta`` (this minus
that), ``top1_agreement`` (fraction of images where both predict the same class)}.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput, ZooError
from ._dataset import SKIP_UNDECODABLE, DataSet, scan
from ._dataset import digest as data_digest

if TYPE_CHECKING:
    from .._registry import Registry
    from ..runtime import InferenceModel

__all__ = ["REPORT_KIND", "EvalResult", "evaluate"]

REPORT_KIND = "eval"
TOP_K = 5
DEFAULT_BATCH = 32

Progress = Callable[[int, int], None]  # (images done, images in all)


@dataclass(frozen=True)
class EvalResult:
    """One :func:`evaluate` run: the report payload stored on each version, in the order the refs were given."""

    payloads: list[dict[str, Any]]

    @property
    def payload(self) -> dict[str, Any]:
        return self.payloads[0]


class _Tally:
    """Top-k hits, per-class counts, the confusion matrix and the predictions of one version."""

    def __init__(self, model: "InferenceModel", data: DataSet, k: int):
        from .._classify import transform_for

        self.model, self.k = model, k
        self.transform = transform_for(model.version, model.input_spec)
        self.column = {index: col for col, index in enumerate(data.indices)}
        n = len(self.column)
        self.matrix = np.zeros((n, n + 1), dtype=np.int64)  # last column: a class outside the set
        self.top1 = self.topk = 0
        self.predicted: list[int] = []

    def add(self, images: Sequence[Any], truth: Sequence[int]) -> None:
        from ..transforms import apply_transform

        logits = self.model.predict(apply_transform(self.transform, images))
        order = np.argsort(-logits.astype(np.float64), axis=1, kind="stable")[:, : self.k]
        for row, label in zip(order, truth, strict=True):
            best = int(row[0])
            self.predicted.append(best)
            self.top1 += best == label
            self.topk += label in row
            self.matrix[self.column[label], self.column.get(best, len(self.column))] += 1

    def payload(self, data: DataSet, evaluated: int) -> dict[str, Any]:
        version = self.model.version
        rows = self.matrix.sum(axis=1)
        per_class = [{"class": data.classes[col], "index": index, "images": int(rows[col]),
                      "top1": float(self.matrix[col, col] / rows[col]) if rows[col] else None}
                     for index, col in self.column.items()]
        return {"ref": version.ref if version else None, "sha256": version.sha256 if version else None,
                "transform": self.transform.to_dict(), "k": self.k,
                "top1": self.top1 / evaluated, "top5": self.topk / evaluated, "per_class": per_class,
                "confusion": {"labels": [*data.classes, "other"], "matrix": self.matrix.tolist()}}


def _classes(model: "InferenceModel") -> tuple[list[str] | None, int]:
    """The version's label names (None without labels) and its number of classes."""
    version = model.version
    labels = list(version.labels.classes) if version is not None and version.labels is not None else None
    width = model.output_spec.shape[-1] if model.output_spec.shape else None
    if isinstance(width, int) and width > 0:
        return labels, width
    if labels is not None:
        return labels, len(labels)
    if version is not None and version.num_classes:
        return labels, version.num_classes
    what = version.ref if version is not None else "a model"
    raise InvalidInput(f"Expected a classifier with a known number of classes. Received: {what}, whose output width is "
                       "symbolic and which records no labels", hint="register it with --labels FILE")


def _same_classes(models: Sequence["InferenceModel"]) -> tuple[list[str] | None, int]:
    """The first model's labels and class count; every other model must have the same."""
    labels, num_classes = _classes(models[0])
    for other in models[1:]:
        other_labels, other_classes = _classes(other)
        if (other_labels, other_classes) != (labels, num_classes):
            what = other.version.ref if other.version is not None else "the other model"
            raise InvalidInput(f"Expected {what} to have the same classes as the first ({num_classes}). Received: "
                               f"{other_classes} classes" + (", with other label names" if other_classes == num_classes else ""),
                               hint="compare versions of one classifier (e.g. a model and its fp16 or int8 variant)")
    return labels, num_classes


def _run_pass(data_set: DataSet, tallies: Sequence[_Tally], batch_size: int, progress: Progress | None) -> list[tuple[Any, bytes]]:
    """Read and decode each image once, feed every tally batch by batch; the (item, bytes) that decoded."""
    from ..images import load_image

    read: list[tuple[Any, bytes]] = []
    for first in range(0, len(data_set.items), batch_size):
        chunk, images, truth = data_set.items[first:first + batch_size], [], []
        for item in chunk:
            try:
                content = item.path.read_bytes()
                images.append(load_image(content, source=item.relative))
            except (OSError, ZooError):
                data_set.skip(SKIP_UNDECODABLE, item.relative)
                continue
            read.append((item, content))
            truth.append(item.label)
        if images:
            for tally in tallies:
                tally.add(images, truth)
        if progress is not None:
            progress(min(first + batch_size, len(data_set.items)), len(data_set.items))
    return read


def evaluate(ref: str, data: str | os.PathLike[str], *, against: str | None = None, registry: "Registry | None" = None,
             limit: int | None = None, seed: int = 0, batch_size: int = DEFAULT_BATCH, skip_unknown: bool = False,
             provider: str | None = None, attach: bool = True, progress: Progress | None = None) -> EvalResult:
    """Evaluate ``ref`` (and ``against``, on the same images in the same pass) on the labelled set ``data``.

    ``data`` is a folder with one subfolder per class (named after the version's labels, or class ids for
    a version without labels) or a CSV of ``path,label`` lines. ``limit`` takes a seeded sample of that
    many images. Unreadable images are skipped and counted; see the module docstring for the payload,
    which ``attach`` stores as an ``eval`` report on each version.
    """
    from .._open import open_registry

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"Expected a batch size >= 1. Received: {batch_size!r}", hint="e.g. --batch-size 32")
    reg = registry if registry is not None else open_registry()
    models = [reg.load(r, provider=provider) for r in (ref, *([against] if against is not None else []))]
    labels, num_classes = _same_classes(models)
    data_set = scan(data, labels=labels, num_classes=num_classes, skip_unknown=skip_unknown, limit=limit, seed=seed)
    k = min(TOP_K, num_classes)
    tallies = [_Tally(m, data_set, k) for m in models]
    start = time.perf_counter()
    read = _run_pass(data_set, tallies, batch_size, progress)
    seconds = time.perf_counter() - start
    if not read:
        raise InvalidInput(f"Expected at least one decodable image in {str(data)!r}. Received: none of "
                           f"{len(data_set.items)} decoded", hint="check the files are JPEG, PNG, ... images")
    facts = {"path": str(data_set.root), "layout": data_set.layout, "digest": data_digest(read), "images": len(read),
             "total": data_set.total, "sample": {"limit": limit, "seed": seed} if limit is not None else None,
             "classes": data_set.classes, "skipped": dict(data_set.skipped),
             "skipped_examples": data_set.skipped_examples, "empty_classes": data_set.empty_classes}
    payloads = [{"data": facts, **t.payload(data_set, len(read)), "images_per_s": len(read) / seconds, "seconds": seconds}
                for t in tallies]
    if against is not None:
        agreement = float(np.mean(np.equal(tallies[0].predicted, tallies[1].predicted)))
        for mine, theirs in ((payloads[0], payloads[1]), (payloads[1], payloads[0])):
            mine["against"] = {"ref": theirs["ref"], "sha256": theirs["sha256"], "top1": theirs["top1"],
                               "top5": theirs["top5"], "top1_delta": mine["top1"] - theirs["top1"],
                               "top1_agreement": agreement}
    if attach:
        for model, payload in zip(models, payloads, strict=True):
            if model.version is not None:
                reg.attach(model.version, REPORT_KIND, payload)
    return EvalResult(payloads)
