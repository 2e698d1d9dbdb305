"""REST: the Open Inference Protocol's HTTP/JSON endpoints and the binary tensor data extension, as a bare
ASGI app under uvicorn (no router framework: one dispatch on the path's segments is all the protocol
needs, and it adds nothing per request).

Invariant: every response is the protocol's JSON (``{"error": ...}`` on failure, with the status of
:func:`~zoo.serve._server.status_of`); a body over the limit is 413 before it is read whole; a client
that stops sending mid-body times out (408) without holding anything else up; inference responses carry
``zoo-model-version`` and ``zoo-model-sha256`` headers naming the exact artifact that answered.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ..errors import InvalidInput, ZooError
from ._frontend import Backend, message_of, status_of
from ._models import InferRequest, InferResponse, InputTensor, RequestedOutput, classification_count
from ._tensors import from_json, from_raw, to_json_data, to_raw

JSON = b"application/json"
HEADER_LENGTH = "inference-header-content-length"


class _Disconnected(Exception):
    """The client went away before its request body was read: nothing to answer."""


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _received(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _split_body(body: bytes, header_length: int | None) -> tuple[bytes, memoryview]:
    """The JSON part of a body and the binary tensor data after it (Inference-Header-Content-Length bytes of JSON)."""
    if header_length is None:
        return body, memoryview(b"")
    if not 0 <= header_length <= len(body):
        raise InvalidInput(f"Expected Inference-Header-Content-Length between 0 and the body's {len(body):,} bytes. "
                           f"Received: {header_length:,}", hint="it is the length of the JSON part of the body")
    return body[:header_length], memoryview(body)[header_length:]


def _load_request(head: bytes) -> dict[str, Any]:
    """The JSON object of an inference request, with its non-empty "inputs" list."""
    try:
        doc = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Expected a JSON inference request. Received: {len(head):,} bytes that are not JSON ({exc})",
                           hint="see the Open Inference Protocol's inference request JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise InvalidInput(f"Expected a JSON object with a non-empty \"inputs\" list. Received: {_received(doc)}",
                           hint="{\"inputs\": [{\"name\": \"images\", \"datatype\": \"FP32\", \"shape\": [...], \"data\": [...]}]}")
    return doc


def _parse_inputs(specs: list[Any], rest: memoryview, max_elements: int) -> list[InputTensor]:
    """The input tensors, each from its "data" or from its binary_data_size bytes of ``rest`` (in input order)."""
    inputs = []
    offset = 0
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidInput(f"Expected input {i} to be an object with a \"name\". Received: {_received(spec)}")
        name = spec["name"]
        params = spec.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(rest):
                raise InvalidInput(f"Expected binary_data_size of input {name!r} to fit the {len(rest) - offset:,} binary "
                                   f"bytes left. Received: {_received(size)}",
                                   hint="binary parts follow the JSON in input order; Inference-Header-Content-Length "
                                        "is the JSON's length")
            value = from_raw(name, spec.get("datatype"), spec.get("shape"), rest[offset:offset + size], max_elements)
            offset += size
        elif "data" in spec:
            value = from_json(name, spec.get("datatype"), spec.get("shape"), spec["data"], max_elements)
        else:
            raise InvalidInput(f"Expected input {name!r} to have \"data\" or a binary_data_size parameter. Received: neither")
        inputs.append(InputTensor(name, str(spec.get("datatype")), value))
    if offset != len(rest):
        raise InvalidInput(f"Expected {offset:,} bytes of binary tensor data after the JSON (the inputs' binary_data_size). "
                           f"Received: {len(rest):,}", hint="Inference-Header-Content-Length must be the JSON's length")
    return inputs


def _parse_outputs(specs: list[Any]) -> list[RequestedOutput]:
    """The requested outputs, each with its binary_data flag and classification count."""
    outputs = []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidInput(f"Expected each requested output to be an object with a \"name\". Received: {_received(spec)}")
        oparams = spec.get("parameters") or {}
        if not isinstance(oparams, dict):
            raise InvalidInput(f"Expected the parameters of output {spec['name']!r} to be an object. Received: {_received(oparams)}")
        flag = oparams.get("binary_data")
        outputs.append(RequestedOutput(spec["name"], None if flag is None else bool(flag),
                                       classification_count(spec["name"], oparams.get("classification"))))
    return outputs


def parse_infer(body: bytes, header_length: int | None, model: str, version: str | None, max_elements: int) -> InferRequest:
    """An OIP inference request from a REST body (JSON, or JSON then binary tensors)."""
    head, rest = _split_body(body, header_length)
    doc = _load_request(head)
    inputs = _parse_inputs(doc["inputs"], rest, max_elements)
    params = doc.get("parameters") or {}
    binary = bool(params.get("binary_data_output")) if isinstance(params, dict) else False
    outputs = _parse_outputs(doc.get("outputs") or [])
    rid = doc.get("id")
    return InferRequest(model, version, inputs, outputs, str(rid) if rid is not None else None, binary)


def render_infer(response: InferResponse) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of an inference response (JSON, then the binary outputs, in order)."""
    outputs = []
    binaries = []
    for out in response.outputs:
        item: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": out.shape}
        if out.binary:
            raw = to_raw(out.array)
            item["parameters"] = {"binary_data_size": len(raw)}
            binaries.append(raw)
        else:
            item["data"] = to_json_data(out.array)
        outputs.append(item)
    v = response.version
    doc: dict[str, Any] = {"model_name": response.model, "model_version": str(v.version)}
    if response.id is not None:
        doc["id"] = response.id
    doc["parameters"] = {"zoo_sha256": v.sha256, "zoo_ref": v.ref}
    doc["outputs"] = outputs
    head = json.dumps(doc, separators=(",", ":")).encode()
    headers = [(b"zoo-model-version", str(v.version).encode()), (b"zoo-model-sha256", v.sha256.encode())]
    if binaries:
        headers += [(b"content-type", b"application/octet-stream"),
                    (HEADER_LENGTH.encode(), str(len(head)).encode())]
        return headers, head + b"".join(binaries)
    return headers + [(b"content-type", JSON)], head


