"""INT8 variants of fp32 artifacts: static quantization with ONNX Runtime's tools.

Decisions:

- **QDQ format, per-channel int8 weights (7-bit range), uint8 activations** (ORT's recommended CPU layout: its
  graph optimiser fuses each QuantizeLinear/DequantizeLinear pair around a Conv or Gemm into one
  integer kernel, and TensorRT reads QDQ graphs too). The I/O contract stays float32: the graph
  quantizes ``images`` on entry and dequantizes ``logits`` on exit.
- **The last layer stays float** (the node that writes ``logits``): quantizing the logits clips
  them to the calibration set's range, which dominated the error (ResNet-18, 10 classes, 64 px:
  1.3e-1 with it, 3.1e-2 without); the head is a small share of the MACs.
- **Pre-processing first** (``quant_pre_process``: shape inference and ORT's basic fusions, e.g.
  BatchNorm folded into the Conv), so that the folded weights are what gets quantized per
  channel; a model it cannot process is quantized as it is.
- **Calibration**: MinMax over the given arrays (``--calibration FILE.npy|FOLDER``: NCHW float32,
  normalised as the model expects, ``[N, 3, H, W]`` or single ``[3, H, W]`` images), or, without
  them, the documented seeded set :func:`seeded_calibration`: :data:`CALIBRATION_IMAGES` images of
  :func:`zoo.metrics.verification_batch` with seed :data:`CALIBRATION_SEED`, a seed the error
  report (seed :data:`zoo.metrics.VERIFY_SEED`) never sees. Random images calibrate the ranges of
  a randomly initialised model well; for trained weights give a few hundred real images.
- The error against the fp32 version is measured and attached like fp16's (:mod:`.report`).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, InvalidInput, NotFound
from ..metrics import verification_batch
from ._files import SINGLE_FILE_LIMIT, check_file, is_large

CALIBRATION_SEED = 1
CALIBRATION_IMAGES = 16
CALIBRATION_STEP = 2  # images per calibration run (MinMax keeps only per-tensor min/max of each run)


def seeded_calibration(input_size: int) -> np.ndarray:
    """The default calibration set: seeded, normalised-image-like, never the report's batch."""
    return verification_batch(input_size, batch=CALIBRATION_IMAGES, seed=CALIBRATION_SEED)


def _read_array(path: Path, input_size: int) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InvalidInput(f"Cannot read calibration file {os.fspath(path)!r} as a .npy array: {exc}",
                           hint="write it with numpy.save(path, array); pickled objects are refused") from exc
    want = (3, input_size, input_size)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or tuple(array.shape[1:]) != want:
        nhwc = array.ndim == 4 and tuple(array.shape[1:]) == (input_size, input_size, 3)
        raise InvalidInput(
            f"Expected calibration images of shape [N, 3, {input_size}, {input_size}] (or [3, {input_size}, {input_size}]). "
            f"Received {tuple(array.shape)} in {path.name!r}",
            hint="transpose NHWC arrays with x.transpose(0, 3, 1, 2)" if nhwc
            else f"resize the images to {input_size}x{input_size}, as the model's preprocessing says (`zoo show REF`)",
        )
    if array.dtype.kind != "f":
        raise InvalidInput(f"Expected float calibration images. Received dtype {array.dtype.name} in {path.name!r}",
                           hint="convert to float32 and normalise them as the model expects (`zoo show REF`)")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InvalidInput(f"Expected finite calibration values. Received NaN or Inf in {path.name!r}",
                           hint="drop or repair the images with non-finite values")
    if array.shape[0] == 0:
        raise InvalidInput(f"Expected at least one calibration image. Received an empty array in {path.name!r}")
    return array


