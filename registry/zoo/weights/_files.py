"""Reading and writing weight files: canonical safetensors out; only tensors in, nothing executes.

safetensors holds only tensors and is read here. Framework-native files (``.pth``/``.pt``,
``.keras``) are read by the plugin that lists their suffix in its ``weight_formats`` hook (the
PyTorch plugin with ``torch.load(weights_only=True)``, TensorFlow with Keras' ``safe_mode``).
Everything else (plain pickles, ``.h5``, ``.npz``, ...) is refused before a byte is read. No
framework is imported until a file that needs it is read.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_file
from ..errors import InvalidWeights, PluginError
from ._canonical import LoadedWeights, PathLike, as_canonical
from ._hashing import METADATA_KEY, canonical_bytes, file_sha256

# Suffix -> reader, for the formats the core reads itself; plugins add theirs (zoo.plugins.weight_formats).
FORMATS: dict[str, str] = {".safetensors": "safetensors"}
_REFUSED = {
    ".h5": "legacy Keras HDF5 is not covered by Keras' safe_mode",
    ".hdf5": "legacy Keras HDF5 is not covered by Keras' safe_mode",
    ".pkl": "a pickle can run arbitrary code when loaded",
    ".pickle": "a pickle can run arbitrary code when loaded",
    ".ckpt": "checkpoint formats other than torch's zip are not read",
    ".onnx": "an ONNX file is a model, not canonical weights (use `zoo register`)",
}


def allowed_formats() -> str:
    """The formats zoo reads, for messages: ``.safetensors`` and every plugin's native formats."""
    from ..plugins import weight_formats

    native = ", ".join(f"{suffix} ({how})" for suffix, (_name, how) in weight_formats().items())
    return ".safetensors" + (f", {native}" if native else "")


def save_weights(state: Mapping[str, np.ndarray], path: PathLike, *, metadata: Mapping[str, Any] | None = None) -> str:
    """Write ``state`` as canonical safetensors, atomically; return the file's sha256.

    ``metadata`` (arch, num_classes, seed, ...) is stored as one JSON string under the header key
    ``zoo`` so the bytes are reproducible.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InvalidWeights(
            f"Canonical weights are written as .safetensors. Received: {str(path)!r}",
            hint=f"use -o {path.with_suffix('.safetensors').name}",
        )
    data = canonical_bytes(state, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, data)  # unpredictable O_EXCL|O_NOFOLLOW temp name, then one atomic rename
    return hashlib.sha256(data).hexdigest()


def read_metadata(path: PathLike) -> dict[str, Any]:
    """The ``zoo`` metadata of a canonical safetensors file ({} for foreign files)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            raw = (fh.metadata() or {}).get(METADATA_KEY)
    except Exception as exc:
        raise InvalidWeights(f"Cannot read {str(path)!r} as safetensors: {exc}",
                             hint=f"allowed formats: {allowed_formats()}") from exc
    try:
        return dict(json.loads(raw)) if raw else {}
    except (ValueError, TypeError):
        return {}


def load_weights(path: PathLike) -> LoadedWeights:
    """Read a weight file into a canonical state (float32 numpy arrays) and its sha256.

    Raises InvalidWeights for a missing file, a refused format, an unsafe or corrupt file, or
    non-tensor content; the message names the file and the allowed formats.
    """
    from ..plugins import weight_formats

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InvalidWeights(f"Weight file not found: {str(path)!r}",
                             hint=f"give an existing file; allowed formats: {allowed_formats()}") from None
    except OSError as exc:
        raise InvalidWeights(f"Cannot read the weight file {str(path)!r}: {exc.strerror}",
                             hint="check the path and its permissions") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise InvalidWeights(f"Expected a weight file. Received: {str(path)!r}, which is {kind}",
                             hint=f"give a regular file; allowed formats: {allowed_formats()}")
    suffix = path.suffix.lower()
    native = None if suffix in FORMATS else weight_formats().get(suffix)
    if suffix not in FORMATS and native is None:
        _refuse(path)
    sha = file_sha256(path)
    state = _read_safetensors(path) if native is None else _read_native(path, native[0])
    return LoadedWeights(as_canonical(state, source=str(path)), sha)


def _refuse(path: Path) -> None:
    why = _REFUSED.get(path.suffix.lower(), "its format is not one zoo reads safely")
    raise InvalidWeights(
        f"Refusing to read weights from {str(path)!r}: {why}. Allowed formats: {allowed_formats()}",
        hint="convert it to .safetensors in its own framework (torch: safetensors.torch.save_file(model.state_dict(), ...))",
    )


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except Exception as exc:  # SafetensorError, or a dtype numpy lacks (bfloat16)
        raise InvalidWeights(
            f"Cannot read {str(path)!r} as safetensors: {type(exc).__name__}: {exc}",
            hint=f"the file is corrupt or not safetensors; allowed formats: {allowed_formats()}",
        ) from exc


def _read_native(path: Path, plugin_name: str) -> dict[str, Any]:
    """A framework-native file, read by the plugin that claims its suffix (see zoo.plugins.OptionalHooks)."""
    from ..plugins import get_plugin, read_weights

    try:
        plugin = get_plugin(plugin_name)
    except PluginError as exc:
        raise InvalidWeights(
            f"Reading {str(path)!r} needs the {plugin_name!r} plugin: {exc.message}",
            hint=f"{exc.hint or 'install it'}; or convert the file to .safetensors",
        ) from exc
    try:
        return read_weights(plugin, path)
    except InvalidWeights:
        raise
    except Exception as exc:  # the framework's own refusal (an unsafe Keras lambda), or a model the plugin did not build
        raise InvalidWeights(
            f"Cannot read {str(path)!r} with the {plugin.display_name} plugin: {type(exc).__name__}: {str(exc)[:300]}",
            hint=f"only files saved from a model the {plugin.name} plugin built are read; "
            f"or convert to .safetensors. Allowed formats: {allowed_formats()}",
        ) from exc
