"""``zoo serve``: registry references over the Open Inference Protocol (KServe v2), REST and gRPC.

    from zoo.serve import Server, serve
    serve(["resnet50@prod"], http_port=8000, grpc_port=8001)          # blocks; SIGTERM drains and returns
    server = Server(["tiny@prod"], http_port=0, grpc_port=0).start_in_thread()   # tests, notebooks
    ...; server.close()

Beyond the protocol (each listed in the server metadata's extensions): BYTES inputs holding encoded
images are decoded and fed through the version's recorded transform (``zoo_images``); an output's
``classification`` parameter returns top-k ``"probability:index:label"`` strings like Triton's
classification extension; a served alias is polled (and on PostgreSQL, LISTENed for) and swapped
atomically to the version it moves to, verified and warmed first (``zoo_alias_hot_swap``); every
response names the exact version and sha256 that answered (``model_version_header``).

Importing this package imports neither uvicorn, grpc nor ONNX Runtime; :class:`Server` loads them.
"""
from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["Server", "serve"]


def serve(refs: list[str], **options: Any) -> None:
    """Serve ``refs`` until SIGTERM/SIGINT, then drain (see :class:`zoo.serve.Server` for the options)."""
    from ._server import Server

    Server(refs, **options).run()


class _CallableModule(types.ModuleType):
    """``zoo.serve`` is this package; calling it is :func:`serve` (``zoo.serve(["resnet50@prod"])``)."""

    def __call__(self, refs: list[str], **options: Any) -> None:
        serve(refs, **options)


sys.modules[__name__].__class__ = _CallableModule


def __getattr__(name: str) -> Any:
    if name == "Server":
        from ._server import Server

        return Server
    raise AttributeError(name)