def _header_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Inference-Header-Content-Length header's value (the last one sent), or None without one."""
    header_length = None
    for key, value in headers:
        if key == HEADER_LENGTH.encode():
            try:
                header_length = int(value)
            except ValueError:
                raise InvalidInput(f"Expected a number in Inference-Header-Content-Length. Received: "
                                   f"{value[:20]!r}") from None
    return header_length


class App:
    """The ASGI application of one :class:`~zoo.serve._server.Server`."""

    def __init__(self, server: Backend):
        self.server = server
        self.metrics_path = "/metrics"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        status, model, version, size = 500, None, None, 0
        try:
            status, headers, body, model, version, size = await self._handle(scope, receive, method, path)
        except _Disconnected:
            return
        except HTTPError as exc:
            status, headers, body = exc.status, [(b"content-type", JSON)], json.dumps({"error": exc.message}).encode()
        except ZooError as exc:
            status = status_of(exc)[0]
            headers, body = [(b"content-type", JSON)], json.dumps({"error": message_of(exc)}).encode()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: one request fails, the server stays up
            status, headers, body = 500, [(b"content-type", JSON)], json.dumps({"error": message_of(exc)}).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        client = scope.get("client")
        self.server.log_access(proto="http", method=method, path=path[:200], status=status,
                               ms=round((time.perf_counter() - started) * 1e3, 3), model=model, version=version,
                               bytes_in=size, client=f"{client[0]}:{client[1]}" if client else None)

    async def _read_body(self, scope: dict, receive: Any) -> bytes:
        limit = self.server.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise HTTPError(400, f"Expected a numeric Content-Length. Received: {value[:20]!r}") from None
                if declared > limit:
                    raise HTTPError(413, f"Expected a body of at most {limit:,} bytes. Received: Content-Length {declared:,}"
                                         " (hint: send smaller batches, or raise the server's --max-body-size)")
        chunks = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.server.request_timeout)
            except TimeoutError:
                raise HTTPError(408, f"Expected the request body within {self.server.request_timeout:g} s. Received: "
                                     f"{size:,} bytes") from None
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"Expected a body of at most {limit:,} bytes. Received: more "
                                     "(hint: send smaller batches, or raise the server's --max-body-size)")
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _handle(self, scope: dict, receive: Any, method: str, path: str) -> tuple:
        """(status, headers, body, model, version, bytes read) of one request, routed on the path's segments."""
        if method == "GET" and path == self.metrics_path:
            metrics = self.server.metrics
            return 200, [(b"content-type", metrics.content_type.encode())], metrics.render(), None, None, 0
        parts = path.strip("/").split("/")
        if not parts or parts[0] != "v2":
            raise HTTPError(404, f"Expected a path under /v2 or /metrics. Received: {path[:100]!r}")
        rest = parts[1:]
        reply = self._server_route(rest) if method == "GET" else None
        if reply is None and len(rest) >= 2 and rest[0] == "models":
            reply = await self._model_route(scope, receive, method, rest[1], rest[2:])
        if reply is None:
            raise HTTPError(404, f"Expected an Open Inference Protocol path. Received: {method} {path[:100]!r}")
        return reply

    def _server_route(self, rest: list[str]) -> tuple | None:
        """GET /v2, /v2/health/live and /v2/health/ready; None for any other path."""
        json_headers = [(b"content-type", JSON)]
        if rest == []:
            return 200, json_headers, json.dumps(self.server.server_metadata()).encode(), None, None, 0
        if rest == ["health", "live"]:
            return 200, json_headers, b"{\"live\":true}", None, None, 0
        if rest == ["health", "ready"]:
            ready = self.server.ready
            return (200 if ready else 503), json_headers, json.dumps({"ready": ready}).encode(), None, None, 0
        return None

    async def _model_route(self, scope: dict, receive: Any, method: str, name: str, tail: list[str]) -> tuple | None:
        """/v2/models/{name}[/versions/{version}] then "", "ready" or "infer"; None for any other tail."""
        version = None
        if len(tail) >= 2 and tail[0] == "versions":
            version, tail = tail[1], tail[2:]
        if tail == ["infer"]:
            if method != "POST":
                raise HTTPError(405, f"Expected POST for inference. Received: {method}")
            return await self._infer(scope, receive, name, version)
        if method != "GET":
            raise HTTPError(405, f"Expected GET. Received: {method}")
        server = self.server
        served = server.served(name)
        loaded = served.pick(version)
        json_headers = [(b"content-type", JSON)]
        if tail == []:
            return 200, json_headers, json.dumps(served.metadata(loaded)).encode(), name, loaded.version.version, 0
        if tail == ["ready"]:
            return (200 if server.ready else 503), json_headers, \
                json.dumps({"name": name, "ready": server.ready}).encode(), name, None, 0
        return None

    async def _infer(self, scope: dict, receive: Any, name: str, version: str | None) -> tuple:
        """POST .../infer: read the body, parse it, run it, render the response."""
        server = self.server
        body = await self._read_body(scope, receive)
        request = parse_infer(body, _header_length(scope["headers"]), name, version, server.max_body_bytes)
        response = await server.infer(request, "http")
        headers, out = render_infer(response)
        return 200, headers, out, name, response.version.version, len(body)


__all__ = ["App", "parse_infer", "render_infer"]