def load_calibration(source: str | os.PathLike[str] | None, *, input_size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Calibration images from a .npy file or a folder of them (sorted by name), or the seeded set.

    Returns the images and how they were chosen (recorded in the version's provenance): the source's
    name (never its absolute path: the same data gives the same artifact anywhere), image count, sha256.
    """
    if source is None:
        images = seeded_calibration(input_size)
        about: dict[str, Any] = {"source": "seeded", "seed": CALIBRATION_SEED}
    else:
        path = Path(source)
        if not path.exists():
            raise NotFound(f"Calibration data not found: {os.fspath(path)!r}",
                           hint="give a .npy file or a folder of .npy files (NCHW float32, normalised), or none (seeded)")
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix == ".npy" and p.is_file())
            if not files:
                raise InvalidInput(f"Expected .npy files in the calibration folder. Received none in {os.fspath(path)!r}",
                                   hint="save each batch with numpy.save(folder / 'name.npy', array)")
        elif path.suffix != ".npy":
            raise InvalidInput(f"Expected a .npy file or a folder of them. Received {path.name!r}",
                               hint="save the images with numpy.save(path, array): NCHW float32, normalised")
        else:
            files = [path]
        images = np.concatenate([_read_array(f, input_size) for f in files])
        about = {"source": path.name, "files": len(files)}
    about.update(images=int(images.shape[0]), sha256=hashlib.sha256(images.tobytes()).hexdigest())
    return images, about


def _batches(images: np.ndarray, step: int = CALIBRATION_STEP) -> Iterator[np.ndarray]:
    return (images[i:i + step] for i in range(0, len(images), step))


def quantize_int8(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], *, calibration: np.ndarray,
                  per_channel: bool = True, reduce_range: bool = True,
                  progress: Callable[[str], None] | None = None) -> Path:
    """Write a statically quantized (QDQ) copy of ``src_path`` to ``dst_path``, calibrated on ``calibration``.

    ``reduce_range`` (7-bit weights, the default) keeps the uint8 x int8 products from saturating
    int16 on x86 CPUs without VNNI (AVX2, e.g. AMD Zen 3): there full-range per-channel weights gave
    a 17x larger error on the tiny test CNN (1.7e-1 vs 1.0e-2). The artifact must run correctly on
    any CPU, so the default does not depend on the CPU that converts it.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    step = progress or (lambda _msg: None)
    src, dst = Path(src_path), Path(dst_path)
    large = is_large(src)
    input_name = onnx.load(os.fspath(src), load_external_data=False).graph.input[0].name
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zoo-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        step("pre-processing (shape inference, BatchNorm folding)")
        try:
            quant_pre_process(os.fspath(src), os.fspath(prepared), save_as_external_data=large)
        except Exception:  # the tool does not take every graph: quantize the model as it is
            prepared = src
        step(f"calibrating on {len(calibration)} image(s) and quantizing")
        batches = _batches(calibration)

        class Reader(CalibrationDataReader):  # a few images at a time: bounds the activations' memory
            def get_next(self) -> dict[str, np.ndarray] | None:
                batch = next(batches, None)
                return None if batch is None else {input_name: batch}

        reader = Reader()
        prepared, head = _name_nodes(prepared, Path(tmp) / "named.onnx")
        try:
            quantize_static(
                os.fspath(prepared), os.fspath(dst), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax, use_external_data_format=large, nodes_to_exclude=head,
            )
        except (InvalidInput, NotFound):
            raise
        except Exception as exc:
            raise ExportError(f"INT8 quantization of {os.fspath(src)!r} failed: {type(exc).__name__}: {exc}",
                              hint="rerun with --debug; report the model's opset and ops") from exc
    _strip_value_info(dst)
    check_file(dst, what="int8")
    return dst


def _name_nodes(path: Path, out: Path) -> tuple[Path, list[str]]:
    """``path`` with every node named (the quantizer excludes nodes by name), and the head's node names."""
    import onnx

    model = onnx.load(os.fspath(path))
    outputs = {o.name for o in model.graph.output}
    unnamed = [n for n in model.graph.node if not n.name]
    for i, node in enumerate(unnamed):
        node.name = f"zoo_{node.op_type}_{i}"
    head = [n.name for n in model.graph.node if outputs & set(n.output)]
    if not unnamed:
        return path, head
    onnx.save(model, os.fspath(out), save_as_external_data=model.ByteSize() >= SINGLE_FILE_LIMIT,
              location=out.name + ".data")
    return out, head


def _strip_value_info(path: Path) -> None:
    """Drop the intermediate shapes the tools recorded with a symbolic batch: the registry infers its own
    (with them, onnx shape inference keeps the symbolic dims and the MAC count is unknown)."""
    import onnx

    model = onnx.load(os.fspath(path))
    if not model.graph.value_info:
        return
    del model.graph.value_info[:]
    large = model.ByteSize() >= SINGLE_FILE_LIMIT
    onnx.save(model, os.fspath(path), save_as_external_data=large, location=path.name + ".data")


SETTINGS = {"format": "QDQ", "weights": "int8, per channel, reduced (7-bit) range", "activations": "uint8",
            "calibration_method": "MinMax", "float": "the layer that writes the logits"}

__all__ = ["CALIBRATION_IMAGES", "SETTINGS", "CALIBRATION_SEED", "load_calibration", "quantize_int8", "seeded_calibration"]
