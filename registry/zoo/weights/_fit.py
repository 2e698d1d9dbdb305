"""Does a state fit a model? The one check both plugins load through, so their errors read the same."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidWeights, NotFound
from ._canonical import IGNORED_SUFFIX, Shapes, shapes_of

if TYPE_CHECKING:
    from ..plugins import FrameworkPlugin

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
