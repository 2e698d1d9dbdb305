"""Reduced-precision versions of fp32 artifacts (fp16, int8), each registered with its error report.

    from zoo.convert import convert_version
    converted = convert_version(registry, "resnet50@1", precision="int8")   # calibration: seeded set
    converted.report["max_rel_error"], converted.report["top1_agreement"]

:func:`convert_version` is what ``zoo convert`` calls; :func:`convert_to_fp16` and
:func:`quantize_int8` write a converted file without registering it; :func:`conversion_report`
measures a converted file against its source. Importing this package imports neither onnx nor
onnxruntime.
"""
from __future__ import annotations

from ._register import CONVERSIONS, PRECISIONS, Converted, convert_version, precision_of
from .fp16 import convert_to_fp16
from .int8 import load_calibration, quantize_int8
from .report import conversion_report

__all__ = [
    "CONVERSIONS", "PRECISIONS", "Converted", "conversion_report", "convert_to_fp16", "convert_version",
    "load_calibration", "precision_of", "quantize_int8",
]
