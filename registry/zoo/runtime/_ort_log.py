"""ONNX Runtime's own log, kept off the terminal during zoo's sessions and summarised instead.

ORT writes through one process-wide *default logger*; a session's ``log_severity_level`` does not
reach it, so a session at severity 3 still lets ORT print ``[W:onnxruntime:Default, ...] No
registered plugin EP device found`` at load and, on CUDA, dozens of red ``[cudnn_frontend] Error:
No execution plans support the graph`` lines during cuDNN's algorithm search (ORT then uses its
fallback kernels: nothing is wrong). So, before every session zoo makes, :func:`quiet`:

- sets the default logger's severity to the session's (``log_severity``, default 3: errors only);
- where ORT takes a Python log callback (onnxruntime >= 1.32), installs one at that severity that
  counts the known noise (:data:`NOISE`) instead of printing it, hands messages to an active
  :func:`capture` (the provider line summarises them, :func:`summarise`), and passes anything
  else to the ``zoo.onnxruntime`` Python logger;
- where it does not, raises the default logger to 4 (fatal) for GPU sessions at the default
  severity, because there the only errors ORT *logs* without raising are that noise.

Invariant: every message ORT emits through the callback is either counted (:func:`counts`),
captured, or logged by ``zoo.onnxruntime``; nothing is dropped silently but :data:`IGNORED`.
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator

log = logging.getLogger("zoo.onnxruntime")

# Messages that are not a problem of the user's: substring -> what the summary says.
NOISE: dict[str, str] = {
    "No execution plans support the graph": "cuDNN frontend found no plan for some convolutions (fallback kernels used)",
    "CUDNN_FE failure": "cuDNN frontend found no plan for some convolutions (fallback kernels used)",
}
IGNORED: tuple[str, ...] = ("No registered plugin EP device found",)  # ORT's plugin-EP discovery, harmless
_MEMCPY = re.compile(r"(\d+) Memcpy nodes are added to the graph")
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL}

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_captures: list[list[tuple[int, str]]] = []
_installed: list[int] = []  # the severity of zoo's installed callback, if any


def route(severity: int, category: str, logid: str, location: str, message: str) -> None:
    """zoo's ORT log callback: capture, count the noise, or hand over to the ``zoo.onnxruntime`` logger."""
    text = str(message)
    if any(s in text for s in IGNORED):
        return
    with _lock:
        for sink in _captures:
            sink.append((int(severity), text))
        capturing = bool(_captures)
        noise = next((summary for key, summary in NOISE.items() if key in text), None)
        if noise is not None:
            _counts[noise] += 1
            return
    if not capturing:
        log.log(_LEVELS.get(int(severity), logging.WARNING), "onnxruntime: %s", text.strip())


def has_callback() -> bool:
    import onnxruntime as ort

    return callable(getattr(ort, "set_default_logger_callback", None))


def quiet(severity: int = 3, *, gpu: bool = False) -> None:
    """Set ORT's default logger for zoo's sessions (see the module docstring). Idempotent, cheap."""
    import onnxruntime as ort

    hook = getattr(ort, "set_default_logger_callback", None)
    if callable(hook):
        with _lock:
            if _installed == [severity]:
                return
            _installed[:] = [severity]
        hook(route, severity)
        return
    level = 4 if gpu and severity == 3 else severity
    with _lock:
        _installed[:] = [level]
    ort.set_default_logger_severity(level)


@contextlib.contextmanager
def capture() -> Iterator[list[tuple[int, str]]]:
    """Collect ``(severity, message)`` of what ORT logs while active (through zoo's callback only)."""
    sink: list[tuple[int, str]] = []
    with _lock:
        _captures.append(sink)
    try:
        yield sink
    finally:
        with _lock:
            _captures.remove(sink)


@contextlib.contextmanager
def silenced(severity: int = 2) -> Iterator[list[tuple[int, str]]]:
    """Nothing ORT logs while active reaches the terminal; what it logs at ``severity`` and above is
    collected (through the callback; where ORT has none, the default logger is muted instead)."""
    import onnxruntime as ort

    hook = getattr(ort, "set_default_logger_callback", None)
    if not callable(hook):
        ort.set_default_logger_severity(4)
        try:
            yield []
        finally:
            ort.set_default_logger_severity(_installed[0] if _installed else 3)
        return
    with capture() as sink:
        hook(route, severity)
        try:
            yield sink
        finally:
            hook(route, _installed[0] if _installed else 3)


def summarise(messages: list[tuple[int, str]]) -> list[str]:
    """The warnings that matter for speed, one short phrase each (for the provider line)."""
    notes: list[str] = []
    memcpy = sum(int(m.group(1)) for _, text in messages for m in [_MEMCPY.search(text)] if m)
    if memcpy:
        notes.append(f"{memcpy} Memcpy node(s) added: some ops run on the CPU")
    elif any("not assigned to the preferred execution providers" in text for _, text in messages):
        notes.append("some nodes run on the CPU")
    if any("CUDA Graph" in text or "cuda graph" in text.lower() for sev, text in messages if sev >= 2):
        notes.append("CUDA graph not used")
    return notes


def counts() -> dict[str, int]:
    """How often each kind of :data:`NOISE` was kept off the terminal in this process."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Forget the counts and the installed callback (tests; next :func:`quiet` installs it again)."""
    with _lock:
        _counts.clear()
        _installed.clear()


__all__ = ["IGNORED", "NOISE", "capture", "counts", "has_callback", "quiet", "reset", "route", "silenced", "summarise"]
