"""Catalogs of published checkpoints: where a named checkpoint lives, its hash, and what it expects.

A catalog is a JSON file (data, not code)::

    {"format": "zoo-weights-catalog/1",
     "entries": [{"name": "torchvision:IMAGENET1K_V2", "arch": "resnet50",
                  "url": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
                  "sha256": "11ad3fa6",            # the published prefix (8+ hex) or the full digest
                  "num_classes": 1000, "labels": "imagenet-1k",
                  "transform": {"resize": 232, "crop": 224, "interpolation": "bilinear",
                                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                  "metrics": {"ImageNet-1K": {"acc@1": 80.858, "acc@5": 95.434}},
                  "num_params": 25557032, "default": true,
                  "build_options": {}}]}   # options the weights need (GoogLeNet: transform_input)

The catalogs shipped in ``zoo/weights/catalogs/`` (torchvision's weight tables for the nine
architectures) are always read; users add their own with ``ZOO_WEIGHTS_CATALOG`` (paths joined by
``os.pathsep``) or ``--catalog FILE``. Invariant: an entry is identified by ``(name, arch)``, and
two entries with the same identity, in one file or across files, are an error naming both files,
never a silent override. ``SOURCE:DEFAULT`` names the entry of that source marked ``default``.
"""
from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ..errors import InvalidInput, NotFound

__all__ = ["BUILTIN_DIR", "ENV", "FORMAT", "CatalogEntry", "catalog_transform", "entries", "load_catalog", "lookup"]

FORMAT = "zoo-weights-catalog/1"
ENV = "ZOO_WEIGHTS_CATALOG"
BUILTIN_DIR = Path(__file__).with_name("catalogs")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HEX = re.compile(r"^[0-9a-f]{8,64}$")
FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,200}$")
DEFAULT = "DEFAULT"
MAX_CATALOG_BYTES = 8 << 20  # torchvision's whole table is ~30 KB; a bigger "catalog" is not one
RESERVED_BUILD_OPTIONS = {"num_classes": "the entry's 'num_classes'", "seed": "nothing: weights replace the initialisation"}
_KNOWN_KEYS = {"name", "arch", "url", "sha256", "num_classes", "labels", "transform", "metrics", "num_params",
               "file_size_mb", "recipe", "default", "build_options"}


