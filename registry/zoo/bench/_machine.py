"""The machine a figure was measured on: CPU, cores, memory, GPU, provider, library versions."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu_names() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []


def describe_machine(*, provider: Any = None, frameworks: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """What a benchmark figure was measured on: CPU, cores, memory, GPU, provider, library versions."""
    import psutil

    from ..runtime import physical_cores, runtime_versions

    gpus = _gpu_names()
    try:
        load = round(os.getloadavg()[0], 2)  # a busy machine explains noisy figures
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": _cpu_model(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(),
        "cores_usable": physical_cores(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_avg_1m": load,
        "gpu": ", ".join(gpus) or None,
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "provider": getattr(provider, "name", provider),
        "provider_reason": getattr(provider, "reason", None),
        "versions": {**runtime_versions(), **dict(frameworks or {})},
    }


def machine_line(machine: Mapping[str, Any]) -> str:
    """The machine in one line, for table captions."""
    versions = machine.get("versions") or {}
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ""
    load = f", load avg {machine['load_avg_1m']}" if machine.get("load_avg_1m") is not None else ""
    return (f"{machine.get('cpu')} ({machine.get('cores_physical')} physical / {machine.get('cores_logical')} logical cores"
            f"{gpu}{load}); {libs}")


__all__ = ["describe_machine", "machine_line"]
