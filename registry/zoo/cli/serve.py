"""`zoo serve`: registry references over the Open Inference Protocol (KServe v2), REST and gRPC."""
from __future__ import annotations

import click

from ._app import emit_json, info, json_option, main, pass_ctx


@main.command("serve")
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (REST and gRPC); anything wider than localhost is explicit, e.g. 0.0.0.0.")
@click.option("--http-port", type=int, default=8000, show_default=True, help="REST port (0: a free one; -1: no REST).")
@click.option("--grpc-port", type=int, default=8001, show_default=True, help="gRPC port (0: a free one; -1: no gRPC).")
@click.option("--max-batch-size", type=int, default=8, show_default=True,
              help="Dynamic batching: most rows stacked into one ONNX Runtime run (1: no batching).")
@click.option("--max-queue-delay", type=int, default=0, show_default=True, metavar="MICROSECONDS",
              help="Dynamic batching: how long a request may wait for others to join its batch (0: batch only "
                   "what is already queued).")
@click.option("--instances", type=int, default=1, show_default=True,
              help="Parallel sessions per model (each gets physical cores / N intra-op threads).")
@click.option("--max-queue", type=int, default=256, show_default=True,
              help="Requests queued per model before new ones get 503 / UNAVAILABLE.")
@click.option("--poll-interval", type=float, default=2.0, show_default=True, metavar="SECONDS",
              help="How often served aliases are checked for a move (PostgreSQL stores are also LISTENed to).")
@click.option("--request-timeout", type=float, default=30.0, show_default=True, metavar="SECONDS",
              help="Per-request limit (body upload and queue + compute): 408 / 504 / DEADLINE_EXCEEDED past it.")
@click.option("--max-body-size", type=int, default=64 << 20, show_default=True, metavar="BYTES",
              help="Largest request body (REST: 413 above it; gRPC: RESOURCE_EXHAUSTED).")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), help="Force an execution provider.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One JSON line per request on stderr.")
@json_option
@pass_ctx
def serve_command(ctx, refs, host, http_port, grpc_port, max_batch_size, max_queue_delay, instances, max_queue,
                  poll_interval, request_timeout, max_body_size, provider, access_log, as_json):
    """Serve REF... over the Open Inference Protocol (KServe v2): REST and gRPC, dynamic batching, alias hot-swap.

    Each REF (resnet50@prod, tiny@3, NAME@sha256:...) is resolved, its sha256 verified and a session warmed
    before the server listens; its OIP model name is the registry name. A served alias (or a bare name,
    "latest") that moves is swapped to the new version without failing a request. SIGTERM drains and exits 0.
    With --json, prints one JSON line with the bound ports once the server is ready.
    """
    import logging
    import sys

    from ..serve._server import Server

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("zoo.serve.access").setLevel(logging.INFO if access_log else logging.WARNING)
    server = Server(list(refs), store=ctx.store, artifacts=ctx.artifacts, host=host,
                    http_port=None if http_port < 0 else http_port, grpc_port=None if grpc_port < 0 else grpc_port,
                    max_batch_size=max_batch_size, max_queue_delay_us=max_queue_delay, instances=instances,
                    max_queue=max_queue, poll_interval=poll_interval, request_timeout=request_timeout,
                    max_body_bytes=max_body_size, provider=provider)

    def ready(server: Server) -> None:
        served = {name: {"ref": m.ref, "version": m.current.version.version, "sha256": m.current.version.sha256}
                  for name, m in server.models.items()}
        if as_json:
            emit_json({"host": host, "http_port": server.http_port, "grpc_port": server.grpc_port, "models": served})
            sys.stdout.flush()
        info(f"zoo serve: REST http://{host}:{server.http_port}  gRPC {host}:{server.grpc_port}  models: "
             + ", ".join(f"{m['ref']} -> {name}@{m['version']}" for name, m in served.items()))

    server.run(on_ready=ready)
    info("zoo serve: drained, stopped")
