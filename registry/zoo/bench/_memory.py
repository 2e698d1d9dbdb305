"""Memory: process RSS around a block (with its peak, on Linux) and this process' GPU memory.

Invariant: ``peak`` >= ``after`` for every :class:`MemoryWindow`; the peak is exact where the kernel
lets the peak counter be reset (Linux), the end-of-block RSS elsewhere. Freed heap pages are handed
back to the OS before a window opens (glibc), so that a block reusing them still shows its RSS.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

_MB = 1024 * 1024


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only; the process' own symbols
    except (OSError, TypeError):
        return None


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc's malloc_trim), so that an engine loaded after
    another one is freed shows its own RSS instead of reusing the freed pages unseen."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass
class MemoryWindow:
    """RSS before a block, and the peak RSS inside it (exact on Linux; end-of-block RSS elsewhere)."""

    before: int = 0
    after: int = 0
    peak: int = 0

    @property
    def delta_mb(self) -> float:
        return (self.after - self.before) / _MB

    @property
    def peak_delta_mb(self) -> float:
        return max(0, self.peak - self.before) / _MB


@contextmanager
def memory_window() -> Iterator[MemoryWindow]:
    _release_free_heap()
    window = MemoryWindow(before=_rss_bytes())
    exact = _reset_peak()
    try:
        yield window
    finally:
        window.after = _rss_bytes()
        peak = _peak_bytes() if exact else None
        window.peak = max(window.after, peak or 0)


def gpu_memory_mb(pid: int | None = None) -> float | None:
    """This process' GPU memory via nvidia-smi, or None where it cannot be read."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    pid = os.getpid() if pid is None else pid
    try:
        out = subprocess.run([exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total = [float(used) for p, used in (ln.split(",")[:2] for ln in out.splitlines() if "," in ln) if p.strip() == str(pid)]
    return sum(total) if total else None


__all__ = ["MemoryWindow", "gpu_memory_mb", "memory_window"]
