"""Why a GPU execution provider did not load, in words a user can act on: the library, and its pip package.

ONNX Runtime reports a missing CUDA, cuDNN or TensorRT library as a C++ source location and a
mangled signature (``onnxruntime_pybind_state.cc:729 void onnxruntime::python::RegisterTensorRT...``)
on one channel and, sometimes, the loader's ``libnvinfer.so.10: cannot open shared object file``
on another. :func:`diagnose` reads all of that text; when no library is named it asks the dynamic
loader about the libraries the provider needs, and it maps the library to the pip package that
ships it for the CUDA major version this onnxruntime build was made for.

Invariant: :func:`diagnose` is a pure function of its arguments (the loader check is injected), so
every branch is tested on the CPU build with simulated error strings.
"""
from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# The loader's wording ("cannot open shared object file"), Windows' ("LoadLibrary failed ... foo.dll"),
# and ORT's own ("Failed to load library libfoo.so with error: ...").
_MISSING = re.compile(
    r"(?P<lib>(?:lib)?[A-Za-z][\w+-]*?\.so(?:\.\d+)*|[\w+-]+?(?:64_\d+)?\.dll)\s*:\s*cannot open shared object file"
    r"|(?:LoadLibrary|error loading)[^\n]*?(?P<dll>[\w+-]+\.dll)",
    re.IGNORECASE,
)
_NO_DEVICE = re.compile(r"no CUDA-capable device|cudaErrorNoDevice|CUDA driver version is insufficient|"
                        r"cudaErrorInsufficientDriver|forward compatibility was attempted", re.IGNORECASE)
_ORT_LOCATION = re.compile(r"^\s*(?:\S+[/\\])?[\w.]+\.(?:cc|cpp|cu|h):\d+\s+")

# The libraries each provider needs, in the order they are loaded; "{cuda}" is the CUDA major.
NEEDED: dict[str, tuple[str, ...]] = {
    "cuda": ("libcudart.so.{cuda}", "libcublasLt.so.{cuda}", "libcublas.so.{cuda}", "libcudnn.so.9",
             "libcufft.so.{cufft}", "libcurand.so.10"),
    "tensorrt": ("libnvinfer.so.10", "libnvinfer_plugin.so.10", "libnvonnxparser.so.10"),
}
_CUFFT_MAJOR = {12: 11, 13: 12}
_TOOLKIT_SONAMES = ("libcudart", "libcublas", "libnvrtc", "libnvjitlink")


@dataclass(frozen=True)
class Diagnosis:
    """A missing library and how to get it (``package`` is a pip requirement, or None when pip cannot help)."""

    library: str
    package: str | None
    advice: str | None = None  # when pip cannot help: what to do instead

    def text(self) -> str:
        if self.package:
            return f"{self.library} not found (pip install '{self.package}')"
        return f"{self.library}: {self.advice}" if self.advice else f"{self.library} not found"


def ort_cuda_major() -> int | None:
    """The CUDA major version this onnxruntime build links against (None on the CPU build or if unknown)."""
    try:
        from onnxruntime.capi import build_and_package_info as info
    except Exception:
        return None
    version = str(getattr(info, "cuda_version", "") or "")
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else None


# CUDA toolkit library (soname stem) -> the pip package that ships it, less its -cuNN suffix.
_TOOLKIT_PACKAGES = {"cublas": "nvidia-cublas", "cudart": "nvidia-cuda-runtime", "cufft": "nvidia-cufft",
                     "curand": "nvidia-curand", "nvrtc": "nvidia-cuda-nvrtc", "nvjitlink": "nvidia-nvjitlink"}


