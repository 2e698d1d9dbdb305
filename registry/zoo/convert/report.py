"""How far a converted artifact (fp16, int8) is from the fp32 one it came from: the attached report.

Invariant: both models run on the same provider, on the same seeded batch
(:func:`zoo.metrics.verification_batch`), and the error is :func:`zoo.metrics.relative_error`, so a
figure here means what it means in export verification and the parity gate.

- ``max_rel_error``: max |converted - fp32| / max |fp32| (relative to the logit scale);
- ``max_abs_error``: max |converted - fp32|;
- ``top1_agreement`` / ``top5_agreement``: the converted model's top-1 / top-5 accuracy taking the
  fp32 model's top-1 class as the label (1.0: it never disagrees / always has it in its top 5).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import VERIFY_SEED, relative_error, verification_batch
from ._files import input_size_of_file

REPORT_BATCH = 8  # enough samples for agreement to mean something; seconds even for VGG on a CPU


def agreement(actual: np.ndarray, expected: np.ndarray, *, k: int) -> float:
    """Fraction of samples whose ``expected`` top-1 class is among ``actual``'s top ``k``."""
    k = max(1, min(k, actual.shape[-1]))
    top = np.argsort(-actual, axis=-1)[:, :k]
    label = expected.argmax(axis=-1)
    return float(np.mean([label[i] in top[i] for i in range(len(label))]))


def compare_logits(actual: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """The report's error figures for two logit arrays of the same shape."""
    a, e = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
    return {
        "max_abs_error": float(np.max(np.abs(a.astype(np.float64) - e.astype(np.float64)))),
        "max_rel_error": relative_error(a, e),
        "top1_agreement": agreement(a, e, k=1),
        "top5_agreement": agreement(a, e, k=5),
    }


def conversion_report(reference_path: str | os.PathLike[str], converted_path: str | os.PathLike[str], *,
                      batch: int = REPORT_BATCH, seed: int = VERIFY_SEED, input_size: int | None = None,
                      provider: str | None = None) -> dict[str, Any]:
    """The converted model's error against the reference one (see the module docstring)."""
    from ..runtime import InferenceModel

    reference_path, converted_path = Path(reference_path), Path(converted_path)
    size = input_size or input_size_of_file(reference_path, 224)
    images = verification_batch(size, batch=batch, seed=seed)
    ref_model = InferenceModel(reference_path, provider=provider, cache=False)
    expected = ref_model.predict(images)
    chosen = ref_model.provider.name
    del ref_model
    actual = InferenceModel(converted_path, provider=chosen, cache=False).predict(images)
    return {**compare_logits(actual, expected), "batch": batch, "seed": seed, "input_size": size, "provider": chosen}


__all__ = ["REPORT_BATCH", "agreement", "compare_logits", "conversion_report"]
