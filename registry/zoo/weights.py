"""The canonical weight format: safetensors with torchvision's tensor names and layouts.

One format crosses frameworks: every plugin converts its native weights to and from it
(``state_dict`` / ``load_state_dict``), so a checkpoint trained anywhere loads everywhere and the
same bytes can be hashed into a version's provenance. Layouts are torchvision's: convs OIHW,
linears ``(out, in)`` consuming a C,H,W flatten, BatchNorm ``weight``/``bias``/``running_mean``/
``running_var`` (no ``num_batches_tracked``), all float32.

Reading is safe by construction: safetensors holds only tensors, ``.pth``/``.pt`` are read with
``torch.load(weights_only=True)`` (no arbitrary unpickling), ``.keras`` with Keras' ``safe_mode``.
Everything else (plain pickles, ``.h5``, ``.npz``, ...) is refused. No framework is imported
until a file that needs it is read.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import numpy as np

from ._distribution import install_command
from .errors import InvalidWeights, NotFound

if TYPE_CHECKING:
    from .plugins import FrameworkPlugin

# Suffix -> reader. Anything else is refused (see _refuse).
FORMATS: dict[str, str] = {".safetensors": "safetensors", ".pth": "torch", ".pt": "torch", ".keras": "keras"}
ALLOWED = ".safetensors, .pth/.pt (read with torch.load(weights_only=True)), .keras (Keras safe_mode)"
METADATA_KEY = "zoo"  # one key only: safetensors writes metadata from a hash map, so >1 key has no stable order
DTYPE = np.float32

PathLike = Union[str, "os.PathLike[str]"]
Shapes = Mapping[str, Sequence[int]]


class LoadedWeights(NamedTuple):
    """A canonical state and the sha256 of the file it was read from (unpacks as ``state, sha``)."""

    state: dict[str, np.ndarray]
    sha256: str


# --------------------------------------------------------------------------- hashing


def file_sha256(path: PathLike) -> str:
    """sha256 of a file's bytes, streamed (weight files can be 0.5 GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_bytes(state: Mapping[str, np.ndarray], *, metadata: Mapping[str, Any] | None = None) -> bytes:
    """The exact bytes :func:`save_weights` writes: equal states and metadata give equal bytes (and sha256)."""
    from safetensors.numpy import save

    header = {METADATA_KEY: json.dumps(dict(metadata), sort_keys=True, default=str)} if metadata else None
    return save(_as_canonical(state, source="<state>"), metadata=header)


def state_sha256(state: Mapping[str, np.ndarray], *, metadata: Mapping[str, Any] | None = None) -> str:
    """sha256 of the file :func:`save_weights` would write for ``state``, without writing it."""
    return hashlib.sha256(canonical_bytes(state, metadata=metadata)).hexdigest()


# --------------------------------------------------------------------------- write / read


def save_weights(state: Mapping[str, np.ndarray], path: PathLike, *, metadata: Mapping[str, Any] | None = None) -> str:
    """Write ``state`` as canonical safetensors; return the file's sha256.

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
    from ._atomic import write_file

    write_file(path, data)  # unpredictable O_EXCL|O_NOFOLLOW temp name, then one atomic rename
    return hashlib.sha256(data).hexdigest()


def read_metadata(path: PathLike) -> dict[str, Any]:
    """The ``zoo`` metadata of a canonical safetensors file ({} for foreign files)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            raw = (fh.metadata() or {}).get(METADATA_KEY)
    except Exception as exc:
        raise InvalidWeights(f"Cannot read {str(path)!r} as safetensors: {exc}", hint=f"allowed formats: {ALLOWED}") from exc
    try:
        return dict(json.loads(raw)) if raw else {}
    except (ValueError, TypeError):
        return {}


