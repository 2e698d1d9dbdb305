"""Class names: what a model's output indices mean, recorded on the version.

A :class:`Labels` record is a name (``imagenet-1k``, or the labels file's stem) and one class name
per output index. Sources:

- built-in lists shipped as package data (:data:`BUILTIN`): ``imagenet-1k`` is torchvision's 1000
  ImageNet class names (``weights.meta["categories"]``, where the two duplicate names of older
  releases are told apart: "crane bird", "maillot tank suit");
- a labels file: UTF-8 text, one class name per line, line N naming class N-1.

A labels file is refused, naming the line, when it is not UTF-8, has a blank line before its last
name (it would shift every later class id), a duplicate name, a name over
:data:`MAX_LABEL_LENGTH` characters, or control, bidi or line-separator characters. Surrounding
whitespace, a UTF-8 byte-order mark, ``\\r\\n`` line ends and trailing blank lines are accepted.

:func:`top_k` turns logits into the ``k`` most probable classes per sample (softmax probabilities).
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._names import received
from ._record import Record
from .errors import InvalidInput, NotFound

__all__ = ["BUILTIN", "MAX_LABEL_LENGTH", "Labels", "Prediction", "builtin_labels", "parse_labels", "read_labels",
           "resolve_labels", "top_k"]

BUILTIN = {"imagenet-1k": "imagenet-1k.txt"}  # name -> file in zoo/labels/
MAX_LABEL_LENGTH = 256  # as tag values
MAX_LABELS_FILE_BYTES = 16 << 20
# Bidi embeddings/overrides/isolates and the Unicode line/paragraph separators: they make a label
# print as something else, or on two lines. Control characters (category Cc) are refused too.
_FORBIDDEN = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029\u200e\u200f\u061c")


@dataclass(frozen=True)
class Labels(Record):
    """Class names by output index. ``name`` says where they came from (``imagenet-1k``, a file stem)."""

    name: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", check_classes(self.classes, source=f"labels {self.name!r}"))

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.classes)

    def __getitem__(self, index: int) -> str:
        return self.classes[index]

    @property
    def sha256(self) -> str:
        """Digest of the names as a labels file (one per line, UTF-8, final newline): equal lists, equal digest."""
        return hashlib.sha256(("\n".join(self.classes) + "\n").encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """``imagenet-1k (1000 classes: tench, goldfish, ...)`` for ``zoo show``."""
        head = ", ".join(self.classes[:3]) + (", ..." if len(self.classes) > 3 else "")
        return f"{self.name} ({len(self.classes)} classes: {head})"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | Sequence[str]) -> "Labels":
        """The inverse of :meth:`to_dict`; a bare list of names is accepted too (name ``custom``)."""
        if isinstance(d, Mapping):
            return cls(name=str(d.get("name") or "custom"), classes=tuple(d["classes"]))
        return cls(name="custom", classes=tuple(d))


@dataclass(frozen=True)
class Prediction(Record):
    """One of a sample's top-k classes."""

    label: str | None  # None when the model has no labels
    class_id: int
    probability: float  # softmax over the logits