@dataclass(frozen=True)
class CatalogEntry:
    """One published checkpoint. ``sha256`` is a hex prefix (8+ digits, as in torchvision's file names) or a full digest."""

    name: str  # "torchvision:IMAGENET1K_V2": SOURCE:WEIGHTS
    arch: str
    url: str
    sha256: str
    num_classes: int = 1000
    labels: str | None = None  # a labels id ("imagenet-1k"), resolved by whoever shows class names
    transform: Mapping[str, Any] = field(default_factory=dict)  # resize, crop, interpolation, mean, std
    metrics: Mapping[str, Any] = field(default_factory=dict)  # published accuracy, per dataset
    num_params: int | None = None
    build_options: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False
    recipe: str | None = None
    file_size_mb: float | None = None
    origin: str = ""  # the catalog file it came from

    @property
    def source(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def filename(self) -> str:
        """The file name in the URL: the cache key, and what a mirror serves (``$ZOO_WEIGHTS_MIRROR/<filename>``)."""
        return PurePosixPath(urlparse(self.url).path).name

    def provenance(self, *, downloaded_from: str | None = None) -> dict[str, Any]:
        """What a version imported from this entry records (``provenance["pretrained"]``); extend, don't rename."""
        out: dict[str, Any] = {"source": self.name, "url": self.url, "sha256_published": self.sha256,
                               "labels": self.labels, "transform": dict(self.transform), "metrics": dict(self.metrics),
                               "num_params": self.num_params, "catalog": self.origin}
        if self.recipe:
            out["recipe"] = self.recipe
        if downloaded_from and downloaded_from != self.url:
            out["downloaded_from"] = downloaded_from
        return out


def _bad(origin: str, where: str, expected: str, got: Any) -> InvalidInput:
    return InvalidInput(f"Catalog {origin}, {where}: expected {expected}. Received: {got!r}",
                        hint=f"fix the entry; the format is described in zoo.weights.catalog ({FORMAT})")


def _check_url(url: Any, origin: str, where: str) -> str:
    """An entry's ``url``: http(s), with a host, ending in a plain file name."""
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise _bad(origin, where, "'url', an http(s) URL", url)
    if not FILENAME.match(PurePosixPath(parsed.path).name):
        raise _bad(origin, where, "a URL ending in a plain file name", url)
    return str(url)


def _entry(raw: Any, origin: str, index: int) -> CatalogEntry:
    where = f"entry {index}"
    if not isinstance(raw, Mapping):
        raise _bad(origin, where, "an object", raw)
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _bad(origin, where, "a name SOURCE:WEIGHTS such as 'torchvision:IMAGENET1K_V1'", name)
    where = f"entry {index} ({name})"
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise _bad(origin, where, f"only the keys {', '.join(sorted(_KNOWN_KEYS))}", unknown)
    arch, url, sha = raw.get("arch"), _check_url(raw.get("url"), origin, where), raw.get("sha256")
    if not isinstance(arch, str) or not arch:
        raise _bad(origin, where, "'arch', an architecture name", arch)
    if not isinstance(sha, str) or not HEX.match(sha):
        raise _bad(origin, where, "'sha256', 8 to 64 lowercase hex digits (a prefix or the full digest)", sha)
    num_classes = raw.get("num_classes", 1000)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise _bad(origin, where, "'num_classes', an int >= 1", num_classes)
    for key in ("transform", "metrics", "build_options"):
        if not isinstance(raw.get(key, {}), Mapping):
            raise _bad(origin, where, f"'{key}', an object", raw.get(key))
    for key in raw.get("build_options", {}):
        if key in RESERVED_BUILD_OPTIONS:
            raise _bad(origin, where, f"'build_options' without {key!r} (set by {RESERVED_BUILD_OPTIONS[key]})", key)
    _check_transform(raw.get("transform", {}), origin, where)
    return CatalogEntry(
        name=name, arch=arch, url=url, sha256=sha, num_classes=num_classes, labels=raw.get("labels"),
        transform=dict(raw.get("transform", {})), metrics=dict(raw.get("metrics", {})), num_params=raw.get("num_params"),
        build_options=dict(raw.get("build_options", {})), default=bool(raw.get("default", False)),
        recipe=raw.get("recipe"), file_size_mb=raw.get("file_size_mb"), origin=origin,
    )


def catalog_transform(raw: Mapping[str, Any]) -> Any:
    """The :class:`~zoo.transforms.Transform` an entry's ``transform`` means (it becomes the imported version's),
    validated as every recorded transform is. torchvision's ``antialias`` must be true: zoo resizes with Pillow,
    which always antialiases."""
    from ..transforms import Transform

    fields = dict(raw)
    if fields.pop("antialias", True) is not True:
        raise InvalidInput("Expected 'antialias': true (zoo resizes with Pillow, which always antialiases). Received: "
                           f"{raw.get('antialias')!r}")
    if fields.get("crop") is None and "crop" in fields:
        raise InvalidInput("Expected a crop size. Received: null")
    return Transform.from_dict(fields)


def _check_transform(raw: Mapping[str, Any], origin: str, where: str) -> None:
    try:
        catalog_transform(raw)
    except InvalidInput as exc:
        raise _bad(origin, where, f"a valid 'transform' ({exc.message})", dict(raw)) from None


def load_catalog(path: str | os.PathLike[str]) -> list[CatalogEntry]:
    """The entries of one catalog file; InvalidInput naming the file and the entry for anything malformed.
    Only a regular file of at most ``MAX_CATALOG_BYTES`` is read (never /dev/zero or a FIFO)."""
    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise InvalidInput(f"Expected a catalog file. Received: {str(path)!r}, which is not a regular file",
                               hint=f"check --catalog / ${ENV}")
        with open(path, "rb") as fh:
            data = fh.read(MAX_CATALOG_BYTES + 1)
        if len(data) > MAX_CATALOG_BYTES:
            raise InvalidInput(f"Expected a catalog file of at most {MAX_CATALOG_BYTES >> 20} MiB. Received: "
                               f"{str(path)!r}, larger", hint=f"check --catalog / ${ENV}")
        doc = json.loads(data.decode("utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(f"Catalog file not found: {str(path)!r}", hint=f"check --catalog / ${ENV}") from exc
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"Cannot read catalog {str(path)!r} as JSON: {exc}",
                           hint=f"a catalog is a JSON object {{'format': '{FORMAT}', 'entries': [...]}}") from exc
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
        got = doc.get("format") if isinstance(doc, Mapping) else type(doc).__name__
        raise _bad(str(path), "top level", f"an object with \"format\": \"{FORMAT}\" and a list \"entries\"", got)
    found = [_entry(raw, str(path), i) for i, raw in enumerate(doc["entries"])]
    _check_unique(found)
    return found


def _check_unique(found: Iterable[CatalogEntry]) -> None:
    seen: dict[tuple[str, str], CatalogEntry] = {}
    defaults: dict[tuple[str, str], CatalogEntry] = {}
    for e in found:
        first = seen.setdefault((e.name, e.arch), e)
        if first is not e:
            raise InvalidInput(
                f"Duplicate catalog entry {e.name} for {e.arch}: in {first.origin} and in {e.origin}",
                hint="each (name, arch) may appear once across all catalogs; rename or remove one of them",
            )
        if e.default:
            other = defaults.setdefault((e.source, e.arch), e)
            if other is not e:
                raise InvalidInput(
                    f"Two default entries of {e.source} for {e.arch}: {other.name} ({other.origin}) and {e.name} ({e.origin})",
                    hint="mark one entry per source and architecture \"default\": true",
                )


def _catalog_paths(extra: Sequence[str | os.PathLike[str]]) -> list[Path]:
    paths = sorted(BUILTIN_DIR.glob("*.json"))
    value = os.environ.get(ENV, "")
    url = re.search(r"[A-Za-z][A-Za-z0-9+.-]+://", value)
    if url:
        raise InvalidInput(f"Expected ${ENV} as catalog file paths joined by {os.pathsep!r}. Received: a URL "
                           f"({url.group(0)}...)", hint="give local paths (download a remote catalog first), e.g. "
                           f"{ENV}=/etc/zoo/catalog.json{os.pathsep}./team.json")
    paths += [Path(p) for p in value.split(os.pathsep) if p.strip()]
    paths += [Path(p) for p in extra]
    return paths


def entries(catalogs: Sequence[str | os.PathLike[str]] = (), *, arch: str | None = None) -> list[CatalogEntry]:
    """Every entry of the built-in catalogs, ``$ZOO_WEIGHTS_CATALOG`` and ``catalogs``; duplicates are an error."""
    found: list[CatalogEntry] = []
    for path in _catalog_paths(catalogs):
        found.extend(load_catalog(path))
    _check_unique(found)
    return [e for e in found if arch is None or e.arch == arch]


def lookup(name: str, *, arch: str, catalogs: Sequence[str | os.PathLike[str]] = ()) -> CatalogEntry:
    """The entry ``name`` (``SOURCE:WEIGHTS``, or ``SOURCE:DEFAULT``) for ``arch``; NotFound lists the known ones."""
    known = entries(catalogs, arch=arch)
    source, _, weights = name.partition(":")
    for e in known:
        if e.name == name or (weights == DEFAULT and e.default and e.source == source):
            return e
    names = ", ".join(sorted(e.name for e in known)) or "none"
    raise NotFound(
        f"No checkpoint {name!r} for {arch!r} in the weight catalogs. Known for {arch}: {names}",
        hint=f"`zoo weights catalog {arch}` lists them; add your own with --catalog FILE or ${ENV}",
    )
