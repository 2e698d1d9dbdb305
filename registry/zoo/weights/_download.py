"""Downloading published checkpoints into the cache: verified, resumable, atomic, nothing left on failure.

Invariant: a file under its final name in ``<cache>/weights/`` is complete and its sha256 starts
with the published digest; anything else lives only as ``.<name>.<pid>.part`` beside it while a
download runs, and is removed when the download fails (wrong hash, truncated, no network, Ctrl-C).
A connection that drops mid-file is resumed with an HTTP ``Range`` request while each attempt
makes progress; a server that ignores ``Range`` is answered by restarting from byte 0.
``ZOO_WEIGHTS_MIRROR=https://host/path/`` fetches ``https://host/path/<file name>`` instead of the
published URL (a company mirror holds the files flat); the hash check is the same.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ..errors import DownloadError, InvalidInput, InvalidWeights, StoreError
from ._hashing import file_sha256

CACHE_ENV = "ZOO_CACHE"
MIRROR_ENV = "ZOO_WEIGHTS_MIRROR"
CHUNK = 1 << 20
ATTEMPTS = 5  # consecutive attempts; one that receives no byte ends the download
TIMEOUT_S = 30.0
_PART = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.part$")

Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)


def cache_dir() -> Path:
    """``$ZOO_CACHE``, else the platform's user cache folder + ``zoo`` (XDG on Linux, Library/Caches on
    macOS, %LOCALAPPDATA% on Windows). Created on first write, not here."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "zoo"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "zoo" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "zoo"


def source_url(url: str) -> str:
    """``url``, or its file under ``$ZOO_WEIGHTS_MIRROR`` when that is set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    parsed = urlparse(mirror)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"Expected ${MIRROR_ENV} to be an http(s) URL. Received: {mirror!r}",
                           hint=f"e.g. {MIRROR_ENV}=https://mirror.example.com/pytorch-models/")
    return mirror.rstrip("/") + "/" + PurePosixPath(urlparse(url).path).name


def fetch(url: str, *, sha256: str, cache: Path | None = None, progress: Progress | None = None,
          timeout: float = TIMEOUT_S) -> Path:
    """The cached file of ``url`` whose sha256 starts with ``sha256``, downloading it if needed.

    Raises InvalidWeights (exit 2) when the bytes do not match the published hash, DownloadError
    (exit 7) for no network, an HTTP error or a transfer cut short, StoreError (7) when the cache
    cannot be written. On any failure the cache holds what it held before.
    """
    sha256 = sha256.lower()
    name = PurePosixPath(urlparse(url).path).name
    if not name or name in (".", ".."):
        raise InvalidInput(f"Expected a URL that ends in a file name. Received: {url!r}")
    folder = (cache or cache_dir()) / "weights"
    final = folder / name
    if final.is_file():
        if file_sha256(final).startswith(sha256):
            return final
        final.unlink()  # a cached file that no longer matches (edited, disk error): fetch it again
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"Cannot create the cache folder {str(folder)!r}: {exc}",
                         hint=f"set {CACHE_ENV} to a writable folder") from exc
    _remove_stale_parts(folder, name)
    fetched_from = source_url(url)
    part = folder / f".{name}.{os.getpid()}.part"
    try:
        digest = _download(fetched_from, part, progress=progress, timeout=timeout)
        if not digest.startswith(sha256):
            raise InvalidWeights(
                f"Expected {name} to have a sha256 starting with {sha256} (published). Received: {digest}",
                hint=f"the download from {fetched_from} is corrupt or not the published file; nothing was kept"
                     + (f" (check ${MIRROR_ENV})" if fetched_from != url else ""),
            )
        try:
            with open(part, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(part, final)  # atomic: the final name only ever holds a verified file
        except OSError as exc:
            raise StoreError(f"Cannot write {str(final)!r}: {exc}", hint=f"free disk space, or set {CACHE_ENV} elsewhere") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return final


def _download(url: str, part: Path, *, progress: Progress | None, timeout: float) -> str:
    """Download ``url`` into ``part``, resuming with Range after a dropped connection; return the sha256."""
    have, total, attempts = 0, None, 0
    try:
        out = open(part, "wb")  # closed by the with below
    except OSError as exc:
        raise StoreError(f"Cannot write {str(part)!r}: {exc}", hint=f"set {CACHE_ENV} to a writable folder") from exc
    with out:
        while True:
            attempts += 1
            request = urllib.request.Request(url, headers={"User-Agent": "zoo-registry", "Accept-Encoding": "identity"})
            if have:
                request.add_header("Range", f"bytes={have}-")
            before = have
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    resumed_at = re.match(r"bytes (\d+)-", response.headers.get("Content-Range") or "")
                    if have and response.status == 206 and (not resumed_at or int(resumed_at.group(1)) != have):
                        out.seek(0)  # a range other than the one asked for: ask again for the whole file
                        out.truncate()
                        have, before = 0, -1
                        continue
                    if have and response.status != 206:  # the server ignored Range: this body is the whole file
                        out.seek(0)
                        out.truncate()
                        have = before = 0
                    have, total = _stream(response, out, part, have, total, progress)
                if total is None or have >= total:
                    break
                cause = f"the connection closed after {have:,} of {total:,} bytes"
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and have and have == total:  # already complete
                    break
                raise DownloadError(f"Cannot download {url}: HTTP {exc.code} {exc.reason}",
                                    hint=_hint(url)) from exc
            except (urllib.error.URLError, HTTPException, OSError) as exc:
                if have == 0 and attempts == 1:
                    reason = getattr(exc, "reason", exc)
                    raise DownloadError(f"Cannot download {url}: {reason}", hint=_hint(url)) from exc
                cause = f"{type(exc).__name__}: {exc} after {have:,} bytes"
            if have == before or attempts >= ATTEMPTS:
                raise DownloadError(f"Download of {url} was cut short ({attempts} attempts): {cause}",
                                    hint="retry later; nothing was kept. " + _hint(url))
    return _sha256_of(part)


def _stream(response: Any, out: Any, part: Path, have: int, total: int | None,
            progress: Progress | None) -> tuple[int, int | None]:
    """Append ``response``'s body to ``out`` (``have`` bytes already there); the new (have, total)."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        total = have + int(length)
    while chunk := response.read(CHUNK):
        _write(out, chunk, part)
        have += len(chunk)
        if progress is not None:
            progress(have, total)
    return have, total


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(out: Any, chunk: bytes, part: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:  # disk full, quota: the cache's fault, not the network's
        raise StoreError(f"Cannot write {str(part)!r}: {exc}", hint=f"free disk space, or set {CACHE_ENV} elsewhere") from exc


def _hint(url: str) -> str:
    return (f"check the network (or set {MIRROR_ENV} to a reachable mirror), or download "
            f"{PurePosixPath(urlparse(url).path).name} yourself and run `zoo weights import ARCH FILE`")


def _remove_stale_parts(folder: Path, name: str) -> None:
    """``.part`` files of ``name`` left by a process that was killed outright (no cleanup ran)."""
    for path in folder.glob(f".{name}.*.part"):
        m = _PART.match(path.name)
        if m and m.group("name") == name and not _alive(int(m.group("pid"))):
            with contextlib.suppress(OSError):
                path.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours, from an earlier attempt in this process that did not clean up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