def _check_name(label: Any, where: str) -> str:
    if not isinstance(label, str):
        raise InvalidInput(f"Expected a class name (text). Received: {received(label)} at {where}")
    label = label.strip()
    if not label:
        raise InvalidInput(f"Expected a class name. Received: a blank line at {where}",
                           hint="a blank line would shift every later class id: remove it, or name the class")
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"Expected a class name of at most {MAX_LABEL_LENGTH} characters. "
                           f"Received: {received(label)} at {where}", hint="shorten the name")
    bad = next((c for c in label if c in _FORBIDDEN or unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InvalidInput(f"Expected a class name of printable characters. Received: {received(label)} at {where} "
                           f"(contains U+{ord(bad):04X} {unicodedata.name(bad, 'control character')})",
                           hint="remove control, tab, bidi and line-separator characters")
    return label


def check_classes(classes: Any, *, source: str = "labels", first_line: int = 1) -> tuple[str, ...]:
    """Validated, stripped class names; :class:`~zoo.errors.InvalidInput` naming the first bad one."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise InvalidInput(f"Expected a list of class names. Received: {received(classes)}",
                           hint="e.g. labels=['cat', 'dog'], a labels file path, or 'imagenet-1k'")
    if not classes:
        raise InvalidInput(f"Expected at least one class name. Received: an empty list ({source})",
                           hint="a labels file has one class name per line")
    names: list[str] = []
    seen: dict[str, int] = {}
    for offset, label in enumerate(classes):
        line = first_line + offset
        name = _check_name(label, f"line {line} of {source}")
        if name in seen:
            raise InvalidInput(f"Expected distinct class names. Received: {received(name)} on lines {seen[name]} and {line} "
                               f"of {source}", hint="each output index needs its own name: tell the two apart")
        seen[name] = line
        names.append(name)
    return tuple(names)


def parse_labels(data: bytes, *, source: str = "labels file") -> tuple[str, ...]:
    """Class names from the bytes of a labels file (see the module docstring for the rules)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(f"Expected a UTF-8 labels file. Received: {source}, invalid byte 0x{data[exc.start]:02x} on line {line}",
                           hint="re-save the file as UTF-8") from None
    lines = text.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()  # trailing newline(s): no class follows them, so no id shifts
    return check_classes(lines, source=source)


def read_labels(path: str | os.PathLike[str], *, name: str | None = None) -> Labels:
    """A :class:`Labels` from a labels file; ``name`` defaults to the file's stem. Missing file: NotFound."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_LABELS_FILE_BYTES:
            raise InvalidInput(f"Expected a labels file of at most {MAX_LABELS_FILE_BYTES >> 20} MiB. Received: {path} ({size:,} bytes)",
                               hint="one class name per line: is this the right file?")
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"Expected an existing labels file. Received: {path} (no such file)",
                       hint=f"check the path, or use a built-in list: {', '.join(BUILTIN)}") from None
    except IsADirectoryError:
        raise InvalidInput(f"Expected a labels file. Received: {path} (a folder)", hint="one class name per line") from None
    except OSError as exc:
        raise InvalidInput(f"Expected a readable labels file. Received: {path} ({exc.strerror or exc})",
                           hint="check the file's permissions") from None
    return Labels(name=name or path.stem or "custom", classes=parse_labels(data, source=str(path)))


def builtin_labels(name: str) -> Labels:
    """A built-in list by name (:data:`BUILTIN`); NotFound naming the known ones otherwise."""
    if name not in BUILTIN:
        raise NotFound(f"Expected a built-in labels list ({', '.join(BUILTIN)}). Received: {received(name)}",
                       hint="or give a labels file: one class name per line")
    data = resources.files("zoo").joinpath("labels").joinpath(BUILTIN[name]).read_bytes()
    return Labels(name=name, classes=parse_labels(data, source=f"zoo's built-in {name}"))


def resolve_labels(spec: Any) -> Labels | None:
    """``None``, a :class:`Labels`, a built-in name, a labels file path, or a list of names -> Labels or None.

    A string is a built-in name if it is one (``imagenet-1k``), else a path.
    """
    if spec is None or isinstance(spec, Labels):
        return spec
    if isinstance(spec, str) and spec in BUILTIN:
        return builtin_labels(spec)
    if isinstance(spec, (str, os.PathLike)):
        return read_labels(spec)
    if isinstance(spec, Mapping):
        return Labels.from_dict(spec)
    return Labels(name="custom", classes=check_classes(spec))


def check_labels_fit(labels: Labels, num_classes: int) -> None:
    """InvalidInput unless there is exactly one name per output."""
    if len(labels) != num_classes:
        raise InvalidInput(f"Expected {num_classes} class names, one per model output. Received: {len(labels)} in {labels.name!r}",
                           hint="the labels file must have one line per class, in output order")


def top_k(logits: Any, labels: Labels | Sequence[str] | None = None, k: int = 5) -> list[list[Prediction]]:
    """The ``k`` most probable classes of each sample, most probable first (ties: lower class id first).

    ``logits``: ``[N, C]`` or ``[C]`` raw scores (a model that already ends in softmax gives
    probabilities that are softmaxed again: the order stays right, the figures do not). ``k`` larger
    than C gives C. Probabilities are a float64 softmax over all C classes.
    """
    import numpy as np  # here, not at the top: reading a version's labels (zoo list) needs no numpy

    scores = np.asarray(logits)
    if not np.issubdtype(scores.dtype, np.number) or scores.ndim not in (1, 2) or scores.shape[-1] == 0:
        raise InvalidInput(f"Expected logits of shape [N, classes] or [classes]. Received: {scores.dtype} {tuple(scores.shape)}",
                           hint="pass the output of model.predict(batch)")
    if scores.ndim == 1:
        scores = scores[None, :]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"Expected top_k to be a positive integer. Received: {received(k)}", hint="e.g. top_k=5")
    names = None if labels is None else (labels.classes if isinstance(labels, Labels) else tuple(labels))
    if names is not None and len(names) != scores.shape[1]:
        raise InvalidInput(f"Expected {scores.shape[1]} class names, one per logit. Received: {len(names)}",
                           hint="use the labels recorded with this model")
    x = scores.astype(np.float64)
    x = x - x.max(axis=1, keepdims=True)
    probs = np.exp(x)
    probs /= probs.sum(axis=1, keepdims=True)
    k = min(int(k), scores.shape[1])
    out = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:k]
        out.append([Prediction(label=names[i] if names is not None else None, class_id=int(i), probability=float(row[i]))
                    for i in order])
    return out
