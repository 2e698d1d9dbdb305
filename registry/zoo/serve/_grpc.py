"""gRPC: the protocol's ``inference.GRPCInferenceService`` on a ``grpc.aio`` server.

The messages and service stubs are the ones ``tritonclient[grpc]`` ships (``tritonclient.grpc.service_pb2``,
generated from the KServe/Triton ``grpc_service.proto``): a maintained, versioned build of the published
proto, the one the most-used client speaks, so the server cannot drift from the client it is tested with,
and zoo generates and vendors no code. Only the protocol's methods are implemented (ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer); Triton's extras answer UNIMPLEMENTED.

Invariant: ModelInfer goes through the same :meth:`Server.infer` as REST; outputs are returned in
``raw_output_contents`` (as Triton does); errors carry the REST message and the matching status code.
"""
from __future__ import annotations

import time
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from ..errors import InvalidInput, ZooError
from ._frontend import Backend, message_of, status_of
from ._models import InferRequest, InputTensor, RequestedOutput, classification_count
from ._tensors import DATATYPES, from_raw, to_raw

_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
             "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
             "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def _param(p: Any) -> Any:
    kind = p.WhichOneof("parameter_choice")
    return getattr(p, kind) if kind else None


def parse_request(req: Any, max_elements: int) -> InferRequest:
    """An :class:`InferRequest` from a ``ModelInferRequest`` (raw_input_contents or typed contents)."""
    raw = list(req.raw_input_contents)
    if raw and len(raw) != len(req.inputs):
        raise InvalidInput(f"Expected one raw_input_contents entry per input ({len(req.inputs)}). Received: {len(raw)}")
    inputs = []
    for i, t in enumerate(req.inputs):
        shape = list(t.shape)
        if raw:
            value = from_raw(t.name, t.datatype, shape, raw[i], max_elements)
        else:
            field = _CONTENTS.get(t.datatype)
            if field is None:
                raise InvalidInput(f"Expected input {t.name!r} ({t.datatype}) in raw_input_contents. Received: typed contents",
                                   hint="FP16 has no typed contents field in the protocol; send raw bytes")
            values = list(getattr(t.contents, field))
            if t.datatype == "BYTES":
                from ._tensors import check_shape

                count = int(np.prod(check_shape(t.name, shape, max_elements)))
                if len(values) != count:
                    raise InvalidInput(f"Expected {count} element(s) in input {t.name!r} (BYTES). Received: {len(values)}")
                value = [bytes(v) for v in values]
            else:
                from ._tensors import check_shape

                dims = check_shape(t.name, shape, max_elements)
                if len(values) != int(np.prod(dims)):
                    raise InvalidInput(f"Expected {int(np.prod(dims)):,} values in input {t.name!r} (shape {list(dims)}). "
                                       f"Received: {len(values):,}")
                value = np.asarray(values, dtype=DATATYPES[t.datatype]).reshape(dims)
        inputs.append(InputTensor(t.name, t.datatype, value))
    outputs = [RequestedOutput(o.name, True, classification_count(o.name, _param(o.parameters["classification"])
                                                                   if "classification" in o.parameters else None))
               for o in req.outputs]
    return InferRequest(req.model_name, req.model_version or None, inputs, outputs, req.id or None, True)


class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, server: Backend):
        self.server = server

    async def _fail(self, context: Any, exc: BaseException) -> None:
        code = getattr(grpc.StatusCode, status_of(exc)[1])
        await context.abort(code, message_of(exc))

    async def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return service_pb2.ServerReadyResponse(ready=self.server.ready)

    async def ModelReady(self, request, context):
        try:
            self.server.served(request.name).pick(request.version or None)
        except ZooError as exc:
            await self._fail(context, exc)
        return service_pb2.ModelReadyResponse(ready=self.server.ready)

    async def ServerMetadata(self, request, context):
        meta = self.server.server_metadata()
        return service_pb2.ServerMetadataResponse(name=meta["name"], version=meta["version"], extensions=meta["extensions"])

    async def ModelMetadata(self, request, context):
        try:
            served = self.server.served(request.name)
            loaded = served.pick(request.version or None)
        except ZooError as exc:
            await self._fail(context, exc)
        meta = served.metadata(loaded)
        await context.send_initial_metadata((("zoo-model-version", str(loaded.version.version)),
                                             ("zoo-model-sha256", loaded.version.sha256)))
        tensor = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["inputs"]],
            outputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["outputs"]])

    async def ModelInfer(self, request, context):
        started = time.perf_counter()
        status, version = "OK", None
        try:
            parsed = parse_request(request, self.server.max_body_bytes)
            response = await self.server.infer(parsed, "grpc")
        except ZooError as exc:
            status = status_of(exc)[1]
            self._log(request, status, started, None)
            await self._fail(context, exc)
        except Exception as exc:  # a bug: this request fails, the server stays up
            self._log(request, "INTERNAL", started, None)
            await context.abort(grpc.StatusCode.INTERNAL, message_of(exc))
        v = response.version
        version = v.version
        out = service_pb2.ModelInferResponse(model_name=response.model, model_version=str(v.version), id=response.id or "")
        out.parameters["zoo_sha256"].string_param = v.sha256
        out.parameters["zoo_ref"].string_param = v.ref
        for tensor in response.outputs:
            out.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            out.raw_output_contents.append(to_raw(tensor.array))
        self._log(request, status, started, version)
        return out

    def _log(self, request: Any, status: str, started: float, version: int | None) -> None:
        self.server.log_access(proto="grpc", rpc="ModelInfer", model=request.model_name[:64], version=version,
                               status=status, ms=round((time.perf_counter() - started) * 1e3, 3),
                               bytes_in=sum(len(r) for r in request.raw_input_contents))


async def start_grpc(server: Backend, host: str, port: int) -> tuple[Any, int]:
    """A started ``grpc.aio`` server on ``host:port`` (0: a free port) and the port it listens on."""
    from ..errors import Unavailable

    limit = server.max_body_bytes
    aio = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                   ("grpc.max_send_message_length", max(limit, 64 << 20)),
                                   ("grpc.so_reuseport", 0)])
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(server), aio)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = aio.add_insecure_port(address)
    except RuntimeError as exc:
        raise Unavailable(f"Expected to listen on {address} (gRPC). Received: {exc}",
                          hint="choose another --grpc-port, or stop what is using it") from None
    if not bound:
        raise Unavailable(f"Expected to listen on {address} (gRPC). Received: the port is taken",
                          hint="choose another --grpc-port, or stop what is using it")
    await aio.start()
    return aio, bound


__all__ = ["Servicer", "parse_request", "start_grpc"]