def load_weights(path: PathLike) -> LoadedWeights:
    """Read a weight file into a canonical state (float32 numpy arrays) and its sha256.

    Raises InvalidWeights for a missing file, a refused format, an unsafe or corrupt file, or
    non-tensor content; the message names the file and the allowed formats.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidWeights(f"Weight file not found: {str(path)!r}", hint=f"give an existing file; allowed formats: {ALLOWED}")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        _refuse(path)
    sha = file_sha256(path)
    if kind == "safetensors":
        state = _read_safetensors(path)
    elif kind == "torch":
        state = _read_torch(path)
    else:
        state = _read_keras(path)
    return LoadedWeights(_as_canonical(state, source=str(path)), sha)


def _refuse(path: Path) -> None:
    why = {
        ".h5": "legacy Keras HDF5 is not covered by Keras' safe_mode",
        ".hdf5": "legacy Keras HDF5 is not covered by Keras' safe_mode",
        ".pkl": "a pickle can run arbitrary code when loaded",
        ".pickle": "a pickle can run arbitrary code when loaded",
        ".ckpt": "checkpoint formats other than torch's zip are not read",
        ".onnx": "an ONNX file is a model, not canonical weights (use `zoo register`)",
    }.get(path.suffix.lower(), "its format is not one zoo reads safely")
    raise InvalidWeights(
        f"Refusing to read weights from {str(path)!r}: {why}. Allowed formats: {ALLOWED}",
        hint="convert it to .safetensors in its own framework (torch: safetensors.torch.save_file(model.state_dict(), ...))",
    )


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except Exception as exc:  # SafetensorError, or a dtype numpy lacks (bfloat16)
        raise InvalidWeights(
            f"Cannot read {str(path)!r} as safetensors: {type(exc).__name__}: {exc}",
            hint=f"the file is corrupt or not safetensors; allowed formats: {ALLOWED}",
        ) from exc


def _read_torch(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: tensors and plain containers only, no code execution."""
    try:
        import torch
    except ImportError as exc:
        raise InvalidWeights(
            f"Reading {str(path)!r} needs PyTorch, which is not installed",
            hint=f"{install_command('torch')}, or convert the file to .safetensors",
        ) from exc
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (unsafe global), RuntimeError (corrupt / TorchScript), EOFError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InvalidWeights(
            f"Refusing {str(path)!r}: torch.load(weights_only=True) rejected it ({type(exc).__name__}: {first[:300]})",
            hint=f"only plain tensor state dicts are read, never arbitrary pickles; allowed formats: {ALLOWED}",
        ) from exc
    state = _unwrap_checkpoint(obj, path)
    out: dict[str, Any] = {}
    bad = []
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            bad.append(f"{key!r} ({type(value).__name__})")
            continue
        if key.endswith("num_batches_tracked"):
            continue  # a training counter, not part of the canonical format
        t = value.detach().cpu()
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.float()  # fp16 / bf16 / fp64 checkpoints: canonical is float32
        out[key] = t.numpy()
    if bad:
        raise InvalidWeights(
            f"{str(path)!r} holds values that are not tensors: {', '.join(bad[:10])}" + (" ..." if len(bad) > 10 else ""),
            hint="save model.state_dict(), not the model or an optimizer state",
        )
    return out