def package_for(library: str, cuda_major: int | None) -> Diagnosis:
    """The pip package that ships ``library`` for CUDA ``cuda_major`` (12 when unknown)."""
    name = library.lower()
    so_major = _major_in(library)
    # The CUDA toolkit's own libraries carry the CUDA major in their soname (libcublas.so.12);
    # cuDNN, TensorRT and cuFFT have their own numbering.
    toolkit_major = so_major if name.startswith(_TOOLKIT_SONAMES) else None
    cuda = cuda_major or toolkit_major or 12
    suffix = f"-cu{cuda}"
    # CUDA 13 dropped the -cu13 suffix for the toolkit libraries (nvidia-cublas, nvidia-cuda-runtime, ...).
    toolkit = "" if cuda >= 13 else suffix
    if name.startswith(("libnvinfer", "libnvonnxparser", "nvinfer", "nvonnxparser")):
        pin = f"=={so_major}.*" if so_major else ""
        return Diagnosis(library, f"tensorrt-cu{cuda}-libs{pin}")
    if name.startswith(("libcudnn", "cudnn")):
        return Diagnosis(library, f"nvidia-cudnn{suffix}")
    stem = name.removeprefix("lib")
    package = next((pkg for prefix, pkg in _TOOLKIT_PACKAGES.items() if stem.startswith(prefix)), None)
    if package is not None:
        return Diagnosis(library, f"{package}{toolkit}")
    if name.startswith(("libcuda.so", "nvcuda")):
        return Diagnosis(library, None, "the NVIDIA driver is not installed (it ships this library; `nvidia-smi` must see the GPU)")
    return Diagnosis(library, None, "not found (install it, or add its folder to LD_LIBRARY_PATH)")


def _major_in(library: str) -> int | None:
    match = re.search(r"\.so\.(\d+)", library) or re.search(r"64_(\d+)\.dll$", library)
    return int(match.group(1)) if match else None


def loadable(soname: str) -> bool:
    """Whether the dynamic loader finds ``soname`` (after onnxruntime.preload_dlls, pip's nvidia-* count too)."""
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def diagnose(provider: str, texts: Iterable[str], *, cuda_major: int | None = None,
             can_load: Callable[[str], bool] | None = None) -> Diagnosis | None:
    """The missing library behind ``provider``'s failure to load, read from ORT's error ``texts``.

    A library named by the loader wins; else, for a "cannot load" failure, the first library in
    :data:`NEEDED` that ``can_load`` (default: the real loader) does not find. None: not a library problem.
    """
    joined = "\n".join(t for t in texts if t)
    for match in _MISSING.finditer(joined):
        lib = match.group("lib") or match.group("dll")
        if lib and not lib.lower().startswith(("libonnxruntime", "onnxruntime")):  # ORT's own provider library
            return package_for(lib, cuda_major)
    if _NO_DEVICE.search(joined):
        return None
    check = can_load or loadable
    cuda = cuda_major or 12
    for template in NEEDED.get(provider, ()):
        soname = template.format(cuda=cuda, cufft=_CUFFT_MAJOR.get(cuda, 11))
        if not check(soname):
            return package_for(soname, cuda_major)
    return None


def clean_error(text: str, *, limit: int = 160) -> str:
    """The first meaningful line of an ORT error, without its C++ source location and signature."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    if _ORT_LOCATION.match(line):
        line = _ORT_LOCATION.sub("", line, count=1)
        # "<return type> <qualified::name>(<args>) <message>": keep the message after the signature.
        depth, cut = 0, -1
        for i, ch in enumerate(line):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    cut = i
                    break
        if cut >= 0 and "::" in line[:cut]:
            line = line[cut + 1:].lstrip(" :").removeprefix("const ").strip() or line
    if _NO_DEVICE.search(line) and "no CUDA-capable device" in line:
        line = "no CUDA-capable GPU is visible (check `nvidia-smi` and CUDA_VISIBLE_DEVICES)"
    return line if len(line) <= limit else line[: limit - 3] + "..."


__all__ = ["Diagnosis", "NEEDED", "clean_error", "diagnose", "loadable", "ort_cuda_major", "package_for"]
