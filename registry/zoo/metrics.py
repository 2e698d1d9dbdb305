"""The one error metric and the one seeded input batch every comparison in zoo uses.

Export verification, the parity gate, fp16/int8 reports, the plugins' tests and the benchmarks all
compare logits with :func:`relative_error` on batches from :func:`verification_batch`, so a figure
in one place means the same as a figure in another.
"""
from __future__ import annotations

import numpy as np

__all__ = ["NOISE_FACTOR", "VERIFY_BATCH", "VERIFY_RTOL_CEILING", "VERIFY_RTOL_FLOOR", "VERIFY_SEED", "check_rtol",
           "export_tolerance", "relative_error", "rounding_noise", "verification_batch"]

VERIFY_BATCH = 3  # differs from the exporters' trace batch (2): proves the batch dim is symbolic
VERIFY_SEED = 0
# The export check's tolerance (see export_tolerance): an exported graph computes the same function in float32
# with another accumulation order, so it may differ from the native float32 run by about as much as that run
# differs from exact arithmetic (its float64 run). Measured on torchvision's models with calibrated BatchNorm:
# ResNet-101 1.0e-4, ResNet-152 3.8e-4, the rest <= 2.4e-5; broken transposes and flattens give 1.3 to 3.2.
VERIFY_RTOL_FLOOR = 1e-4  # never stricter than this: ORT vs eager noise on small, well-conditioned models
NOISE_FACTOR = 4.0  # ORT and the native run each differ from float64 by ~noise: 2x, and 2x headroom
VERIFY_RTOL_CEILING = 1e-2  # never looser: a model this noisy in float32 is not verifiable, report it


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - b| / max |b|: error relative to the output scale, robust to near-zero logits."""
    scale = float(np.max(np.abs(expected))) or 1.0
    return float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)))) / scale


def verification_batch(input_size: int, *, batch: int = VERIFY_BATCH, seed: int = VERIFY_SEED) -> np.ndarray:
    """A seeded, normalised-image-like NCHW float32 batch ``[batch, 3, input_size, input_size]``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 3, input_size, input_size), dtype=np.float32)


def rounding_noise(fp32: np.ndarray, fp64: np.ndarray) -> float:
    """The native model's own float32 rounding noise on a batch: :func:`relative_error` of its float32
    logits against its float64 logits (same weights, same batch)."""
    return relative_error(fp32, fp64)


def check_rtol(rtol: object) -> float | None:
    """``rtol`` as given (None: the principled default of :func:`export_tolerance`); InvalidInput unless > 0 and finite."""
    from .errors import InvalidInput

    if rtol is None:
        return None
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not (np.isfinite(rtol) and rtol > 0):
        raise InvalidInput(f"Expected rtol to be a positive number. Received: {rtol!r}",
                           hint=f"leave it out for max({VERIFY_RTOL_FLOOR:g}, {NOISE_FACTOR:g} x the native model's "
                                "float32 rounding noise)")
    return float(rtol)


def export_tolerance(noise: float | None, rtol: float | None = None) -> float:
    """The max relative error an export may show against the native model: ``rtol`` when the caller gave one;
    else ``NOISE_FACTOR`` x the native model's float32 rounding ``noise`` (None: not measurable, e.g. a
    plugin without a float64 run), within [``VERIFY_RTOL_FLOOR``, ``VERIFY_RTOL_CEILING``]."""
    if rtol is not None:
        return rtol
    if noise is None or not np.isfinite(noise):
        return VERIFY_RTOL_FLOOR
    return float(min(VERIFY_RTOL_CEILING, max(VERIFY_RTOL_FLOOR, NOISE_FACTOR * noise)))
