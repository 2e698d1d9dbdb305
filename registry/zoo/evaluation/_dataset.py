"""A labelled image set on disk: an ImageFolder tree or a CSV of ``path,label``, read without surprises.

The invariant: every item :func:`scan` returns is a regular file inside the data set's folder (a
symlink that leaves it is skipped and counted, never followed), whose class is one the caller knows;
everything that is not used is counted under a named reason, so a report says what it left out. The
digest names the exact items and bytes that were evaluated, so the same set is recognised later.
"""
from __future__ import annotations

import csv
import hashlib
import os
import random
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInput

# torchvision's ImageFolder extensions (IMG_EXTENSIONS), lower case.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif"})
MAX_CSV_BYTES = 64 * 1024 * 1024  # a CSV listing is text: 64 MiB is ~1M rows

SKIP_NOT_IMAGE = "not an image file (by suffix)"
SKIP_OUTSIDE = "symlink or path leading outside the data set"
SKIP_NOT_REGULAR = "not a regular file"
SKIP_UNKNOWN_CLASS = "class not among the model's labels"
SKIP_UNDECODABLE = "could not be decoded"


@dataclass(frozen=True)
class Item:
    path: Path  # absolute, resolved, inside the root
    relative: str  # as listed (ImageFolder: class/file; CSV: the path column)
    label: int  # the model's class index


@dataclass
class DataSet:
    root: Path
    layout: str  # "folder" or "csv"
    classes: list[str]  # the data set's class names, sorted by the model's class index
    items: list[Item]
    total: int  # usable items before --limit
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    empty_classes: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)  # the model's class index of each of ``classes``

    def skip(self, reason: str, what: str) -> None:
        self.skipped[reason] += 1
        examples = self.skipped_examples.setdefault(reason, [])
        if len(examples) < 5:
            examples.append(what)


def _class_index(name: str, labels: Sequence[str] | None, num_classes: int) -> int | None:
    """The model's class index of a folder or CSV label: its label name, else (a version without
    labels) a class id written as an integer."""
    if labels is not None:
        try:
            return list(labels).index(name)
        except ValueError:
            pass
    if name.isdigit() and int(name) < num_classes:
        return int(name)
    return None


