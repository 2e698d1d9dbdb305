"""What pip knows of zoo itself: the distribution's name, its version, and how to add an extra."""
from __future__ import annotations

import json
from functools import lru_cache

DISTRIBUTION = "zoo-registry"  # the import package and the command are `zoo`; "zoo" on PyPI is another project


@lru_cache(maxsize=1)
def version() -> str:
    from importlib import metadata  # not at import: `zoo --help` and `zoo list` never need it

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


@lru_cache(maxsize=1)
def _clone() -> str | None:
    """The folder zoo was installed from with ``pip install -e``, or None for a normal install."""
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        direct = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    try:
        info = json.loads(direct or "{}")
    except ValueError:
        return None
    url = info.get("url", "")
    if info.get("dir_info", {}).get("editable") and url.startswith("file://"):
        return unquote(urlparse(url).path)
    return None


def install_command(extra: str) -> str:
    """The pip command that adds ``extra`` (e.g. ``torch``) to this installation of zoo.

    From a clone (an editable install) it names the clone, since the PyPI release may differ.
    """
    clone = _clone()
    if clone:
        return f"pip install -e '{clone}[{extra}]'"
    return f"pip install '{DISTRIBUTION}[{extra}]'"
