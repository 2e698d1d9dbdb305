"""torch model -> one self-contained ONNX file that honours zoo's I/O contract.

The dynamo exporter (``torch.export`` + onnxscript) is tried first; the TorchScript exporter is
the fallback, and ``ExportInfo.exporter`` says which one wrote the file. The trace uses a batch of
2 because a batch-1 example lets the tracer specialise the batch dim to the constant 1. After
export the core runs zoo's I/O-contract pass on the file (``zoo.onnx.contract``: one input ``images``
[batch, 3, H, W], one output ``logits`` [batch, classes], batch dim ``batch``), as every export does.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from zoo.errors import ExportError, InvalidInput
from zoo.records import BATCH_DIM, INPUT_NAME, OUTPUT_NAME, ExportInfo

TRACE_BATCH = 2
TRACE_SEED = 0
# protobuf cannot serialise a message over 2 GiB; above this, tensors go to an external-data file.
SINGLE_FILE_LIMIT = 2**31 - 2**26
DYNAMO = "torch.onnx.export(dynamo=True)"
TORCHSCRIPT = "torch.onnx.export(dynamo=False)"


def inference_graph(model: nn.Module) -> nn.Module:
    """The module to export: GoogLeNet without its training-only auxiliary heads, others unchanged."""
    without_aux = getattr(model, "without_aux", None)
    return without_aux() if callable(without_aux) else model


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence upstream noise (missing-torchvision op registrations, deprecation warnings)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _nbytes(model: nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def check_inference_graph(proto) -> None:
    """GoogLeNet's training-only auxiliary heads must not reach the artifact."""
    aux = sorted(t.name for t in proto.graph.initializer if t.name.startswith(("aux1", "aux2")))
    if aux:
        raise ExportError(f"The exported graph holds auxiliary-head tensors: {aux[:5]}",
                          hint="export the inference graph (GoogLeNet.without_aux())")


def _dynamo_export(graph_model: nn.Module, example: torch.Tensor, opset: int, tmp: Path):
    import onnx

    program = torch.onnx.export(
        graph_model, (example,), dynamo=True, verbose=False, opset_version=opset,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
    )
    assert program is not None  # dynamo=True always returns an ONNXProgram
    if _nbytes(graph_model) < SINGLE_FILE_LIMIT:
        return program.model_proto
    program.save(str(tmp / "model.onnx"), external_data=True)
    return onnx.load(str(tmp / "model.onnx"), load_external_data=True)


def _torchscript_export(graph_model: nn.Module, example: torch.Tensor, opset: int, tmp: Path):
    import onnx

    target = tmp / "model.onnx"
    torch.onnx.export(
        graph_model, (example,), str(target), dynamo=False, opset_version=opset,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}},
        do_constant_folding=True,
    )
    return onnx.load(str(target), load_external_data=True)


def _save(proto, path: Path, *, large: bool) -> None:
    """One file below 2 GiB; above, the tensors go to ``<name>.data`` beside it."""
    import onnx

    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    if large:
        onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
        onnx.checker.check_model(str(path), full_check=True)
    else:
        serialized = proto.SerializeToString()  # once: serialising a 0.5 GB VGG costs seconds
        onnx.checker.check_model(serialized, full_check=True)
        path.write_bytes(serialized)


def export_onnx(model: nn.Module, path: Path, *, opset: int = 18, input_size: int = 224) -> ExportInfo:
    """Write ``model``'s inference graph to ``path``; returns what wrote it. The core's I/O-contract pass
    (:func:`zoo._exporting.export_onnx`) follows."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not 13 <= opset <= 23:
        raise InvalidInput(f"Expected opset to be an int between 13 and 23. Received: {opset!r}")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise InvalidInput(f"Expected input_size to be a positive int. Received: {input_size!r}")
    path = Path(path)
    graph_model = inference_graph(model)
    if any(p.is_meta for p in graph_model.parameters()):
        raise InvalidInput("Cannot export a model built on the 'meta' device: it has no weights",
                           hint="build it without device='meta'")
    device = next(graph_model.parameters()).device
    generator = torch.Generator().manual_seed(TRACE_SEED)
    example = torch.randn(TRACE_BATCH, 3, input_size, input_size, generator=generator).to(device)

    notes: list[str] = []
    with _eval_mode(graph_model), contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zoo-torch-export-")))
        try:
            with torch.inference_mode():
                graph_model(example)  # fails here, with a clear message, at an input size the model cannot take
        except RuntimeError as exc:  # e.g. AlexNet's feature map collapsing below its 3x3 pools
            raise InvalidInput(
                f"{type(model).__name__} cannot run at input_size {input_size}: {exc}",
                hint="use a larger input size (224 is the reference)",
            ) from exc
        with _quiet_exporter():
            try:
                proto = _dynamo_export(graph_model, example, opset, tmp)
                exporter = DYNAMO
            except Exception as exc:
                dynamo_error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
                notes.append(f"dynamo exporter failed ({dynamo_error}); used TorchScript")
                exporter = TORCHSCRIPT
                try:
                    proto = _torchscript_export(graph_model, example, opset, tmp)
                except Exception as exc2:
                    raise ExportError(
                        f"Both PyTorch exporters failed for {type(model).__name__} (opset {opset}, input "
                        f"{input_size}). dynamo: {dynamo_error}. TorchScript: {type(exc2).__name__}: "
                        f"{str(exc2).strip()[:300]}",
                        hint="try another opset or input size; rerun with --debug for the tracebacks",
                    ) from exc2
        check_inference_graph(proto)
        _save(proto, path, large=_nbytes(graph_model) >= SINGLE_FILE_LIMIT)
        del proto
        # The exporter already uses the contract's names; zoo's one contract pass (run by the core
        # after every plugin export) checks them and renames what an exporter version named otherwise.

    if exporter == DYNAMO:
        with contextlib.suppress(metadata.PackageNotFoundError):
            notes.insert(0, f"onnxscript {metadata.version('onnxscript')}")
    return ExportInfo(exporter=exporter, exporter_version=torch.__version__, opset=opset, notes=tuple(notes))

