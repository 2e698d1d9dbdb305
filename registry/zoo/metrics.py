"""The one error metric and the one seeded input batch every comparison in zoo uses.

Export verification, the parity gate, fp16/int8 reports, the plugins' tests and the benchmarks all
compare logits with :func:`relative_error` on batches from :func:`verification_batch`, so a figure
in one place means the same as a figure in another.
"""
from __future__ import annotations

import numpy as np

__all__ = ["VERIFY_BATCH", "VERIFY_SEED", "relative_error", "verification_batch"]

VERIFY_BATCH = 3  # differs from the exporters' trace batch (2): proves the batch dim is symbolic
VERIFY_SEED = 0


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - b| / max |b|: error relative to the output scale, robust to near-zero logits."""
    scale = float(np.max(np.abs(expected))) or 1.0
    return float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)))) / scale


def verification_batch(input_size: int, *, batch: int = VERIFY_BATCH, seed: int = VERIFY_SEED) -> np.ndarray:
    """A seeded, normalised-image-like NCHW float32 batch ``[batch, 3, input_size, input_size]``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 3, input_size, input_size), dtype=np.float32)
