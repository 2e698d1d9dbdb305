"""What the REST and gRPC front ends need from the server (:class:`Backend`), and how errors map to status codes.

The front ends (:mod:`._http`, :mod:`._grpc`) depend on this module only, and :class:`~zoo.serve._server.Server`
implements :class:`Backend`: the server starts the front ends, never the other way round.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..errors import InvalidInput, NotFound, RequestTimeout, Unavailable, ZooError

if TYPE_CHECKING:
    from ._metrics import Metrics
    from ._models import InferRequest, InferResponse, ServedModel

__all__ = ["Backend", "message_of", "status_of"]


class Backend(Protocol):
    """The server as the front ends see it."""

    max_body_bytes: int
    request_timeout: float
    metrics: "Metrics"

    @property
    def ready(self) -> bool: ...

    def served(self, name: str) -> "ServedModel": ...

    async def infer(self, request: "InferRequest", protocol: str) -> "InferResponse": ...

    def log_access(self, **fields: Any) -> None: ...

    def server_metadata(self) -> dict[str, Any]: ...


def status_of(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, gRPC status name) for an error: 400/404/503/504, else 500."""
    if isinstance(exc, RequestTimeout):
        return 504, "DEADLINE_EXCEEDED"
    if isinstance(exc, Unavailable):
        return 503, "UNAVAILABLE"
    if isinstance(exc, NotFound):
        return 404, "NOT_FOUND"
    if isinstance(exc, InvalidInput):
        return 400, "INVALID_ARGUMENT"
    return 500, "INTERNAL"


def message_of(exc: BaseException) -> str:
    if isinstance(exc, ZooError):
        return exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
    return f"internal error: {type(exc).__name__}: {exc}"