def _unwrap_checkpoint(obj: Any, path: Path) -> Mapping[Any, Any]:
    """A state dict, possibly wrapped the usual ways: {"state_dict": ...}, {"model": ...}, DataParallel's "module."."""
    if not isinstance(obj, Mapping):
        raise InvalidWeights(
            f"{str(path)!r} holds a {type(obj).__name__}, not a state dict",
            hint="save model.state_dict() (a mapping of names to tensors)",
        )
    for key in ("state_dict", "model_state_dict", "model"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            obj = inner
            break
    keys = [k for k in obj if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _read_keras(path: Path) -> dict[str, Any]:
    """A ``.keras`` archive loaded with ``safe_mode=True``, converted by the TensorFlow plugin."""
    from .plugins import get_plugin

    try:
        plugin = get_plugin("tensorflow")
        import keras

        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
        return plugin.state_dict(model)
    except InvalidWeights:
        raise
    except Exception as exc:  # PluginUnavailable, a Keras refusal (unsafe lambda), a model the plugin did not build
        raise InvalidWeights(
            f"Cannot read {str(path)!r} as a zoo Keras model (safe_mode=True): {type(exc).__name__}: {str(exc)[:300]}",
            hint="only .keras files saved from a model the TensorFlow plugin built are read; "
            f"or convert to .safetensors. Allowed formats: {ALLOWED}",
        ) from exc


def _as_canonical(state: Mapping[str, Any], *, source: str) -> dict[str, np.ndarray]:
    """float32, C-contiguous numpy arrays keyed by str; anything else is InvalidWeights."""
    out: dict[str, np.ndarray] = {}
    bad = []
    for key, value in state.items():
        if not isinstance(key, str):
            bad.append(f"{key!r} (key is not a string)")
            continue
        if key.endswith("num_batches_tracked"):
            continue
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            bad.append(f"{key} (dtype {arr.dtype})")
            continue
        out[key] = np.ascontiguousarray(arr, dtype=DTYPE)
    if bad:
        raise InvalidWeights(
            f"{source} holds tensors that are not floating point: {', '.join(bad[:10])}" + (" ..." if len(bad) > 10 else ""),
            hint="canonical weights are float32 tensors in torchvision's layout",
        )
    if not out:
        raise InvalidWeights(f"{source} holds no tensors", hint="save model.state_dict()")
    return out


# --------------------------------------------------------------------------- checking


def shapes_of(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(int(d) for d in np.shape(v)) for k, v in state.items()}


def expected_shapes(plugin: "FrameworkPlugin", arch: str, *, num_classes: int = 1000, **build_options: Any) -> dict[str, tuple[int, ...]]:
    """The canonical tensor names and shapes of ``arch``, read from a model ``plugin`` builds."""
    if arch not in plugin.architectures():
        raise NotFound(
            f"Plugin {plugin.name!r} does not build {arch!r}. It builds: {', '.join(plugin.architectures())}",
            hint="`zoo archs` lists every architecture of every plugin",
        )
    return shapes_of(plugin.state_dict(plugin.build(arch, num_classes=num_classes, **build_options)))


def weight_mismatches(state: Mapping[str, Any], expected: Shapes) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped) tensor names of ``state`` against ``expected`` shapes."""
    got = shapes_of(state)
    missing = sorted(k for k in expected if k not in got)
    unexpected = sorted(k for k in got if k not in expected)
    misshaped = sorted(
        f"{k}: expected {tuple(expected[k])}, got {got[k]}" for k in expected if k in got and tuple(expected[k]) != got[k]
    )
    return missing, unexpected, misshaped


IGNORED_SUFFIX = "num_batches_tracked"  # an int64 BN counter torchvision checkpoints carry; never needed
# torchvision's GoogLeNet checkpoint keeps its auxiliary heads; a model built without them ignores them
# (torchvision's own builder drops them after loading, too).
AUX_PREFIXES = ("aux1.", "aux2.")
_MAX_LISTED = 12


def _listing(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    return shown + (f"; ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def match_state(
    state: Mapping[str, Any], expected: Shapes, *, source: str = "The weights", what: str = "the model"
) -> dict[str, np.ndarray]:
    """The arrays of ``state`` that load into a model whose tensors have ``expected`` shapes.

    All-or-nothing: one InvalidWeights lists every missing, unexpected, mis-shaped and
    non-numeric tensor. ``num_batches_tracked`` is ignored, and so are auxiliary heads when the
    model has none. Both plugins load through this, so their errors read the same.
    """
    if not isinstance(state, Mapping):
        raise InvalidWeights(f"Expected a mapping of tensor name to array. Received: {type(state).__name__}")
    has_aux = any(k.startswith(AUX_PREFIXES) for k in expected)
    given = {str(k): v for k, v in state.items()
             if not str(k).endswith(IGNORED_SUFFIX) and (has_aux or not str(k).startswith(AUX_PREFIXES))}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped: list[str] = []
    not_numeric: list[str] = []
    arrays: dict[str, np.ndarray] = {}
    for name in sorted(set(expected) & set(given)):
        try:
            array = np.asarray(given[name])
        except Exception:  # an object that is not array-like
            not_numeric.append(f"{name} (not an array: {type(given[name]).__name__})")
            continue
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            not_numeric.append(f"{name} (dtype {array.dtype})")
            continue
        want = tuple(int(d) for d in expected[name])
        if tuple(array.shape) != want:
            misshaped.append(f"{name}: expected {want}, got {tuple(array.shape)}")
            continue
        arrays[name] = array
    problems = [(label, names) for label, names in (
        ("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped), ("not numeric", not_numeric)) if names]
    if problems:
        hint = ("canonical weights use torchvision's names and layouts (OIHW convs, (out, in) linears); "
                "check the architecture and num_classes (--num-classes)")
        if has_aux and missing and all(k.startswith(AUX_PREFIXES) for k in missing):
            hint += "; these weights have no auxiliary heads: build googlenet with aux_logits=False"
        raise InvalidWeights(
            f"{source} do not fit {what} ({len(expected)} tensors expected): "
            + " | ".join(f"{len(names)} {label}: {_listing(names)}" for label, names in problems),
            hint=hint,
        )
    return arrays


def check_state(state: Mapping[str, Any], expected: Shapes, *, source: str = "The weights", what: str = "the model") -> None:
    """Raise InvalidWeights listing every mismatch of ``state`` against ``expected`` (none: return)."""
    match_state(state, expected, source=source, what=what)


# --------------------------------------------------------------------------- random canonical weights

_BLOCK_BN = re.compile(r"^(?P<block>.*\blayer\d+\.\d+)\.bn(?P<index>\d+)$")
RESIDUAL_GAMMA = (0.1, 0.3)  # gamma of the last BN of each residual branch: keeps ResNet-152 activations O(1)
BN_GAMMA = (0.5, 1.5)
BN_VAR = (0.5, 2.0)
BN_MEAN_STD = 0.1
BN_BETA_STD = 0.1
# He's gain 2 assumes the inputs' mean passes through; zero-mean filters see only Var(ReLU(z)) = (1/2 - 1/(2 pi)) Var(z).
RELU_GAIN = 1.0 / (0.5 - 0.5 / np.pi)


def random_canonical_weights(
    source: "FrameworkPlugin | Mapping[str, Sequence[int] | np.ndarray]",
    *,
    seed: int,
    arch: str | None = None,
    num_classes: int = 1000,
) -> dict[str, np.ndarray]:
    """Seeded, well-scaled canonical weights for the shapes of ``source`` (a plugin + ``arch``, or a shape map).

    Random but not arbitrary: parity must exercise every tensor and see input-dependent logits.
    - BatchNorm: running mean ~ N(0, 0.1), var ~ U(0.5, 2) (a dropped or swapped statistic shows),
      gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1); the last BN of each residual branch gets gamma ~
      U(0.1, 0.3), so the 50 residual additions of ResNet-152 keep the logit std O(1).
    - Convs and linears: zero-mean filters (each output's weights are centred) with std
      sqrt(g / fan_in), g = 1 / Var(ReLU(z)) for unit z: centring removes the positive mean ReLU
      leaves, which would otherwise make every image give nearly the same logits (a weak top-1
      test); g keeps the signal's scale through VGG's 16 plain layers.
    - Biases ~ U(+-1/sqrt(fan_in)) (torch's default): large enough that a dropped bias breaks parity.
    Each tensor draws from its own stream seeded by (seed, crc32(name)): the result does not
    depend on dict order.
    """
    if isinstance(source, Mapping):
        shapes = {k: tuple(int(d) for d in (np.shape(v) if isinstance(v, np.ndarray) else v)) for k, v in source.items()}
    else:
        if arch is None:
            raise InvalidWeights("random_canonical_weights(plugin, ...) needs arch=", hint="pass arch='resnet18'")
        shapes = expected_shapes(source, arch, num_classes=num_classes)
    bn_prefixes = {k[: -len(".running_var")] for k in shapes if k.endswith(".running_var")}
    residual_last = _residual_branch_ends(bn_prefixes)
    state: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])

        def normal(std: float, rng: np.random.Generator = rng, shape: tuple[int, ...] = shape) -> np.ndarray:
            return rng.standard_normal(shape, dtype=DTYPE) * DTYPE(std)

        def uniform(low: float, high: float, rng: np.random.Generator = rng, shape: tuple[int, ...] = shape) -> np.ndarray:
            return rng.random(shape, dtype=DTYPE) * DTYPE(high - low) + DTYPE(low)

        prefix, _, leaf = name.rpartition(".")
        if prefix in bn_prefixes:
            if leaf == "weight":
                arr = uniform(*(RESIDUAL_GAMMA if prefix in residual_last else BN_GAMMA))
            elif leaf == "bias":
                arr = normal(BN_BETA_STD)
            elif leaf == "running_mean":
                arr = normal(BN_MEAN_STD)
            elif leaf == "running_var":
                arr = uniform(*BN_VAR)
            else:
                arr = normal(0.1)
        elif len(shape) >= 2:  # conv (O, I, kh, kw) or linear (out, in)
            fan_in = int(np.prod(shape[1:]))
            arr = normal(np.sqrt(RELU_GAIN / max(fan_in, 1)))
            if fan_in > 1:  # zero-mean filters: the positive mean ReLU leaves does not swamp the signal
                arr -= arr.reshape(shape[0], -1).mean(axis=1).reshape((shape[0],) + (1,) * (len(shape) - 1))
        elif leaf == "bias" and len(shapes.get(f"{prefix}.weight", ())) >= 2:
            bound = 1.0 / np.sqrt(max(int(np.prod(shapes[f"{prefix}.weight"][1:])), 1))
            arr = uniform(-bound, bound)
        else:
            arr = normal(0.1)
        state[name] = np.ascontiguousarray(arr, dtype=DTYPE)
    return state


def _residual_branch_ends(bn_prefixes: set[str]) -> set[str]:
    """The last ``bnN`` of each torchvision ResNet block (``layerX.Y.bn2`` / ``.bn3``): the branch's output scale."""
    last: dict[str, tuple[int, str]] = {}
    for prefix in bn_prefixes:
        m = _BLOCK_BN.match(prefix)
        if m:
            index = int(m.group("index"))
            if index > last.get(m.group("block"), (-1, ""))[0]:
                last[m.group("block")] = (index, prefix)
    return {prefix for _, prefix in last.values()}


def infer_num_classes(state: Mapping[str, Any], expected: Shapes, *, assumed: int) -> int | None:
    """The class count ``state`` was saved for, given ``expected`` shapes built for ``assumed`` classes.

    The classifier tensors are the only ones whose leading dim is the class count; if every
    mis-shaped tensor is one of them and they agree on a new leading dim, that is the answer.
    None when the state does not differ in exactly that way (let :func:`check_state` explain).
    """
    missing, unexpected, _ = weight_mismatches(state, expected)
    if missing or unexpected:
        return None
    got = shapes_of(state)
    counts = set()
    for key, want in expected.items():
        have = got[key]
        if tuple(want) == have:
            continue
        if not (len(have) == len(want) and want and want[0] == assumed and tuple(have[1:]) == tuple(want[1:])):
            return None
        counts.add(have[0])
    if not counts:
        return assumed
    if len(counts) != 1:
        return None
    (count,) = counts
    return count if count >= 1 else None
