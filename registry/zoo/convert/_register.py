"""Converting a registered fp32 version and registering the result, with its error report attached."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..records import ModelVersion, VersionMeta
from ._files import input_size_of_file

PRECISIONS = ("fp32", "fp16", "int8")
CONVERSIONS = ("fp16", "int8")


def precision_of(version: ModelVersion | None) -> str:
    """A version's numeric precision: its ``precision`` tag or provenance, else fp32 (what exports produce)."""
    if version is None:
        return "fp32"
    return str(version.tags.get("precision") or version.provenance.get("precision") or "fp32")


@dataclass(frozen=True)
class Converted:
    """A registered conversion: the new version, whether it is new, its source, and its error report."""

    version: ModelVersion
    created: bool
    source: ModelVersion
    precision: str
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "version": self.version, "precision": self.precision,
                "source": self.source.ref, "parity": self.report}


def convert_version(registry: Any, ref: str | ModelVersion, *, precision: str, name: str | None = None,
                    calibration: str | os.PathLike[str] | None = None,
                    progress: Callable[[str], None] | None = None) -> Converted:
    """Convert the fp32 version ``ref`` to ``precision`` ("fp16" or "int8"), register it, attach its error report.

    The new version keeps the source's architecture, framework, parameters and transform; its
    provenance names the source (ref and sha256) and the precision (and, for int8, the quantization
    settings and the calibration data's name, size and sha256), and it is tagged ``precision=<p>``. The report (kind
    ``<p>-parity``, see :mod:`zoo.convert.report`) is attached to it. Nothing is registered if the
    conversion or its check fails.
    """
    from .._exporting import Staged, commit
    from .fp16 import convert_to_fp16
    from .int8 import SETTINGS, load_calibration, quantize_int8
    from .report import conversion_report

    step = progress or (lambda _msg: None)
    if precision not in CONVERSIONS:
        raise InvalidInput(f"Expected a precision in {', '.join(CONVERSIONS)}. Received: {precision!r}",
                           hint="the precisions zoo converts to are fp16 and int8")
    if calibration is not None and precision != "int8":
        raise InvalidInput(f"Expected calibration data with int8 only. Received it with {precision}",
                           hint=f"drop the calibration data, or convert to int8 instead of {precision}")
    src = registry.resolve(ref) if not isinstance(ref, ModelVersion) else ref
    have = precision_of(src)
    if have != "fp32":
        origin = (src.provenance.get("converted_from") or {}).get("ref")
        raise InvalidInput(f"Expected an fp32 version to convert. Received {src.ref} ({have})",
                           hint=f"convert the fp32 version instead: zoo convert {origin or src.name} --{precision}")
    src_path = registry.path(src)
    size = src.input_size[0] if src.input_size else input_size_of_file(src_path, 224)
    provenance: dict[str, Any] = {**src.provenance, "converted_from": {"ref": src.ref, "sha256": src.sha256},
                                  "precision": precision}
    with tempfile.TemporaryDirectory(prefix=f"zoo-{precision}-") as tmp:
        dst = Path(tmp) / "model.onnx"
        if precision == "fp16":
            step("converting to float16")
            convert_to_fp16(src_path, dst)
        else:
            images, about = load_calibration(calibration, input_size=size)
            quantize_int8(src_path, dst, calibration=images, progress=step)
            provenance["quantization"] = {**SETTINGS, "calibration": about}
        step(f"measuring the error against {src.ref}")
        report = conversion_report(src_path, dst, input_size=size)
        meta = VersionMeta(
            arch=src.arch, framework=src.framework, framework_version=src.framework_version,
            plugin_version=src.plugin_version, exporter_version=src.exporter_version,
            exporter=f"{src.exporter} + {precision}" if src.exporter else precision,
            params=src.params, num_classes=src.num_classes, provenance=provenance,
            transform=src.transform, labels=src.labels,  # a converted version is fed and read like its source
        )
        step("registering")  # the ingestion pipeline's last step, as every export takes
        result = commit(registry, Staged(plugin=None, path=dst, meta=meta, input_size=size,
                                         verify_error=float(report["max_rel_error"])),
                        name=name or src.name, tags={"precision": precision})
    registry.attach(result.version, f"{precision}-parity", {"reference": src.ref, **report})
    return Converted(result.version, result.created, src, precision, report)


__all__ = ["CONVERSIONS", "PRECISIONS", "Converted", "convert_version", "precision_of"]