def _inside(path: Path, root: Path) -> Path | None:
    """``path`` resolved, when it stays inside ``root`` (which is resolved), else None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link, loop
        return None
    return real if real == root or root in real.parents else None


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _unknown(names: Sequence[str], labels: Sequence[str] | None, where: str) -> InvalidInput:
    shown = ", ".join(repr(n) for n in sorted(names)[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    known = (f"its labels ({len(labels)} names, e.g. {', '.join(repr(x) for x in list(labels)[:3])})" if labels is not None
             else "class ids 0..N-1 (it records no labels)")
    return InvalidInput(f"Expected {where} named after the model's classes: {known}. Received: {shown}",
                        hint="rename them to the model's label names, or pass --skip-unknown to leave those images out "
                             "(they are counted in the report)")


def _usable(path: Path, root: Path) -> tuple[Path | None, str | None]:
    """(the resolved file, None) when ``path`` is an image file inside ``root``; else (None, why it is skipped)."""
    real = _inside(path, root)
    if real is None:
        return None, SKIP_OUTSIDE
    if not _regular(real):
        return None, SKIP_NOT_REGULAR
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, SKIP_NOT_IMAGE
    return real, None


def _scan_class(data: DataSet, folder: Path, index: int) -> int:
    """Add the images under one class folder (os.walk follows no symlinked folder); how many were found."""
    found = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames) + sorted(d for d in dirnames if Path(dirpath, d).is_symlink()):
            path = Path(dirpath, name)
            relative = path.relative_to(data.root).as_posix()
            real, why = _usable(path, data.root)
            if real is None:
                data.skip(why or SKIP_NOT_REGULAR, relative)
            else:
                data.items.append(Item(real, relative, index))
                found += 1
    return found


def _scan_folder(root: Path, labels: Sequence[str] | None, num_classes: int, skip_unknown: bool) -> DataSet:
    data = DataSet(root=root, layout="folder", classes=[], items=[], total=0)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InvalidInput(f"Expected a folder with one subfolder per class (ImageFolder layout). Received: {str(root)!r}, "
                           "which has no subfolders", hint="lay it out as DIR/<class name>/<image>, or give a CSV of path,label")
    unknown = [f.name for f in folders if _class_index(f.name, labels, num_classes) is None]
    if unknown and not skip_unknown:
        raise _unknown(unknown, labels, "class folders")
    by_index: dict[int, str] = {}
    for folder in folders:
        index = _class_index(folder.name, labels, num_classes)
        if index is None:
            for dirpath, _, filenames in os.walk(folder):
                for name in filenames:
                    data.skip(SKIP_UNKNOWN_CLASS, Path(dirpath, name).relative_to(root).as_posix())
        elif _inside(folder, root) is None:  # a class folder that is a symlink out of the set
            data.skip(SKIP_OUTSIDE, folder.name + "/")
        else:
            by_index[index] = folder.name
            if not _scan_class(data, folder, index):
                data.empty_classes.append(folder.name)
    data.indices = sorted(by_index)
    data.classes = [by_index[i] for i in data.indices]
    return data


def _scan_csv(path: Path, labels: Sequence[str] | None, num_classes: int, skip_unknown: bool) -> DataSet:
    root = path.parent
    if path.stat().st_size > MAX_CSV_BYTES:
        raise InvalidInput(f"Expected a CSV listing of at most {MAX_CSV_BYTES // 2**20} MiB. Received: {str(path)!r} "
                           f"({path.stat().st_size:,} bytes)", hint="split the set, or lay it out as class folders")
    data = DataSet(root=root, layout="csv", classes=[], items=[], total=0)
    unknown: set[str] = set()
    seen: dict[int, str] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise InvalidInput(f"Expected two columns (path,label) on every line of {str(path)!r}. Received: "
                                   f"{len(row)} on line {line}: {row[:3]!r}", hint="one image per line: images/cat1.jpg,cat")
            relative, name = row[0].strip(), row[1].strip()
            if line == 1 and (relative.lower(), name.lower()) in {("path", "label"), ("file", "label"), ("image", "label")}:
                continue  # a header
            index = _class_index(name, labels, num_classes)
            if index is None:
                unknown.add(name)
                data.skip(SKIP_UNKNOWN_CLASS, relative)
                continue
            seen[index] = name
            real, why = (None, SKIP_OUTSIDE) if Path(relative).is_absolute() else _usable(root / relative, root)
            if real is None:
                data.skip(why or SKIP_NOT_REGULAR, relative)
            else:
                data.items.append(Item(real, relative, index))
    if unknown and not skip_unknown:
        raise _unknown(sorted(unknown), labels, f"labels in {path.name}")
    data.indices = sorted(seen)
    data.classes = [seen[i] for i in data.indices]
    return data


def scan(where: str | os.PathLike[str], *, labels: Sequence[str] | None, num_classes: int, skip_unknown: bool = False,
         limit: int | None = None, seed: int = 0) -> DataSet:
    """The labelled images at ``where`` (a folder of class folders, or a ``.csv`` of path,label whose paths are
    relative to the CSV's folder), matched against the model's ``labels``; ``limit`` takes a seeded sample."""
    path = Path(where)
    if limit is not None and limit < 1:
        raise InvalidInput(f"Expected a sample size (limit) >= 1. Received: {limit}", hint="e.g. --limit 500 for a quick check")
    try:
        st = os.stat(path)
    except OSError as exc:
        why = "no such file or folder" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        raise InvalidInput(f"Expected a data set folder or a .csv file. Received: {str(path)!r} ({why})",
                           hint="e.g. --data val/ (one subfolder per class) or --data val.csv (path,label lines)") from None
    if stat.S_ISDIR(st.st_mode):
        data = _scan_folder(path.resolve(), labels, num_classes, skip_unknown)
    elif stat.S_ISREG(st.st_mode) and path.suffix.lower() == ".csv":
        data = _scan_csv(path.resolve(), labels, num_classes, skip_unknown)
    else:
        raise InvalidInput(f"Expected a data set folder or a regular .csv file. Received: {str(path)!r}",
                           hint="e.g. --data val/ (one subfolder per class) or --data val.csv (path,label lines)")
    data.total = len(data.items)
    if not data.items:
        reasons = "; ".join(f"{n} {why}" for why, n in data.skipped.items()) or "no files"
        raise InvalidInput(f"Expected at least one usable labelled image in {str(path)!r}. Received: none ({reasons})",
                           hint="check the layout: DIR/<class name>/<image>.jpg, or CSV lines path,label")
    if limit is not None and limit < len(data.items):
        data.items = sorted(random.Random(seed).sample(data.items, limit), key=lambda item: item.relative)
    return data


def digest(items: Sequence[tuple[Item, bytes]]) -> str:
    """sha256 over the evaluated (listed path, class index, content sha256) triples, in listing order."""
    h = hashlib.sha256()
    for item, content in sorted(items, key=lambda pair: pair[0].relative):
        h.update(f"{item.relative}\0{item.label}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return h.hexdigest()
